"""The media endpoint: Twilio Media Streams in, the caller's answers out, while the caller speaks.

``/voice/incoming`` starts ``<Start><Stream track="inbound_track" url="wss://…/voice/stream">``
once per call; Twilio then opens a WebSocket here and sends JSON messages: ``connected``,
``start`` (streamSid, callSid, customParameters, media format), one ``media`` message per 20 ms
of the caller's audio (base64 G.711 μ-law, 8 kHz), ``mark``/``dtmf`` (bidirectional streams
only) and ``stop``. The handshake carries ``X-Twilio-Signature``, Twilio's signature of the wss
URL (``IVR_MEDIA_URL``, no parameters) with the account's auth token; anything else is refused
with 403. The messages are read and checked by ``ivr/voice/twilio_media.py`` (the wire protocol);
this module admits streams, batches their audio for recognition and sheds load.

That signature is the same for every call and never expires, so it does not say which call a
stream is for: the ``start`` message does, with the call's one-time token among its custom
parameters. ``authorize(call_sid, parameters)`` (the product's) opens the stream or says why not;
a stream it refuses, or that sends no ``start`` within ``START_TIMEOUT`` seconds, is closed (1008)
before it takes a slot, and its call is left alone.

``GET /healthz`` on the same port answers whether the server is ready (its speech models loaded:
streams arriving before are refused like any stream beyond the limit) and its stream counts; the
web app's ``/healthz`` and ``/metrics`` read it. Log lines about what outsiders send (bad
handshakes, junk messages, unbound streams) are escaped and rate limited.

For each call a :class:`CallListener` cuts the audio into answers (``speech.stream``): it asks
the :data:`QuestionSource` for the call's current question when the stream starts, again at
every voice onset (so the grammar follows the dialog, whichever transport moved it) and after
every answer. Each answer with a grammar word goes to ``on_utterance(call_sid, question,
recognition, wav_bytes)``; the first grammar word of an answer fires ``on_speech_started(call_sid)``
first (barge-in). Both callbacks and the question source are the product's: they run in a
thread pool of their own (they talk to the database and to Twilio's REST API), so a slow
callback delays only its own call's next answer, never the audio of other calls.

One asyncio process serves many calls: the event loop only parses messages; Vosk runs in a
thread pool (its C calls release the GIL, so threads use every core) and shares one
``vosk.Model`` per language per process.

A server recognises only as many callers as its cores can hear in real time; beyond that every
answer would come seconds late. So it sheds load, and each refused call is handed to
``on_refused(call_sid)`` (the phone line moves it to the record transport), then its WebSocket is
closed with 1013 (try again later):

- *admission*: a stream that would exceed ``max_streams`` concurrent streams is refused at its
  ``start`` message, and so is every new stream while the server is behind (below);
- *behind*: with shedding on, the recognition threads take the waiting batches of audio in the
  order their streams were admitted (oldest first), so a server short of CPU keeps its earlier
  calls in real time and only the newest fall behind. A batch not recognised ``shed_after_ms``
  after it was handed over sheds its stream at that moment (an unfinished answer is dropped), and
  marks the server as behind.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import math
import os
import queue
import re
import threading
import time
from collections import deque
from urllib.parse import urlsplit
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Callable, Optional

from twilio.request_validator import RequestValidator

from speech.recognizer import Recognition
from speech.stream import FRAME_MS, ULAW_RATE, StreamingUtterance, StreamSettings, ulaw_to_pcm16

from ivr.logsafe import RateLimitedLog, safe_logger
from ivr.twilio_routes import MEDIA_HEALTH_PATH as HEALTH_PATH
from ivr.twilio_routes import STREAM_PATH
from ivr.voice import twilio_media
from ivr.voice.twilio_media import MAX_MESSAGE_BYTES, POLICY_VIOLATION, TRY_AGAIN_LATER

log = safe_logger(__name__)  # handshake paths and messages come from anyone: escaped
noisy = RateLimitedLog(log, burst=10, period=60.0)  # ... and rate limited

START_TIMEOUT = 10.0  # seconds a connection may wait before its start message (Twilio sends it at once)
SIGNATURES_OFF = ("IVR_VALIDATE_SIGNATURES is off: the media endpoint accepts unsigned handshakes. Never run "
                  "like this in production.")
# Concurrent streams per recognition thread (one per core) when no limit is configured: 2 cores
# hear about 55 streams whose callers speak half of the time (docs/streaming.md, section 4).
STREAMS_PER_CORE = 25
MIN_SHED_AFTER_MS = 100  # a bound below a few batches' decoding time would shed a healthy server


@dataclass(frozen=True)
class Question:
    """What the caller is being asked now, as far as recognition is concerned."""

    language: str  # model language, e.g. "ru"
    grammar: tuple[str, ...]  # phrases for Vosk (grammars.build_grammar)
    step: str  # dialog step id, handed back with the answer
    seq: int  # the call's turn sequence number when the question was asked

    def __post_init__(self):
        if not self.grammar:
            raise ValueError("a question needs a non-empty grammar")


# call_sid -> the call's current speech question, or None when no speech answer is expected.
QuestionSource = Callable[[str], Optional[Question]]
# (call_sid, question, recognition, WAV of the answer: 16-bit PCM, 8 kHz) -> None
OnUtterance = Callable[[str, Question, Recognition, bytes], None]
OnSpeechStarted = Callable[[str], None]
# call_sid -> None: the server will not recognise this call's stream (full, or behind)
OnRefused = Callable[[str], None]
# language -> vosk.Model (speech.models.ModelPool.get)
ModelSource = Callable[[str], Any]
# (call_sid, the start message's custom parameters) -> None: the stream may open; else why not
Authorize = Callable[[str, dict], Optional[str]]


@dataclass
class Handlers:
    """The product side of the media endpoint."""

    questions: QuestionSource
    on_utterance: OnUtterance
    on_speech_started: OnSpeechStarted | None = None
    models: ModelSource | None = None  # None: a ModelPool over the configured models folder
    on_refused: OnRefused | None = None  # the stream is refused or shed: hear the call another way
    authorize: Authorize | None = None  # binds a stream to its call; None: every signed stream opens


@dataclass
class Answer:
    question: Question
    recognition: Recognition
    wav: bytes
    last_voice_at: float | None  # monotonic time the last voiced frame of the answer was fed


class CallListener:
    """One call's stream of answers. Synchronous; runs in the recognition thread pool, one
    batch of audio at a time (never two threads on one listener)."""

    def __init__(self, call_sid: str, questions: QuestionSource, models: ModelSource, settings: StreamSettings):
        self.call_sid = call_sid
        self._questions = questions
        self._models = models
        self.settings = settings
        self.question: Question | None = None
        self._utterance: StreamingUtterance | None = None
        self._pending = b""  # audio after an answer's end, for the next answer
        self._announced = 0  # speech starts of the current answer already reported

    def _ask(self) -> Question | None:
        try:
            question = self._questions(self.call_sid)
        except Exception:  # the product's code: one failure must not end the stream
            log.exception("question source failed for call %s", self.call_sid)
            return None
        if question is not None and not isinstance(question, Question):
            log.error("question source returned %r, not a Question, for call %s", type(question), self.call_sid)
            return None
        return question

    def _target(self, question: Question | None):
        if question is None:
            return None, None
        try:
            return self._models(question.language), list(question.grammar)
        except Exception:  # no model for the language, unreadable model
            log.exception("no speech model for %r (call %s)", question.language, self.call_sid)
            return None, None

    def _retarget(self):
        """At a voice onset: the question may have moved on since the answer was set up."""
        question = self._ask()
        if question != self.question:
            self.question = question
            return self._target(question)
        return None

    def begin(self) -> None:
        """Set up the next answer for the current question."""
        previous = self._utterance
        self.question = self._ask()
        model, grammar = self._target(self.question)
        self._utterance = StreamingUtterance(model, grammar, self.settings, retarget=self._retarget,
                                             detector=previous.detector if previous else None)
        self._announced = 0  # speech starts of the current answer already reported

    def feed(self, pcm: bytes) -> tuple[bool, Answer | None]:
        """(speech started in this batch, the answer if it ended). After an answer, call
        :meth:`resume` (once the answer has been handled) to go on with the audio left over."""
        if self._utterance is None:
            self.begin()
        utterance = self._utterance
        recognition = utterance.feed(pcm)
        started = utterance.speech_starts > self._announced
        self._announced = utterance.speech_starts
        if recognition is None:
            return started, None
        self._pending = utterance.leftover
        answer = Answer(self.question, recognition, utterance.wav(), utterance.last_voice_at)
        return started, answer

    def resume(self) -> tuple[bool, Answer | None]:
        self.begin()
        pending, self._pending = self._pending, b""
        return self.feed(pending)

    @property
    def listening(self) -> bool:
        return self._utterance is not None and self._utterance.listening


@dataclass
class StreamStats:
    """Counters of one server (for monitoring and the benchmark)."""

    streams: int = 0
    frames: int = 0
    late_frames: int = 0  # frames that waited ``late_after_ms`` longer than their batch's own filling time
    max_lag_ms: float = 0.0
    lags_ms: deque = field(default_factory=lambda: deque(maxlen=100_000))  # recent batches: oldest frame's lag
    bad_messages: int = 0
    rejected_handshakes: int = 0
    unbound_streams: int = 0  # closed at their start: not bound to a live call (authorize), or no start
    utterances: int = 0
    callback_errors: int = 0
    active_streams: int = 0  # streams being recognised now
    refused_streams: int = 0  # refused at the start: max_streams reached, or the server behind
    shed_streams: int = 0  # stopped mid-answer: their recognition fell more than shed_after_ms behind


class ServerClock:
    """The time load shedding goes by: the process's monotonic clock, and waiting on it."""

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class MediaServer:
    """The WebSocket media endpoint (asyncio, ``websockets``)."""

    def __init__(self, handlers: Handlers, *, auth_token: str | None, validate_signatures: bool = True,
                 public_url: str | None = None, settings: StreamSettings = StreamSettings(),
                 path: str = STREAM_PATH, workers: int | None = None, callback_workers: int = 8,
                 feed_ms: int = 60, idle_feed_ms: int = 200, late_after_ms: float = 250.0, models_dir=None,
                 listener_factory: Callable[..., CallListener] = CallListener, max_streams: int = 0,
                 shed_after_ms: float = 0, clock: "ServerClock | None" = None, media_url: str | None = None,
                 preload: tuple[str, ...] = ()):
        """``max_streams``: concurrent streams recognised, more are refused (0: no limit);
        ``shed_after_ms``: how far behind the recognition of an answer may fall before its
        stream is shed (0: never). ``media_url``: the wss URL Twilio connects to and signs
        (``IVR_MEDIA_URL``; else ``public_url``'s host). ``preload``: the languages whose models
        are loaded when the server starts, before it is ready for streams. The command passes
        the configured values. ``clock``: where shedding reads the time and waits (tests drive it
        by hand)."""
        if validate_signatures and not auth_token:
            raise ValueError("the media endpoint needs the Twilio auth token to check signatures")
        if feed_ms < FRAME_MS or feed_ms % FRAME_MS or idle_feed_ms < feed_ms or idle_feed_ms % FRAME_MS:
            raise ValueError(f"feed_ms and idle_feed_ms must be multiples of {FRAME_MS}, idle_feed_ms >= feed_ms")
        if max_streams < 0:
            raise ValueError(f"max_streams must be 0 (no limit) or more, not {max_streams}")
        if shed_after_ms and not MIN_SHED_AFTER_MS <= shed_after_ms:
            raise ValueError(f"shed_after_ms must be 0 (never) or at least {MIN_SHED_AFTER_MS}, not {shed_after_ms}")
        self.handlers = handlers
        self.validator = RequestValidator(auth_token) if auth_token else None
        self.validate_signatures = validate_signatures
        self.public_url = public_url
        self.media_url = media_url
        self.preload = tuple(preload)
        self.ready = not self.preload  # set once the preloaded models are in memory
        self.load_error: str | None = None
        self.settings = settings
        self.path = path
        # μ-law bytes per batch handed to the recognition threads: small while an answer is being
        # decoded (latency), larger while the caller is silent (only the voice detector runs, and
        # each hand-over to a thread costs more than detecting voice in it).
        self.feed_bytes = feed_ms * ULAW_RATE // 1000
        self.idle_feed_bytes = idle_feed_ms * ULAW_RATE // 1000
        self.late_after = late_after_ms / 1000
        self.max_streams = max_streams
        self.shed_after = shed_after_ms / 1000
        self.clock = clock or ServerClock()
        self._behind_until = 0.0  # clock.monotonic(): new streams are refused until then
        self._admissions = itertools.count(1)
        self.stats = StreamStats()
        self.listener_factory = listener_factory  # (call_sid, questions, models, settings) -> listener
        self._recognition = RecognitionPool(workers or os.cpu_count() or 2)
        self._callbacks = ThreadPoolExecutor(callback_workers, thread_name_prefix="media-cb")
        if handlers.models is None:
            from speech.models import ModelPool

            if models_dir is None:
                raise ValueError("give Handlers.models or models_dir")
            handlers.models = ModelPool(models_dir).get
        self._server = None

    # --- handshake ----------------------------------------------------------------------------

    def signed_url(self, request) -> str:
        """The URL Twilio signed: the public wss URL it connected to (``IVR_MEDIA_URL``, which may
        be on another host than the web app), not the one behind a proxy."""
        if self.media_url:
            parts = urlsplit(self.media_url)
            base = f"{parts.scheme}://{parts.netloc}"
        elif self.public_url:
            base = re.sub(r"^http", "ws", self.public_url.rstrip("/"))
        else:
            base = "wss://" + request.headers.get("Host", "")
        return base + request.path

    def process_request(self, connection, request):
        """Before the upgrade: the health check, or the right path and a valid Twilio signature,
        else an HTTP error."""
        path = request.path.split("?", 1)[0]
        if path == HEALTH_PATH:
            return self._health(connection)
        if path != self.path:
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        if not self.validate_signatures:
            noisy.warning("unsigned", "%s (unchecked handshake: %s)", SIGNATURES_OFF, request.path[:100])
            return None
        signature = request.headers.get("X-Twilio-Signature", "")
        if not signature or not self.validator.validate(self.signed_url(request), {}, signature):
            self.stats.rejected_handshakes += 1
            noisy.warning("handshake", "rejected media stream with a bad or missing Twilio signature for %s: %s",
                          self.signed_url(request)[:200], request.path[:100])
            return connection.respond(HTTPStatus.FORBIDDEN, "bad signature\n")
        return None

    def health(self) -> dict:
        """Readiness and stream counts (``GET /healthz``): what the web app reports."""
        stats = self.stats
        return {"status": "ok" if self.ready else ("error" if self.load_error else "loading"),
                "ready": self.ready, **({"error": self.load_error} if self.load_error else {}),
                "streams": {"active": stats.active_streams, "admitted": stats.streams,
                            "refused": stats.refused_streams, "shed": stats.shed_streams,
                            "unbound": stats.unbound_streams, "rejected_handshakes": stats.rejected_handshakes},
                "max_streams": self.max_streams}

    def _health(self, connection):
        response = connection.respond(HTTPStatus.OK if self.ready else HTTPStatus.SERVICE_UNAVAILABLE,
                                      json.dumps(self.health()) + "\n")
        del response.headers["Content-Type"]
        response.headers["Content-Type"] = "application/json"
        response.headers["Cache-Control"] = "no-store"
        return response

    async def load_models(self) -> None:
        """Load the preloaded languages' models (in a thread: the health check answers meanwhile);
        the server is ready for streams once they are in memory."""
        if self.ready:
            return
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        for lang in self.preload:
            try:
                await loop.run_in_executor(None, self.handlers.models, lang)
            except Exception as exc:  # a broken model: stay unready, every stream goes to <Record>
                self.load_error = f"speech model {lang!r} could not be loaded: {exc.__class__.__name__}: {exc}"[:300]
                log.error("%s; streams are refused (their calls are recorded) until the server is restarted "
                          "with a working model", self.load_error)
                return
        self.ready = True
        log.info("media endpoint ready: speech model(s) %s loaded in %.1f s", ", ".join(self.preload),
                 time.monotonic() - started)

    # --- load shedding -------------------------------------------------------------------------

    def refusal(self) -> str | None:
        """Why a new stream cannot be recognised now, or None."""
        if not self.ready:
            return "speech models not loaded yet" if not self.load_error else "speech model broken"
        if self.max_streams and self.stats.active_streams >= self.max_streams:
            return f"{self.stats.active_streams} streams, the limit"
        if self.clock.monotonic() < self._behind_until:
            return "recognition is behind"
        return None

    def admitted(self) -> int:
        """A new stream's recognition priority: its admission order with shedding on (the oldest
        stream's audio first), else 0 for all (first come, first served)."""
        return next(self._admissions) if self.shed_after else 0

    def recognised(self, delay: float) -> None:
        """A batch's recognition took ``delay`` seconds from its hand-over: beyond ``shed_after``
        the server is behind, and new streams are refused for that long."""
        if self.shed_after and delay > self.shed_after:
            self._behind_until = self.clock.monotonic() + self.shed_after

    # --- serving ------------------------------------------------------------------------------

    async def start(self, host: str, port: int):
        """Listen (the health check answers at once) and load the models; streams are
        recognised once they are loaded. :meth:`wait_ready` waits for that."""
        from websockets.asyncio.server import serve

        if not self.validate_signatures:
            log.warning(SIGNATURES_OFF)
        self._server = await serve(self._handle, host, port, process_request=self.process_request,
                                   max_size=MAX_MESSAGE_BYTES, compression=None,
                                   logger=safe_logger("websockets.server"))
        self._loading = asyncio.get_running_loop().create_task(self.load_models())
        return self._server

    async def wait_ready(self) -> bool:
        if getattr(self, "_loading", None) is not None:
            await self._loading
        return self.ready

    @property
    def port(self) -> int:
        return self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def close(self) -> None:
        self._recognition.shutdown()
        self._callbacks.shutdown(wait=True, cancel_futures=True)

    def run(self, host: str, port: int) -> None:
        """Serve until interrupted (``ivr media-server``)."""
        async def main():
            await self.start(host, port)
            log.info("media endpoint listening on ws://%s:%d%s (health: http://%s:%d%s)%s", host, self.port,
                     self.path, host, self.port, HEALTH_PATH,
                     "" if self.ready else f"; loading speech model(s) {', '.join(self.preload)}")
            await asyncio.Future()

        try:
            asyncio.run(main())
        except KeyboardInterrupt:
            pass
        finally:
            self.close()

    async def _handle(self, connection) -> None:
        stream = _Stream(self, connection)
        loop = asyncio.get_running_loop()
        # A connection that never says which call it is for holds no slot, and not for long either.
        no_start = loop.call_later(START_TIMEOUT, stream.no_start)
        try:
            async for message in connection:
                if not stream.refused:
                    stream.receive(message)
                    if stream.starting:
                        no_start.cancel()
                        await stream.admit()  # bound to its call and admitted, or refused
                    if stream.stopped:
                        break
                # A refused stream (here at its start; a shed one is closed by its pump) is read
                # on until the peer's close frame, which comes behind the messages it sent before.
                if stream.refused and stream.closing is None and stream.listener is None:
                    stream.closing = loop.create_task(stream.close_refused())
        except Exception as exc:  # connection dropped, message too big: this stream only
            log.info("media stream %s ended: %s", stream.call_sid or "?", exc)
        finally:
            no_start.cancel()
            if stream.closing is not None:
                await stream.closing
            await stream.close()


