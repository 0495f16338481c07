"""One intake policy for a meter value, whatever the channel: keys or speech on the phone line, a
text message, the billing API, an operator, an import.

``judge`` takes one value, the meter and register it is for, and who gave it (``Source``), and
returns a ``Verdict``: refused (with the rule's code), accepted, or kept for an operator (with the
reason), and what storing it means (the readings it replaces, the one ``supersedes`` names).
``take`` judges and stores at once (texts, the API, imports). The phone line judges a value when it
is given (to choose between asking again and reading it back) and again when the caller confirms
it, in the transaction that stores it. Channels decide only how to talk to the person.

The rules:

* A value is judged against the **baseline** (``baseline``): the newest reading of the meter and
  register from a trusted source that billing has received (exported), or that is accepted and
  that the value would not replace (one of an earlier period). Trusted sources are the account's
  number on file (by phone or text), an operator (who may also vouch for any pending reading), an
  import and the API. A reading given from a withheld or unknown number never becomes the
  baseline, so a stranger's first reading of a period cannot block the customer's.
* A value from a trusted source that passes is accepted. It replaces the unexported readings of
  its period, whoever gave them: they end ``superseded`` and are never exported.
* A value from a withheld or unknown number that would replace a reading billing already has
  (``replaces_exported``), or an accepted reading given by someone else — a trusted source or
  another number (``replaces_other_caller``) — is kept for an operator. The same number, or the
  same call of a withheld one, may correct its own reading until it is exported.
* On the public lines (phone and texts) a value refused as lower than the baseline or implausible
  tells something about the account's readings, and so does a value read back as plausible and
  then dropped: they are counted per account and billing period. Once ``probe_limit`` are counted,
  every value is kept for an operator (``repeated_refusals``) whatever it is, and these reasons
  are told only in neutral words (``Verdict.quiet``), so nobody can search for a customer's
  previous reading by trying values. The count is read under a write lock on the account
  (``lock_account``) and the refusal written in the same transaction, so parallel values are
  counted one by one on every database.
* ``supersedes`` names the last reading of the meter, register and period that billing has received
  in an export batch, else nothing (``service.supersede_target``).
"""
from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from . import rules
from .models import CHANNELS, TRUSTED_CHANNELS, Account, AccountPhone, Meter, Reading, ValueRefusal, utcnow
from .service import Judged, period_for, record_refusal, store_reading

# Where a person gives the value and is answered at once: what they are told is counted.
PUBLIC_CHANNELS = frozenset({"phone_keypad", "phone_speech", "sms"})

REFUSED, ACCEPTED, REVIEW = "refused", "accepted", "review"

# Refusals that tell which way a value is wrong against the account's readings.
REVEALING = frozenset({"below_previous", "implausible_consumption"})
# A value read back as plausible and not confirmed (the phone line): it told as much.
NOT_CONFIRMED = "not_confirmed"
REPEATED_REFUSALS = "repeated_refusals"
REPLACES_OTHER_CALLER = "replaces_other_caller"
REPLACES_EXPORTED = "replaces_exported"
# Reasons a person hears only "we will check this reading" about (the same words either way).
QUIET = REVEALING | {REPEATED_REFUSALS, REPLACES_OTHER_CALLER, REPLACES_EXPORTED}


class Policy(Protocol):
    """The settings the policy needs (``ivr.config.Config`` has them)."""

    probe_limit: int

    def daily_limit(self, utility: str) -> Decimal: ...


@dataclass(frozen=True)
class Source:
    """Who gave a value, and how: the channel it is stored with, the number it came from (E.164;
    None when withheld or not by phone or text), the call, the text message, the operator."""

    channel: str
    phone: str | None = None
    call_id: int | None = None
    message_sid: str | None = None
    operator_id: int | None = None

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise ValueError(f"unknown channel {self.channel!r}")

    @property
    def public(self) -> bool:
        return self.channel in PUBLIC_CHANNELS


@dataclass(frozen=True)
class Verdict:
    """What becomes of one value.

    ``outcome`` is ``refused`` (``code`` names the rule: the person hears ``reason_<code>``;
    ``detail`` is for operators and logs), ``accepted``, or ``review`` (kept for an operator;
    ``code`` says why). ``reveals``: telling the person how the value was judged says something
    about the account's readings, so a refusal is counted, and so is a read-back until the value
    is stored. The rest is what storing it means: the billing period, whether it comes from a
    trusted source, the baseline it was judged against, the reading ``supersedes`` will name and
    the readings that end ``superseded``.
    """

    outcome: str
    code: str | None = None
    detail: str | None = None
    value: Decimal | None = None
    reveals: bool = False
    period: str | None = None
    in_window: bool = True
    trusted: bool = False
    baseline_id: int | None = None
    supersedes_id: int | None = None
    replaces: tuple[int, ...] = ()

    @property
    def status(self) -> str | None:
        """The status the reading is stored with (None: nothing is stored)."""
        return {ACCEPTED: "accepted", REVIEW: "pending_review"}.get(self.outcome)

    @property
    def judged(self) -> Judged | None:
        """What was read to judge it, for ``store_reading`` in the same transaction (None: a
        value refused before anything was read)."""
        if self.period is None:
            return None
        return Judged(rules.PeriodDecision(self.period, self.in_window), self.status, self.supersedes_id,
                      self.replaces)

    @property
    def quiet(self) -> bool:
        """The person hears only neutral words about it ("we will check this reading")."""
        return self.code in QUIET


