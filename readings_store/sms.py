"""The SMS line's records: what a text says (keyword, or an account number and values), the numbers
that opted out, and how many texts a number sent lately (throttling)."""
from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass

import phonenumbers
from sqlalchemy import and_, case, exists, func, insert, literal, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from . import intake, rules
from .models import (UTILITIES, Account, AccountPhone, Call, Meter, Reading, Region, SmsMessage, SmsOptOut,
                     SmsOutbox, UTCDateTime, utcnow)
from .service import find_account, region_now, window_for

# Keywords in every language of the line (upper-cased before matching). Carriers and Twilio use
# the English ones; the others are what a customer writes in Romanian, Russian and Ukrainian.
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "СТОП", "ОТПИСАТЬСЯ",
                        "ВІДПИСАТИСЯ", "DEZABONARE"})
START_WORDS = frozenset({"START", "UNSTOP", "YES", "СТАРТ", "ПУСК", "DA"})
HELP_WORDS = frozenset({"HELP", "INFO", "AJUTOR", "ПОМОЩЬ", "ДОПОМОГА", "?"})
MAX_VALUES = 20
_VALUE = re.compile(r"^[0-9]{1,12}(?:[.,][0-9]{1,6})?$")
_ACCOUNT = re.compile(r"^[0-9][0-9/._-]{0,63}$")


@dataclass(frozen=True)
class Submission:
    """A text that reads as an account number followed by meter values (as written, dot decimal)."""

    account: str
    values: tuple[str, ...]


# A short phrase with a STOP word first or last ("Stop now", "please stop") opts out too: a person
# who wants no more texts must not have to guess the exact word. START and HELP are whole texts.
STOP_PHRASE_WORDS = 4
_WORDS = re.compile(r"[^\W\d_]+")


def normalise(body: str) -> str:
    """The text as a keyword is matched: compatibility forms folded (fullwidth ＳＴＯＰ is STOP),
    invisible format characters (zero-width spaces and joiners, bidi marks, BOM) removed, upper case."""
    text = unicodedata.normalize("NFKC", body or "")
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf").strip().upper()


def keyword(body: str) -> str | None:
    """``stop``, ``start`` or ``help`` when the text (normalised) is one of their keywords, or, for
    ``stop``, a short phrase of words without digits beginning or ending with one."""
    text = normalise(body)
    word = text.strip(".!").strip()
    if word in STOP_WORDS:
        return "stop"
    if word in START_WORDS:
        return "start"
    if word in HELP_WORDS:
        return "help"
    words = _WORDS.findall(text)
    if not any(ch.isdigit() for ch in text) and 1 < len(words) <= STOP_PHRASE_WORDS and \
            (words[0] in STOP_WORDS or words[-1] in STOP_WORDS):
        return "stop"
    return None


def may_reply(word: str | None, opted_out: bool, throttled: bool) -> bool:
    """Whether a text gets an answer. A number over the hourly limit gets none, whatever it sent
    (STOP and START included: the opt-out is still recorded); a number that opted out gets an
    answer only to START and HELP."""
    if throttled:
        return False
    return word in ("start", "help") or not opted_out


def parse_submission(body: str) -> Submission | None:
    """``1000003 12345`` or ``1000003 12345,6 7890``: the account number, then one value per register
    (comma or dot decimal). None for anything else."""
    parts = (body or "").split()
    if len(parts) < 2 or len(parts) > MAX_VALUES + 1:
        return None
    account, values = parts[0], parts[1:]
    if not _ACCOUNT.match(account) or not all(_VALUE.match(v) for v in values):
        return None
    return Submission(account, tuple(v.replace(",", ".") for v in values))


def registers(account: Account) -> list[tuple[Meter, str]]:
    """The account's registers in the phone menu's order: active meters, day before night."""
    return [(m, r) for m in account.meters if m.active for r in m.register_names]


@dataclass(frozen=True)
class ValueResult:
    """One value of a text: the meter and register it went to, as written, and its verdict."""

    meter: Meter
    register: str
    value: str
    verdict: intake.Verdict


@dataclass(frozen=True)
class SubmissionResult:
    """What became of a text's values. ``refused`` when none was judged: ``account_not_found``,
    ``account_inactive`` or ``too_many_values`` (the account takes ``registers`` values)."""

    account: Account | None
    refused: str | None = None
    registers: int = 0
    values: tuple[ValueResult, ...] = ()


