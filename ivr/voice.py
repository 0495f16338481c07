"""Twilio voice webhooks: signed requests in, TwiML out, call state in the database.

Each step's ``<Gather>`` posts to ``/voice/step/<step>?seq=N``. ``seq`` is the turn number the
call expects next: the first request for it claims the turn with a conditional UPDATE (so two
workers racing on a retried webhook cannot both act), and a repeated request gets the TwiML that
was answered the first time, so a reading is never stored twice.
"""
from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import phonenumbers
from flask import Blueprint, Response, abort, current_app, g, request, send_file, url_for
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from twilio.request_validator import RequestValidator

from readings_store.models import Call, Utterance, utcnow

from . import dialog
from .logsafe import safe_logger
from .records import SqlRecords

log = safe_logger(__name__)  # request data in log lines is escaped: no forged lines
bp = Blueprint("voice", __name__, url_prefix="/voice")

TWIML = "application/xml"
_SID = re.compile(r"^CA[0-9a-fA-F]{32}$")
_RECORDING_SID = re.compile(r"^RE[0-9a-fA-F]{32}$")
MAX_DIGITS_PARAM = 64
MAX_SEQ = 2**31 - 1  # Call.seq is a 32-bit INTEGER column
# Twilio's placeholders for a withheld caller ID.
WITHHELD = {"", "anonymous", "restricted", "unknown", "private", "+266696687", "+86282452253", "+7378742833", "+2562533"}


def ivr():
    return current_app.extensions["ivr"]


@bp.before_request
def check_signature():
    """Reject anything not signed by Twilio with our auth token, before it can touch the database."""
    if request.endpoint == "voice.prompt_audio":
        return None  # prompt audio is public: Twilio fetches it unsigned
    token = ivr().config.twilio_auth_token
    if not ivr().config.validate_signatures:
        from .app import SIGNATURES_OFF

        log.warning("%s (unchecked request: %s)", SIGNATURES_OFF, request.path)
        return None
    if not token:
        log.error("IVR_TWILIO_AUTH_TOKEN is not set: rejecting Twilio request")
        abort(403)
    signature = request.headers.get("X-Twilio-Signature", "")
    params = request.form.to_dict(flat=True) if request.method == "POST" else {}
    if not signature or not RequestValidator(token).validate(public_url(), params, signature):
        log.warning("rejected request with a bad or missing Twilio signature: %s", request.path)
        abort(403)
    return None


@bp.before_request
def refuse_nul():
    """A NUL byte is in no Twilio parameter, and PostgreSQL cannot store one: 400, nothing written."""
    values = [request.path, *request.args.values(), *request.args.keys()]
    if request.method == "POST":
        values += [*request.form.keys(), *request.form.values()]
    if any("\x00" in v for v in values):
        abort(Response("a parameter contains a NUL byte\n", status=400, mimetype="text/plain"))
    return None


def public_url() -> str:
    """The URL Twilio requested, as it signed it (the public URL, not the one behind the proxy)."""
    base = ivr().config.public_url
    query = request.query_string.decode()
    if base:
        return base.rstrip("/") + request.path + (f"?{query}" if query else "")
    return request.url


def twiml(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype=TWIML)


def caller_number(raw: str | None) -> tuple[str | None, str | None]:
    """(E.164 number, ISO country) of the caller, or (None, None) when withheld or invalid."""
    raw = (raw or "").strip()
    if raw.lower() in WITHHELD or len(raw) > 32:
        return None, None
    try:
        number = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException:
        return None, None
    if not phonenumbers.is_possible_number(number):
        return None, None
    return (phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
            phonenumbers.region_code_for_number(number))


def default_language(e164: str | None) -> str:
    table = ivr().config.country_languages
    if e164:
        code = str(phonenumbers.parse(e164, None).country_code)
        if code in table:
            return table[code]
    return table.get("*", "en")


def required(name: str) -> str:
    value = request.form.get(name, "")
    if not value:
        abort(Response(f"missing parameter {name}\n", status=400, mimetype="text/plain"))
    return value


def call_sid() -> str:
    sid = required("CallSid")
    if not _SID.fullmatch(sid):
        abort(Response("CallSid is malformed\n", status=400, mimetype="text/plain"))
    return sid


def absolute(path: str) -> str:
    """A URL Twilio can reach: under the configured public URL, else the one it called us on."""
    base = ivr().config.public_url or request.host_url
    return base.rstrip("/") + path


def _step_url(step: str, seq: int) -> str:
    return absolute(url_for("voice.step", step=step, seq=seq))


def _prompt_url(lang: str, key: str) -> str:
    return absolute(url_for("voice.prompt_audio", lang=lang, key=key))


