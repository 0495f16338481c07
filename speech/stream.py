"""Real-time recognition of a caller's answers from telephone audio (Twilio Media Streams).

Audio arrives as G.711 μ-law at 8 kHz in 20 ms frames. :func:`ulaw_to_pcm16` expands it to
16-bit PCM (``audioop``'s C code: ~3 µs per second of audio; the pure-Python table fallback,
used where ``audioop`` is missing, costs ~750 µs per second of audio). Vosk takes the 8 kHz
PCM directly (``KaldiRecognizer(model, 8000)`` resamples inside the feature pipeline), which
costs the same CPU as upsampling to 16 kHz first and recognises as well (see docs/streaming.md);
``StreamSettings.sample_rate=16000`` upsamples in Python instead.

:class:`StreamingUtterance` is one answer of the caller:

1. *Idle*: every 20 ms frame goes through an energy detector (:class:`EnergyDetector`, adaptive
   noise floor) and a short pre-roll ring buffer; Vosk does not run, so a caller listening to a
   prompt costs next to nothing.
2. *Voice onset* (two voiced frames out of three): the grammar is settled (the ``retarget``
   hook may swap it for the call's current question), a recogniser is built and fed the
   pre-roll, then every following frame.
3. *Speech*: the first interim hypothesis with a grammar word sets ``speech_started`` (barge-in).
4. *End of the answer*: ``trailing_silence_ms`` of audio below the voice threshold after a
   recognised word, or, on a line too noisy for the energy rule, ``stall_ms`` of "voiced" audio
   without any change of the decoder's hypothesis, or ``max_utterance_s`` since onset. Of a
   silence, only the first ``decoded_silence_ms`` are decoded at once, the rest only if the
   caller speaks again: the silence that ends an answer costs little decoding. Vosk's own
   endpoints (the model's ``conf/model.conf`` rules, 0.5 s of trailing silence after a complete
   grammar path for the small models) only split the answer into segments that are joined, as
   the batch recogniser does: the installed Vosk (0.3.45) has no per-recogniser endpointer
   setting, and a caller pausing between digit groups must still give one answer.
5. A burst of voice in which the decoder found no grammar word (a cough, a door, line noise,
   out-of-grammar talk) ends with the same silence rule but yields nothing: the detector goes
   back to idle and the audio is dropped.

The result is the same :class:`speech.recognizer.Recognition` as batch recognition, with the
primary (words + confidences) and n-best decoders of :class:`speech.recognizer.StreamingRecognizer`,
so the caller's answer goes through the same parser and confidence policy.
"""
from __future__ import annotations

import io
import math
import time
import wave
import warnings
from array import array
from collections import deque
from dataclasses import dataclass
from typing import Callable

import vosk

from .models import UNK_TOKENS
from .recognizer import DEFAULT_ALTERNATIVES, Recognition, StreamingRecognizer, _combine, _Segment

try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop
except ImportError:  # Python >= 3.13 without the audioop-lts backport
    audioop = None

ULAW_RATE = 8000
FRAME_MS = 20  # Twilio sends one 20 ms frame (160 μ-law bytes) per media message
FRAME_BYTES = ULAW_RATE * FRAME_MS // 1000 * 2  # the same frame as 16-bit PCM: 320 bytes
# Voice onset: this many voiced frames among the last few (one loud click is not a voice).
ONSET_VOICED, ONSET_FRAMES = 2, 3


def _ulaw_table() -> list[int]:
    """ITU-T G.711 μ-law expansion, the same values as ``audioop.ulaw2lin``."""
    table = []
    for code in range(256):
        u = ~code & 0xFF
        magnitude = (((u & 0x0F) << 3) + 0x84) << ((u >> 4) & 0x07)
        table.append(0x84 - magnitude if u & 0x80 else magnitude - 0x84)
    return table


_ULAW = _ulaw_table()


def ulaw_to_pcm16(data: bytes) -> bytes:
    """G.711 μ-law bytes -> 16-bit little-endian PCM (native-endian ``array``; Linux x86/ARM)."""
    if audioop is not None:
        return audioop.ulaw2lin(data, 2)
    return array("h", [_ULAW[b] for b in data]).tobytes()