def lock_account(session: Session, account_id: int) -> None:
    """Serialise the intake of an account's values until the transaction ends. PostgreSQL: ``SELECT
    ... FOR NO KEY UPDATE`` on the account row (rows referring to it can still be written). SQLite
    has no row locks and takes its write lock at a transaction's first write, which would come after
    the count: a write that changes nothing takes it now (as ``BEGIN IMMEDIATE`` would)."""
    if account_id in locked_accounts(session):
        return  # locked by the statement that loaded it (``note_account_lock``)
    if session.get_bind().dialect.name == "sqlite":
        if _holds_write_lock(session):
            return  # this transaction has written already: SQLite's one write lock is ours
        session.execute(update(Account.__table__).where(Account.__table__.c.id == account_id)
                        .values(updated_at=Account.__table__.c.updated_at))
    else:
        session.execute(select(Account.id).where(Account.id == account_id).with_for_update(key_share=True))


_WRITE_LOCK = "intake.write_lock"


def note_write_lock(session: Session) -> None:
    """Say that the session's transaction has written (on SQLite it then holds the database's one
    write lock until it ends), so that ``lock_account`` needs no write of its own."""
    session.info[_WRITE_LOCK] = session.get_transaction()


_ACCOUNT_LOCKS = "intake.account_locks"


def note_account_lock(session: Session, account_id: int) -> None:
    """Say that the session's transaction holds the account's lock already (taken by the query
    that loaded it, ``FOR NO KEY UPDATE OF accounts``), so that ``lock_account`` takes it no more."""
    transaction = session.get_transaction()
    held = session.info.get(_ACCOUNT_LOCKS)
    if held is None or held[0] is not transaction:
        held = session.info[_ACCOUNT_LOCKS] = (transaction, set())
    held[1].add(account_id)


def locked_accounts(session: Session) -> set[int]:
    held = session.info.get(_ACCOUNT_LOCKS)
    transaction = session.get_transaction()
    return held[1] if held is not None and transaction is not None and held[0] is transaction else set()


def _holds_write_lock(session: Session) -> bool:
    transaction = session.get_transaction()
    return transaction is not None and session.info.get(_WRITE_LOCK) is transaction


def count_refusals(session: Session, account_id: int, period: str, *,
                   repeat: tuple[int, int, str, str] | None = None) -> int:
    """Answers counted for the account in the period (``ValueRefusal``). ``repeat`` is (call id,
    meter id, register, value): that value, given again in the same call, is not counted again —
    repeating it tells nothing new, and it is how a value read back is judged once more when the
    caller confirms it."""
    if repeat is not None:
        repeat = (*repeat[:3], repeat[3][:32])
    return session.scalar(_refusals_query(account_id, period, repeat)) or 0


def _refusals_query(account_id, period, repeat: tuple | None):
    """The query of ``count_refusals`` (values or ``bindparam``s; ``repeat``'s value as stored,
    at most 32 characters)."""
    query = select(func.count().label("n")).select_from(ValueRefusal).where(
        ValueRefusal.account_id == account_id, ValueRefusal.period == period)
    if repeat is not None:
        call_id, meter_id, register, value = repeat
        # IS DISTINCT FROM: a row of no call (a text) is always counted, never lost to a NULL.
        query = query.where(or_(ValueRefusal.call_id.is_distinct_from(call_id), ValueRefusal.meter_id != meter_id,
                                ValueRefusal.register != register, ValueRefusal.value != value))
    return query


def on_file(session: Session, account_id: int, phone: str | None) -> bool:
    """Whether ``phone`` is one of the account's numbers on file."""
    return bool(phone) and session.scalar(select(AccountPhone.id).where(
        AccountPhone.account_id == account_id, AccountPhone.phone == phone).limit(1)) is not None


def is_trusted(session: Session, meter: Meter, source: Source) -> bool:
    """An operator, an import, the API, or the account's number on file."""
    return source.channel in TRUSTED_CHANNELS or on_file(session, meter.account_id, source.phone)