class _Stream:
    """One WebSocket connection: parses Twilio's messages, batches audio for the listener."""

    def __init__(self, server: MediaServer, connection=None):
        self.server = server
        self.connection = connection
        self.call_sid: str | None = None
        self.stream_sid: str | None = None
        self.custom: dict = {}
        self.listener: CallListener | None = None
        self.stopped = False
        self.refused = False  # refused at the start or shed: nothing more is recognised
        self.unbound = False  # refused at the start as not bound to a live call: closed with 1008
        self.starting = False  # a valid start message waits for admission
        self.closing: asyncio.Task | None = None  # closing a refused stream
        self._admitted = False
        self._refusal: asyncio.Future | None = None
        self._priority = 0
        self._buffer: list[tuple[float, bytes]] = []
        self._buffered = 0
        self._ready = asyncio.Event()
        self._pump: asyncio.Task | None = None
        self._speech_cb: asyncio.Future | None = None
        self._batch_wait = 0.0

    def _bad(self, why: str) -> None:
        self.server.stats.bad_messages += 1
        noisy.warning("junk", "media stream %s: %s", self.call_sid or "?", why)

    def receive(self, message) -> None:
        try:
            event, msg = twilio_media.read(message)
        except twilio_media.BadMessage as exc:
            return self._bad(str(exc))
        if event == "media":
            return self._media(msg)
        if event == "start":
            return self._start(msg)
        if event == "stop":
            self.stopped = True
        return None

    def _start(self, msg: dict) -> None:
        if self.listener is not None or self.call_sid is not None:
            return self._bad("second start message ignored")
        try:
            start = twilio_media.start(msg)
        except twilio_media.BadMessage as exc:
            return self._bad(str(exc))
        self.call_sid, self.stream_sid, self.custom = start.call_sid, start.stream_sid, start.custom
        self.starting = True
        return None

    async def admit(self) -> None:
        """After a valid start message: bind the stream to its call (``authorize``, in the
        callback pool: it reads the database), then admit it or refuse it for load. A stream not
        bound is closed before it takes a slot, and ``on_refused`` is not called: its call (if
        any) is somebody else's."""
        self.starting = False
        authorize = self.server.handlers.authorize
        if authorize is not None:
            why = await asyncio.get_running_loop().run_in_executor(
                self.server._callbacks, _authorization, authorize, self.call_sid, self.custom)
            if why is not None:
                self.refused = self.unbound = True
                self.server.stats.unbound_streams += 1
                noisy.warning("unbound", "media stream naming call %s closed: %s", self.call_sid, why)
                return None
        call_sid = self.call_sid
        refusal = self.server.refusal()
        if refusal is not None:
            self.refused = True
            self.server.stats.refused_streams += 1
            log.warning("media stream of call %s refused (%s): the call is heard another way", call_sid, refusal)
            self._refusal = self._callback(self.server.handlers.on_refused)
            return None
        h = self.server.handlers
        self.listener = self.server.listener_factory(call_sid, h.questions, h.models, self.server.settings)
        self._priority = self.server.admitted()
        self.server.stats.streams += 1
        self.server.stats.active_streams += 1
        self._admitted = True
        self._pump = asyncio.get_running_loop().create_task(self._run())
        return None

    def no_start(self) -> None:
        """``START_TIMEOUT`` passed without a start message: close the connection."""
        if self.call_sid is None and not self.refused and self.connection is not None:
            self.refused = self.unbound = True
            self.server.stats.unbound_streams += 1
            noisy.warning("unbound", "media stream closed: no start message within %.0f s", START_TIMEOUT)
            self.closing = asyncio.get_running_loop().create_task(self.close_refused())

    async def close_refused(self) -> None:
        if self.unbound:
            await self.connection.close(POLICY_VIOLATION, "stream not bound to a live call")
        else:
            await self.connection.close(TRY_AGAIN_LATER, "try again later")

    def _callback(self, callback) -> asyncio.Future | None:
        """Run one of the product's callbacks for this call in the callback pool, off the loop."""
        if callback is None:
            return None
        return asyncio.get_running_loop().run_in_executor(self.server._callbacks, _guarded, callback,
                                                          self.server.stats, self.call_sid)

    def _media(self, msg: dict) -> None:
        if self.refused:
            return None
        if self.listener is None:
            return self._bad("media before start ignored")
        try:
            ulaw = twilio_media.inbound_audio(msg)
        except twilio_media.BadMessage as exc:
            return self._bad(str(exc))
        if not ulaw:
            return None
        self._buffer.append((self.server.clock.monotonic(), ulaw))
        self._buffered += len(ulaw)
        listening = getattr(self.listener, "listening", False)
        if self._buffered >= (self.server.feed_bytes if listening else self.server.idle_feed_bytes):
            self._ready.set()
        return None

    def _take(self) -> tuple[float | None, bytes]:
        if not self._buffer:
            return None, b""
        # A batch's oldest frame waits for the batch to fill (60 or 200 ms): that wait is by design,
        # what comes on top of it (threads busy, CPU short) is lateness.
        self._batch_wait = (self.server.feed_bytes if getattr(self.listener, "listening", False)
                            else self.server.idle_feed_bytes) / ULAW_RATE
        first = self._buffer[0][0]
        data = b"".join(chunk for _, chunk in self._buffer)
        self.server.stats.frames += len(self._buffer)
        self._buffer, self._buffered = [], 0
        self._ready.clear()
        return first, data

    async def _run(self) -> None:
        """Feed the listener batch by batch, hand answers to the product, in order."""
        server = self.server
        try:
            while True:
                if not self.stopped:
                    await self._ready.wait()
                first, ulaw = self._take()
                if not ulaw:
                    if self.stopped:
                        return
                    continue
                handed = server.clock.monotonic()
                work = server._recognition.submit(self._priority, self.listener.feed, ulaw_to_pcm16(ulaw))
                waiting = asyncio.wrap_future(work)
                # A batch is waited for at most shed_after, from the hand-over (the batch filling
                # and this call's own callbacks, e.g. a slow REST update, do not count). Even a
                # silent caller's batch: behind it may be the start of an answer, heard too late.
                if server.shed_after:
                    deadline = asyncio.ensure_future(server.clock.sleep(server.shed_after))
                    await asyncio.wait({waiting, deadline}, return_when=asyncio.FIRST_COMPLETED)
                    if not waiting.done():
                        work.cancel()  # not started: it never runs; started: it finishes unheard
                        waiting.add_done_callback(lambda f: f.cancelled() or f.exception())  # never awaited
                        server.recognised(server.clock.monotonic() - handed)
                        await self._shed(server.clock.monotonic() - handed)
                        return
                    deadline.cancel()
                started, answer = await waiting
                done = server.clock.monotonic()
                server.recognised(done - handed)
                lag = done - first
                server.stats.lags_ms.append(lag * 1000)
                server.stats.max_lag_ms = max(server.stats.max_lag_ms, lag * 1000)
                if lag > server.late_after + self._batch_wait:
                    server.stats.late_frames += len(ulaw) // (ULAW_RATE * FRAME_MS // 1000)
                while True:
                    if started:
                        self._speech_started()
                    if answer is None:
                        break
                    await self._deliver(answer)
                    started, answer = await asyncio.wrap_future(
                        server._recognition.submit(self._priority, self.listener.resume))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("media stream %s failed", self.call_sid)

    async def _shed(self, delay: float) -> None:
        """Stop recognising this call (its unfinished answer is dropped; a batch still being
        decoded finishes unheard), hand it to ``on_refused`` after its barge-in callback, and
        close the stream."""
        self.refused = True
        self._buffer, self._buffered = [], 0
        self.server.stats.shed_streams += 1
        log.warning("media stream of call %s shed: its audio waited %.1f s for recognition", self.call_sid, delay)
        if self._speech_cb is not None:
            await self._speech_cb
            self._speech_cb = None
        refusal = self._callback(self.server.handlers.on_refused)
        if refusal is not None:
            await refusal
        if self.connection is not None:
            await self.connection.close(TRY_AGAIN_LATER, "try again later")

    def _speech_started(self) -> None:
        self._speech_cb = self._callback(self.server.handlers.on_speech_started) or self._speech_cb

    async def _deliver(self, answer: Answer) -> None:
        loop = asyncio.get_running_loop()
        if self._speech_cb is not None:  # barge-in first, then the answer
            await self._speech_cb
            self._speech_cb = None
        self.server.stats.utterances += 1
        await loop.run_in_executor(self.server._callbacks, _guarded, self.server.handlers.on_utterance,
                                   self.server.stats, self.call_sid, answer.question, answer.recognition, answer.wav)

    async def close(self) -> None:
        """Stream over (stop message or connection closed): process what was received, then end.
        An answer cut off by the end of the stream (the caller hung up mid-answer) is dropped."""
        self.stopped = True
        self._ready.set()
        if self._pump is not None:
            await self._pump
        if self._speech_cb is not None:
            await self._speech_cb
        if self._refusal is not None:
            await self._refusal
            self._refusal = None
        if self._admitted:
            self._admitted = False
            self.server.stats.active_streams -= 1


