"""Speech answers in calls: fetch the caller's recording, recognise it with the step's grammar,
parse it, and judge it with the confidence policy, ready for the dialog engine.

Two engines, chosen per language in configuration (``IVR_SPEECH_ENGINES``):
- ``vosk``: ``<Gather input="dtmf">`` around the prompt, then ``<Record>``; the recording is
  fetched from Twilio and recognised offline here.
- ``twilio``: ``<Gather input="speech dtmf">``; Twilio's recogniser returns ``SpeechResult``
  (Romanian by default: Vosk has no Romanian model). The same parser reads both.
A language whose Vosk model is not installed falls back to the keypad, with one warning.
"""
from __future__ import annotations

import dataclasses
from contextlib import contextmanager
import math
import time
from dataclasses import dataclass, field
from typing import Callable

from prometheus_client import Histogram

import grammars
from speech import confidence

from ivr.config import Config
from ivr.dialog import SpeechInput
from ivr.logsafe import safe_logger
from ivr.voice.recording_fetch import (LATENCY_BUCKETS, RecordingRefused, RecordingUnavailable, fetch_recording,
                                       timed_fetch, url_allowed)

log = safe_logger(__name__)
RECOGNITION_SECONDS = Histogram("ivr_recognition_duration_seconds", "Time to decode and recognise one recording",
                                ["language"], buckets=LATENCY_BUCKETS)
MENU_KINDS = ("menu", "yes_no")
# Replies any question takes: asking to hear it again, or for a person.
MENU_ANYWHERE = (None, "repeat", "operator")
# The grammar kinds of numbers read digit by digit with their separators (an account number, a
# meter's serial); the keypad types each separator as "*".
ACCOUNT_KINDS = ("digits", "serial")
KEYPAD_SEPARATOR = "*"


def _parse(text: str, lang: str, kind: str) -> grammars.NumberParse:
    """The number in an answer: an account number (or serial) with its dashes, or a number."""
    return (grammars.parse_account if kind in ACCOUNT_KINDS else grammars.parse_number)(text, lang)


@dataclass
class Heard:
    """One speech answer: what the dialog gets, and what is kept in the Utterance row."""

    speech: SpeechInput
    engine: str
    transcript: str
    words: list = field(default_factory=list)
    alternatives: list = field(default_factory=list)
    candidates: list = field(default_factory=list)
    confidence: float | None = None
    audio: bytes | None = None


def _unusable(audio: bytes | None = None) -> Heard:
    return Heard(speech=SpeechInput(text="", decision="retry"), engine="vosk", transcript="", confidence=0.0,
                 audio=audio)


