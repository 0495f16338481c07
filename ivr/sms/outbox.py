"""The outbox (``SmsOutbox``) sent: text messages (receipts after a call, reminders) by
``send_pending``, reminder calls by ``place_pending_calls``; both run by ``ivr sms send-pending``
(every minute, deploy/ivr-sms.timer), never inside a webhook."""
from __future__ import annotations

import datetime as dt
import secrets
import time

from sqlalchemy import case, update
from twilio.base.exceptions import TwilioException

from readings_store import service
from readings_store import sms as sms_store
from readings_store.models import Account, SmsOutbox, utcnow

from ivr.dialog.actions import Say, Term
from ivr.logsafe import safe_logger
from ivr.records import TAIL
from ivr.twilio_routes import TwilioRoutes

log = safe_logger(__name__)


# How a receipt words a reading of the call, by the status the reading has when the text is sent.
RECEIPT_STATUS = {"accepted": "sms_accepted", "pending_review": "sms_checked", "superseded": "sms_replaced",
                  "rejected": "sms_not_accepted"}


def receipt_text(db, prompts, row: SmsOutbox) -> str | None:
    """A receipt in the call's language: the account's last digits, and each reading the caller gave
    in the call as it stands now: accepted, to be checked, replaced by a later reading, or not
    accepted. None when the call left nothing to report (no text is sent then)."""
    lang = row.language

    def say(key, **params):
        return prompts.render(Say(key, params), lang)[1]

    readings = sms_store.receipt_readings(db, row.call_id)
    if not readings:
        return None
    lines = [say("sms_receipt")]
    account_id = None
    for reading in readings:
        meter = reading.meter
        if meter.account_id != account_id:
            account_id = meter.account_id
            lines.append(say("sms_account", tail=meter.account.keypad_key.replace("*", "")[-TAIL:]))
        value = format(reading.value, "f")
        if len(meter.register_names) > 1:
            head = say("sms_value_register", utility=Term(f"utility_{meter.utility}"),
                       register=Term(f"register_{reading.register}"), value=value)
        else:
            head = say("sms_value", utility=Term(f"utility_{meter.utility}"), value=value)
        lines.append(f"{head} {say(RECEIPT_STATUS[reading.status])}")
    return "\n".join(lines)


def reminder_text(db, prompts, row: SmsOutbox) -> str:
    account = db.get(Account, row.account_id)
    return prompts.render(Say("sms_reminder", {"tail": account.keypad_key.replace("*", "")[-TAIL:]}),
                          row.language)[1]


def next_morning(region, now) -> "dt.datetime":
    """The end of the region's quiet hours after ``now``, in UTC."""
    local = service.region_now(region, now)
    day = local.date() if local.time() < sms_store.QUIET_UNTIL else local.date() + dt.timedelta(days=1)
    return dt.datetime.combine(day, sms_store.QUIET_UNTIL, local.tzinfo).astimezone(dt.timezone.utc)


def _drain(sessions, kinds: tuple[str, ...], send, *, rate: float, now, limit: int, sleep, counts: dict) -> dict:
    """Send the outbox rows of ``kinds`` that are due, one transaction each, at most ``rate`` a
    second: a number that opted out is cancelled, a reminder due in its region's quiet hours waits
    for the morning, and ``send(db, row)`` does the rest (the count it returns goes up)."""
    pause = 1.0 / rate
    attempted = 0
    with sessions() as db:
        ids = [row.id for row in sms_store.due(db, now, limit, kinds)]
    for row_id in ids:
        with sessions() as db:
            row = db.get(SmsOutbox, row_id)
            if row is None or row.status != "pending":
                continue
            if sms_store.is_opted_out(db, row.to_number):
                row.status = "cancelled"
                db.commit()
                counts["cancelled"] += 1
                continue
            if row.kind in sms_store.REMINDER_KINDS:
                region = db.get(Account, row.account_id).region
                if sms_store.in_quiet_hours(region, now):
                    row.next_attempt_at = next_morning(region, now or utcnow())
                    db.commit()
                    counts["deferred"] += 1
                    continue
            if attempted:
                sleep(pause)
            attempted += 1
            counts[send(db, row)] += 1
            db.commit()
    return counts