def baseline(session: Session, meter_id: int, register: str, period: str, now: dt.datetime) -> Reading | None:
    """The reading a new value of this meter, register and period is judged against: the newest
    (taken by ``now``) from a trusted source that billing has received, or that is accepted and of
    another period (an unexported reading of this period is one the new value replaces)."""
    return session.scalars(baseline_query(meter_id, register, period, now)).first()


def baseline_query(meter_id, register, period, now):
    """The query of ``baseline`` (values or ``bindparam``s)."""
    return select(Reading).where(
        Reading.meter_id == meter_id, Reading.register == register, Reading.trusted.is_(True),
        Reading.taken_at <= now,
        or_(Reading.export_batch_id.is_not(None), and_(Reading.status == "accepted", Reading.period != period)),
    ).order_by(Reading.taken_at.desc(), Reading.id.desc()).limit(1)


@dataclass(frozen=True)
class _Facts:
    """What judging a value reads (``_facts``)."""

    baseline: Reading | None
    exported: Reading | None  # the reading ``supersedes`` names (``service.supersede_target``)
    replaced: list[Reading]  # the accepted and pending readings of the period (``service.replaced_by``)
    refusals: int  # ``count_refusals``


def _facts(session: Session, meter: Meter, register: str, period: str, now: dt.datetime,
           repeat: tuple[int, int, str, str] | None) -> _Facts:
    """The readings and the count a value of this meter, register and period is judged by, read by
    one statement (``_facts_query``); told apart in Python."""
    params = {"account_id": meter.account_id, "meter_id": meter.id, "register": register, "period": period,
              "now": now}
    if repeat is not None:
        params.update(call_id=repeat[0], value=repeat[3][:32])
    found = session.execute(_facts_query(repeat is not None), params).all()
    refusals = found[0][0] if found else 0
    rows = [r for _, r in found if r is not None]
    bases = [r for r in rows if r.trusted and r.taken_at <= now
             and (r.export_batch_id is not None or (r.status == "accepted" and r.period != period))]
    own = [r for r in rows if r.period == period]
    exported = [r for r in own if r.export_batch_id is not None]
    return _Facts(max(bases, key=lambda r: (r.taken_at, r.id)) if bases else None,
                  max(exported, key=lambda r: (r.export_batch_id, r.id)) if exported else None,
                  [r for r in own if r.status in ("accepted", "pending_review")], refusals or 0)


@functools.cache
def _facts_query(repeat: bool):
    """The statement of ``_facts``: the account's answers counted in the period
    (``count_refusals``; with ``repeat``, not the value given again in the same call), joined to
    the readings of the period that an accepted value names or replaces (``service.supersession``)
    and the ``baseline`` (the newest row of its kind). Built once, with bind parameters: building
    it and its cache key cost more than running it (0.75 ms against the call's 27)."""
    meter_id, register, period = bindparam("meter_id"), bindparam("register"), bindparam("period")
    counted = _refusals_query(bindparam("account_id"), period,
                              (bindparam("call_id"), meter_id, register, bindparam("value")) if repeat else None
                              ).subquery()
    newest = (baseline_query(meter_id, register, period, bindparam("now")).with_only_columns(Reading.id)
              .correlate(None).scalar_subquery())
    return (select(counted.c.n, Reading).select_from(counted).outerjoin(Reading, and_(
        Reading.meter_id == meter_id, Reading.register == register,
        or_(and_(Reading.period == period,
                 or_(Reading.export_batch_id.is_not(None), Reading.status.in_(("accepted", "pending_review")))),
            Reading.id == newest))).order_by(Reading.id)
        # The rows as they are now, not as this session last saw them.
        .execution_options(populate_existing=True))


def _against_baseline(meter: Meter, value: Decimal, base: Reading | None, policy: Policy,
                      now: dt.datetime) -> rules.Rejection | None:
    if base is None:
        return None
    limit = meter.max_daily if meter.max_daily is not None else policy.daily_limit(meter.utility)
    return rules.check_not_below_previous(value, base.value, meter.digits) or rules.check_daily_consumption(
        value, base.value, base.taken_at, now, meter.digits, limit)


def _own(reading: Reading, source: Source) -> bool:
    """Whether ``reading`` was given by the same number, or in the same call, as ``source``."""
    if reading.channel not in PUBLIC_CHANNELS:
        return False  # an operator's, an import's or the API's reading is nobody's own
    if source.phone and reading.given_from == source.phone:
        return True
    return source.call_id is not None and reading.call_id == source.call_id


def _refused(problem: rules.Rejection, **kwargs) -> Verdict:
    return Verdict(REFUSED, problem.code, problem.detail, **kwargs)


