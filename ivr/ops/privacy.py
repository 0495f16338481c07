"""Erasing a caller's phone number (``ivr privacy erase --phone E164``).

The number is removed from the calls it made or received (and from their saved dialog state),
from the text messages it sent (deleted), from the outbox (a message or call not yet sent is
cancelled), from the refused values and the failed identifications it is named in; the recordings
of its calls are deleted. Readings stay, with their call's caller shown as erased
(``Call.caller_erased_at``). Two things keep the number on purpose, and the output says so: the
accounts that have it on file (billing's records, pushed in again by the next import: remove it
there), the text opt-out list (erasing it would let texts reach the number again), and the audit
trail (an operator who put the number on file for an account is recorded doing so; the trail is
never rewritten).

The audit event counts what was erased and names the calls, but never the number.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import String, cast, delete, func, or_, select, update
from sqlalchemy.orm import Session

from grammars.plural import english
from readings_store.models import (
    AccountPhone,
    AuditEvent,
    Call,
    ReviewTask,
    SmsMessage,
    SmsOptOut,
    SmsOutbox,
    Utterance,
    ValueRefusal,
    utcnow,
)
from readings_store import phones
from readings_store.service import audit

from ivr.ops.recordings import delete_audio

# A call from the number that started this recently and has not ended may still be going on: its
# next turn would write the number back into its state.
IN_PROGRESS = dt.timedelta(hours=1)


class PhoneError(ValueError):
    """The number is not one to erase (bad form, or a call from it is going on)."""


@dataclass
class Erasure:
    phone: str
    calls: int = 0
    recordings: int = 0
    texts: int = 0
    outbox: int = 0
    cancelled: int = 0
    refusals: int = 0
    identifications: int = 0
    accounts_on_file: int = 0
    opted_out: bool = False
    audit_events: int = 0

    def counts(self) -> dict:
        return {name: value for name, value in asdict(self).items() if name != "phone"}

    def line(self) -> str:
        """One line saying what was erased and what keeps the number."""
        def n(count: int, one: str, many: str) -> str:
            return f"{count} {english(count, one, many)}"

        parts = [n(self.calls, "call", "calls"), n(self.recordings, "recording", "recordings"),
                 n(self.texts, "text message", "text messages"), n(self.outbox, "outbox message", "outbox messages")
                 + (f" ({self.cancelled} not yet sent, cancelled)" if self.cancelled else ""),
                 n(self.refusals, "refused value", "refused values"),
                 n(self.identifications, "failed identification", "failed identifications")]
        kept = []
        if self.accounts_on_file:
            kept.append(f"on file for {n(self.accounts_on_file, 'account', 'accounts')} (billing's records: "
                        "remove it there)")
        if self.opted_out:
            kept.append("on the text opt-out list (so that no text reaches it)")
        if self.audit_events:
            kept.append(f"in {n(self.audit_events, 'audit event', 'audit events')} (the trail is not rewritten)")
        listed = ", ".join(kept[:-1]) + " and " + kept[-1] if len(kept) > 1 else "".join(kept)
        return f"erased {self.phone} from " + ", ".join(parts) + (f"; kept {listed}" if kept else "")


def parse_phone(text: str) -> str:
    """The number in E.164 form, as the phone and SMS lines store it; PhoneError otherwise."""
    phone = phones.e164(text)  # international form only: no country is assumed for a number to erase
    if phone is None:
        raise PhoneError(f"{text!r} is not a phone number in international form such as +37369123456; "
                         "nothing was erased")
    return phone


def erase(session: Session, root: Path, text: str, *, now: dt.datetime | None = None) -> Erasure:
    """Erase the number ``text`` (the caller commits; recordings are deleted from disk at once, so a
    failed commit is finished by running it again)."""
    phone = parse_phone(text)
    now = now or utcnow()
    calls = list(session.scalars(select(Call).where(Call.from_number == phone).order_by(Call.id).with_for_update()))
    going_on = [c for c in calls if c.ended_at is None and c.started_at > now - IN_PROGRESS]
    if going_on:
        raise PhoneError(f"a call with {phone} is going on (started {going_on[0].started_at:%Y-%m-%d %H:%M} UTC); "
                         "run this again once it has ended; nothing was erased")
    done = Erasure(phone)
    call_ids = [c.id for c in calls]
    for call in calls:
        call.from_number = None
        call.caller_country = None
        call.caller_erased_at = now
        if (call.state or {}).get("caller") is not None:
            call.state = {**call.state, "caller": None}  # a new dict: JSON columns track assignment only
    done.calls = len(calls)
    if call_ids:
        done.recordings = delete_audio(root, session.scalars(
            select(Utterance).where(Utterance.call_id.in_(call_ids), Utterance.audio_path.is_not(None))), now)
        for task in session.scalars(select(ReviewTask).where(ReviewTask.call_id.in_(call_ids))):
            if (task.details or {}).get("caller") is not None:
                task.details = {k: v for k, v in task.details.items() if k != "caller"}
                done.identifications += 1
    done.texts = session.execute(delete(SmsMessage).where(SmsMessage.from_number == phone)).rowcount
    done.cancelled = session.execute(
        update(SmsOutbox).where(SmsOutbox.to_number == phone, SmsOutbox.status == "pending")
        .values(status="cancelled", error="number erased")).rowcount
    done.outbox = session.execute(update(SmsOutbox).where(SmsOutbox.to_number == phone).values(to_number=None)).rowcount
    done.refusals = session.execute(update(ValueRefusal).where(ValueRefusal.caller == phone)
                                    .values(caller=None)).rowcount
    done.accounts_on_file = session.scalar(select(func.count(func.distinct(AccountPhone.account_id)))
                                           .where(AccountPhone.phone == phone)) or 0
    done.opted_out = session.scalar(select(SmsOptOut.id).where(SmsOptOut.phone == phone)) is not None
    # Operators' actions name numbers they put on file (a failed identification linked to an account).
    done.audit_events = session.scalar(select(func.count()).select_from(AuditEvent).where(or_(
        cast(AuditEvent.before, String).contains(phone), cast(AuditEvent.after, String).contains(phone),
        AuditEvent.reason.contains(phone)))) or 0
    audit(session, actor_kind="system", action="privacy.erase", entity="call", entity_id=None,
          after={**done.counts(), "call_ids": call_ids})
    session.flush()
    return done