def _failed(row: SmsOutbox, exc: Exception, now, what: str) -> str:
    sms_store.mark_failed_attempt(row, f"{exc.__class__.__name__}: {exc}", now)
    log.warning("%s %s to %s not sent (attempt %d): %s", what, row.id, row.to_number, row.attempts,
                exc.__class__.__name__)
    return "failed" if row.status == "failed" else "retry"


def send_pending(sessions, config, prompts, client, *, status_callback: str | None,
                 now=None, limit: int = 100, sleep=time.sleep) -> dict[str, int]:
    """Send the messages that are due through Twilio's Messages API, one transaction each, at most
    ``IVR_SMS_RATE_PER_SECOND`` a second: a failure is retried later with a longer wait
    (``readings_store.sms.mark_failed_attempt``); a reminder due in its region's quiet hours waits
    for the morning. Returns counts {"sent", "retry", "failed", "cancelled", "deferred"}."""
    if not config.sms_from:
        raise ValueError("IVR_SMS_FROM is not set: no number to send text messages from")
    sender = {"messaging_service_sid": config.sms_from} if config.sms_from.startswith("MG") \
        else {"from_": config.sms_from}
    extra = {"status_callback": status_callback} if status_callback else {}

    def send(db, row: SmsOutbox) -> str:
        if row.body is None:
            row.body = (reminder_text if row.kind == "reminder" else receipt_text)(db, prompts, row)
            if row.body is None:  # nothing left to report: no text at all rather than an empty one
                row.status, row.error = "cancelled", "nothing to report"
                return "cancelled"
        try:
            message = client.messages.create(to=row.to_number, body=row.body, **sender, **extra)
        except (TwilioException, OSError) as exc:
            return _failed(row, exc, now, "SMS")
        row.status, row.message_sid, row.sent_at, row.error = "sent", message.sid, now or utcnow(), None
        return "sent"

    counts = {"sent": 0, "retry": 0, "failed": 0, "cancelled": 0, "deferred": 0}
    return _drain(sessions, sms_store.MESSAGE_KINDS, send, rate=config.sms_rate_per_second, now=now, limit=limit,
                  sleep=sleep, counts=counts)


def place_pending_calls(sessions, config, client, *, now=None, limit: int = 100, sleep=time.sleep) -> dict[str, int]:
    """Place the reminder calls that are due through Twilio's Calls API, at most
    ``IVR_CALL_RATE_PER_SECOND`` a second, from ``IVR_CALL_FROM``, with answering-machine
    detection. Twilio fetches ``<IVR_PUBLIC_URL>/voice/reminder/<token>`` when the call is
    answered: the token is random and committed before the call is placed, so the URL says
    nothing about the customer and is known before Twilio can ask for it. A failed attempt is
    retried later with a longer wait; a placed call is never placed again. Returns counts
    {"placed", "retry", "failed", "cancelled", "deferred"}."""
    if not config.call_from:
        raise ValueError("IVR_CALL_FROM is not set: no number to place reminder calls from")
    if not config.public_url:
        raise ValueError("IVR_PUBLIC_URL is not set: Twilio would have no URL to fetch when a reminder call "
                         "is answered")
    urls = TwilioRoutes(config.public_url)

    def place(db, row: SmsOutbox) -> str:
        if row.token is None:
            row.token = secrets.token_urlsafe(32)
            db.commit()
        try:
            call = client.calls.create(to=row.to_number, from_=config.call_from, url=urls.reminder(row.token),
                                       method="POST", status_callback=urls.status(),
                                       status_callback_method="POST", fallback_url=urls.fallback(),
                                       fallback_method="POST", machine_detection="Enable")
        except (TwilioException, OSError) as exc:
            return _failed(row, exc, now, "reminder call")
        # "placed" only while still pending: a call answered at once may be marked answered already.
        db.execute(update(SmsOutbox).where(SmsOutbox.id == row.id)
                   .values(status=case((SmsOutbox.status == "pending", "placed"), else_=SmsOutbox.status),
                           message_sid=call.sid, sent_at=now or utcnow(), error=None)
                   .execution_options(synchronize_session=False))
        return "placed"

    counts = {"placed": 0, "retry": 0, "failed": 0, "cancelled": 0, "deferred": 0}
    return _drain(sessions, (sms_store.CALL_KIND,), place, rate=config.call_rate_per_second, now=now, limit=limit,
                  sleep=sleep, counts=counts)
