"""Queries and writes shared by the phone line, the operator console and the billing API."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, delete, func, inspect, or_, select, update
from sqlalchemy.orm import Session

from . import rules
from .models import (
    Account,
    AccountPhone,
    AuditEvent,
    Meter,
    Reading,
    Region,
    ReviewTask,
    SubmissionWindow,
    ValueRefusal,
    utcnow,
)

_SEPARATORS = re.compile(r"[^0-9]+")


def keypad_key(account_number: str) -> str:
    """How an account number is typed on a keypad: its digits, ``*`` for each separator run."""
    return _SEPARATORS.sub("*", account_number.strip()).strip("*")


def accounts_by_key(session: Session, typed: str, *, region_id: int | None = None, limit: int = 2,
                    any_separators: bool = False) -> list[Account]:
    """The accounts whose number is typed as ``typed`` on a keypad (``keypad_key``), in the region
    ``region_id`` or in any; the lowest ids first, at most ``limit``. ``any_separators``: also
    those whose digits match whatever separators either has (an operator's search)."""
    match = key_match(typed, any_separators=any_separators)
    if match is None:
        return []
    query = select(Account).where(match)
    if region_id is not None:
        query = query.where(Account.region_id == region_id)
    return list(session.scalars(query.order_by(Account.id).limit(limit)))


def key_match(typed: str | None, *, any_separators: bool = False):
    """The condition on ``Account`` of ``accounts_by_key`` (None: nothing typed matches any)."""
    key = keypad_key(typed or "")
    if not key:
        return None
    match = Account.keypad_key == key
    if any_separators:
        match = or_(match, func.replace(Account.keypad_key, "*", "") == key.replace("*", ""))
    return match


def find_account(session: Session, region_id: int | None, typed: str) -> Account | None:
    """The one account typed as ``typed`` (in ``region_id``, or in any region when None). Two
    accounts typed alike cannot be told apart on a keypad: None then, as for none (operator review)."""
    matches = accounts_by_key(session, typed, region_id=region_id)
    return matches[0] if len(matches) == 1 else None


# Built once, with bind parameters: every call's opening and every value a turn saves run these,
# and building a statement and its cache key costs more than running it.
_ACCOUNTS_FOR_PHONE = (select(Account).join(AccountPhone)
                       .where(AccountPhone.phone == bindparam("phone"), Account.active.is_(True))
                       .order_by(Account.id).limit(5))
_FORGET_READ_BACK = delete(ValueRefusal).where(
    ValueRefusal.call_id == bindparam("call_id"), ValueRefusal.meter_id == bindparam("meter_id"),
    ValueRefusal.register == bindparam("register"), ValueRefusal.value == bindparam("value"),
    ValueRefusal.code == "not_confirmed").execution_options(synchronize_session=False)


# ``_supersede``'s two UPDATEs. With the ids a parameter, the ORM cannot evaluate the criteria in
# Python to update the session's copies: "fetch" updates them from the ids the UPDATE returns.
_SUPERSEDE_READINGS = (update(Reading).where(Reading.id.in_(bindparam("replaced", expanding=True)))
                       .values(status="superseded").execution_options(synchronize_session="fetch"))
_CLOSE_REPLACED_TASKS = (update(ReviewTask).where(ReviewTask.reading_id.in_(bindparam("replaced", expanding=True)),
                                                  ReviewTask.status == "open")
                         .values(status="done", resolution="superseded", resolved_at=bindparam("at"))
                         .execution_options(synchronize_session="fetch"))


def accounts_for_phone(session: Session, phone: str | None) -> list[Account]:
    if not phone:
        return []
    return list(session.scalars(_ACCOUNTS_FOR_PHONE, {"phone": phone}))


def region_now(region: Region, now: dt.datetime | None = None) -> dt.datetime:
    return (now or utcnow()).astimezone(ZoneInfo(region.timezone))


def in_working_hours(region: Region, now: dt.datetime | None = None) -> bool:
    local = region_now(region, now)
    return str(local.isoweekday()) in region.work_days and region.work_start <= local.time() < region.work_end


def window_for(session: Session, region_id: int, utility: str) -> tuple[int, int] | None:
    return choose_window(session.scalars(select(SubmissionWindow).where(SubmissionWindow.region_id == region_id)).all(),
                         utility)


def choose_window(windows, utility: str) -> tuple[int, int] | None:
    """Of a region's submission windows, the one for ``utility``: its own, else the region's for
    every utility; None when neither is set."""
    specific = [w for w in windows if w.utility == utility]
    chosen = specific or [w for w in windows if w.utility is None]
    return (chosen[0].start_day, chosen[0].end_day) if chosen else None


def region_window(session: Session, region: Region, utility: str) -> tuple[int, int] | None:
    """``window_for`` the region, from its ``windows`` when they were loaded with it in this
    transaction (the phone line loads a meter with its account, region and windows in one query),
    else read now."""
    if "windows" not in inspect(region).unloaded:
        return choose_window(region.windows, utility)
    return window_for(session, region.id, utility)


def period_for(session: Session, meter: Meter, now: dt.datetime) -> rules.PeriodDecision:
    """The billing period a reading of ``meter`` taken at ``now`` goes into (region time, window)."""
    region = meter.account.region
    return rules.billing_period(region_now(region, now).date(), region_window(session, region, meter.utility))


def history_time(region: Region, window: tuple[int, int] | None, now: dt.datetime,
                 days_ago: float = 30) -> tuple[dt.datetime, str]:
    """When a reading of the last closed period was taken, and that period: about ``days_ago`` before
    ``now``, but never later than noon on the last day of the previous period's window, so that it
    belongs to an earlier period than a reading given ``now`` (on any day of the month)."""
    current = rules.billing_period(region_now(region, now).date(), window).period
    closes = rules.window_dates(rules.shift_period(current, -1), window)[1]
    latest = dt.datetime.combine(closes, dt.time(12), ZoneInfo(region.timezone)).astimezone(dt.timezone.utc)
    taken = min(now - dt.timedelta(days=days_ago), latest)
    return taken, rules.billing_period(region_now(region, taken).date(), window).period


@dataclass(frozen=True)
class Judged:
    """What judging a value read, for storing it in the same transaction: its billing period,
    and for a reading stored with ``status``, the reading it names in ``supersedes`` and the ids
    of those it replaces (``supersede_target``, ``replaced_by``)."""

    decision: rules.PeriodDecision
    status: str | None
    supersedes_id: int | None
    replaces: tuple[int, ...]


def store_reading(
    session: Session,
    meter: Meter,
    register: str,
    value: Decimal,
    *,
    channel: str,
    status: str = "accepted",
    reason: str | None = None,
    now: dt.datetime | None = None,
    call_id: int | None = None,
    utterance_id: int | None = None,
    operator_id: int | None = None,
    idempotency_key: str | None = None,
    given_from: str | None = None,
    trusted: bool | None = None,
    judged: Judged | None = None,
    claimed: bool = False,
) -> Reading:
    """Store a reading in its billing period; a newer one supersedes the older in that period
    (``supersede_previous``). What may be stored, and with which status, is for the intake policy
    to say (``readings_store.intake``); ``trusted`` defaults to what the channel says.

    Idempotent on ``idempotency_key``: a repeated webhook gets the reading stored the first time.
    The caller commits (the phone line commits before it says "saved"). ``judged``: what the
    intake policy read for this value in the same transaction (under the account's lock), so as
    not to read it again. ``claimed``: the caller holds a claim that no repeat can take (the phone
    line's turn), so the key is not looked for first; its unique index still refuses a repeat.
    """
    if idempotency_key and not claimed:
        existing = session.scalars(select(Reading).where(Reading.idempotency_key == idempotency_key)).first()
        if existing:
            return existing
    now = now or utcnow()
    region = meter.account.region
    if judged is not None and judged.status == status:
        decision = judged.decision
        target_id = judged.supersedes_id if status == "accepted" else None
        replaced = list(judged.replaces)
    else:
        decision = judged.decision if judged is not None else period_for(session, meter, now)
        # What it supersedes is read before it is written: the INSERT then carries ``supersedes_id``
        # (no UPDATE after it), and the readings it replaces cannot include itself.
        target, rows = supersession(session, meter.id, register, decision.period, status)
        target_id = target.id if target is not None and status == "accepted" else None
        replaced = [r.id for r in rows]
    reading = Reading(
        meter_id=meter.id,
        register=register,
        value=value,
        period=decision.period,
        out_of_window=not decision.in_window,
        taken_at=now,
        received_at=now,
        channel=channel,
        status=status,
        status_reason=reason,
        call_id=call_id,
        utterance_id=utterance_id,
        operator_id=operator_id,
        idempotency_key=idempotency_key,
        given_from=given_from,
        supersedes_id=target_id,
        # None leaves it to the column's default: by channel.
        **({} if trusted is None else {"trusted": trusted}),
    )
    session.add(reading)
    session.flush()
    _supersede(session, replaced, reading.received_at)
    if status == "pending_review":
        session.add(
            ReviewTask(
                kind="reading",
                reason=reason or "unsure",
                region_id=region.id,
                utility=meter.utility,
                call_id=call_id,
                reading_id=reading.id,
                utterance_id=utterance_id,
                created_at=now,
            )
        )
    return reading


def supersede_target(session: Session, meter_id: int, register: str, period: str,
                     exclude_id: int | None = None) -> Reading | None:
    """What a new accepted reading of this meter, register and period names in ``supersedes``, so
    that billing can follow the chain: the last reading of them that billing has received in an
    export batch (whatever its status now), else None. A reading replaced before it was exported
    was never received, so it is never named."""
    query = select(Reading).where(Reading.meter_id == meter_id, Reading.register == register,
                                  Reading.period == period, Reading.export_batch_id.is_not(None))
    if exclude_id is not None:
        query = query.where(Reading.id != exclude_id)
    return session.scalars(query.order_by(Reading.export_batch_id.desc(), Reading.id.desc()).limit(1)).first()


def replaced_by(session: Session, meter_id: int, register: str, period: str, status: str,
                exclude_id: int | None = None) -> list[Reading]:
    """The readings a new one of this meter, register and period with ``status`` replaces: an
    accepted one replaces the accepted and pending ones, a pending one only the pending ones (an
    operator has not vouched for it yet)."""
    replaceable = ("accepted", "pending_review") if status == "accepted" else ("pending_review",)
    query = select(Reading).where(Reading.meter_id == meter_id, Reading.register == register,
                                  Reading.period == period, Reading.status.in_(replaceable))
    if exclude_id is not None:
        query = query.where(Reading.id != exclude_id)
    return list(session.scalars(query.order_by(Reading.id)))


def supersession(session: Session, meter_id: int, register: str, period: str,
                 status: str) -> tuple[Reading | None, list[Reading]]:
    """(``supersede_target``, ``replaced_by``) for a new reading of this meter, register, period
    and ``status``, read by one query (the readings of one meter, register and period are few)."""
    replaceable = ("accepted", "pending_review") if status == "accepted" else ("pending_review",)
    rows = list(session.scalars(select(Reading).where(
        Reading.meter_id == meter_id, Reading.register == register, Reading.period == period,
        or_(Reading.export_batch_id.is_not(None), Reading.status.in_(replaceable))).order_by(Reading.id)
        # Told apart in Python below: the rows as they are now, not as this session last saw them.
        .execution_options(populate_existing=True)))
    exported = [r for r in rows if r.export_batch_id is not None]
    target = max(exported, key=lambda r: (r.export_batch_id, r.id)) if exported else None
    return target, [r for r in rows if r.status in replaceable]


def supersede_previous(session: Session, reading: Reading) -> None:
    """The readings ``reading`` replaces (``replaced_by``) end ``superseded``, their open review
    tasks closed; an accepted reading names in ``supersedes_id`` the one billing can follow
    (``supersede_target``), a pending one names none."""
    target = supersede_target(session, reading.meter_id, reading.register, reading.period, reading.id) \
        if reading.status == "accepted" else None
    reading.supersedes_id = target.id if target is not None else None
    _supersede(session, [r.id for r in replaced_by(session, reading.meter_id, reading.register, reading.period,
                                                   reading.status, reading.id)], reading.received_at)


def _supersede(session: Session, replaced: list[int], at: dt.datetime) -> None:
    """The readings ``replaced`` (ids) end superseded at ``at``, their open review tasks closed: two
    UPDATEs, whatever their number (the session's copies of them are updated too)."""
    if not replaced:
        return
    session.execute(_SUPERSEDE_READINGS, {"replaced": replaced})
    session.execute(_CLOSE_REPLACED_TASKS, {"replaced": replaced, "at": at})


def record_refusal(session: Session, meter: Meter, register: str, value: str, code: str, *,
                   call_id: int | None, caller: str | None, now: dt.datetime | None = None,
                   period: str | None = None) -> ValueRefusal:
    now = now or utcnow()
    refusal = ValueRefusal(account_id=meter.account_id, meter_id=meter.id, register=register,
                           period=period or period_for(session, meter, now).period, value=value[:32], code=code,
                           call_id=call_id, caller=caller, created_at=now)
    session.add(refusal)
    return refusal


def forget_read_back(session: Session, call_id: int, meter_id: int, register: str, value: str) -> None:
    """A value read back to the caller and then saved in the same call no longer counts."""
    session.execute(_FORGET_READ_BACK, {"call_id": call_id, "meter_id": meter_id, "register": register,
                                        "value": value})


def refusals(session: Session, account_id: int, period: str) -> list[ValueRefusal]:
    """The refused (or read back and dropped) values of an account in a period, oldest first."""
    return list(session.scalars(select(ValueRefusal).where(
        ValueRefusal.account_id == account_id, ValueRefusal.period == period).order_by(ValueRefusal.id)))


def audit(session: Session, *, actor_kind: str, action: str, entity: str, entity_id: int | None,
          actor_id: int | None = None, actor_name: str | None = None, before=None, after=None,
          reason: str | None = None) -> AuditEvent:
    event = AuditEvent(actor_kind=actor_kind, actor_id=actor_id, actor_name=actor_name, action=action,
                       entity=entity, entity_id=entity_id, before=before, after=after, reason=reason)
    session.add(event)
    return event
