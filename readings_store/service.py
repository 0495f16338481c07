"""Queries and writes shared by the phone line, the operator console and the billing API."""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from . import rules
from .models import (
    Account,
    AccountPhone,
    AuditEvent,
    Call,
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


def find_account(session: Session, region_id: int, typed: str) -> Account | None:
    matches = session.scalars(
        select(Account).where(Account.region_id == region_id, Account.keypad_key == keypad_key(typed)).limit(2)
    ).all()
    # Two accounts typed alike cannot be told apart on a keypad: treat as not found (operator review).
    return matches[0] if len(matches) == 1 else None


def accounts_for_phone(session: Session, phone: str | None) -> list[Account]:
    if not phone:
        return []
    return list(
        session.scalars(
            select(Account)
            .join(AccountPhone)
            .where(AccountPhone.phone == phone, Account.active.is_(True))
            .order_by(Account.id)
            .limit(5)
        )
    )


def last_accepted(session: Session, meter_id: int, register: str, before_id: int | None = None) -> Reading | None:
    query = select(Reading).where(
        Reading.meter_id == meter_id, Reading.register == register, Reading.status == "accepted"
    )
    if before_id is not None:
        query = query.where(Reading.id != before_id)
    return session.scalars(query.order_by(Reading.taken_at.desc(), Reading.id.desc()).limit(1)).first()


def region_now(region: Region, now: dt.datetime | None = None) -> dt.datetime:
    return (now or utcnow()).astimezone(ZoneInfo(region.timezone))


def in_working_hours(region: Region, now: dt.datetime | None = None) -> bool:
    local = region_now(region, now)
    return str(local.isoweekday()) in region.work_days and region.work_start <= local.time() < region.work_end


def window_for(session: Session, region_id: int, utility: str) -> tuple[int, int] | None:
    windows = session.scalars(select(SubmissionWindow).where(SubmissionWindow.region_id == region_id)).all()
    specific = [w for w in windows if w.utility == utility]
    chosen = specific or [w for w in windows if w.utility is None]
    return (chosen[0].start_day, chosen[0].end_day) if chosen else None


def period_for(session: Session, meter: Meter, now: dt.datetime) -> rules.PeriodDecision:
    """The billing period a reading of ``meter`` taken at ``now`` goes into (region time, window)."""
    region = meter.account.region
    return rules.billing_period(region_now(region, now).date(), window_for(session, region.id, meter.utility))


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


def validate_reading(
    session: Session, meter: Meter, register: str, value: Decimal, *, daily_limit: Decimal, now: dt.datetime
) -> rules.Rejection | None:
    """Every rule a reading must pass, in the order a caller is best told about them."""
    if register not in meter.register_names:
        return rules.Rejection("unknown_register", f"meter {meter.serial} has no register {register}")
    problem = rules.check_fits_meter(value, meter.digits, meter.decimals)
    if problem:
        return problem
    previous = last_accepted(session, meter.id, register)
    prev_value = previous.value if previous else None
    prev_at = previous.taken_at if previous else None
    limit = meter.max_daily if meter.max_daily is not None else daily_limit
    return rules.check_not_below_previous(value, prev_value, meter.digits) or rules.check_daily_consumption(
        value, prev_value, prev_at, now, meter.digits, limit
    )


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
) -> Reading:
    """Store a reading in its billing period; a newer one supersedes the older in that period.

    Idempotent on ``idempotency_key``: a repeated webhook gets the reading stored the first time.
    The caller commits (the phone line commits before it says "saved").
    """
    if idempotency_key:
        existing = session.scalars(select(Reading).where(Reading.idempotency_key == idempotency_key)).first()
        if existing:
            return existing
    now = now or utcnow()
    region = meter.account.region
    decision = period_for(session, meter, now)
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
    )
    session.add(reading)
    session.flush()
    supersede_previous(session, reading)
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
    """The reading a new accepted reading of this meter, register and period supersedes, so that
    billing can follow the chain: the last one billing has received (exported), or, if none was
    exported, the last accepted one. Pending and rejected readings are never the target."""
    same = select(Reading).where(Reading.meter_id == meter_id, Reading.register == register,
                                 Reading.period == period)
    if exclude_id is not None:
        same = same.where(Reading.id != exclude_id)
    exported = session.scalars(
        same.where(Reading.export_batch_id.is_not(None), Reading.status.in_(("accepted", "superseded")))
        .order_by(Reading.export_batch_id.desc(), Reading.id.desc()).limit(1)
    ).first()
    if exported is not None:
        return exported
    return session.scalars(same.where(Reading.status == "accepted").order_by(Reading.id.desc()).limit(1)).first()


