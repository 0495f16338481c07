"""Twilio's side of a Media Stream, played from audio: for tests and the streaming benchmark.

``play_stream`` opens the WebSocket with a correctly signed handshake (``X-Twilio-Signature``
over the wss URL, no parameters, as Twilio signs it), sends ``connected``, ``start`` (callSid,
streamSid, customParameters, media format), one ``media`` message per 20 ms μ-law frame (in
real time or as fast as possible) and ``stop``, and reports when it sent each frame.
``Recorder`` is a set of media-endpoint handlers that records every callback with its time.
"""
from __future__ import annotations

import asyncio
import base64
import json
import secrets
import threading
import time
import wave
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from twilio.request_validator import RequestValidator

from ivr.voice.media_server import Handlers, Question
from speech.stream import FRAME_BYTES, FRAME_MS, frame_dbfs, pcm16_to_ulaw

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

ULAW_FRAME = 160  # bytes of μ-law per 20 ms
VOICED_DBFS = -45.0  # the sender's own notion of "voiced", on clean synthetic audio


def new_call_sid() -> str:
    return "CA" + secrets.token_hex(16)


def sign(url: str, auth_token: str) -> str:
    return RequestValidator(auth_token).compute_signature(url, {})


def read_pcm8k(path: Path) -> bytes:
    """A mono 16-bit WAV as 8 kHz PCM (telephone rate)."""
    with wave.open(str(path)) as w:
        if w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise ValueError(f"{path}: need mono 16-bit WAV")
        pcm, rate = w.readframes(w.getnframes()), w.getframerate()
    if rate != 8000:
        pcm, _ = audioop.ratecv(pcm, 2, 1, rate, 8000, None)
    return pcm


def silence(ms: int) -> bytes:
    return b"\0\0" * (8 * ms)


def ulaw_frames(pcm: bytes) -> list[bytes]:
    """16-bit PCM at 8 kHz -> 20 ms μ-law frames (the last one padded with silence)."""
    pcm = pcm + b"\0" * (-len(pcm) % FRAME_BYTES)
    ulaw = pcm16_to_ulaw(pcm)
    return [ulaw[i:i + ULAW_FRAME] for i in range(0, len(ulaw), ULAW_FRAME)]


