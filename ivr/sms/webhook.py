"""Twilio messaging webhook: meter readings by text message, into the same records and through the
same rules as the phone line.

``POST /sms/incoming`` (signed exactly like the voice webhooks) takes a text such as
``1000003 12345`` or ``1000003 12345,6 7890``: the account number, then the values of the account's
meters in the phone menu's order (a day/night meter: day, then night). Each value is judged by the
intake policy every channel shares (``readings_store.sms.submit`` → ``readings_store.intake``) and
stored with channel ``sms``; the reply (TwiML ``<Message>``, in the language of the sender's country
code) gives the result per value or the reason it was refused, in the same words as on the phone.
STOP/START/HELP (and their Romanian, Russian, Ukrainian words) are honoured per number; a number
that sends more than ``IVR_SMS_PER_HOUR`` texts an hour gets no reply.

What the line sends waits in the outbox (``SmsOutbox``) and goes out from here: text messages
(receipts, reminders) by ``send_pending``, reminder calls by ``place_pending_calls``.
"""
from __future__ import annotations

import datetime as dt
import re
import secrets
import time

from flask import Blueprint, Response, abort, g, request
from sqlalchemy import case, update
from sqlalchemy.exc import IntegrityError
from twilio.twiml.messaging_response import MessagingResponse

from readings_store import intake, service
from readings_store import sms as sms_store
from readings_store.models import Account, SmsMessage, SmsOutbox, utcnow

from ivr.dialog.actions import Say, Term
from ivr.logsafe import safe_logger
from ivr.records import TAIL
from ivr.voice.webhooks import caller_number, check_signature, default_language, ivr, twiml

log = safe_logger(__name__)
bp = Blueprint("sms", __name__, url_prefix="/sms")
bp.before_request(check_signature)

_MESSAGE_SID = re.compile(r"^(SM|MM)[0-9a-fA-F]{32}$")
MAX_BODY = 1600


def _say(lang: str, key: str, **params) -> str:
    return ivr().prompts.render(Say(key, params), lang)[1]


def _reply(text: str | None) -> str:
    response = MessagingResponse()
    if text:
        response.message(text)
    return str(response)


def _required(name: str) -> str:
    value = request.form.get(name, "")
    if not value:
        abort(Response(f"missing parameter {name}\n", status=400, mimetype="text/plain"))
    return value


@bp.post("/incoming")
def incoming():
    sid = _required("MessageSid")
    if not _MESSAGE_SID.fullmatch(sid):
        abort(Response("MessageSid is malformed\n", status=400, mimetype="text/plain"))
    sender, _country = caller_number(_required("From"))
    if sender is None:
        abort(Response("From is not a phone number\n", status=400, mimetype="text/plain"))
    body = request.form.get("Body", "")[:MAX_BODY]
    db = g.db
    earlier = sms_store.find_message(db, sid)
    if earlier is not None:  # Twilio retried the webhook: the same answer, nothing stored twice
        return twiml(_reply(earlier.reply))
    lang = default_language(sender)
    now = utcnow()
    message = SmsMessage(message_sid=sid, from_number=sender, body=body, language=lang, received_at=now,
                         outcome="help")
    word = sms_store.keyword(body)
    opted_out = sms_store.is_opted_out(db, sender)
    throttled = sms_store.texts_in_last_hour(db, sender, now) >= ivr().config.sms_per_hour
    if throttled:
        log.warning("SMS from %s throttled: more than %d texts in an hour", sender, ivr().config.sms_per_hour)
    if word == "stop":  # honoured even when throttled; only the answer is held back
        sms_store.opt_out(db, sender, sms_store.normalise(body), now)
        message.outcome, text = "keyword", _say(lang, "sms_stopped")
    elif word == "start":
        sms_store.opt_in(db, sender)
        message.outcome, text = "keyword", _say(lang, "sms_started")
    elif throttled:
        message.outcome, text = "throttled", None
    elif word == "help":
        message.outcome, text = "keyword", _say(lang, "sms_help")
    else:
        submission = sms_store.parse_submission(body)
        if submission is None:
            text = _say(lang, "sms_help")
        else:
            message.outcome, text, message.account_id = _submit(db, submission, sender, sid, lang, now)
    if not sms_store.may_reply(word, opted_out, throttled):
        text = None
    message.reply = text
    db.add(message)
    try:
        db.commit()
    except IntegrityError:  # the same message posted twice at once: the first one's answer
        db.rollback()
        earlier = sms_store.find_message(db, sid)
        if earlier is None:
            raise
        return twiml(_reply(earlier.reply))
    return twiml(_reply(text))


def _submit(db, submission: sms_store.Submission, sender: str, sid: str, lang: str, now):
    """The values through the intake policy; the outcome, the reply and the account of the text."""
    result = sms_store.submit(db, submission, sender=sender, message_sid=sid, policy=ivr().config, now=now)
    account_id = result.account.id if result.account is not None else None
    if result.refused == "too_many_values":
        return "refused", _say(lang, "sms_too_many_values", count=result.registers), account_id
    if result.refused:
        key = "sms_account_not_found" if result.refused == "account_not_found" else f"reason_{result.refused}"
        return "refused", _say(lang, key), None
    tail = result.account.keypad_key.replace("*", "")[-TAIL:]
    lines = [_say(lang, "sms_account", tail=tail)]
    for item in result.values:
        meter = item.meter
        if len(meter.register_names) > 1:
            head = _say(lang, "sms_value_register", utility=Term(f"utility_{meter.utility}"),
                        register=Term(f"register_{item.register}"), value=item.value)
        else:
            head = _say(lang, "sms_value", utility=Term(f"utility_{meter.utility}"), value=item.value)
        lines.append(f"{head} {_say(lang, _told(item.verdict))}")
    return "readings", "\n".join(lines), account_id


def _told(verdict: intake.Verdict) -> str:
    """The prompt that tells the sender a value's verdict."""
    if verdict.outcome == intake.REFUSED:
        return f"reason_{verdict.code}"
    if verdict.outcome == intake.ACCEPTED:
        return "sms_accepted"
    return "sms_checked" if verdict.quiet else "saved_for_review"


# --- messages we send: receipts after a call ------------------------------------------------------

@bp.post("/status")
def status():
    """Twilio's status callback for a message we sent (signed): its delivery status is kept."""
    sid = _required("MessageSid")
    if not _MESSAGE_SID.fullmatch(sid):
        abort(Response("MessageSid is malformed\n", status=400, mimetype="text/plain"))
    if not sms_store.record_status(g.db, sid, _required("MessageStatus")):
        log.warning("SMS status callback for a message we did not send: %s", sid)
    g.db.commit()
    return Response(status=204)


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
    from twilio.base.exceptions import TwilioException

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
    from twilio.base.exceptions import TwilioException

    if not config.call_from:
        raise ValueError("IVR_CALL_FROM is not set: no number to place reminder calls from")
    if not config.public_url:
        raise ValueError("IVR_PUBLIC_URL is not set: Twilio would have no URL to fetch when a reminder call "
                         "is answered")
    base = config.public_url.rstrip("/")

    def place(db, row: SmsOutbox) -> str:
        if row.token is None:
            row.token = secrets.token_urlsafe(32)
            db.commit()
        try:
            call = client.calls.create(to=row.to_number, from_=config.call_from, url=f"{base}/voice/reminder/{row.token}",
                                       method="POST", status_callback=f"{base}/voice/status",
                                       status_callback_method="POST", fallback_url=f"{base}/voice/fallback",
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