def renderer():
    from .twiml import TwimlRenderer

    return TwimlRenderer(ivr().config, ivr().prompts, _step_url, _prompt_url, ivr().speech.engine_for,
                         absolute(url_for("voice.recording_status")))


def log_step(call: Call, step: str, event: dict, actions: list) -> None:
    asked = [a.step for a in actions if isinstance(a, dialog.Ask)]
    call.steps = [*call.steps, {"at": utcnow().isoformat(), "step": step, "event": event,
                                "next": asked[0] if asked else type(actions[-1]).__name__.lower()}]


@bp.post("/incoming")
def incoming():
    sid = call_sid()
    session = g.db
    existing = session.scalars(select(Call).where(Call.call_sid == sid)).first()
    if existing is not None:
        return twiml(existing.last_twiml or renderer().apology(existing.language or "en"))
    number, country = caller_number(request.form.get("From"))
    lang = default_language(number)
    call = Call(call_sid=sid, from_number=number, caller_country=country, language=lang, seq=1, steps=[])
    session.add(call)
    session.flush()
    records = SqlRecords(session, ivr().config, call)
    turn = dialog.start(records, call_sid=sid, caller=number, language=lang, max_tries=ivr().config.max_tries)
    body = renderer().render(turn.actions, turn.state["lang"], call.seq)
    call.state, call.last_twiml = turn.state, body
    log_step(call, "incoming", {"from": "known" if number else "withheld"}, turn.actions)
    session.commit()
    return twiml(body)


def _keypad_event() -> dialog.Event:
    if request.args.get("timeout") == "1":
        return dialog.Event("timeout")
    digits = request.form.get("Digits")
    if digits is None or digits in ("", "hangup"):
        return dialog.Event("timeout")
    if len(digits) > MAX_DIGITS_PARAM or not re.fullmatch(r"[0-9*#]+", digits):
        return dialog.Event("digits", digits="x")  # not a key sequence: the step will ask again
    return dialog.Event("digits", digits=digits)


def _hear(call: Call, step: str):
    """The speech answer this request carries (a ``Heard``), or None for keys and silence.
    Recognised before the turn is claimed, so a slow recognition holds no database lock."""
    state = call.state or {}
    kind = dialog.engine.SPEECH_KINDS.get(step)
    if kind is None or request.args.get("timeout") == "1":
        return None
    attempt = state.get("tries", 0) + 1
    speech = ivr().speech
    lang = state.get("lang", "en")
    # Names the question offers (regions), heard beside the kind's words.
    phrases = dialog.engine.speech_phrases(SqlRecords(g.db, ivr().config, call), state)
    if request.form.get("SpeechResult") is not None and not request.form.get("Digits"):
        return speech.from_twilio(lang, kind, request.form["SpeechResult"], request.form.get("Confidence"), attempt,
                                  phrases)
    url = request.form.get("RecordingUrl")
    if url and request.form.get("Digits", "#") in ("", "#", "hangup"):
        return speech.from_recording(lang, kind, url, attempt, phrases)
    return None


@bp.post("/step/<step>")
def step(step: str):
    sid = call_sid()
    raw_seq = request.args.get("seq", "")
    if not re.fullmatch(r"[0-9]{1,10}", raw_seq) or not 0 < int(raw_seq) <= MAX_SEQ:
        abort(Response("seq is missing or not a number\n", status=400, mimetype="text/plain"))
    seq = int(raw_seq)
    session = g.db
    call = session.scalars(select(Call).where(Call.call_sid == sid)).first()
    if call is None:
        log.warning("webhook for unknown call %s", sid)
        return twiml(renderer().apology())
    heard = _hear(call, step) if call.seq == seq and call.state.get("step") == step else None
    claimed = session.execute(
        update(Call).where(Call.id == call.id, Call.seq == seq).values(seq=seq + 1)
    ).rowcount
    if not claimed or call.state.get("step") != step:
        # A repeated or out-of-date request: answer what we answered before, change nothing.
        session.rollback()
        session.refresh(call)
        return twiml(call.last_twiml or renderer().apology(call.language or "en"))
    if heard is not None:
        event = dialog.Event("speech", speech=_keep_utterance(call, step, seq, heard))
    else:
        event = _keypad_event()
    return _advance(call, step, event, seq)


def _recording_sid() -> str | None:
    """Twilio's RecordingSid, or None if absent or malformed (it names a file, fits String(64))."""
    sid = request.form.get("RecordingSid") or ""
    return sid if _RECORDING_SID.fullmatch(sid) else None


def _fits(value: str | None, size: int) -> str | None:
    """A parsed number for a String(size) column: one longer (minutes of "one one one...") is no
    meter reading, and would fail the INSERT on PostgreSQL; the transcript keeps what was said."""
    return value if value is None or len(value) <= size else None