class RecognitionPool:
    """Threads for recognition (one per core) taking work by priority, lowest first, in order of
    submission within one priority. Vosk's C calls release the GIL, so the threads use every
    core."""

    def __init__(self, threads: int):
        self._queue: queue.PriorityQueue = queue.PriorityQueue()
        self._order = itertools.count()
        self._size = threads
        self._threads: list[threading.Thread] = []  # started with the first work
        self._lock = threading.Lock()

    def submit(self, priority: int, fn, *args) -> Future:
        with self._lock:
            if not self._threads:
                self._threads = [threading.Thread(target=self._work, name=f"vosk-{i}", daemon=True)
                                 for i in range(self._size)]
                for thread in self._threads:
                    thread.start()
        future: Future = Future()
        self._queue.put((priority, next(self._order), future, fn, args))
        return future

    def _work(self) -> None:
        while True:
            _priority, _order, future, fn, args = self._queue.get()
            if future is None:
                return
            if not future.set_running_or_notify_cancel():
                continue  # cancelled while it waited
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # handed to whoever awaits the future
                future.set_exception(exc)

    def shutdown(self) -> None:
        """Cancel the work not started, let the running work finish, stop the threads."""
        while True:
            try:
                _p, _o, future, _fn, _args = self._queue.get_nowait()
            except queue.Empty:
                break
            if future is not None:
                future.cancel()
        for _ in self._threads:
            self._queue.put((math.inf, next(self._order), None, None, None))
        for thread in self._threads:
            thread.join()


