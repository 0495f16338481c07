"""Grammar-constrained Vosk recognition, batch and streaming, with word confidences and an n-best list.

Vosk cannot give both in one decoder: with ``SetWords(True)`` the result has per-word ``conf``
(lattice MBR posteriors, the useful confidence) and the MBR text; with ``SetMaxAlternatives(n)``
it returns an n-best list instead, whose words carry no ``conf`` and whose ``confidence`` is
an unnormalised total lattice score. So each utterance runs TWO ``KaldiRecognizer``s fed the
same audio in lockstep: the primary (words + confidences, gives ``text``/``words``) and, unless
``max_alternatives=0``, a secondary n-best one (gives ``alternatives``). Decoding is
deterministic and independent of those output settings, so both endpoint on the same chunk.
Cost: about twice the CPU of one decoder (measured ~0.04 x real time each with a small model).

Note the MBR ``text`` can differ from the first n-best alternative (MBR picks the words with
the highest posterior, n-best the best single path); that disagreement is itself a useful
doubt signal (see ``speech.confidence.alternatives_disagree``).

Each utterance gets its own recognizers; a ``vosk.Model`` is shared, a recognizer never is.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import vosk

from .models import UNK_TOKENS, unk_token

CHUNK_BYTES = 8000  # 0.25 s at 16 kHz: Vosk's usual feeding size
DEFAULT_ALTERNATIVES = 3


@dataclass(frozen=True)
class Word:
    text: str
    confidence: float  # 0..1, Vosk's per-word posterior
    start: float  # seconds from the start of the stream
    end: float


@dataclass(frozen=True)
class Recognition:
    text: str  # words joined by spaces; unknown words as "[unk]"
    words: tuple[Word, ...]
    # n-best texts with their share of the n-best probability mass (softmax of Vosk's lattice
    # scores over the list: relative, not calibrated; sums to 1). Empty if not requested.
    alternatives: tuple[tuple[str, float], ...]
    has_unk: bool
    audio_seconds: float

    @property
    def min_confidence(self) -> float:
        """Lowest word confidence; 0.0 when nothing was recognised (speech never gives None,
        which ``speech.confidence.decide`` reserves for keypad input)."""
        return min((w.confidence for w in self.words), default=0.0)

    @property
    def is_empty(self) -> bool:
        return not self.words


@dataclass(frozen=True)
class Partial:
    """Interim hypothesis while the caller is still speaking (for barge-in, UI)."""
    text: str


def _normalise_word(word: str) -> str:
    return "[unk]" if word in UNK_TOKENS else word


def prepare_grammar(model: vosk.Model, grammar: list[str] | None) -> str | None:
    """JSON grammar for Vosk, always with the model's unknown-word token.

    "[unk]" is added if missing so out-of-grammar speech becomes [unk] instead of being forced
    onto the nearest digit. Models whose vocabulary spells it "<UNK>" get that instead
    (Vosk would otherwise drop "[unk]" with a warning).
    """
    if grammar is None:
        return None
    if isinstance(grammar, str):
        raise TypeError("grammar must be a list of phrases, not a string")
    token = unk_token(model)
    phrases = [p.strip() for p in grammar if p.strip() and p.strip() not in UNK_TOKENS]
    if not phrases:
        raise ValueError("empty grammar: no phrases besides [unk]")
    if token is not None:
        phrases.append(token)
    return json.dumps(list(dict.fromkeys(phrases)), ensure_ascii=False)


@dataclass
class _Segment:
    """One endpointed piece of an utterance as Vosk returned it."""
    words: list[Word] = field(default_factory=list)
    text: str = ""
    nbest: list[tuple[str, float]] = field(default_factory=list)  # raw lattice scores


def _parse_primary(raw: str, seg: _Segment) -> None:
    res = json.loads(raw)
    seg.words = [Word(_normalise_word(w["word"]), float(w.get("conf", 1.0)), float(w["start"]), float(w["end"]))
                 for w in res.get("result", [])]
    seg.text = " ".join(_normalise_word(t) for t in res.get("text", "").split())


def _parse_nbest(raw: str, seg: _Segment) -> None:
    res = json.loads(raw)
    seg.nbest = [(" ".join(_normalise_word(t) for t in a.get("text", "").split()), float(a.get("confidence", 0.0)))
                 for a in res.get("alternatives", [])]


def _combine(segments: list[_Segment], n: int, audio_seconds: float) -> Recognition:
    """Join endpointed segments into one Recognition; n-best across segments = best path of
    each segment with one segment swapped for one of its alternatives (scores add up)."""
    segments = [s for s in segments if s.text or any(t for t, _ in s.nbest)]
    words = tuple(w for s in segments for w in s.words)
    text = " ".join(s.text for s in segments if s.text)
    alternatives: tuple[tuple[str, float], ...] = ()
    if n > 0 and segments and all(s.nbest for s in segments):
        base = [s.nbest[0] for s in segments]
        base_score = sum(score for _, score in base)
        cands: dict[str, float] = {}

        def add(texts: list[str], score: float) -> None:
            t = " ".join(x for x in texts if x)
            if t not in cands or cands[t] < score:
                cands[t] = score

        add([t for t, _ in base], base_score)
        for i, s in enumerate(segments):
            for alt_text, alt_score in s.nbest[1:]:
                texts = [t for t, _ in base]
                texts[i] = alt_text
                add(texts, base_score - base[i][1] + alt_score)
        best = sorted(cands.items(), key=lambda kv: kv[1], reverse=True)[:n]
        top = best[0][1]
        weights = [math.exp(score - top) for _, score in best]
        total = sum(weights)
        alternatives = tuple((t, round(w / total, 6)) for (t, _), w in zip(best, weights))
    has_unk = any(w.text == "[unk]" for w in words) or "[unk]" in text.split()
    return Recognition(text=text, words=words, alternatives=alternatives, has_unk=has_unk,
                       audio_seconds=round(audio_seconds, 4))


class StreamingRecognizer:
    """Feed audio as it arrives; get a Recognition each time Vosk detects the end of an utterance.

    ``feed`` returns a Recognition at an endpoint, a Partial when the interim text changed,
    else None. ``finish`` flushes whatever is left. Not thread-safe: one per call leg.
    """

    def __init__(self, model: vosk.Model, grammar: list[str] | None, sample_rate: int = 16000, *,
                 max_alternatives: int = DEFAULT_ALTERNATIVES):
        if sample_rate < 8000:
            raise ValueError(f"sample rate {sample_rate} Hz is too low")
        self.sample_rate = sample_rate
        self.max_alternatives = max_alternatives
        spec = prepare_grammar(model, grammar)
        args = (model, float(sample_rate)) if spec is None else (model, float(sample_rate), spec)
        self._primary = vosk.KaldiRecognizer(*args)
        self._primary.SetWords(True)
        self._nbest = None
        if max_alternatives > 0:
            self._nbest = vosk.KaldiRecognizer(*args)
            self._nbest.SetMaxAlternatives(max_alternatives)
        self._bytes = 0  # since the last utterance ended
        self._last_partial = ""
        self._finished = False

    def _accept(self, chunk: bytes) -> _Segment | None:
        """Feed both decoders; the finished segment if Vosk detected an endpoint."""
        self._bytes += len(chunk)
        ended = self._primary.AcceptWaveform(chunk)
        nbest_ended = self._nbest.AcceptWaveform(chunk) if self._nbest is not None else False
        if not ended:
            return None
        seg = _Segment()
        _parse_primary(self._primary.Result(), seg)
        if self._nbest is not None:
            # Same decoding, so normally both endpoint together; if not, force the n-best
            # recognizer to finish this utterance too (it restarts on the next chunk).
            _parse_nbest(self._nbest.Result() if nbest_ended else self._nbest.FinalResult(), seg)
        return seg

    def _final(self) -> _Segment:
        if self._finished:
            raise RuntimeError("finish() called twice")
        self._finished = True
        seg = _Segment()
        _parse_primary(self._primary.FinalResult(), seg)
        if self._nbest is not None:
            _parse_nbest(self._nbest.FinalResult(), seg)
        return seg

    def feed(self, chunk: bytes) -> Recognition | Partial | None:
        if self._finished:
            raise RuntimeError("feed() after finish()")
        if len(chunk) % 2:
            raise ValueError("PCM chunk must hold whole 16-bit samples")
        if not chunk:
            return None
        seg = self._accept(bytes(chunk))
        if seg is not None:
            return self._emit([seg])
        partial = self.partial()
        if partial != self._last_partial:
            self._last_partial = partial
            return Partial(partial)
        return None

    def partial(self) -> str:
        """The interim text of the utterance in progress ("" before any word)."""
        return " ".join(_normalise_word(t) for t in json.loads(self._primary.PartialResult()).get("partial", "").split())

    def finish(self) -> Recognition:
        """End of audio: the last (possibly empty) utterance."""
        return self._emit([self._final()])

    def _emit(self, segments: list[_Segment]) -> Recognition:
        seconds = self._bytes / (2 * self.sample_rate)
        self._bytes = 0
        self._last_partial = ""
        return _combine(segments, self.max_alternatives, seconds)


def recognize(model: vosk.Model, pcm: bytes, *, grammar: list[str] | None, sample_rate: int = 16000,
              max_alternatives: int = DEFAULT_ALTERNATIVES, chunk_bytes: int = CHUNK_BYTES) -> Recognition:
    """Recognise a whole recording (mono 16-bit PCM) as one answer.

    Vosk may endpoint inside a long recording (a pause of a second or more); the pieces are
    joined, so a caller who pauses between digit groups still gives one reading.
    """
    if len(pcm) % 2:
        raise ValueError("PCM must hold whole 16-bit samples")
    sr = StreamingRecognizer(model, grammar, sample_rate, max_alternatives=max_alternatives)
    segments: list[_Segment] = []
    for i in range(0, len(pcm), chunk_bytes):
        seg = sr._accept(bytes(pcm[i:i + chunk_bytes]))
        if seg is not None:
            segments.append(seg)
    segments.append(sr._final())
    return _combine(segments, max_alternatives, len(pcm) / (2 * sample_rate))