def supersede_previous(session: Session, reading: Reading) -> None:
    """An accepted reading replaces earlier accepted/pending ones of its meter, register and period
    and names in ``supersedes_id`` the one billing can follow (see ``supersede_target``); a pending
    one replaces only earlier pending ones (an operator has not vouched for it yet) and names none."""
    if reading.status == "accepted":
        target = supersede_target(session, reading.meter_id, reading.register, reading.period, reading.id)
        reading.supersedes_id = target.id if target is not None else None
        replaceable: tuple[str, ...] = ("accepted", "pending_review")
    else:
        reading.supersedes_id = None
        replaceable = ("pending_review",)
    older = session.scalars(
        select(Reading).where(
            Reading.meter_id == reading.meter_id,
            Reading.register == reading.register,
            Reading.period == reading.period,
            Reading.status.in_(replaceable),
            Reading.id != reading.id,
        )
    ).all()
    for old in older:
        old.status = "superseded"
        for task in session.scalars(
            select(ReviewTask).where(ReviewTask.reading_id == old.id, ReviewTask.status == "open")
        ):
            task.status = "done"
            task.resolution = "superseded"
            task.resolved_at = reading.received_at


def review_reason_to_replace(session: Session, meter: Meter, register: str, caller: str | None,
                             call_id: int | None = None, now: dt.datetime | None = None) -> str | None:
    """Why a reading given by phone from ``caller`` (E.164, None when withheld) in call ``call_id``
    must go to an operator instead of being accepted, because of the reading it would supersede:

    * ``replaces_exported``: billing already has a reading of this meter, register and period;
    * ``replaces_other_caller``: it would replace an accepted reading that was not given from this
      same number, nor earlier in this same call (another number, a withheld one, an operator, an
      import or the API).

    None when it supersedes nothing, or only a reading this caller gave and billing has not taken.
    """
    period = period_for(session, meter, now or utcnow()).period
    target = supersede_target(session, meter.id, register, period)
    if target is None:
        return None
    if target.export_batch_id is not None:
        return "replaces_exported"
    if target.channel.startswith("phone") and target.call_id is not None:
        if target.call_id == call_id:
            return None
        given_by = session.scalar(select(Call.from_number).where(Call.id == target.call_id))
        if caller and given_by == caller:
            return None
    return "replaces_other_caller"


def count_refusals(session: Session, account_id: int, period: str, *, lock: bool = False) -> int:
    """Values refused for the account in the period (``ValueRefusal``). With ``lock`` the account row
    is locked first (PostgreSQL, ``FOR NO KEY UPDATE``: rows referring to the account can still be
    written; SQLite has one writer at a time), so concurrent calls count and add one by one."""
    if lock:
        session.execute(select(Account.id).where(Account.id == account_id).with_for_update(key_share=True))
    return session.scalar(select(func.count()).select_from(ValueRefusal).where(
        ValueRefusal.account_id == account_id, ValueRefusal.period == period)) or 0


def record_refusal(session: Session, meter: Meter, register: str, value: str, code: str, *,
                   call_id: int | None, caller: str | None, now: dt.datetime | None = None) -> ValueRefusal:
    now = now or utcnow()
    refusal = ValueRefusal(account_id=meter.account_id, meter_id=meter.id, register=register,
                           period=period_for(session, meter, now).period, value=value[:32], code=code,
                           call_id=call_id, caller=caller, created_at=now)
    session.add(refusal)
    return refusal


def forget_read_back(session: Session, call_id: int, meter_id: int, register: str, value: str) -> None:
    """A value read back to the caller and then saved in the same call no longer counts."""
    session.execute(delete(ValueRefusal).where(
        ValueRefusal.call_id == call_id, ValueRefusal.meter_id == meter_id, ValueRefusal.register == register,
        ValueRefusal.value == value, ValueRefusal.code == "not_confirmed").execution_options(synchronize_session=False))


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
