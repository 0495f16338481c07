"""What an operator does to a review task, without Flask: validate, claim, change, audit.

Status transitions (a reading task holds a reading in ``pending_review``):

* accept  -> the reading becomes ``accepted``; ``service.supersede_previous`` retires older
  accepted/pending readings of its meter, register and period.
* correct -> the pending reading becomes ``superseded`` and a NEW reading (channel ``operator``,
  ``operator_id``, status ``accepted``) is stored with ``service.store_reading`` in the billing
  period of the original call. History keeps both; the audit event links them.

Either way the accepted reading's ``supersedes_id`` names what billing can follow: the last
reading of its meter, register and period that billing has received in an export batch, else
nothing (``service.supersede_target``), never the pending reading the operator handled.
* reject  -> the reading becomes ``rejected`` (``status_reason`` ``operator_rejected``).

An identification task is either linked to an account (the call gets the account; optionally the
caller's number is added to the account's phones) or closed with a reason.

Rules: accept and correct judge the value by the intake policy every channel shares
(``readings_store.intake``, as given by an operator: against the baseline, never counted as a
probe). A value that cannot be on the meter (register, digits, decimals)
or an account/meter out of service is always refused. ``below_previous`` and
``implausible_consumption`` may be overridden when the operator ticks "override" and gives a
reason (e.g. the meter was replaced, or the caller confirmed the figure); the override and its
reason are kept in the audit event.

Double processing: the task is claimed with ``UPDATE review_tasks SET status='done' ... WHERE
id=? AND status='open'``, and the reading changed with ``... WHERE status='pending_review'``; if
either touches no row, someone else was first and everything is rolled back.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from readings_store import intake, rules, service
from readings_store.models import Account, AccountPhone, Call, Operator, Reading, ReviewTask, utcnow

from . import labels

OVERRIDABLE = frozenset({"below_previous", "implausible_consumption"})


class ActionError(Exception):
    """The action was refused; nothing changed. ``message`` is for the operator."""

    def __init__(self, message: str, *, code: str | None = None, overridable: bool = False):
        super().__init__(message)
        self.message = message
        self.code = code
        self.overridable = overridable


class AlreadyHandled(ActionError):
    pass


@dataclass
class Actor:
    id: int
    name: str


def check_rules(session: Session, config, reading: Reading, value: Decimal,
                actor: Actor | None = None) -> rules.Rejection | None:
    """The intake policy's verdict on ``value`` for the reading's meter and register, given by an
    operator, judged at the time the caller gave it (so the daily-consumption check is about the
    call, not the review); the refusal, if any. Without ``actor``, a preview: no lock is taken."""
    source = intake.Source("operator", operator_id=actor.id if actor else None)
    verdict = intake.judge(session, reading.meter, reading.register, value, source, config, now=reading.taken_at,
                           lock=actor is not None)
    return rules.Rejection(verdict.code, verdict.detail) if verdict.outcome == intake.REFUSED else None


def _judge(problem: rules.Rejection | None, override: bool, reason: str | None) -> bool:
    """Raise unless the value passes or the operator overrides an overridable rule with a reason;
    return whether an override was used."""
    if problem is None:
        return False
    overridable = problem.code in OVERRIDABLE
    if not overridable:
        raise ActionError(f"Refused by the rules: {labels.label(problem.code)} ({problem.detail}). "
                          "This rule cannot be overridden; correct the value instead.", code=problem.code)
    if not override:
        raise ActionError(f"Refused by the rules: {labels.label(problem.code)} ({problem.detail}). "
                          "Tick \"override\" and give a reason if you are sure.", code=problem.code, overridable=True)
    if not (reason or "").strip():
        raise ActionError("An override needs a reason.", code=problem.code, overridable=True)
    return True


def _claim(session: Session, task: ReviewTask, actor: Actor, resolution: str, moment: dt.datetime) -> None:
    result = session.execute(
        update(ReviewTask)
        .where(ReviewTask.id == task.id, ReviewTask.status == "open")
        .values(status="done", resolved_by=actor.id, resolved_at=moment, resolution=resolution)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        session.rollback()
        raise AlreadyHandled(already_handled_message(session, task.id))
    session.refresh(task)


def already_handled_message(session: Session, task_id: int) -> str:
    task = session.get(ReviewTask, task_id)
    if task is not None:
        session.refresh(task)
    who = session.get(Operator, task.resolved_by) if task and task.resolved_by else None
    by = f" by {who.username}" if who else ""
    what = f" ({labels.label(task.resolution, 'resolution')})" if task and task.resolution else ""
    return f"This item was already handled{by}{what}. Nothing was changed."


def _set_reading_status(session: Session, reading: Reading, status: str, reason: str | None) -> None:
    result = session.execute(
        update(Reading)
        .where(Reading.id == reading.id, Reading.status == "pending_review")
        .values(status=status, status_reason=reason)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        session.rollback()
        raise AlreadyHandled("The reading is no longer pending review (a newer reading replaced it or someone "
                             "else handled it). Nothing was changed.")
    session.refresh(reading)


def _snapshot(reading: Reading) -> dict:
    return {"reading_id": reading.id, "value": str(reading.value), "status": reading.status,
            "register": reading.register, "period": reading.period, "channel": reading.channel}


def _reading_task(session: Session, task: ReviewTask) -> Reading:
    if task.status != "open":
        raise AlreadyHandled(already_handled_message(session, task.id))
    if task.kind != "reading" or task.reading is None:
        raise ActionError("This item is not a reading.")
    if task.reading.status != "pending_review":
        raise AlreadyHandled("The reading is no longer pending review. Nothing was changed.")
    return task.reading


def _decide_utterance(reading: Reading, decision: str) -> None:
    if reading.utterance is not None:
        reading.utterance.decision = decision


def accept(session: Session, config, task: ReviewTask, actor: Actor, *, override: bool = False,
           reason: str | None = None) -> Reading:
    reading = _reading_task(session, task)
    overridden = _judge(check_rules(session, config, reading, reading.value, actor), override, reason)
    before = _snapshot(reading)
    _claim(session, task, actor, "accepted", utcnow())
    _set_reading_status(session, reading, "accepted", "operator_override" if overridden else None)
    # An operator vouched for it: a trusted source's reading, a baseline for later values.
    reading.operator_id, reading.trusted = actor.id, True
    service.supersede_previous(session, reading)
    _decide_utterance(reading, "accepted")
    service.audit(session, actor_kind="operator", actor_id=actor.id, actor_name=actor.name,
                  action="reading.accept", entity="reading", entity_id=reading.id, before=before,
                  after={**_snapshot(reading), "task_id": task.id, "override": overridden},
                  reason=(reason or "").strip() or None)
    session.flush()
    return reading


def correct(session: Session, config, task: ReviewTask, actor: Actor, *, value: str, reason: str,
            override: bool = False) -> Reading:
    reading = _reading_task(session, task)
    if not (reason or "").strip():
        raise ActionError("A correction needs a reason.")
    parsed = rules.parse_value(value)
    if isinstance(parsed, rules.Rejection):
        raise ActionError(f"{value!r} is not a meter value: digits with an optional decimal point.",
                          code=parsed.code)
    overridden = _judge(check_rules(session, config, reading, parsed, actor), override, reason)
    before = _snapshot(reading)
    moment = utcnow()
    _claim(session, task, actor, "corrected", moment)
    _set_reading_status(session, reading, "superseded", "operator_corrected")
    new = service.store_reading(
        session, reading.meter, reading.register, parsed, channel="operator", status="accepted",
        reason="operator_override" if overridden else None, now=reading.taken_at, call_id=reading.call_id,
        utterance_id=reading.utterance_id, operator_id=actor.id,
    )
    new.received_at = moment
    _decide_utterance(reading, "corrected")
    session.flush()
    service.audit(session, actor_kind="operator", actor_id=actor.id, actor_name=actor.name,
                  action="reading.correct", entity="reading", entity_id=reading.id, before=before,
                  after={**_snapshot(new), "superseded": _snapshot(reading), "task_id": task.id,
                         "override": overridden},
                  reason=reason.strip())
    session.flush()
    return new


def reject(session: Session, config, task: ReviewTask, actor: Actor, *, reason: str) -> Reading:
    reading = _reading_task(session, task)
    if not (reason or "").strip():
        raise ActionError("A rejection needs a reason.")
    before = _snapshot(reading)
    _claim(session, task, actor, "rejected", utcnow())
    _set_reading_status(session, reading, "rejected", "operator_rejected")
    _decide_utterance(reading, "rejected")
    service.audit(session, actor_kind="operator", actor_id=actor.id, actor_name=actor.name,
                  action="reading.reject", entity="reading", entity_id=reading.id, before=before,
                  after={**_snapshot(reading), "task_id": task.id}, reason=reason.strip())
    session.flush()
    return reading


def _identification_task(session: Session, task: ReviewTask) -> None:
    if task.status != "open":
        raise AlreadyHandled(already_handled_message(session, task.id))
    if task.kind != "identification":
        raise ActionError("This item is not an identification.")


def find_account(session: Session, region_id: int, typed: str) -> Account:
    if not service.keypad_key(typed or ""):
        raise ActionError("Enter the account number.")
    matches = service.accounts_by_key(session, typed, region_id=region_id)
    if not matches:
        raise ActionError(f"No account {typed!r} in that region.")
    if len(matches) > 1:
        raise ActionError(f"Several accounts match {typed!r}; type it exactly as printed.")
    return matches[0]


def link(session: Session, task: ReviewTask, actor: Actor, *, region_id: int, number: str,
         add_phone: bool = False, note: str | None = None) -> Account:
    _identification_task(session, task)
    account = find_account(session, region_id, number)
    rejection = rules.check_account(account)
    if rejection:
        raise ActionError(f"Cannot link: {rejection.detail}.")
    before = {"task_id": task.id, "account_id": None, "attempts": (task.details or {}).get("attempts")}
    _claim(session, task, actor, "linked", utcnow())
    call = session.get(Call, task.call_id) if task.call_id else None
    if call is not None:
        call.account_id, call.region_id = account.id, account.region_id
    phone_added = None
    caller = (task.details or {}).get("caller") or (call.from_number if call else None)
    if add_phone and caller:
        exists = session.scalars(select(AccountPhone).where(AccountPhone.account_id == account.id,
                                                            AccountPhone.phone == caller)).first()
        if exists is None:
            session.add(AccountPhone(account_id=account.id, phone=caller))
            phone_added = caller
    task.details = {**(task.details or {}), "account_id": account.id}
    service.audit(session, actor_kind="operator", actor_id=actor.id, actor_name=actor.name,
                  action="identification.link", entity="review_task", entity_id=task.id, before=before,
                  after={"task_id": task.id, "account_id": account.id, "account_number": account.number,
                         "phone_added": phone_added},
                  reason=(note or "").strip() or None)
    session.flush()
    return account


def close(session: Session, task: ReviewTask, actor: Actor, *, reason: str) -> None:
    _identification_task(session, task)
    if not (reason or "").strip():
        raise ActionError("Closing needs a reason.")
    _claim(session, task, actor, "closed", utcnow())
    service.audit(session, actor_kind="operator", actor_id=actor.id, actor_name=actor.name,
                  action="identification.close", entity="review_task", entity_id=task.id,
                  before={"task_id": task.id, "status": "open"}, after={"task_id": task.id, "status": "done"},
                  reason=reason.strip())
    session.flush()


def plausible_range(session: Session, config, reading: Reading) -> dict | None:
    """Previous accepted value, days since, the daily limit and the highest plausible value."""
    meter = reading.meter
    if reading.status == "pending_review":
        # What the rule check compares with: the intake policy's baseline.
        previous = intake.baseline(session, meter.id, reading.register, reading.period, reading.taken_at)
    else:
        # A handled item: the accepted reading before it, not its own correction.
        previous = session.scalars(
            select(Reading).where(Reading.meter_id == meter.id, Reading.register == reading.register,
                                  Reading.status == "accepted", Reading.id < reading.id)
            .order_by(Reading.taken_at.desc(), Reading.id.desc()).limit(1)).first()
    if previous is None:
        return None
    limit = meter.max_daily if meter.max_daily is not None else config.daily_limit(meter.utility)
    days = max(Decimal(1), Decimal(str((reading.taken_at - previous.taken_at).total_seconds())) / Decimal(86400))
    highest = previous.value + (limit * days).quantize(Decimal(1) / (Decimal(10) ** meter.decimals))
    used = rules.consumption(previous.value, reading.value, meter.digits)
    return {"previous": previous, "days": days.quantize(Decimal("0.1")), "limit": limit, "low": previous.value,
            "high": highest, "used": used}
