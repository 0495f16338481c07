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

What the line sends waits in the outbox and goes out by ``ivr.sms.outbox``, not from here.
"""
from __future__ import annotations

import re

from flask import Blueprint, Response, g, request
from sqlalchemy.exc import IntegrityError
from twilio.twiml.messaging_response import MessagingResponse

from readings_store import intake
from readings_store import sms as sms_store
from readings_store.models import SmsMessage, utcnow

from ivr.dialog.actions import Say, Term
from ivr.logsafe import safe_logger
from ivr.records import TAIL
from ivr import twilio_routes as rules
from ivr.twilio_webhooks import bad_request, caller_number, check_signature, default_language, required, twiml
from ivr.twilio_webhooks import services as ivr

log = safe_logger(__name__)
bp = Blueprint("sms", __name__, url_prefix=rules.SMS_PREFIX)
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


@bp.post(rules.SMS_INCOMING)
def incoming():
    sid = required("MessageSid")
    if not _MESSAGE_SID.fullmatch(sid):
        bad_request("MessageSid is malformed")
    sender, _country = caller_number(required("From"))
    if sender is None:
        bad_request("From is not a phone number")
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

@bp.post(rules.SMS_STATUS)
def status():
    """Twilio's status callback for a message we sent (signed): its delivery status is kept."""
    sid = required("MessageSid")
    if not _MESSAGE_SID.fullmatch(sid):
        bad_request("MessageSid is malformed")
    if not sms_store.record_status(g.db, sid, required("MessageStatus")):
        log.warning("SMS status callback for a message we did not send: %s", sid)
    g.db.commit()
    return Response(status=204)
