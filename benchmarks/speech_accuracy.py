"""Speech accuracy benchmark (a script, not a test): real recordings through the product's path,
as a telephone line delivers them.

Each labelled recording (``manifest.csv`` of the speech samples folder: path, language,
expected digits) is first turned into what a call carries: band-limited to 300–3400 Hz and
encoded as 8 kHz μ-law (ffmpeg). Then it goes the way a caller's answer goes: the bytes to a
recogniser behind the product's interface ``recognizer(lang, grammar_words, audio_bytes) ->
Recognition``, which decodes them with ``speech.audio.decode_audio`` and recognises with the
step's grammar (``grammars.build_grammar``); the text is parsed as the speech steps parse it
(``grammars.parse_account`` for an account number, ``parse_number`` for a reading) and the
confidence policy (``speech.confidence.decide``, with the inputs the speech steps give it)
decides, on a first attempt, for every pair of thresholds.

Each recording is heard three ways, to show what trimming and padding do to empty answers
(nothing recognised): as the line delivers it with no silence added (``raw``), with the
product's 300 ms of silence at both ends (``padded``, what the speech steps do), and with its
own leading and trailing silence trimmed first, as ``<Record trim="trim-silence">`` does,
then padded (``trimmed``).

Printed per engine, language and way: exact match (best reading equals the expected digits),
digit error rate (edit distance over expected length), empty answers, and per (review, accept)
thresholds the shares accepted, wrongly accepted (a wrong value stored without a question), read
back for confirmation, wrong among the read-backs (a wrong value the caller must catch), and
re-asked. An engine and language that cannot be measured here is named with the reason (no
model, no recordings, a remote service).

    .venv/bin/python benchmarks/speech_accuracy.py [--engine pocketsphinx|vosk|twilio ...]
        [--lang en ...] [--models-dir DIR | --model PATH] [--kind digits|number]
        [--folder fsdd ...] [--every N] [--way raw|padded|trimmed ...]

Engines: ``pocketsphinx`` (English only: the acoustic model inside the pocketsphinx wheel, a
test dependency; the product engine is Vosk), ``vosk`` (the product's path, one model folder per
language under ``--models-dir``, default ``IVR_MODELS_DIR`` or ``var/models``, or ``--model PATH``
for one language) and ``twilio`` (Romanian's engine in the product: a remote service, never
measured offline, listed so the report says so).
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import math
import os
import shutil
import struct
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from grammars import LANGUAGES, build_grammar, parse_account, parse_number  # noqa: E402
from speech.audio import PAD_MS, decode_audio  # noqa: E402
from speech.confidence import Decision, Thresholds, alternatives_disagree, decide  # noqa: E402
from speech.recognizer import Recognition, Word  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = Path(os.environ.get("IVR_TEST_SPEECH_SAMPLES", ROOT / "tests" / "speech-samples"))
SAMPLE_RATE = 16000
MAX_SECONDS = 60  # as the speech steps decode callers' recordings
REVIEW = (0.3, 0.4, 0.5, 0.6, 0.7)
ACCEPT = (0.7, 0.85, 0.95)
ENGINES = ("pocketsphinx", "vosk", "twilio")
# How a recording is heard: (added silence at both ends in ms, leading/trailing silence trimmed first)
WAYS = {"raw": (0, False), "padded": (PAD_MS, False), "trimmed": (PAD_MS, True)}
TELEPHONE_BAND = (300, 3400)  # Hz
TELEPHONE_RATE = 8000
TRIM_BELOW_DBFS = -45.0  # quieter than this at either end counts as silence (as trim-silence does)


# --------------------------------------------------------------------------- the telephone line


def telephone(audio: bytes) -> bytes:
    """A recording as a call carries it: 300–3400 Hz, 8 kHz, μ-law, in a WAV container."""
    if shutil.which("ffmpeg") is None:
        raise RuntimeError("ffmpeg is needed to put recordings on the telephone band")
    low, high = TELEPHONE_BAND
    out = subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", "pipe:0",
         "-af", f"highpass=f={low}:poles=2,lowpass=f={high}:poles=2", "-ac", "1", "-ar", str(TELEPHONE_RATE),
         "-c:a", "pcm_mulaw", "-f", "wav", "pipe:1"],
        input=audio, capture_output=True, check=True)
    return out.stdout


def _audioop():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop
    return audioop


def _mulaw_wav(ulaw: bytes, rate: int) -> bytes:
    """μ-law bytes in a WAV container (format 7, 8 bits), as a telephone recording comes."""
    fmt = struct.pack("<HHIIHH", 7, 1, rate, rate, 1, 8)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(ulaw)) + ulaw
    return b"RIFF" + struct.pack("<I", len(body)) + body + (b"\0" if len(ulaw) % 2 else b"")


def trim_silence(wav: bytes) -> bytes:
    """The μ-law recording without its leading and trailing silence, as ``trim="trim-silence"``
    gives it (never trimmed to nothing)."""
    from pydub import AudioSegment
    from pydub.silence import detect_leading_silence

    from speech.audio import parse_wav_header

    audioop = _audioop()
    info = parse_wav_header(wav)
    ulaw = wav[info.data_offset:info.data_offset + info.data_size]
    seg = AudioSegment(data=audioop.ulaw2lin(ulaw, 2), sample_width=2, frame_rate=info.sample_rate, channels=1)
    start = detect_leading_silence(seg, silence_threshold=TRIM_BELOW_DBFS, chunk_size=10)
    end = len(seg) - detect_leading_silence(seg.reverse(), silence_threshold=TRIM_BELOW_DBFS, chunk_size=10)
    if end - start < 50:
        return wav
    per_ms = info.sample_rate // 1000
    return _mulaw_wav(ulaw[start * per_ms:end * per_ms], info.sample_rate)


# --------------------------------------------------------------------------- recognisers


class PocketsphinxRecognizer:
    """English recognition with pocketsphinx, behind the product's recogniser interface.

    Constrained the way the product constrains Vosk: a JSGF grammar that loops over the step's
    grammar phrases, so only they can be recognised; phrases with a word the pronunciation
    dictionary lacks are left out (Vosk likewise drops words its model lacks), see ``missing``.
    pocketsphinx has no unknown-word token, so "[unk]" is never produced. Word confidences are
    the lattice posteriors of the best path; alternatives come from the n-best list.
    """

    FRAME_RATE = 100  # frames per second (pocketsphinx's default -frate)

    def __init__(self, max_alternatives: int = 3, pad_ms: int = PAD_MS, **options):
        import pocketsphinx

        models = Path(pocketsphinx.get_model_path()) / "en-us"
        config = {"hmm": str(models / "en-us"), "dict": str(models / "cmudict-en-us.dict"),
                  "lm": None, "loglevel": "FATAL", "bestpath": True}  # bestpath: word posteriors
        config.update(options)
        self._decoder = pocketsphinx.Decoder(**config)
        self._searches: dict[str, str] = {}
        self.max_alternatives = max_alternatives
        self.pad_ms = pad_ms
        self.missing: set[str] = set()

    def _search(self, grammar: list[str]) -> str:
        phrases = []
        for phrase in grammar:
            words = phrase.split()
            if phrase == "[unk]":
                continue
            if all(self._decoder.lookup_word(w) for w in words):
                phrases.append(" ".join(f'"{w}"' if "'" in w else w for w in words))
            else:
                self.missing.update(w for w in words if not self._decoder.lookup_word(w))
        if not phrases:
            raise ValueError("no grammar phrase is in the pronunciation dictionary")
        name = "g" + hashlib.sha1("|".join(phrases).encode()).hexdigest()[:12]
        if name not in self._searches:
            jsgf = f"#JSGF V1.0;\ngrammar step;\npublic <answer> = ( {' | '.join(phrases)} )+ ;\n"
            self._decoder.add_jsgf_string(name, jsgf)
            self._searches[name] = jsgf
        return name

    @staticmethod
    def _word(text: str) -> str | None:
        if text.startswith(("<", "[", "+")):
            return None  # <s>, </s>, <sil>, [NOISE], ++fillers++
        return text.split("(")[0]  # "zero(2)": the second pronunciation of "zero"

    def __call__(self, lang: str, grammar: list[str], audio: bytes) -> Recognition:
        if lang != "en":
            raise ValueError(f"the pocketsphinx model is English only, not {lang!r}")
        pcm = decode_audio(audio, SAMPLE_RATE, max_seconds=MAX_SECONDS, pad_ms=self.pad_ms)
        d = self._decoder
        d.activate_search(self._search(grammar))
        d.start_utt()
        d.process_raw(pcm, full_utt=True)
        d.end_utt()
        words = []
        for seg in d.seg() or []:
            text = self._word(seg.word)
            if text is not None:
                words.append(Word(text, min(max(float(seg.prob), 0.0), 1.0),
                                  seg.start_frame / self.FRAME_RATE, (seg.end_frame + 1) / self.FRAME_RATE))
        alternatives = self._alternatives() if self.max_alternatives and words else ()
        return Recognition(text=" ".join(w.text for w in words), words=tuple(words), alternatives=alternatives,
                           has_unk=False, audio_seconds=round(len(pcm) / (2 * SAMPLE_RATE), 4))

    def _alternatives(self) -> tuple[tuple[str, float], ...]:
        scores: dict[str, float] = {}
        for n, hyp in enumerate(self._decoder.nbest()):
            if hyp is None or n >= 20 or len(scores) >= self.max_alternatives:
                break
            text = " ".join(w for w in (self._word(t) for t in hyp.hypstr.split()) if w)
            scores.setdefault(text, hyp.score * math.log(1.0001))  # scores are log base 1.0001
        if not scores:
            return ()
        top = max(scores.values())
        weights = {t: math.exp(s - top) for t, s in scores.items()}
        total = sum(weights.values())
        return tuple((t, round(w / total, 6)) for t, w in weights.items())


class VoskRecognizer:
    """The product's own Vosk path (as the speech steps run it) with one model folder."""

    def __init__(self, model_path: Path, pad_ms: int = PAD_MS):
        from speech.models import ModelPool

        self._model = ModelPool(Path("/nonexistent"), extra={"m": Path(model_path)}).get("m")
        self.pad_ms = pad_ms

    def __call__(self, lang: str, grammar: list[str], audio: bytes) -> Recognition:
        from speech.recognizer import recognize

        pcm = decode_audio(audio, SAMPLE_RATE, max_seconds=MAX_SECONDS, pad_ms=self.pad_ms)
        return recognize(self._model, pcm, grammar=grammar, sample_rate=SAMPLE_RATE)


