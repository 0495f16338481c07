"""Twilio voice webhooks: signed requests in, TwiML out. A thin transport: the request becomes an
event, the turn service (``ivr/calls.py``) takes the turn, its actions become TwiML
(``ivr/voice/twiml.py``).

Each step's ``<Gather>`` posts to ``/voice/step/<step>?seq=N``, ``seq`` being the turn the call
expects next (docs/design.md, *One webhook, step by step*, tells how a turn is claimed once).
"""
from __future__ import annotations

import dataclasses
import re
from urllib.parse import parse_qs, urlsplit

from flask import Blueprint, Response, abort, g, request, send_file
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from twilio.base.exceptions import TwilioException

from readings_store.models import Call, Utterance

from ivr import calls, dialog
from ivr.config import RECORD_TRANSPORT
from ivr import twilio_routes as rules
from ivr import twilio_webhooks
from ivr.logsafe import safe_logger
from ivr.twilio_webhooks import bad_request, caller_number, default_language, required, routes, twiml
from ivr.twilio_webhooks import services as ivr
from ivr.voice.stream_line import StreamLine
from ivr.voice.twiml import TwimlRenderer

log = safe_logger(__name__)  # request data in log lines is escaped: no forged lines
bp = Blueprint("voice", __name__, url_prefix=rules.VOICE_PREFIX)

_SID = re.compile(r"^CA[0-9a-fA-F]{32}$")
_RECORDING_SID = re.compile(r"^RE[0-9a-fA-F]{32}$")
_REMINDER_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")  # secrets.token_urlsafe(32)
MAX_DIGITS_PARAM = 64
MAX_SEQ = 2**31 - 1  # Call.seq is a 32-bit INTEGER column


@bp.before_request
def check_signature():
    """Every voice webhook is signed by Twilio, but the prompt audio: Twilio fetches it unsigned."""
    if request.endpoint == "voice.prompt_audio":
        return None
    return twilio_webhooks.check_signature()


def call_sid() -> str:
    sid = required("CallSid")
    if not _SID.fullmatch(sid):
        bad_request("CallSid is malformed")
    return sid


def renderer() -> TwimlRenderer:
    urls = routes()
    return TwimlRenderer(ivr().config, ivr().prompts, urls.step, urls.prompt_audio, ivr().speech.engine_for,
                         urls.recording_status(), urls.stream_status())


@bp.post(rules.INCOMING)
def incoming():
    sid = call_sid()
    number, country = caller_number(request.form.get("From"))
    first = renderer()
    return twiml(calls.open_call(g.db, ivr().config, call_sid=sid, caller=number, country=country,
                                 language=default_language(number),
                                 render=first.render,
                                 apology=first.apology))


@bp.post(rules.REMINDER)
def reminder(token: str):
    """Twilio fetches this when a reminder call we placed is answered (``ivr remind --call``).
    ``token`` names the outbox row, and nothing else: whoever answers may not be the customer, and
    the URL travels through Twilio's logs. ``AnsweredBy`` says whether a machine answered."""
    sid = call_sid()
    callee, country = caller_number(request.form.get("To"))
    lang = default_language(callee)
    first = renderer()

    def polite_end(language: str) -> str:
        return first.render([dialog.Say("reminder_call_end"), dialog.Hangup()], language, 0)

    if not _REMINDER_TOKEN.fullmatch(token):
        log.warning("reminder call %s: malformed reference in the answer URL", sid)
        return twiml(polite_end(lang))
    return twiml(calls.answer_reminder_call(
        g.db, ivr().config, token=token, call_sid=sid, callee=callee, country=country,
        answered_by=request.form.get("AnsweredBy"), fallback_language=lang, polite_end=polite_end,
        render=first.render))