def submit(session: Session, submission: Submission, *, sender: str, message_sid: str, policy: intake.Policy,
           now: dt.datetime | None = None) -> SubmissionResult:
    """Judge and store each value of a text through the intake policy, in the account's registers'
    order, as given by ``sender`` (the caller commits)."""
    now = now or utcnow()
    account = find_account(session, None, submission.account)  # in any region
    problem = rules.check_account(account)
    if problem:
        return SubmissionResult(account, "account_not_found" if account is None else problem.code)
    slots = registers(account)
    if len(submission.values) > len(slots):
        return SubmissionResult(account, "too_many_values", len(slots))
    source = intake.Source("sms", phone=sender, message_sid=message_sid)
    results = []
    for (meter, register), value in zip(slots, submission.values):
        verdict, _ = intake.take(session, meter, register, value, source, policy, now=now,
                                 idempotency_key=f"sms:{message_sid}:{meter.id}:{register}")
        results.append(ValueResult(meter, register, value, verdict))
    return SubmissionResult(account, None, len(slots), tuple(results))


def is_opted_out(session: Session, phone: str) -> bool:
    return session.scalar(select(SmsOptOut.id).where(SmsOptOut.phone == phone)) is not None


def opt_out(session: Session, phone: str, word: str, now: dt.datetime | None = None) -> None:
    if not is_opted_out(session, phone):
        session.add(SmsOptOut(phone=phone, keyword=word[:32], opted_out_at=now or utcnow()))


def opt_in(session: Session, phone: str) -> None:
    row = session.scalars(select(SmsOptOut).where(SmsOptOut.phone == phone)).first()
    if row is not None:
        session.delete(row)


def texts_in_last_hour(session: Session, phone: str, now: dt.datetime | None = None) -> int:
    since = (now or utcnow()) - dt.timedelta(hours=1)
    return session.scalar(select(func.count()).select_from(SmsMessage).where(
        SmsMessage.from_number == phone, SmsMessage.received_at > since)) or 0


def find_message(session: Session, message_sid: str) -> SmsMessage | None:
    return session.scalars(select(SmsMessage).where(SmsMessage.message_sid == message_sid)).first()


MOBILE_TYPES = (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)
# Waits between attempts to send: 1, 2, 4 ... minutes, at most 6 hours; then given up.
MAX_ATTEMPTS = 8
MAX_BACKOFF = dt.timedelta(hours=6)
FINAL_DELIVERY = frozenset({"delivered", "undelivered", "failed", "read"})


def is_mobile(phone: str | None) -> bool:
    if not phone:
        return False
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.number_type(number) in MOBILE_TYPES


def queue_receipt(session: Session, call: Call, language: str) -> SmsOutbox | None:
    """In the transaction that ends ``call``: one receipt to the caller when the call saved readings
    and the caller's number is a mobile that has not opted out. At most one per call."""
    if not is_mobile(call.from_number) or is_opted_out(session, call.from_number):
        return None
    saved = session.scalar(select(func.count()).select_from(Reading).where(
        Reading.call_id == call.id, Reading.status.in_(("accepted", "pending_review", "superseded"))))
    if not saved:
        return None
    if session.scalar(select(SmsOutbox.id).where(SmsOutbox.call_id == call.id)) is not None:
        return None
    row = SmsOutbox(kind="receipt", to_number=call.from_number, language=language, call_id=call.id,
                    account_id=call.account_id, status="pending", attempts=0, next_attempt_at=utcnow())
    session.add(row)
    return row


def receipt_readings(session: Session, call_id: int) -> list[Reading]:
    """What a receipt after a call reports: for each meter and register, the last reading the caller
    gave in that call, as it stands now (accepted, waiting for review, replaced by a later reading,
    or rejected), in the account's meter order. An operator's correction of it is not the caller's:
    the caller's reading then stands as replaced. Empty when the call gave no reading."""
    given = (select(func.max(Reading.id)).where(Reading.call_id == call_id, Reading.channel.like("phone%"))
             .group_by(Reading.meter_id, Reading.register))
    return list(session.scalars(select(Reading).join(Meter, Meter.id == Reading.meter_id)
                                .where(Reading.id.in_(given))
                                .order_by(Meter.account_id, Meter.id, Reading.register, Reading.id)))