# --------------------------------------------------------------------------- one answer


@dataclass(frozen=True)
class Sample:
    path: str
    lang: str
    expected: str

    @property
    def folder(self) -> str:
        return self.path.split("/")[0]


@dataclass(frozen=True)
class Answer:
    """One recording's way through recognition, parsing and the doubt signals."""

    sample: Sample
    text: str
    best: str | None
    min_confidence: float
    doubt: dict  # the decide() inputs that do not depend on thresholds

    @property
    def correct(self) -> bool:
        return self.best == self.sample.expected

    @property
    def empty(self) -> bool:
        """The recogniser heard nothing at all."""
        return not self.text.strip()

    def decision(self, thresholds: Thresholds) -> Decision:
        return decide(thresholds=thresholds, attempt=1, validation_failed=False, **self.doubt)


def answer(recognizer, sample: Sample, audio: bytes, kind: str = "digits") -> Answer:
    """Recognise, parse and collect the policy's inputs the way the speech steps do for a number step."""
    lang = sample.lang
    parse = parse_account if kind == "digits" else parse_number  # an account number, or a reading
    recognition = recognizer(lang, build_grammar(lang, kind), audio)
    parsed = parse(recognition.text, lang)
    understood = parsed.best is not None
    doubt = {
        "min_word_confidence": recognition.min_confidence if understood else 0.0,
        "alternatives_disagree": alternatives_disagree(recognition, lambda t: parse(t, lang).best),
        "has_unk": recognition.has_unk or bool(parsed.unknown),
        "parse_ambiguous": parsed.ambiguous,
    }
    return Answer(sample, recognition.text, parsed.best, recognition.min_confidence, doubt)