def pcm16_to_ulaw(pcm: bytes) -> bytes:
    """16-bit PCM -> μ-law (what a telephone network does to the caller's voice; for tests)."""
    if audioop is None:
        raise RuntimeError("μ-law encoding needs audioop (audioop-lts on Python >= 3.13)")
    return audioop.lin2ulaw(pcm, 2)


def frame_dbfs(pcm: bytes) -> float:
    """RMS level of 16-bit PCM in dB relative to full scale (-inf for digital silence)."""
    if not pcm:
        return -math.inf
    if audioop is not None:
        rms = audioop.rms(pcm, 2)
    else:
        samples = array("h", pcm)
        rms = math.sqrt(sum(s * s for s in samples) / len(samples))
    return 20 * math.log10(rms / 32768) if rms > 0 else -math.inf


def pcm_to_wav(pcm: bytes, sample_rate: int = ULAW_RATE) -> bytes:
    """Mono 16-bit PCM in a WAV container (the caller's answer, kept for the operator)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm)
    return buf.getvalue()


@dataclass(frozen=True)
class StreamSettings:
    """How answers are cut out of the caller's audio."""

    trailing_silence_ms: int = 600  # silence after the last word that ends the answer
    # Of a silence within an answer, only this much is decoded at once; the rest is held and
    # decoded only if the caller speaks again. The silence that ends the answer is not decoded
    # beyond it: the decoder needs a few frames after the last word, not 600 ms of nothing.
    decoded_silence_ms: int = 200
    sample_rate: int = 8000  # rate fed to Vosk: 8000 (as received) or 16000 (upsampled here)
    pre_roll_ms: int = 300  # audio kept from before the voice onset (soft first consonants)
    max_utterance_s: float = 15.0  # an answer is cut after this long
    stall_ms: int = 1500  # noisy line: this much voiced audio without a new word ends the answer
    max_alternatives: int = DEFAULT_ALTERNATIVES  # n-best list for the doubt signal; 0 halves the CPU
    voice_margin_db: float = 12.0  # voiced: this far above the tracked noise floor...
    voice_min_dbfs: float = -48.0  # ...and above this absolute level

    def __post_init__(self):
        if self.sample_rate not in (8000, 16000):
            raise ValueError(f"stream sample rate must be 8000 or 16000, not {self.sample_rate}")
        if not 100 <= self.trailing_silence_ms <= 5000:
            raise ValueError(f"trailing silence must be 100..5000 ms, not {self.trailing_silence_ms}")
        if not 0 <= self.decoded_silence_ms <= 5000:
            raise ValueError(f"decoded silence must be 0..5000 ms, not {self.decoded_silence_ms}")
        if not 0 <= self.pre_roll_ms <= 2000:
            raise ValueError(f"pre-roll must be 0..2000 ms, not {self.pre_roll_ms}")
        if not 1.0 <= self.max_utterance_s <= 120.0:
            raise ValueError(f"maximum answer length must be 1..120 s, not {self.max_utterance_s}")
        if self.stall_ms < 500:
            raise ValueError(f"stall_ms must be at least 500, not {self.stall_ms}")
        if self.max_alternatives < 0:
            raise ValueError("max_alternatives must be >= 0")


class EnergyDetector:
    """Per-frame voice/no-voice from the level against an adaptive noise floor.

    The floor follows the quietest recent level: it drops at once to a quieter frame and rises
    slowly (3 dB per second) so that steady line hiss becomes the floor while speech, which
    rises and falls within a syllable, stays above it.
    """

    RISE_DB_PER_FRAME = 3.0 * FRAME_MS / 1000

    def __init__(self, margin_db: float, min_dbfs: float):
        self.margin_db = margin_db
        self.min_dbfs = min_dbfs
        self.floor = min_dbfs - margin_db  # start as if the line were quiet

    def voiced(self, frame: bytes) -> bool:
        level = frame_dbfs(frame)
        voiced = level > self.min_dbfs and level > self.floor + self.margin_db
        if level < self.floor:
            self.floor = max(level, -100.0)
        else:
            self.floor += self.RISE_DB_PER_FRAME
        return voiced


