"""Twilio Media Streams' wire protocol, read and checked: the JSON messages of one stream
(``connected``, ``start``, ``media``, ``mark``, ``dtmf``, ``stop``) and the WebSocket close codes
we answer with. Whatever an outsider sends is refused here with the reason (``BadMessage``); what
to do with a stream (admit it, batch its audio, shed it) is the media server's.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass

from speech.stream import ULAW_RATE

MAX_MESSAGE_BYTES = 64 * 1024  # a media message is ~250 bytes; anything near this is not Twilio
MAX_FRAME_BYTES = 1600  # μ-law bytes per media message: 200 ms (Twilio sends 160 = 20 ms)
CALL_SID = re.compile(r"CA[0-9a-f]{32}")
TRY_AGAIN_LATER = 1013  # WebSocket close code of a refused or shed stream (RFC 6455 registry)
POLICY_VIOLATION = 1008  # close code of a stream not bound to a live call (or without a start)
# Events that carry nothing for us: the dialog hears keys through <Gather>; marks are for
# bidirectional streams.
IGNORED_EVENTS = ("connected", "mark", "dtmf")


class BadMessage(ValueError):
    """A message that is not Twilio's, or not one we can use; its text says why (for the log)."""


@dataclass(frozen=True)
class Start:
    call_sid: str
    stream_sid: str
    custom: dict  # the <Stream>'s <Parameter>s


def read(message) -> tuple[str, dict]:
    """(event, the message) of one WebSocket message; the event is ``start``, ``media``, ``stop``
    or one of ``IGNORED_EVENTS``."""
    if isinstance(message, bytes):
        raise BadMessage("binary message ignored")
    try:
        msg = json.loads(message)
    except ValueError:
        raise BadMessage("message is not JSON") from None
    if not isinstance(msg, dict):
        raise BadMessage("message is not a JSON object")
    event = msg.get("event")
    if event in ("start", "media", "stop", *IGNORED_EVENTS):
        return event, msg
    raise BadMessage(f"unknown event {str(event)[:30]!r}")


def start(msg: dict) -> Start:
    """The call a ``start`` message names, its stream and custom parameters; only 8 kHz μ-law."""
    body = msg.get("start")
    if not isinstance(body, dict):
        raise BadMessage("start message without start object")
    call_sid = body.get("callSid")
    if not isinstance(call_sid, str) or not CALL_SID.fullmatch(call_sid):
        raise BadMessage("start message without a valid callSid")
    fmt = body.get("mediaFormat") or {}
    if isinstance(fmt, dict) and fmt.get("encoding") not in (None, "audio/x-mulaw") or \
            isinstance(fmt, dict) and fmt.get("sampleRate") not in (None, ULAW_RATE):
        raise BadMessage(f"unsupported media format {fmt!r}")
    custom = body.get("customParameters")
    return Start(call_sid, str(msg.get("streamSid") or body.get("streamSid") or "")[:64],
                 custom if isinstance(custom, dict) else {})


def inbound_audio(msg: dict) -> bytes:
    """The caller's μ-law audio in a ``media`` message; empty for the other track (only the
    caller's side is recognised) and for an empty frame."""
    media = msg.get("media")
    if not isinstance(media, dict) or not isinstance(media.get("payload"), str):
        raise BadMessage("media message without payload")
    if media.get("track", "inbound") != "inbound":
        return b""
    payload = media["payload"]
    if len(payload) > MAX_FRAME_BYTES * 4 // 3 + 4:
        raise BadMessage(f"oversized media frame ({len(payload)} base64 chars) dropped")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise BadMessage("media payload is not base64") from None