@bp.post(rules.LISTEN)
def listen(step: str):
    """The question ``step`` of turn ``seq`` asked again, by default without its prompt: where the
    media endpoint moves a call whose caller started speaking over the prompt (barge-in). The
    keypad still answers; the spoken answer moves the call on when it is recognised. With
    ``prompt=1``, the prompt too: where a call whose stream was refused is moved, to hear the
    question again with the record transport. Changes nothing."""
    sid = call_sid()
    raw_seq = request.args.get("seq", "")
    if not re.fullmatch(r"[0-9]{1,10}", raw_seq) or not 0 < int(raw_seq) <= MAX_SEQ:
        bad_request("seq is missing or not a number")
    with_prompt = request.args.get("prompt", "0")
    if with_prompt not in ("0", "1"):
        bad_request("prompt must be 0 or 1")
    call = calls.find_call(g.db, sid)
    if call is None:
        return twiml(renderer().apology())
    ask = calls.current_question(g.db, ivr().config, call) if calls.is_current(g.db, sid, step, int(raw_seq)) else None
    if ask is None:
        return twiml(call.last_twiml or renderer().apology(call.language or "en"))
    if with_prompt == "0":
        ask = dataclasses.replace(ask, prompts=())
    return twiml(renderer().render([ask], call.language or "en", call.seq, transport=call.speech_transport))


# The first key of a number, typed while the answer was being recorded (it ended the recording),
# carried on the URL of the Gather that takes the rest of the number.
LEAD = "lead"
LEAD_KEYS = frozenset("0123456789*")


def _lead() -> str:
    lead = request.args.get(LEAD, "")
    if lead and lead not in LEAD_KEYS:
        bad_request(f"{LEAD} is not a key")
    return lead


def _keypad_event(lead: str = "") -> dialog.Event:
    if request.args.get("timeout") == "1":
        return dialog.Event("digits", digits=lead) if lead else dialog.Event("timeout")
    digits = request.form.get("Digits")
    if digits is None or digits in ("", "hangup"):
        return dialog.Event("digits", digits=lead) if lead else dialog.Event("timeout")
    if len(digits) > MAX_DIGITS_PARAM or not re.fullmatch(r"[0-9*#]+", digits):
        return dialog.Event("digits", digits="x")  # not a key sequence: the step will ask again
    return dialog.Event("digits", digits=lead + digits)


def _key_ending_recording() -> str | None:
    """The key that ended a ``<Record>`` (the caller started typing after the Gather gave way), or
    None. At a question that expects a number, it is the number's first key: the rest is to come."""
    digits = request.form.get("Digits", "")
    return digits if request.form.get("RecordingUrl") and digits in LEAD_KEYS else None


def _carries_speech() -> bool:
    """Whether the request may bring a speech answer for ``_hear`` (Twilio's transcript, or a
    recording not ended by a key): only then is the turn read before it is claimed, so that
    recognition holds no lock; keys and silence are claimed at once."""
    if request.args.get("timeout") == "1":
        return False
    if request.form.get("SpeechResult") is not None and not request.form.get("Digits"):
        return True
    return bool(request.form.get("RecordingUrl")) and request.form.get("Digits", "#") in ("", "#", "hangup")


def _hear(state: dialog.CallState, ask: dialog.Ask):
    """The speech answer this request carries (a ``Heard``) to ``ask``, a question that listens
    for speech (a question that records: its audio, a ``calls.Recorded``), or None for keys and silence. Called by the turn service before the turn is
    claimed: a slow recognition holds no lock."""
    if request.args.get("timeout") == "1":
        return None
    attempt = state.tries + 1
    speech = ivr().speech
    if ask.expect == calls.RECORDS:
        # Kept for operators, not recognised (the organisation's name): only its audio is fetched.
        url = request.form.get("RecordingUrl")
        if url and request.form.get("Digits", "#") in ("", "#", "hangup"):
            return calls.Recorded(speech.audio_of(url))
        return None
    if request.form.get("SpeechResult") is not None and not request.form.get("Digits"):
        return speech.from_twilio(state.lang, ask.speech, request.form["SpeechResult"], request.form.get("Confidence"),
                                  attempt, ask.phrases)
    url = request.form.get("RecordingUrl")
    if url and request.form.get("Digits", "#") in ("", "#", "hangup"):
        return speech.from_recording(state.lang, ask.speech, url, attempt, ask.phrases)
    return None