class SpeechSteps:
    def __init__(self, config: Config, *, recognizer: Callable | None = None, fetcher: Callable | None = None):
        """``recognizer(lang, grammar_words, audio_bytes) -> speech.recognizer.Recognition``;
        defaults to Vosk with the model pool. ``fetcher(url) -> bytes`` defaults to Twilio."""
        self.config = config
        self.thresholds = confidence.Thresholds.from_config(config)
        self._recognizer = recognizer
        self._fetcher = fetcher
        self._pool = None
        self._warned: set[str] = set()

    # --- engines -------------------------------------------------------------------------------

    @property
    def pool(self):
        if self._pool is None:
            from speech.models import ModelPool

            self._pool = ModelPool(self.config.models_dir)
        return self._pool

    def engine_for(self, lang: str) -> str:
        engine = self.config.speech_engines.get(lang, "off")
        if engine == "vosk" and self._recognizer is None and lang not in self.pool.available():
            if lang not in self._warned:
                self._warned.add(lang)
                log.warning("no Vosk model for %r under %s: speech steps use the keypad only "
                            "(install one with `ivr models download %s`)", lang, self.config.models_dir, lang)
            return "off"
        return engine

    def check_models(self) -> dict[str, set[str]]:
        """At start-up: for each installed Vosk model, the grammar words its vocabulary lacks,
        named in a warning. Reads the vocabulary from disk: the model itself loads on first use."""
        from speech.models import missing_words

        missing = {}
        for lang, engine in self.config.speech_engines.items():
            if engine == "vosk" and lang in self.pool.available():
                missing[lang] = missing_words(self.pool.path(lang), grammars.vocabulary(lang))
                if missing[lang]:
                    log.warning("Vosk model %r (%s) lacks %d grammar word(s); phrases with them will never be "
                                "recognised: %s", lang, self.pool.path(lang), len(missing[lang]),
                                ", ".join(sorted(missing[lang])))
        return missing

    # --- answers -------------------------------------------------------------------------------

    def fetch(self, url: str) -> bytes:
        prefixes = self.config.recording_url_prefixes
        if not url_allowed(url, prefixes):
            raise RecordingRefused(f"recording URL outside the allowed prefixes: {url[:80]}")
        if self._fetcher is not None:
            return self._fetcher(url)
        return fetch_recording(url, account_sid=self.config.twilio_account_sid,
                               auth_token=self.config.twilio_auth_token, budget=self.config.recording_fetch_budget,
                               allowed=prefixes, max_bytes=self.config.recording_max_bytes)

    def audio_of(self, url: str) -> bytes | None:
        """A recording's audio, fetched as a spoken answer's is; None when it cannot be fetched now."""
        try:
            with timed_fetch():
                return self.fetch(url)
        except RecordingUnavailable as exc:
            log.warning("recording %s not fetched: %s", url[-40:], exc)
        except Exception as exc:  # noqa: BLE001 - a recording not fetched is one without audio, never a 500
            log.error("recording %s not fetched: unexpected %s: %s", url[-40:], exc.__class__.__name__, exc)
        return None

    def from_recording(self, lang: str, kind: str, url: str, attempt: int, phrases: tuple[str, ...] = ()) -> Heard:
        """A recorded answer, recognised. One that cannot be used (not fetched in time, not
        decodable) is heard as not understood: the step asks again, and any audio is kept.
        ``phrases``: names only this question offers (regions), added to the grammar."""
        try:
            with timed_fetch():
                audio = self.fetch(url)
        except RecordingUnavailable as exc:
            log.warning("recording %s not fetched: %s", url[-40:], exc)
            return _unusable()
        except Exception as exc:  # noqa: BLE001 - any failure to fetch is an answer not understood, never a 500
            log.error("recording %s not fetched: unexpected %s: %s", url[-40:], exc.__class__.__name__, exc)
            return _unusable()
        try:
            with timed_recognition(lang):
                recognition = self._recognize(lang, kind, audio, phrases)
        except ValueError as exc:  # speech.audio.AudioError: not audio, truncated, too long
            log.warning("recording %s could not be decoded: %s", url[-40:], exc)
            return _unusable(audio)  # kept, so an operator can still listen
        except (RuntimeError, OSError) as exc:
            # This server's fault, not the caller's: the model is missing or broken (ModelError),
            # ffmpeg is absent (AudioBackendMissing). The caller is asked again (the keypad still
            # works) and the audio is kept for an operator; the error names the fix.
            log.error("recording %s could not be recognised on this server: %s", url[-40:], exc)
            return _unusable(audio)
        return self.from_recognition(lang, kind, recognition, attempt, phrases, audio=audio)

    def from_recognition(self, lang: str, kind: str, recognition, attempt: int, phrases: tuple[str, ...] = (),
                         *, audio: bytes | None = None, engine: str = "vosk") -> Heard:
        """A Vosk recognition (``speech.recognizer.Recognition``, from a recording or from the media
        stream) parsed and judged by the same policy; ``audio`` is kept with it."""
        heard = self._interpret(lang, kind, recognition.text, recognition.min_confidence, attempt,
                                has_unk=recognition.has_unk, phrases=phrases,
                                disagree=confidence.alternatives_disagree(
                                    recognition, lambda t: _parse(t, lang, kind).best))
        heard.engine, heard.audio = engine, audio
        heard.words = [{"text": w.text, "confidence": w.confidence, "start": w.start, "end": w.end}
                       for w in recognition.words]
        heard.alternatives = [{"text": t, "confidence": c} for t, c in recognition.alternatives]
        return heard

    def from_twilio(self, lang: str, kind: str, text: str, reported_confidence: str | None, attempt: int,
                    phrases: tuple[str, ...] = ()) -> Heard:
        try:
            conf = float(reported_confidence) if reported_confidence not in (None, "") else 0.0
        except ValueError:
            conf = 0.0
        if not math.isfinite(conf):  # "NaN" would compare False with every threshold: accepted
            conf = 0.0
        conf = min(max(conf, 0.0), 1.0)
        heard = self._interpret(lang, kind, text[:500], conf if text else 0.0, attempt, has_unk=False, disagree=False,
                                phrases=phrases)
        heard.engine = "twilio"
        return heard

    def _recognize(self, lang: str, kind: str, audio: bytes, phrases: tuple[str, ...] = ()):
        words = grammars.build_grammar(lang, kind, phrases)
        if self._recognizer is not None:
            return self._recognizer(lang, words, audio)
        from speech.audio import decode_audio
        from speech.recognizer import recognize

        pcm = decode_audio(audio, 16000, max_seconds=60)
        return recognize(self.pool.get(lang), pcm, grammar=words, sample_rate=16000)

    def _interpret(self, lang: str, kind: str, text: str, min_conf: float, attempt: int, *,
                   has_unk: bool, disagree: bool, phrases: tuple[str, ...] = ()) -> Heard:
        parsed = _parse(text, lang, kind)
        intent = grammars.classify_reply(text, lang)
        if kind not in MENU_KINDS and intent != "operator":
            intent = None  # a number question hears only digits, and a request for a person
        # A menu is answered by a key's digit or a name, never by yes or no: a "yes" there is heard
        # (judged by its confidence like any answer) but chooses nothing.
        no_choice = kind == "menu" and intent not in MENU_ANYWHERE
        if no_choice:
            intent = None
        utility = grammars.match_utility(text, lang) if kind == "menu" else None
        register = grammars.match_register(text, lang) if kind == "menu" else None
        phrase = grammars.match_phrase(text, lang, phrases) if kind == "menu" and phrases else None
        # A number question that also takes a choice by name ("all meters", "last reading").
        choice = grammars.match_choice(text, lang, grammars.CHOICES[kind][1]) if kind in grammars.CHOICES else None
        if choice and parsed.best is None:
            parsed = dataclasses.replace(parsed, unknown=())  # the choice's words are no unknown digits
        understood = parsed.best is not None or intent or utility or register or phrase or choice
        heard = understood or no_choice
        if understood and kind in MENU_KINDS and min_conf < self.thresholds.review:
            # A menu choice barely heard is no choice: the menu steps act on it directly (a
            # mumbled "yes" would store the reading), so it is asked again instead.
            parsed = dataclasses.replace(parsed, best=None)
            intent = utility = register = phrase = None
            understood = False
        elif (intent or choice) and min_conf < self.thresholds.review:
            # nor is a barely heard "operator" among digits a request for a person, or a choice by name one
            intent = choice = None
            understood = parsed.best is not None
        decision = confidence.decide(
            min_word_confidence=min_conf if heard else 0.0,
            alternatives_disagree=disagree,
            has_unk=has_unk or bool(parsed.unknown and kind not in MENU_KINDS),
            parse_ambiguous=parsed.ambiguous and kind not in MENU_KINDS,
            validation_failed=False,
            attempt=attempt,
            thresholds=self.thresholds,
        ).value
        value = parsed.best
        if value and kind in ACCOUNT_KINDS:
            value = value.replace(grammars.SEPARATOR, KEYPAD_SEPARATOR)  # as the keypad types it
        speech = SpeechInput(text=text, value=value, intent=intent, utility=utility, register=register,
                             phrase=phrase, choice=choice, decision=decision)
        return Heard(speech=speech, engine="", transcript=text, candidates=list(parsed.candidates),
                     confidence=min_conf)


@contextmanager
def timed_recognition(language: str):
    """Around recognising one recording (decoding included)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        RECOGNITION_SECONDS.labels(language).observe(time.perf_counter() - start)