MESSAGE_KINDS = ("receipt", "reminder")
CALL_KIND = "call"
REMINDER_KINDS = ("reminder", CALL_KIND)  # kept out of quiet hours


def due(session: Session, now: dt.datetime | None = None, limit: int = 100,
        kinds: tuple[str, ...] = MESSAGE_KINDS) -> list[SmsOutbox]:
    """Messages (or calls, by ``kinds``) waiting to go out whose next attempt is due, oldest first."""
    return list(session.scalars(select(SmsOutbox).where(
        SmsOutbox.status == "pending", SmsOutbox.kind.in_(kinds), SmsOutbox.next_attempt_at <= (now or utcnow()))
        .order_by(SmsOutbox.next_attempt_at, SmsOutbox.id).limit(limit)))


def mark_failed_attempt(row: SmsOutbox, error: str, now: dt.datetime | None = None) -> None:
    """Another try later (doubling waits), or ``failed`` after ``MAX_ATTEMPTS``."""
    now = now or utcnow()
    row.attempts += 1
    row.error = error[:200]
    if row.attempts >= MAX_ATTEMPTS:
        row.status = "failed"
    else:
        row.next_attempt_at = now + min(dt.timedelta(minutes=2 ** (row.attempts - 1)), MAX_BACKOFF)


def record_status(session: Session, message_sid: str, status: str) -> bool:
    """Twilio's delivery status for a message we sent; False when the SID is not ours."""
    row = session.scalars(select(SmsOutbox).where(SmsOutbox.message_sid == message_sid,
                                                  SmsOutbox.kind != CALL_KIND)).first()
    if row is None:
        return False
    # Callbacks can arrive out of order: a final status is never replaced by an earlier one.
    if row.status not in FINAL_DELIVERY or status in FINAL_DELIVERY:
        row.status = status[:16]
    return True


# --- reminder calls -------------------------------------------------------------------------------

# How a placed call ended when nobody answered it (Twilio's final call statuses but "completed").
UNANSWERED = frozenset({"busy", "no-answer", "failed", "canceled"})


def reminder_call(session: Session, token: str) -> SmsOutbox | None:
    """The reminder call a ``/voice/reminder/<token>`` URL names, or None."""
    return session.scalars(select(SmsOutbox).where(SmsOutbox.token == token, SmsOutbox.kind == CALL_KIND)).first()


def record_call_status(session: Session, call_sid: str, status: str) -> bool:
    """Twilio's final status of a reminder call we placed (busy, no-answer ...); False when the SID
    is not one. An answered call keeps ``answered`` or ``machine``."""
    row = session.scalars(select(SmsOutbox).where(SmsOutbox.message_sid == call_sid,
                                                  SmsOutbox.kind == CALL_KIND)).first()
    if row is None:
        return False
    if row.status == "placed" and status in UNANSWERED:
        row.status = status
    return True


# --- reminders ------------------------------------------------------------------------------------

QUIET_FROM = dt.time(21, 0)  # no text messages from 21:00 ...
QUIET_UNTIL = dt.time(9, 0)  # ... to 09:00, region time


def in_quiet_hours(region, now: dt.datetime | None = None) -> bool:
    local = region_now(region, now).time()
    return local >= QUIET_FROM or local < QUIET_UNTIL


def _open_utilities(session: Session, region, period: str, now: dt.datetime) -> list[str]:
    """The utilities whose submission window for ``period`` is open in the region today."""
    today = region_now(region, now).date()
    out = []
    for utility in UTILITIES:
        decision = rules.billing_period(today, window_for(session, region.id, utility))
        if decision.in_window and decision.period == period:
            out.append(utility)
    return out


@dataclass
class ReminderPlan:
    """Per region code: accounts to remind now, and why a region is left out (``skipped``)."""

    counts: dict[str, int]
    skipped: dict[str, str]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _language_case(country_languages: dict, phone):
    """SQL: the language of a number's country calling code (longest code first), as the line picks it."""
    codes = sorted((c for c in country_languages if c != "*"), key=len, reverse=True)
    default = country_languages.get("*", "en")
    if not codes:
        return literal(default)
    return case(*[(phone.like(f"+{c}%"), country_languages[c]) for c in codes], else_=default)