# --------------------------------------------------------------------------- figures


def edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


@dataclass
class Figures:
    n: int
    exact: float
    digit_error_rate: float
    empty: float = 0.0
    by_threshold: dict[tuple[float, float], dict[str, float]] = field(default_factory=dict)


def figures(answers: list[Answer], pairs: list[tuple[float, float]]) -> Figures:
    n = len(answers)
    if not n:
        raise ValueError("no answers")
    edits = sum(edit_distance((a.best or "").replace("-", ""), a.sample.expected) for a in answers)
    length = sum(len(a.sample.expected) for a in answers)
    out = Figures(n, sum(a.correct for a in answers) / n, edits / length, sum(a.empty for a in answers) / n)
    for review, accept in pairs:
        t = Thresholds(accept=accept, review=review)
        ds = [(a, a.decision(t)) for a in answers]
        out.by_threshold[(review, accept)] = {
            "accepted": sum(d is Decision.ACCEPT for _, d in ds) / n,
            "wrongly_accepted": sum(d is Decision.ACCEPT and not a.correct for a, d in ds) / n,
            "confirmed": sum(d is Decision.CONFIRM for _, d in ds) / n,
            # read back with a wrong value: the caller has to notice and say no
            "wrong_read_back": sum(d is Decision.CONFIRM and not a.correct for a, d in ds) / n,
            "reasked": sum(d is Decision.RETRY for _, d in ds) / n,
        }
    return out