def _has_word(text: str) -> bool:
    return any(t not in UNK_TOKENS for t in text.split())


Retarget = Callable[[], "tuple[vosk.Model, list[str]] | None"]


class StreamingUtterance:
    """One answer of the caller, recognised while it is spoken. Not thread-safe.

    ``feed(pcm)`` takes 16-bit PCM at 8 kHz of any length and returns None, or the final
    :class:`Recognition` when the answer ended; audio after the end of the answer is left in
    ``leftover`` for the next utterance. ``model``/``grammar`` may be None (no speech question
    now): voice is then detected but not recognised, unless ``retarget`` supplies a model and
    grammar at the onset. ``retarget()`` is called once per voice onset, before the recogniser
    is built, and returns ``(model, grammar)`` to use instead, or None to keep the current ones.
    """

    def __init__(self, model: vosk.Model | None, grammar: list[str] | None,
                 settings: StreamSettings = StreamSettings(), *, retarget: Retarget | None = None,
                 detector: EnergyDetector | None = None, clock: Callable[[], float] = time.monotonic):
        self.model = model
        self.grammar = list(grammar) if grammar is not None else None
        self.settings = settings
        self._retarget = retarget
        self._clock = clock
        # The previous answer's detector carries the line's noise floor over to the next one.
        self.detector = detector or EnergyDetector(settings.voice_margin_db, settings.voice_min_dbfs)
        self._pre_roll: deque[bytes] = deque(maxlen=max(1, settings.pre_roll_ms // FRAME_MS))
        self._recent: deque[bool] = deque(maxlen=ONSET_FRAMES)
        self._remainder = b""
        self.speech_starts = 0  # bursts in which a grammar word was heard (one per answer, plus dropped ones)
        self._reset()
        self.result: Recognition | None = None
        self.leftover = b""

    def _reset(self) -> None:
        """Back to idle: no recogniser, no kept audio."""
        self._recognizer: StreamingRecognizer | None = None
        self._deaf = False  # voice with no question to recognise it against
        self._segments: list[_Segment] = []
        self._audio: list[bytes] = []
        self._pending: list[bytes] = []  # frames not yet given to the decoder
        self._held: list[bytes] = []  # silence past ``decoded_silence_ms``: decoded if voice comes back
        self._ratecv_state = None
        self.onset = False
        self.speech_started = False
        self.speech_started_at: float | None = None  # clock time of the first grammar word
        self.partial = ""
        self._frames_since_onset = 0
        self._silent_frames = 0  # consecutive unvoiced frames since the last voiced one
        self._heard_words = False  # a segment or the interim hypothesis holds a word
        self._hypothesis = ""  # segments + partial, to see the decoder change its mind
        self._stall_frames = 0
        self.last_voice_at: float | None = None  # clock time the last voiced frame was fed

    # --- audio in -----------------------------------------------------------------------------

    def feed(self, pcm: bytes) -> Recognition | None:
        if self.result is not None:
            raise RuntimeError("feed() after the answer ended: start a new StreamingUtterance")
        if len(pcm) % 2:
            raise ValueError("PCM must hold whole 16-bit samples")
        data = self._remainder + bytes(pcm)
        whole = len(data) - len(data) % FRAME_BYTES
        self._remainder = data[whole:]
        for pos in range(0, whole, FRAME_BYTES):
            if self._frame(data[pos:pos + FRAME_BYTES]):
                self.leftover = data[pos + FRAME_BYTES:whole] + self._remainder
                self._remainder = b""
                return self.result
        self._decode_pending()
        return None

    def finish(self) -> Recognition | None:
        """The stream ended (caller hung up, stream stopped): the answer so far, if it has words."""
        if self.result is not None:
            return self.result
        if self._recognizer is None:
            return None
        self._decode_pending()
        return self._end()

    def _frame(self, frame: bytes) -> bool:
        """Take one 20 ms frame; True when the answer ended with it."""
        voiced = self.detector.voiced(frame)
        self._recent.append(voiced)
        if voiced:
            self.last_voice_at = self._clock()
        if not self.onset:
            self._pre_roll.append(frame)
            if sum(self._recent) >= ONSET_VOICED:
                self._start()
            return False
        self._audio.append(frame)
        self._frames_since_onset += 1
        self._silent_frames = 0 if voiced else self._silent_frames + 1
        if voiced:
            self._stall_frames += 1  # reset whenever the decoder's hypothesis changes
            self._pending.extend(self._held)  # a pause within the answer is decoded as it was
            self._held.clear()
        if self._silent_frames * FRAME_MS > self.settings.decoded_silence_ms:
            self._held.append(frame)
        else:
            self._pending.append(frame)
        # The end rules are checked only once the decoder has caught up (so "words heard" is
        # current): on every frame once silence has been long enough, else every 60 ms.
        silence_ms = self._silent_frames * FRAME_MS
        if silence_ms < self.settings.trailing_silence_ms and len(self._pending) < 3:
            return False
        self._decode_pending()
        elapsed_ms = self._frames_since_onset * FRAME_MS
        stalled = self._stall_frames * FRAME_MS >= self.settings.stall_ms
        if self._heard_words:
            if silence_ms >= self.settings.trailing_silence_ms or stalled \
                    or elapsed_ms >= self.settings.max_utterance_s * 1000:
                return self._end() is not None or self._idle()
        elif silence_ms >= self.settings.trailing_silence_ms or stalled \
                or elapsed_ms >= self.settings.max_utterance_s * 1000:
            return self._idle()
        return False

    def _start(self) -> None:
        """Voice onset: settle the question, build the recogniser, feed it the pre-roll."""
        self.onset = True
        if self._retarget is not None:
            target = self._retarget()
            if target is not None:
                self.model, grammar = target
                self.grammar = list(grammar) if grammar is not None else None
        if self.model is None or self.grammar is None:
            self._deaf = True
        else:
            self._recognizer = StreamingRecognizer(self.model, self.grammar, self.settings.sample_rate,
                                                   max_alternatives=self.settings.max_alternatives)
        frames = list(self._pre_roll)
        self._pre_roll.clear()
        self._audio.extend(frames)
        self._pending.extend(frames)
        self._frames_since_onset = 0

    def _idle(self) -> bool:
        """A burst of voice without any grammar word: forget it, listen again."""
        self._reset()
        self._recent.clear()
        return False

    # --- decoding -----------------------------------------------------------------------------

    def _decode_pending(self) -> None:
        if not self._pending:
            return
        chunk = b"".join(self._pending)
        self._pending.clear()
        if self._recognizer is None:
            return
        if self.settings.sample_rate != ULAW_RATE:
            chunk, self._ratecv_state = audioop.ratecv(chunk, 2, 1, ULAW_RATE, self.settings.sample_rate,
                                                       self._ratecv_state)
        segment = self._recognizer._accept(chunk)
        if segment is not None:
            self._segments.append(segment)
            partial = ""
        else:
            partial = self._recognizer.partial()
        self.partial = partial
        hypothesis = " ".join([s.text for s in self._segments] + [partial])
        heard = any(s.words for s in self._segments) or bool(partial)
        if heard and not self.speech_started and (_has_word(partial) or any(_has_word(s.text) for s in self._segments)):
            self.speech_started = True
            self.speech_started_at = self._clock()
            self.speech_starts += 1
        self._heard_words = self._heard_words or heard
        if hypothesis != self._hypothesis:
            self._stall_frames = 0
        self._hypothesis = hypothesis

    def _end(self) -> Recognition | None:
        """Close the answer: the final result, unless the decoder found no grammar word."""
        self._segments.append(self._recognizer._final())
        seconds = len(self.audio) / 2 / ULAW_RATE
        recognition = _combine(self._segments, self.settings.max_alternatives, seconds)
        if not _has_word(recognition.text):
            return None
        self.result = recognition
        return recognition

    # --- what was heard -----------------------------------------------------------------------

    @property
    def audio(self) -> bytes:
        """The answer's audio as 16-bit PCM at 8 kHz: pre-roll + everything since the onset."""
        return b"".join(self._audio)

    def wav(self) -> bytes:
        return pcm_to_wav(self.audio, ULAW_RATE)

    @property
    def listening(self) -> bool:
        """Whether the decoder is running (voice was detected and a grammar is set)."""
        return self._recognizer is not None