def voiced_span_ends(pcm: bytes, gap_ms: int = 400) -> list[int]:
    """Index of the last voiced 20 ms frame of each stretch of speech (pauses < gap_ms join)."""
    ends, last, gap = [], None, gap_ms // FRAME_MS
    for i in range(0, len(pcm) // FRAME_BYTES):
        if frame_dbfs(pcm[i * FRAME_BYTES:(i + 1) * FRAME_BYTES]) > VOICED_DBFS:
            if last is not None and i - last > gap:
                ends.append(last)
            last = i
    if last is not None:
        ends.append(last)
    return ends


class Silent:
    """A fake listener that hears nothing (what is recognised is not the subject of its tests)."""

    listening = False

    def __init__(self, *args):
        pass

    def feed(self, pcm):
        return False, None

    def resume(self):
        return False, None


@dataclass
class Played:
    call_sid: str
    sent_at: list = field(default_factory=list)  # monotonic time each frame was sent
    late_sends: int = 0  # frames the sender itself could not send on schedule (> 40 ms late)
    status: int | None = None  # HTTP status if the handshake was refused
    close_code: int | None = None  # the server's WebSocket close code (1013: refused, try again later)


def start_message(call_sid: str, stream_sid: str, custom: dict | None = None) -> dict:
    return {"event": "start", "sequenceNumber": "1", "streamSid": stream_sid,
            "start": {"accountSid": "AC" + "0" * 32, "streamSid": stream_sid, "callSid": call_sid,
                      "tracks": ["inbound"], "customParameters": custom or {},
                      "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}


async def play_stream(url: str, auth_token: str | None, pcm: bytes, *, call_sid: str | None = None,
                      realtime: bool = True, custom: dict | None = None, extra: list | None = None,
                      signature: str | None = None, signed_url: str | None = None, stop: bool = True,
                      linger: float = 0.0, hold: asyncio.Event | None = None) -> Played:
    """Play *pcm* (16-bit, 8 kHz) as Twilio would. *extra* messages (str or dict) are sent after
    ``start``; *signature* overrides the correct one; *linger* keeps the socket open after the
    last frame (for a server to finish), and *hold* until that event is set; either ends early
    when the server closes the stream, as does the audio (Twilio's call goes on; ``close_code``
    says why). Twilio signs the public wss URL: *signed_url*, by default *url* with ws:// read as
    wss://. Returns the send times of every frame."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidStatus

    played = Played(call_sid or new_call_sid())
    stream_sid = "MZ" + secrets.token_hex(16)
    signed_url = signed_url or ("wss://" + url[len("ws://"):] if url.startswith("ws://") else url)
    headers = {"X-Twilio-Signature": signature if signature is not None else sign(signed_url, auth_token or "")}
    try:
        async with connect(url, additional_headers=headers, compression=None, max_size=2 ** 20) as ws:
            try:
                await _play(ws, played, stream_sid, pcm, realtime, custom, extra, stop, linger, hold)
            except ConnectionClosed:
                pass  # the server ended the stream
        played.close_code = ws.close_code
    except InvalidStatus as exc:
        played.status = exc.response.status_code
    return played


async def _play(ws, played: Played, stream_sid: str, pcm: bytes, realtime: bool, custom, extra, stop: bool,
                linger: float, hold: asyncio.Event | None) -> None:
    await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
    await ws.send(json.dumps(start_message(played.call_sid, stream_sid, custom)))
    for message in extra or []:
        await ws.send(message if isinstance(message, (str, bytes)) else json.dumps(message))
    t0 = time.monotonic()
    for n, frame in enumerate(ulaw_frames(pcm)):
        if realtime:
            due = t0 + n * FRAME_MS / 1000
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.04:
                played.late_sends += 1
        played.sent_at.append(time.monotonic())
        await ws.send(json.dumps({
            "event": "media", "sequenceNumber": str(n + 3), "streamSid": stream_sid,
            "media": {"track": "inbound", "chunk": str(n + 1), "timestamp": str(n * FRAME_MS),
                      "payload": base64.b64encode(frame).decode()}}))
    if linger or hold is not None:
        waits = [asyncio.ensure_future(ws.wait_closed())]
        if hold is not None:
            waits.append(asyncio.ensure_future(hold.wait()))
        await asyncio.wait(waits, timeout=linger or None, return_when=asyncio.FIRST_COMPLETED)
        for wait in waits:
            wait.cancel()
    if stop:
        await ws.send(json.dumps({"event": "stop", "sequenceNumber": str(len(played.sent_at) + 3),
                                  "streamSid": stream_sid,
                                  "stop": {"accountSid": "AC" + "0" * 32, "callSid": played.call_sid}}))
    await ws.close()


@dataclass
class Event:
    kind: str  # "utterance" | "speech_started" | "refused"
    call_sid: str
    at: float
    question: Question | None = None
    recognition: object = None
    wav: bytes | None = None


class Recorder:
    """Media-endpoint handlers that record every callback; questions come from a dict that a
    test may change (call_sid -> Question, or a default for every call)."""

    def __init__(self, question: Question | None = None, models=None, on_utterance=None):
        self.default = question
        self.questions: dict[str, Question | None] = {}
        self.events: list[Event] = []
        self.lock = threading.Lock()
        self.models = models
        self._after_utterance = on_utterance

    def question(self, call_sid: str) -> Question | None:
        return self.questions.get(call_sid, self.default)

    def _on_utterance(self, call_sid, question, recognition, wav):
        with self.lock:
            self.events.append(Event("utterance", call_sid, time.monotonic(), question, recognition, wav))
        if self._after_utterance is not None:
            self._after_utterance(call_sid, question, recognition, wav)

    def _on_speech_started(self, call_sid):
        with self.lock:
            self.events.append(Event("speech_started", call_sid, time.monotonic()))

    def _on_refused(self, call_sid):
        with self.lock:
            self.events.append(Event("refused", call_sid, time.monotonic()))

    def handlers(self) -> Handlers:
        return Handlers(questions=self.question, on_utterance=self._on_utterance,
                        on_speech_started=self._on_speech_started, models=self.models,
                        on_refused=self._on_refused)

    def utterances(self, call_sid: str | None = None) -> list[Event]:
        with self.lock:
            return [e for e in self.events if e.kind == "utterance" and (call_sid is None or e.call_sid == call_sid)]

    def kinds(self, call_sid: str) -> list[str]:
        with self.lock:
            return [e.kind for e in self.events if e.call_sid == call_sid]


class ServerThread:
    """A media server on an event loop of its own thread, for tests whose other side is
    synchronous (the Flask test client probing its health). ``run(coro)`` runs a coroutine on that
    loop and waits for it; ``spawn(coro)`` starts one and returns its concurrent future."""

    def __init__(self, server, host: str = "127.0.0.1"):
        self.server, self.host = server, host
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="media-loop", daemon=True)

    def __enter__(self) -> "ServerThread":
        self.thread.start()
        self.run(self.server.start(self.host, 0))
        return self

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/voice/stream"

    def spawn(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro, timeout: float = 60):
        return self.spawn(coro).result(timeout)

    def call(self, fn, *args):
        """Run a plain function on the loop (e.g. ``event.set``)."""
        self.loop.call_soon_threadsafe(fn, *args)

    def __exit__(self, *exc):
        try:
            self.run(self.server.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.server.close()
            self.loop.close()


def until(condition, what: str, timeout: float = 30.0) -> None:
    """Wait (bounded) for ``condition()``: tests assert what happens, not how fast."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.01)