def _store_audio(call_sid: str, name: str, audio: bytes) -> str:
    """Write a caller's audio under the recordings folder; returns its path relative to it.
    Callers' voices are personal data: folders 0700, files 0600, whatever the umask."""
    relative = Path(call_sid) / name
    root = ivr().config.recordings_dir
    target = root / relative
    for folder in (root, target.parent):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(audio)
    return str(relative)


def _keep_utterance(call: Call, step: str, seq: int, heard) -> dialog.SpeechInput:
    """Store the caller's audio and what was made of it; the operator console shows both."""
    audio_path = _store_audio(call.call_sid, f"{seq:03d}-{step}.wav", heard.audio) if heard.audio else None
    utterance = Utterance(call_id=call.id, step=step, engine=heard.engine,
                          recording_sid=_recording_sid(),
                          audio_path=audio_path, transcript=heard.transcript, words=heard.words,
                          alternatives=heard.alternatives, parsed_value=_fits(heard.speech.value, 64),
                          candidates=heard.candidates, confidence=heard.confidence,
                          decision=heard.speech.decision)
    g.db.add(utterance)
    g.db.flush()
    return dataclasses.replace(heard.speech, utterance_id=utterance.id)


def _advance(call: Call, step: str, event: dialog.Event, seq: int) -> Response:
    session = g.db
    records = SqlRecords(session, ivr().config, call)
    turn = dialog.handle(records, call.state, event)
    call.seq = seq + 1
    body = renderer().render(turn.actions, turn.state["lang"], call.seq)
    call.state, call.last_twiml, call.language = turn.state, body, turn.state["lang"]
    if turn.state.get("region_id"):
        call.region_id = turn.state["region_id"]
    if turn.state.get("outcome"):
        call.outcome = turn.state["outcome"]
    log_step(call, step, {"kind": event.kind, "keys": len(event.digits),
                          "decision": event.speech.decision if event.speech else None}, turn.actions)
    # Commit before answering: the caller hears "saved" only for a reading that is stored.
    session.commit()
    return twiml(body)


@bp.post("/recording-status")
def recording_status():
    """Twilio says a recording is ready. If the step's answer went out before the audio could be
    fetched, attach it now so an operator can still listen to it."""
    sid = call_sid()
    recording_sid = required("RecordingSid")
    if not _RECORDING_SID.fullmatch(recording_sid):
        abort(Response("RecordingSid is malformed\n", status=400, mimetype="text/plain"))
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
    utterance.audio_path = _store_audio(sid, f"late-{recording_sid}.wav", audio)
    g.db.commit()
    return Response(status=204)


@bp.post("/status")
def status():
    sid = call_sid()
    session = g.db
    call = session.scalars(select(Call).where(Call.call_sid == sid)).first()
    if call is None:
        log.warning("status callback for unknown call %s", sid)
        return Response(status=204)
    call.twilio_status = required("CallStatus")[:32]
    if call.twilio_status in ("completed", "busy", "failed", "no-answer", "canceled"):
        call.ended_at = call.ended_at or utcnow()
        duration = request.form.get("CallDuration", "")
        # ASCII digits that fit the INTEGER column; anything else ("²", 20 digits) is ignored.
        fits = re.fullmatch(r"[0-9]{1,9}", duration) is not None
        call.duration_seconds = int(duration) if fits else call.duration_seconds
        if not call.outcome:
            step_name = (call.state or {}).get("step", "start")
            call.outcome = "completed" if step_name == "ended" else f"hung_up_at_{step_name}"
    session.commit()
    return Response(status=204)


# Query parameter on the question the fallback asked again, naming the call's language: when the
# answer to that question fails too, the call ends politely instead of asking it forever.
AFTER_ERROR = "after_error"


@bp.post("/fallback")
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
        call = g.db.scalars(select(Call).where(Call.call_sid == sid)).first()
        if call is None or not call.state:
            return twiml(_out_of_order())
        ask = dialog.engine.reask(SqlRecords(g.db, ivr().config, call), call.state)
    except SQLAlchemyError as exc:
        log.error("call %s: database unavailable in the fallback (%s): ending the call", sid, exc.__class__.__name__)
        return twiml(_out_of_order())
    if ask is None:
        return twiml(call.last_twiml or renderer().apology(call.language or "en"))
    lang = call.state["lang"]
    again = renderer()
    again.url_for_step = lambda step, seq: absolute(url_for("voice.step", step=step, seq=seq, **{AFTER_ERROR: lang}))
    return twiml(again.render([ask], lang, call.seq))


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


@bp.get("/prompts/<lang>/<key>")
def prompt_audio(lang: str, key: str):
    if lang not in ivr().config.say_languages or not re.fullmatch(r"[a-z_]+", key):
        abort(404)
    path = ivr().prompts.recording(lang, key)
    if path is None:
        abort(404)
    return send_file(path, conditional=True)