# --------------------------------------------------------------------------- running


def load_samples(folder: Path, lang: str, folders: list[str] | None = None, every: int = 1) -> list[Sample]:
    with open(folder / "manifest.csv", newline="", encoding="utf-8") as f:
        rows = [Sample(r["path"], r["language"], r["expected"]) for r in csv.DictReader(f)]
    rows = [s for s in rows if s.lang == lang and (not folders or s.folder in folders)]
    return rows[::every]


def run(recognizer, samples: list[Sample], folder: Path, kind: str = "digits", way: str | None = None,
        line: bool = True, cache: dict | None = None) -> list[Answer]:
    """Every sample through the recogniser; ``way`` (``WAYS``) sets the recogniser's padding and
    trimming; ``line=False`` keeps the recordings as they are (no telephone band). ``cache`` keeps
    each recording's telephone version between ways."""
    if way is not None:
        recognizer.pad_ms = WAYS[way][0]
    cache = {} if cache is None else cache
    out = []
    for s in samples:
        if line:
            if s.path not in cache:
                cache[s.path] = telephone((folder / s.path).read_bytes())
            audio = trim_silence(cache[s.path]) if WAYS[way or "padded"][1] else cache[s.path]
        else:
            audio = (folder / s.path).read_bytes()
        out.append(answer(recognizer, s, audio, kind))
    return out


def report(answers: list[Answer], pairs: list[tuple[float, float]], default: Thresholds = Thresholds()) -> str:
    lines = []
    groups: dict[str, list[Answer]] = {}
    for a in answers:
        groups.setdefault(a.sample.folder, []).append(a)
    if len(groups) > 1:
        groups["all"] = answers
    for name, group in groups.items():
        fig = figures(group, pairs)
        lines.append(f"{name}: {fig.n} recordings, exact match {fig.exact:.1%}, "
                     f"digit error rate {fig.digit_error_rate:.1%}, empty answers {fig.empty:.1%}")
        lines.append(f"  {'review':>6} {'accept':>6} {'accepted':>9} {'wrongly accepted':>17} "
                     f"{'read back':>10} {'wrong read back':>16} {'re-asked':>9}")
        for (review, accept), s in fig.by_threshold.items():
            mark = " *" if (review, accept) == (default.review, default.accept) else ""
            lines.append(f"  {review:>6.2f} {accept:>6.2f} {s['accepted']:>9.1%} {s['wrongly_accepted']:>17.1%} "
                         f"{s['confirmed']:>10.1%} {s['wrong_read_back']:>16.1%} {s['reasked']:>9.1%}{mark}")
    lines.append("* the product's default thresholds")
    return "\n".join(lines)


def summary(answers_by_way: dict[str, list[Answer]], default: Thresholds = Thresholds()) -> str:
    """One line per way of hearing: empty answers, exact match and the default thresholds' shares."""
    pair = (default.review, default.accept)
    lines = [f"  {'way':<8} {'empty':>6} {'exact':>6} {'accepted':>9} {'wrongly acc.':>13} {'read back':>10} "
             f"{'wrong r.b.':>11} {'re-asked':>9}"]
    for way, answers in answers_by_way.items():
        fig = figures(answers, [pair])
        s = fig.by_threshold[pair]
        lines.append(f"  {way:<8} {fig.empty:>6.1%} {fig.exact:>6.1%} {s['accepted']:>9.1%} "
                     f"{s['wrongly_accepted']:>13.1%} {s['confirmed']:>10.1%} {s['wrong_read_back']:>11.1%} "
                     f"{s['reasked']:>9.1%}")
    return "\n".join(lines)


def recognizer_for(engine: str, lang: str, *, model: Path | None, models_dir: Path, ps_options: dict):
    """(recogniser, what) for an engine and language, or (None, why it cannot be measured here)."""
    if engine == "twilio":
        return None, "Twilio's recogniser is a remote service: not measured offline"
    if engine == "pocketsphinx":
        if lang != "en":
            return None, "no model (pocketsphinx's model is English only)"
        return PocketsphinxRecognizer(**ps_options), "pocketsphinx en-us (test dependency)"
    from speech.models import looks_like_model

    path = model or models_dir / lang
    if not looks_like_model(path):
        return None, f"no model in {path} (`ivr models download {lang}`, or --model PATH)"
    return VoskRecognizer(path), f"vosk {path}"


