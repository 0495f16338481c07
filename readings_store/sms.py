"""The SMS line's records: what a text says (keyword, or an account number and values), the numbers
that opted out, and how many texts a number sent lately (throttling)."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import phonenumbers
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .models import Account, Call, Reading, SmsMessage, SmsOptOut, SmsOutbox, utcnow
from .service import keypad_key

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


def keyword(body: str) -> str | None:
    """``stop``, ``start`` or ``help`` when the whole text is one of their keywords."""
    word = (body or "").strip().strip(".!").upper()
    if word in STOP_WORDS:
        return "stop"
    if word in START_WORDS:
        return "start"
    if word in HELP_WORDS:
        return "help"
    return None


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


def find_account(session: Session, typed: str) -> Account | None:
    """The one account, in any region, with this number; None when none or several match."""
    matches = session.scalars(select(Account).where(Account.keypad_key == keypad_key(typed)).limit(2)).all()
    return matches[0] if len(matches) == 1 else None


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


def due(session: Session, now: dt.datetime | None = None, limit: int = 100) -> list[SmsOutbox]:
    """Messages waiting to be sent whose next attempt is due, oldest first."""
    return list(session.scalars(select(SmsOutbox).where(
        SmsOutbox.status == "pending", SmsOutbox.next_attempt_at <= (now or utcnow()))
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
    row = session.scalars(select(SmsOutbox).where(SmsOutbox.message_sid == message_sid)).first()
    if row is None:
        return False
    row.status = status[:16]
    return True