def judge(session: Session, meter: Meter, register: str, value: str | Decimal, source: Source, policy: Policy, *,
          now: dt.datetime | None = None, lock: bool = True, on_file: bool | None = None) -> Verdict:
    """The verdict on ``value`` (as the person gave it, or a Decimal) for the meter and register,
    given by ``source`` at ``now``; see the module's rules. Takes the account's write lock
    (``lock_account``; ``lock=False`` only for a preview that stores nothing) and writes nothing
    else: the caller stores what the verdict says (``take``, or the phone line's turn) and commits.
    ``on_file``: whether ``source.phone`` is on file for the account, when the caller has read it
    in this transaction already (``is_trusted``)."""
    now = now or utcnow()
    typed = value if isinstance(value, str) else format(value, "f")
    parsed = rules.parse_value(value) if isinstance(value, str) else value
    if isinstance(parsed, rules.Rejection):
        return _refused(parsed)
    account = meter.account
    problem = rules.check_account(account) or rules.check_meter(account, meter)
    if problem is None and register not in meter.register_names:
        problem = rules.Rejection("unknown_register", f"meter {meter.serial} has no register {register}")
    problem = problem or rules.check_fits_meter(parsed, meter.digits, meter.decimals)
    if problem:
        return _refused(problem, value=parsed)  # says nothing about the account's readings

    if lock:
        lock_account(session, meter.account_id)
    decision = period_for(session, meter, now)
    period = decision.period
    trusted = source.channel in TRUSTED_CHANNELS or on_file if on_file is not None \
        else is_trusted(session, meter, source)
    repeat = (source.call_id, meter.id, register, typed) if source.call_id is not None else None
    facts_read = _facts(session, meter, register, period, now, repeat)
    base, exported, replaced = facts_read.baseline, facts_read.exported, facts_read.replaced
    facts = {"value": parsed, "period": period, "in_window": decision.in_window, "trusted": trusted,
             "baseline_id": base.id if base else None}

    def review(code: str, detail: str, reveals: bool) -> Verdict:
        # Kept for an operator: stored pending, it replaces only the pending readings of the period.
        pending = [r for r in replaced if r.status == "pending_review"]
        return Verdict(REVIEW, code, detail, reveals=reveals, replaces=tuple(r.id for r in pending), **facts)

    problem = _against_baseline(meter, parsed, base, policy, now)
    if source.public and (problem is None or problem.code in REVEALING):
        if facts_read.refusals >= policy.probe_limit:
            # Past the limit, whatever the value: the same answer, and an operator decides.
            return review(REPEATED_REFUSALS, "too many values answered for this account in this period", False)
    if problem:
        return _refused(problem, reveals=source.public and problem.code in REVEALING, **facts)

    if not trusted:
        if exported is not None:
            return review(REPLACES_EXPORTED, f"billing has reading {exported.id} of this period", source.public)
        other = next((r for r in replaced if r.status == "accepted" and not _own(r, source)), None)
        if other is not None:
            return review(REPLACES_OTHER_CALLER, f"would replace reading {other.id}, given by someone else",
                          source.public)
    return Verdict(ACCEPTED, reveals=source.public, supersedes_id=exported.id if exported is not None else None,
                   replaces=tuple(r.id for r in replaced), **facts)


def store(session: Session, meter: Meter, register: str, verdict: Verdict, source: Source, *,
          now: dt.datetime | None = None, idempotency_key: str | None = None,
          utterance_id: int | None = None) -> Reading | None:
    """Write what ``verdict`` says, in the caller's transaction: a refusal that reveals something is
    counted; an accepted value, or one kept for an operator, is stored (replacing what it replaces)."""
    now = now or utcnow()
    if verdict.outcome == REFUSED:
        if verdict.reveals:
            record_refusal(session, meter, register, format(verdict.value, "f"), verdict.code,
                           call_id=source.call_id, caller=source.phone, now=now)
        return None
    return store_reading(session, meter, register, verdict.value, channel=source.channel, status=verdict.status,
                         reason=verdict.code, now=now, call_id=source.call_id, utterance_id=utterance_id,
                         operator_id=source.operator_id, idempotency_key=idempotency_key,
                         given_from=source.phone, trusted=verdict.trusted, judged=verdict.judged)


def take(session: Session, meter: Meter, register: str, value: str | Decimal, source: Source, policy: Policy, *,
         now: dt.datetime | None = None, idempotency_key: str | None = None) -> tuple[Verdict, Reading | None]:
    """Judge a value and store what the verdict says, in one transaction (the caller commits)."""
    now = now or utcnow()
    verdict = judge(session, meter, register, value, source, policy, now=now)
    return verdict, store(session, meter, register, verdict, source, now=now, idempotency_key=idempotency_key)