@bp.post(rules.STEP)
def step(step: str):
    sid = call_sid()
    raw_seq = request.args.get("seq", "")
    if not re.fullmatch(r"[0-9]{1,10}", raw_seq) or not 0 < int(raw_seq) <= MAX_SEQ:
        bad_request("seq is missing or not a number")
    seq, lead = int(raw_seq), _lead()
    first = None if lead else _key_ending_recording()
    if first is not None:
        ask = calls.question_at(g.db, ivr().config, sid, step, seq)
        if ask is not None and ask.expect == "number":
            # Nothing is claimed or written yet: the turn is taken when the whole number is in.
            return twiml(renderer().rest_of_number(routes().step(step, seq, **{LEAD: first})))
    if not lead and _keypad_event().kind == "timeout":
        again = _unheard_over_stream(sid, step, seq)
        if again is not None:
            return twiml(again)
    return twiml(calls.take_turn(g.db, ivr().config, call_sid=sid, step=step, seq=seq,
                                 keys=_keypad_event(lead), listen=_hear if _carries_speech() else None,
                                 recording_sid=_recording_sid(),
                                 render=renderer().render, apology=renderer().apology).body)


def _unheard_over_stream(sid: str, step: str, seq: int) -> str | None:
    """A question heard over the media stream whose keypad ``<Gather>`` ran out with no answer at
    all: had the media server heard the caller, the spoken answer would have moved the call on
    before. It may be dead or stuck (and its stream's stop never reported), so the call is moved
    to the record transport for good and the question asked again at once with ``<Record>``;
    no turn is taken (the caller loses no try for our fault). None: not such a question."""
    config = ivr().config
    if not calls.streams(config) or not calls.is_current(g.db, sid, step, seq):
        return None
    call = calls.find_call(g.db, sid)
    if call.speech_transport == RECORD_TRANSPORT or \
            calls.speech_question(g.db, config, call, ivr().speech.engine_for) is None:
        return None
    call = calls.use_record_transport(g.db, sid, only_if_streaming=True)
    ask = calls.current_question(g.db, config, call) if call is not None and call.seq == seq else None
    if ask is None:
        return None
    log.warning("call %s: no answer over the media stream to %s (turn %d); asked again with the record "
                "transport: is `ivr media-server` running?", sid, step, seq)
    return renderer().render([ask], call.language or "en", call.seq, transport=call.speech_transport)


# Twilio's <Stream statusCallback> events that end a call's stream.
STREAM_ENDED = frozenset({"stream-stopped", "stream-error"})


@bp.post(rules.STREAM_STATUS)
def stream_status():
    """Twilio reports the call's media stream (``StreamEvent``: started, stopped, error). A stream
    that stops or fails while the call goes on (the media server died or closed it) moves the call
    to the record transport at once, and a question heard by speech is asked again with
    ``<Record>`` (``StreamLine.fall_back``); a call that is over or already recorded is left alone."""
    sid = call_sid()
    event = request.form.get("StreamEvent", "")
    if event not in STREAM_ENDED:
        return Response(status=204)
    error = request.form.get("StreamError", "")
    why = f"media stream {event.removeprefix('stream-')}" + (f" ({error[:200]})" if error else "")
    services = ivr()
    rest = services.twilio_rest()
    if rest is None or not services.config.public_url:
        calls.use_record_transport(g.db, sid, only_if_streaming=True)
        log.error("call %s: %s; recorded from its next question on (moving it now needs IVR_TWILIO_ACCOUNT_SID "
                  "and IVR_PUBLIC_URL)", sid, why)
        return Response(status=204)
    line = StreamLine(services.config, services.sessions, services.speech, services.prompts, rest)
    try:
        line.fall_back(sid, why)
    except (TwilioException, OSError) as exc:  # e.g. the call ended meanwhile: Twilio refuses the update
        log.warning("call %s: not moved after its %s: %s", sid, why, exc.__class__.__name__)
    return Response(status=204)


def _recording_sid() -> str | None:
    """Twilio's RecordingSid, or None if absent or malformed (it names a file, fits String(64))."""
    sid = request.form.get("RecordingSid") or ""
    return sid if _RECORDING_SID.fullmatch(sid) else None