def _option(text: str):
    k, _, v = text.partition("=")
    for cast in (int, float):
        try:
            return k, cast(v)
        except ValueError:
            pass
    return k, {"true": True, "false": False}.get(v.lower(), v)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engine", action="append", choices=ENGINES,
                    help="recogniser to measure (repeatable; default: every engine)")
    ap.add_argument("--model", type=Path, help="one Vosk model folder (with --engine vosk and one --lang)")
    ap.add_argument("--models-dir", type=Path, default=Path(os.environ.get("IVR_MODELS_DIR", ROOT / "var" / "models")),
                    help="Vosk models, one folder per language (default IVR_MODELS_DIR or var/models)")
    ap.add_argument("--samples", type=Path, default=SAMPLES, help=f"labelled samples folder (default {SAMPLES})")
    ap.add_argument("--lang", action="append", choices=LANGUAGES, help="language (repeatable; default: all)")
    ap.add_argument("--kind", choices=("digits", "number"), default="digits",
                    help="grammar of the step: digits (account numbers) or number (meter readings)")
    ap.add_argument("--folder", action="append", help="only this sample folder (repeatable)")
    ap.add_argument("--every", type=int, default=1, help="take every N-th recording")
    ap.add_argument("--way", action="append", choices=tuple(WAYS),
                    help="how recordings are heard (repeatable; default: all); the detailed table is the "
                         "last one's")
    ap.add_argument("--ps-option", action="append", default=[], metavar="NAME=VALUE",
                    help="pocketsphinx decoder option, e.g. wip=0.01")
    ap.add_argument("--show", action="store_true", help="print every recording's result")
    args = ap.parse_args(argv)
    engines = args.engine or list(ENGINES)
    langs = args.lang or list(LANGUAGES)
    ways = args.way or list(WAYS)
    if args.model is not None and (engines != ["vosk"] or len(langs) != 1):
        ap.error("--model PATH is one Vosk model: give it with --engine vosk and one --lang")
    if engines == ["vosk"] and args.model is None and not args.models_dir.is_dir():
        ap.error(f"--engine vosk needs --model PATH or --models-dir DIR (no folder {args.models_dir})")
    if engines == ["pocketsphinx"] and langs != ["en"]:
        ap.error("the pocketsphinx engine is English only")
    if not (args.samples / "manifest.csv").is_file():
        ap.error(f"no manifest.csv in {args.samples}")
    ps_options = dict(_option(o) for o in args.ps_option)
    pairs = [(r, a) for a in ACCEPT for r in REVIEW if r <= a]
    measured, not_measured = [], []
    for engine in engines:
        for lang in langs:
            samples = load_samples(args.samples, lang, args.folder, args.every)
            recognizer, what = recognizer_for(engine, lang, model=args.model, models_dir=args.models_dir,
                                              ps_options=ps_options)
            if recognizer is None or not samples:
                not_measured.append(f"{engine} {lang}: {what if recognizer is None else 'no labelled recordings'}")
                continue
            t0 = time.perf_counter()
            cache: dict = {}
            by_way = {way: run(recognizer, samples, args.samples, args.kind, way, cache=cache) for way in ways}
            elapsed = time.perf_counter() - t0
            measured.append(f"{engine} {lang}")
            print(f"== {engine} {lang}: {what}; grammar {lang}/{args.kind}; {len(samples)} recordings on the "
                  f"telephone band ({TELEPHONE_BAND[0]}–{TELEPHONE_BAND[1]} Hz, {TELEPHONE_RATE} Hz μ-law), "
                  f"{len(ways)} ways, {elapsed:.0f} s")
            missing = getattr(recognizer, "missing", None)
            if missing:
                print(f"grammar words the recogniser lacks (left out): {', '.join(sorted(missing))}")
            print("ways (default thresholds): raw = no silence added, padded = the product's "
                  f"{PAD_MS} ms at both ends, trimmed = silence trimmed first, then padded")
            print(summary(by_way))
            last = by_way[ways[-1]]
            if args.show:
                for a in last:
                    print(f"{a.sample.path}\t{a.sample.expected}\t{a.best}\t{a.min_confidence:.2f}\t{a.text}")
            print(f"-- {ways[-1]}, every pair of thresholds")
            print(report(last, pairs))
    print(f"measured: {', '.join(measured) or 'nothing'}")
    for line in not_measured:
        print(f"not measured: {line}")


if __name__ == "__main__":
    main()
