"""Every URL of ours that Twilio is told, in one place: the rules the voice and SMS blueprints
declare, and the absolute URLs put in TwiML, in REST requests (moving a live call, placing a
reminder call, sending a text) and in the set-up instructions of ``ivr serve``.

Flask-free: the media server process (``ivr media-server``) builds the same URLs when it moves a
live call, and loads no Flask.
"""
from __future__ import annotations

from urllib.parse import urlencode

VOICE_PREFIX = "/voice"
SMS_PREFIX = "/sms"

# Rules under VOICE_PREFIX (Flask's syntax: the blueprint declares them as written).
INCOMING = "/incoming"
REMINDER = "/reminder/<token>"
LISTEN = "/listen/<step>"
STEP = "/step/<step>"
STREAM_STATUS = "/stream-status"
RECORDING_STATUS = "/recording-status"
STATUS = "/status"
FALLBACK = "/fallback"
PROMPT_AUDIO = "/prompts/<lang>/<key>"
# Rules under SMS_PREFIX.
SMS_INCOMING = "/incoming"
SMS_STATUS = "/status"

# The media endpoint (``ivr media-server``, its own port behind the same proxy): the WebSocket
# Twilio streams a call's audio to, and its own health check.
STREAM_PATH = VOICE_PREFIX + "/stream"
MEDIA_HEALTH_PATH = "/healthz"


def _fill(rule: str, **parts: str) -> str:
    for name, value in parts.items():
        rule = rule.replace(f"<{name}>", value)
    return rule


class TwilioRoutes:
    """Absolute URLs under ``base`` (``IVR_PUBLIC_URL``, or the host a request came in on)."""

    def __init__(self, base: str):
        self.base = base.rstrip("/")

    def _voice(self, rule: str, query: dict | None = None, **parts: str) -> str:
        url = self.base + VOICE_PREFIX + _fill(rule, **parts)
        return url + ("?" + urlencode(query) if query else "")

    def incoming(self) -> str:
        return self._voice(INCOMING)

    def reminder(self, token: str) -> str:
        return self._voice(REMINDER, token=token)

    def step(self, step: str, seq: int, **extra: str) -> str:
        """Where the answer to question ``step`` of turn ``seq`` is posted; ``extra``: more query
        parameters (the first key of a number, the language after an error)."""
        return self._voice(STEP, {"seq": seq, **extra}, step=step)

    def listen(self, step: str, seq: int, *, prompt: bool = False) -> str:
        return self._voice(LISTEN, {"seq": seq, **({"prompt": 1} if prompt else {})}, step=step)

    def prompt_audio(self, lang: str, key: str) -> str:
        return self._voice(PROMPT_AUDIO, lang=lang, key=key)

    def stream_status(self) -> str:
        return self._voice(STREAM_STATUS)

    def recording_status(self) -> str:
        return self._voice(RECORDING_STATUS)

    def status(self) -> str:
        return self._voice(STATUS)

    def fallback(self) -> str:
        return self._voice(FALLBACK)

    def sms_incoming(self) -> str:
        return self.base + SMS_PREFIX + SMS_INCOMING

    def sms_status(self) -> str:
        return self.base + SMS_PREFIX + SMS_STATUS
