"""Speech accuracy benchmark (a script, not a test): real recordings through the product's path.

Each labelled recording (``manifest.csv`` of the speech samples folder: path, language,
expected digits) goes the way a caller's answer goes: the file's bytes to a recogniser behind
the product's interface ``recognizer(lang, grammar_words, audio_bytes) -> Recognition``, which
decodes them with ``speech.audio.decode_audio`` and recognises with the step's grammar
(``grammars.build_grammar``); the text is parsed with ``grammars.parse_number`` and the
confidence policy (``speech.confidence.decide``, with the inputs the speech steps give it)
decides, on a first attempt, for every pair of thresholds.

Printed per sample folder: exact match (best reading equals the expected digits), digit error
rate (edit distance over expected length), and per (review, accept) thresholds the shares of
answers accepted, wrongly accepted (accepted but not the expected digits: a wrong reading
stored without a question), read back for confirmation, and re-asked.

    .venv/bin/python benchmarks/speech_accuracy.py [--engine pocketsphinx|vosk] [--model PATH]
        [--lang en] [--kind digits] [--folder fsdd --folder moshi-finetune-numbers] [--every N]

Engines: ``pocketsphinx`` (English only: the acoustic model inside the pocketsphinx wheel, a
test dependency; the product engine is Vosk) and ``vosk --model PATH`` (any Vosk model folder).
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from grammars import build_grammar, parse_number  # noqa: E402
from speech.audio import decode_audio  # noqa: E402
from speech.confidence import Decision, Thresholds, alternatives_disagree, decide  # noqa: E402
from speech.recognizer import Recognition, Word  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = Path(os.environ.get("IVR_TEST_SPEECH_SAMPLES", ROOT.parent / "shared" / "speech-samples"))
SAMPLE_RATE = 16000
MAX_SECONDS = 60  # as the speech steps decode callers' recordings
REVIEW = (0.3, 0.4, 0.5, 0.6, 0.7)
ACCEPT = (0.7, 0.85, 0.95)


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

    def __init__(self, max_alternatives: int = 3, **options):
        import pocketsphinx

        models = Path(pocketsphinx.get_model_path()) / "en-us"
        config = {"hmm": str(models / "en-us"), "dict": str(models / "cmudict-en-us.dict"),
                  "lm": None, "loglevel": "FATAL", "bestpath": True}  # bestpath: word posteriors
        config.update(options)
        self._decoder = pocketsphinx.Decoder(**config)
        self._searches: dict[str, str] = {}
        self.max_alternatives = max_alternatives
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
        pcm = decode_audio(audio, SAMPLE_RATE, max_seconds=MAX_SECONDS)
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

    def __init__(self, model_path: Path):
        from speech.models import ModelPool

        self._model = ModelPool(Path("/nonexistent"), extra={"m": Path(model_path)}).get("m")

    def __call__(self, lang: str, grammar: list[str], audio: bytes) -> Recognition:
        from speech.recognizer import recognize

        pcm = decode_audio(audio, SAMPLE_RATE, max_seconds=MAX_SECONDS)
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

    def decision(self, thresholds: Thresholds) -> Decision:
        return decide(thresholds=thresholds, attempt=1, validation_failed=False, **self.doubt)


def answer(recognizer, sample: Sample, audio: bytes, kind: str = "digits") -> Answer:
    """Recognise, parse and collect the policy's inputs the way the speech steps do for a number step."""
    lang = sample.lang
    recognition = recognizer(lang, build_grammar(lang, kind), audio)
    parsed = parse_number(recognition.text, lang)
    understood = parsed.best is not None
    doubt = {
        "min_word_confidence": recognition.min_confidence if understood else 0.0,
        "alternatives_disagree": alternatives_disagree(recognition, lambda t: parse_number(t, lang).best),
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
    by_threshold: dict[tuple[float, float], dict[str, float]] = field(default_factory=dict)


def figures(answers: list[Answer], pairs: list[tuple[float, float]]) -> Figures:
    n = len(answers)
    if not n:
        raise ValueError("no answers")
    edits = sum(edit_distance(a.best or "", a.sample.expected) for a in answers)
    length = sum(len(a.sample.expected) for a in answers)
    out = Figures(n, sum(a.correct for a in answers) / n, edits / length)
    for review, accept in pairs:
        t = Thresholds(accept=accept, review=review)
        ds = [(a, a.decision(t)) for a in answers]
        out.by_threshold[(review, accept)] = {
            "accepted": sum(d is Decision.ACCEPT for _, d in ds) / n,
            "wrongly_accepted": sum(d is Decision.ACCEPT and not a.correct for a, d in ds) / n,
            "confirmed": sum(d is Decision.CONFIRM for _, d in ds) / n,
            "reasked": sum(d is Decision.RETRY for _, d in ds) / n,
        }
    return out


# --------------------------------------------------------------------------- running


def load_samples(folder: Path, lang: str, folders: list[str] | None = None, every: int = 1) -> list[Sample]:
    with open(folder / "manifest.csv", newline="", encoding="utf-8") as f:
        rows = [Sample(r["path"], r["language"], r["expected"]) for r in csv.DictReader(f)]
    rows = [s for s in rows if s.lang == lang and (not folders or s.folder in folders)]
    return rows[::every]


def run(recognizer, samples: list[Sample], folder: Path, kind: str = "digits") -> list[Answer]:
    return [answer(recognizer, s, (folder / s.path).read_bytes(), kind) for s in samples]


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
                     f"digit error rate {fig.digit_error_rate:.1%}")
        lines.append(f"  {'review':>6} {'accept':>6} {'accepted':>9} {'wrongly accepted':>17} "
                     f"{'confirmed':>10} {'re-asked':>9}")
        for (review, accept), s in fig.by_threshold.items():
            mark = " *" if (review, accept) == (default.review, default.accept) else ""
            lines.append(f"  {review:>6.2f} {accept:>6.2f} {s['accepted']:>9.1%} {s['wrongly_accepted']:>17.1%} "
                         f"{s['confirmed']:>10.1%} {s['reasked']:>9.1%}{mark}")
    lines.append("* the product's default thresholds")
    return "\n".join(lines)


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
    ap.add_argument("--engine", choices=("pocketsphinx", "vosk"), default="pocketsphinx")
    ap.add_argument("--model", type=Path, help="Vosk model folder (needed with --engine vosk)")
    ap.add_argument("--samples", type=Path, default=SAMPLES, help=f"labelled samples folder (default {SAMPLES})")
    ap.add_argument("--lang", default="en")
    ap.add_argument("--kind", choices=("digits", "number"), default="digits",
                    help="grammar of the step: digits (account numbers) or number (meter readings)")
    ap.add_argument("--folder", action="append", help="only this sample folder (repeatable)")
    ap.add_argument("--every", type=int, default=1, help="take every N-th recording")
    ap.add_argument("--ps-option", action="append", default=[], metavar="NAME=VALUE",
                    help="pocketsphinx decoder option, e.g. wip=0.01")
    ap.add_argument("--show", action="store_true", help="print every recording's result")
    args = ap.parse_args(argv)
    if args.engine == "vosk":
        if args.model is None:
            ap.error("--engine vosk needs --model PATH (a Vosk model folder)")
        recognizer = VoskRecognizer(args.model)
    else:
        if args.lang != "en":
            ap.error("the pocketsphinx engine is English only")
        recognizer = PocketsphinxRecognizer(**dict(_option(o) for o in args.ps_option))
    if not (args.samples / "manifest.csv").is_file():
        ap.error(f"no manifest.csv in {args.samples}")
    samples = load_samples(args.samples, args.lang, args.folder, args.every)
    if not samples:
        ap.error(f"no {args.lang!r} recordings in {args.samples}")
    t0 = time.perf_counter()
    answers = run(recognizer, samples, args.samples, args.kind)
    elapsed = time.perf_counter() - t0
    if args.show:
        for a in answers:
            print(f"{a.sample.path}\t{a.sample.expected}\t{a.best}\t{a.min_confidence:.2f}\t{a.text}")
    print(f"engine {args.engine}{' ' + str(args.model) if args.model else ''}; "
          f"{' '.join(args.ps_option)}; grammar {args.lang}/{args.kind}; {len(answers)} recordings "
          f"in {elapsed:.0f} s")
    missing = getattr(recognizer, "missing", None)
    if missing:
        print(f"grammar words the recogniser lacks (left out): {', '.join(sorted(missing))}")
    print(report(answers, [(r, a) for a in ACCEPT for r in REVIEW if r <= a]))


if __name__ == "__main__":
    main()