def _authorization(authorize: Authorize, call_sid: str, parameters: dict) -> str | None:
    """The product's verdict on a stream; a failure to decide closes the stream (fail closed)."""
    try:
        why = authorize(call_sid, dict(parameters))
    except Exception:
        log.exception("media endpoint could not check the stream of call %s: closed", call_sid)
        return "the stream could not be checked"
    return None if why is None else str(why)


def _guarded(callback, stats: StreamStats, *args) -> None:
    try:
        callback(*args)
    except Exception:
        stats.callback_errors += 1
        log.exception("media endpoint callback %s failed", getattr(callback, "__name__", callback))


def settings_from_config(config) -> StreamSettings:
    """``StreamSettings`` from ``ivr.config.Config``."""
    return StreamSettings(trailing_silence_ms=config.stream_trailing_silence_ms,
                          max_alternatives=config.stream_alternatives,
                          decoded_silence_ms=config.stream_decoded_silence_ms)


def max_streams_from_config(config, workers: int | None = None) -> int:
    """The configured stream limit (``IVR_MEDIA_MAX_STREAMS``): as set (0: no limit), else
    ``STREAMS_PER_CORE`` per recognition thread (one per core)."""
    if config.media_max_streams is not None:
        return config.media_max_streams
    return STREAMS_PER_CORE * (workers or os.cpu_count() or 2)


def preload_from_config(config) -> tuple[str, ...]:
    """The languages heard by Vosk whose model is installed: loaded before streams are taken."""
    from speech.models import ModelPool

    installed = ModelPool(config.models_dir).available()
    return tuple(sorted(lang for lang, engine in config.speech_engines.items()
                        if engine == "vosk" and lang in installed))


def load_handlers(spec: str, config) -> Handlers:
    """``module:factory`` -> ``factory(config)``, which returns the product's :class:`Handlers`."""
    import importlib

    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"media handlers must be given as module:factory, not {spec!r}")
    factory = getattr(importlib.import_module(module_name), attr)
    handlers = factory(config)
    if not isinstance(handlers, Handlers):
        raise TypeError(f"{spec} returned {type(handlers).__name__}, not ivr.voice.media_server.Handlers")
    return handlers