@bp.post(rules.RECORDING_STATUS)
def recording_status():
    """Twilio says a recording is ready. If the step's answer went out before the audio could be
    fetched, attach it now so an operator can still listen to it."""
    sid = call_sid()
    recording_sid = required("RecordingSid")
    if not _RECORDING_SID.fullmatch(recording_sid):
        bad_request("RecordingSid is malformed")
    utterance = g.db.scalars(
        select(Utterance).join(Call).where(Utterance.recording_sid == recording_sid, Call.call_sid == sid)
    ).first()
    if utterance is None or utterance.audio_path or request.form.get("RecordingStatus") != "completed":
        return Response(status=204)
    url = required("RecordingUrl")
    speech = ivr().speech
    try:
        audio = speech.fetch(url)
    except Exception as exc:  # noqa: BLE001 - logged; Twilio keeps the recording for a later fetch
        log.warning("call %s: recording %s still not fetched: %s", sid, recording_sid, exc)
        return Response(status=204)
    utterance.audio_path = calls.store_audio_or_none(ivr().config.recordings_dir, sid, f"late-{recording_sid}.wav",
                                                     audio)
    g.db.commit()
    return Response(status=204)


@bp.post(rules.STATUS)
def status():
    calls.end_call(g.db, call_sid=call_sid(), status=required("CallStatus"),
                   duration=request.form.get("CallDuration", ""))
    return Response(status=204)


# Query parameter on the question the fallback asked again, naming the call's language: when the
# answer to that question fails too, the call ends politely instead of asking it forever.
AFTER_ERROR = "after_error"


@bp.post(rules.FALLBACK)
def fallback():
    """Twilio calls this when the primary URL failed (an exception, a timeout, an HTTP error).

    The first time, the current question is asked again and nothing changes. When the answer to
    that question fails too, or the call cannot be read from the database, the caller hears an
    apology and is put through to ``IVR_OPERATOR_NUMBER`` (or asked to call back): that answer
    needs nothing but the configuration, so it works with the database down.
    """
    sid = call_sid()
    error_url = request.form.get("ErrorUrl", "")
    log.error("Twilio fallback for %s: error %s at %s", sid, request.form.get("ErrorCode"), error_url[:200])
    retried_lang = parse_qs(urlsplit(error_url).query).get(AFTER_ERROR, [None])[0]
    if retried_lang is not None:
        log.error("call %s: the question asked again after an error failed too: ending the call", sid)
        return twiml(_out_of_order(retried_lang))
    try:
        call = calls.find_call(g.db, sid)
        if call is None or not call.state:
            return twiml(_out_of_order())
        ask = calls.current_question(g.db, ivr().config, call)
    except SQLAlchemyError as exc:
        log.error("call %s: database unavailable in the fallback (%s): ending the call", sid, exc.__class__.__name__)
        return twiml(_out_of_order())
    if ask is None:
        return twiml(call.last_twiml or renderer().apology(call.language or "en"))
    lang = call.language or "en"
    again = renderer()
    again.url_for_step = lambda step, seq: routes().step(step, seq, **{AFTER_ERROR: lang})
    return twiml(again.render([ask], lang, call.seq, transport=call.speech_transport))


# The webhooks whose answer the caller waits for (the status callbacks are served whenever they
# can be: nobody listens to them).
ANSWERED_WHEN_LATE = frozenset({"voice.incoming", "voice.reminder", "voice.step", "voice.listen", "voice.fallback"})


def answer_late(waited: float) -> Response:
    """The answer to a signed webhook that waited ``waited`` seconds for a worker (overload): the
    fallback's words, needing no database; the call's state is left as it is."""
    check_signature()  # aborts with 403 unless Twilio signed it
    log.warning("webhook %s waited %.1f s for a worker (over IVR_QUEUE_WAIT): answered with the fallback's "
                "words", request.path, waited)
    return twiml(_out_of_order())


def _out_of_order(lang: str | None = None) -> str:
    """An apology, then the operator line or a request to call back; no database needed. The
    language is the call's when known, else the one its caller ID suggests."""
    if lang not in ivr().config.say_languages:
        lang = default_language(caller_number(request.form.get("From"))[0])
    number = ivr().config.operator_number
    if number:
        actions = [dialog.Say("technical_problem"), dialog.Say("transfer"), dialog.Transfer(number)]
    else:
        actions = [dialog.Say("technical_problem"), dialog.Say("call_back_later"), dialog.Say("goodbye"),
                   dialog.Hangup()]
    return renderer().render(actions, lang, 0)


@bp.get(rules.PROMPT_AUDIO)
def prompt_audio(lang: str, key: str):
    if lang not in ivr().config.say_languages or not re.fullmatch(r"[a-z_]+(\.speech)?", key):
        abort(404)
    path = ivr().prompts.recording(lang, key)
    if path is None:
        abort(404)
    return send_file(path, conditional=True)