def _reminder_rows(session: Session, period: str, region_ids: dict[int, list[str]], country_languages: dict,
                   now: dt.datetime, *, kind: str, skip_reminded: bool = True):
    """One set-based SELECT of the reminders to write: accounts of the given regions with an active
    meter of an open utility, no reading for the period, a phone on file that has not opted out,
    and no reminder of this ``kind`` for the period yet."""
    phone = (select(AccountPhone.account_id.label("account_id"), func.min(AccountPhone.phone).label("phone"))
             .where(~exists().where(SmsOptOut.phone == AccountPhone.phone))
             .group_by(AccountPhone.account_id).subquery())
    open_meter = exists().where(Meter.account_id == Account.id, Meter.active.is_(True), or_(*[
        and_(Account.region_id == rid, Meter.utility.in_(utilities)) for rid, utilities in region_ids.items()]))
    has_reading = exists().where(Reading.meter_id == Meter.id, Meter.account_id == Account.id,
                                 Reading.period == period, Reading.status != "rejected")
    reminded = exists().where(SmsOutbox.account_id == Account.id, SmsOutbox.period == period, SmsOutbox.kind == kind)
    return (select(Account.id.label("account_id"), Account.region_id.label("region_id"),
                   phone.c.phone.label("phone"),
                   _language_case(country_languages, phone.c.phone).label("language"))
            .join(phone, phone.c.account_id == Account.id)
            .where(Account.active.is_(True), Account.region_id.in_(list(region_ids)), open_meter,
                   ~has_reading, *([~reminded] if skip_reminded else [])))


def plan_reminders(session: Session, period: str, *, country_languages: dict, region_code: str | None = None,
                   dry_run: bool = False, now: dt.datetime | None = None, kind: str = "reminder") -> ReminderPlan:
    """Remind every account that has not given its readings for ``period`` while the submission
    window is open: write one outbox row per account (never a second one of the ``kind`` for the
    period: ``reminder``, a text, or ``call``, a reminder call), to be sent by ``ivr sms
    send-pending`` at the configured rate. Regions in quiet hours (21:00-09:00 their time) or whose
    window is closed are skipped. ``dry_run`` only counts. The caller commits."""
    if kind not in REMINDER_KINDS:
        raise ValueError(f"no reminder of kind {kind!r}")
    now = now or utcnow()
    query = select(Region).order_by(Region.code)
    if region_code:
        query = query.where(Region.code == region_code)
    regions = list(session.scalars(query))
    if region_code and not regions:
        raise ValueError(f"no region with code {region_code!r}")
    plan = ReminderPlan({}, {})
    eligible: dict[int, list[str]] = {}
    codes = {}
    for region in regions:
        codes[region.id] = region.code
        if in_quiet_hours(region, now):
            plan.skipped[region.code] = "quiet hours"
            continue
        utilities = _open_utilities(session, region, period, now)
        if not utilities:
            plan.skipped[region.code] = "window closed"
            continue
        eligible[region.id] = utilities
    if not eligible:
        return plan
    rows = _reminder_rows(session, period, eligible, country_languages, now, kind=kind).subquery()
    counted = session.execute(select(rows.c.region_id, func.count()).group_by(rows.c.region_id)).all()
    plan.counts = {codes[rid]: n for rid, n in sorted(counted, key=lambda r: codes[r[0]])}
    if not dry_run and plan.total:
        # One INSERT ... SELECT. On PostgreSQL accounts already reminded are left out by the unique
        # constraint (ON CONFLICT DO NOTHING) rather than by NOT EXISTS on the table being written,
        # which it would rescan as it grows; SQLite looks them up in the constraint's index.
        fresh = _reminder_rows(session, period, eligible, country_languages, now, kind=kind,
                               skip_reminded=False).subquery()
        dialect = session.get_bind().dialect.name
        make = pg_insert if dialect == "postgresql" else None
        statement = (make(SmsOutbox) if make else insert(SmsOutbox)).from_select(
            ["kind", "to_number", "language", "account_id", "period", "status", "attempts", "next_attempt_at",
             "created_at"],
            select(literal(kind), fresh.c.phone, fresh.c.language, fresh.c.account_id, literal(period),
                   literal("pending"), literal(0), literal(now, UTCDateTime), literal(now, UTCDateTime))
            .where(*([] if make else [~exists().where(SmsOutbox.account_id == fresh.c.account_id,
                                                      SmsOutbox.period == period, SmsOutbox.kind == kind)])))
        if make:
            statement = statement.on_conflict_do_nothing(index_elements=["account_id", "period", "kind"])
        session.execute(statement)
    return plan
