"""The speech accuracy harness (benchmarks/speech_accuracy.py) on real recordings.

With pocketsphinx's English acoustic model (a test dependency) behind the product's recogniser
interface, a handful of labelled real recordings go through decoding, the step's grammar, the
parser and the confidence policy. Bounds are about accuracy, not speed.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from speech.confidence import Decision, Thresholds
from speech.recognizer import Recognition, Word

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("speech_accuracy", ROOT / "benchmarks" / "speech_accuracy.py")
sa = importlib.util.module_from_spec(_spec)
sys.modules["speech_accuracy"] = sa  # dataclasses look their module up there
_spec.loader.exec_module(sa)

SAMPLES = sa.SAMPLES
DEFAULT = Thresholds()


def _needs_real_speech():
    pytest.importorskip("pocketsphinx", reason="pocketsphinx (test extra) is not installed")
    if not (SAMPLES / "manifest.csv").is_file():
        pytest.skip(f"labelled speech samples not found at {SAMPLES} (set IVR_TEST_SPEECH_SAMPLES)")


@pytest.fixture(scope="module")
def sphinx():
    _needs_real_speech()
    return sa.PocketsphinxRecognizer()


def _fsdd(speakers=("lucas", "jackson"), index=0):
    return [s for s in sa.load_samples(SAMPLES, "en", ["fsdd"])
            if s.path.split("_")[1] in speakers and s.path.endswith(f"_{index}.wav")]


def _all_pairs():
    return [(r, a) for a in sa.ACCEPT for r in sa.REVIEW if r <= a]


def _consistent(fig):
    for (review, accept), s in fig.by_threshold.items():
        assert s["accepted"] + s["confirmed"] + s["reasked"] == pytest.approx(1.0), (review, accept)
        assert 0 <= s["wrongly_accepted"] <= s["accepted"]
    for (r1, a1), s1 in fig.by_threshold.items():
        for (r2, a2), s2 in fig.by_threshold.items():
            if r1 <= r2 and a1 <= a2:  # stricter thresholds never accept more nor re-ask less
                assert s2["accepted"] <= s1["accepted"] + 1e-9 and s2["reasked"] >= s1["reasked"] - 1e-9


def test_single_digits_well_above_chance(sphinx):
    samples = _fsdd()
    assert len(samples) == 20  # every digit by two speakers
    answers = sa.run(sphinx, samples, SAMPLES)
    fig = sa.figures(answers, _all_pairs())
    assert fig.exact >= 0.3, sa.report(answers, _all_pairs())  # chance is 0.1
    assert fig.digit_error_rate <= 0.8
    _consistent(fig)
    # The grammar is the step's: only its words come out, each a digit reading.
    words = set(sa.build_grammar("en", "digits"))
    for a in answers:
        assert set(a.text.split()) <= words, a.text
    # A wrong reading stored without a question is the costly error: rare at the defaults.
    assert fig.by_threshold[(DEFAULT.review, DEFAULT.accept)]["wrongly_accepted"] <= 0.1


def test_digit_strings_mostly_right_digit_by_digit(sphinx):
    samples = sa.load_samples(SAMPLES, "en", ["moshi-finetune-numbers"], every=20)
    if not samples:
        pytest.skip("no moshi-finetune-numbers recordings in the samples folder")
    answers = sa.run(sphinx, samples, SAMPLES)
    fig = sa.figures(answers, _all_pairs())
    assert fig.digit_error_rate <= 0.6, sa.report(answers, _all_pairs())
    assert all(a.best is not None for a in answers)
    _consistent(fig)


def test_pocketsphinx_adapter_keeps_to_the_grammar_and_reports_missing_words(sphinx):
    sample = _fsdd(("lucas",))[3]
    audio = (SAMPLES / sample.path).read_bytes()
    rec = sphinx("en", ["three", "nought", "[unk]"], audio)
    assert isinstance(rec, Recognition)
    assert set(rec.text.split()) <= {"three"}
    assert "nought" in sphinx.missing  # not in the pronunciation dictionary: left out, as Vosk does
    for w in rec.words:
        assert 0.0 <= w.confidence <= 1.0 and w.start < w.end
    with pytest.raises(ValueError, match="English"):
        sphinx("ru", ["три"], audio)
    with pytest.raises(ValueError, match="dictionary"):
        sphinx("en", ["nought", "[unk]"], audio)
    with pytest.raises(ValueError):  # the product's decoder refuses what is not audio
        sphinx("en", ["three"], b"not audio at all")


# --------------------------------------------------------------------------- without real speech


def rec(text: str, confs, alternatives=()) -> Recognition:
    words = tuple(Word(t, c, i * 0.5, i * 0.5 + 0.4) for i, (t, c) in enumerate(zip(text.split(), confs)))
    return Recognition(text=text, words=words, alternatives=tuple(alternatives),
                       has_unk="[unk]" in text.split(), audio_seconds=2.0)


SCRIPTED = [
    ("digits", rec("one two three", [0.95, 0.9, 0.97])),
    ("digits", rec("one two three", [0.95, 0.7, 0.97])),
    ("digits", rec("one two three", [0.95, 0.3, 0.97])),
    ("digits", rec("one [unk] three", [0.95, 0.9, 0.97])),
    ("digits", rec("one two three", [0.95, 0.9, 0.97], [("one two three", 0.6), ("one two two", 0.4)])),
    ("number", rec("twenty three", [0.95, 0.95])),
    ("digits", rec("", [])),
]


class Scripted:
    def __init__(self):
        self.queue = []

    def __call__(self, lang, grammar, audio):
        return self.queue.pop(0)


@pytest.mark.parametrize("kind,recognition", SCRIPTED)
def test_harness_decides_as_the_speech_steps_do(config, kind, recognition):
    """The harness feeds the policy what the product's speech steps feed it."""
    from ivr.voice.speech_steps import SpeechSteps

    config.recording_url_prefixes = ("https://api.twilio.com/",)
    scripted = Scripted()
    steps = SpeechSteps(config, recognizer=scripted, fetcher=lambda url: b"audio")
    scripted.queue.append(recognition)
    heard = steps.from_recording("en", kind, "https://api.twilio.com/rec", 1)
    scripted.queue.append(recognition)
    mine = sa.answer(scripted, sa.Sample("x/y.wav", "en", "123"), b"audio", kind)
    assert mine.decision(Thresholds.from_config(config)).value == heard.speech.decision
    assert mine.best == heard.speech.value


def test_figures_on_known_answers():
    def ans(expected, best, conf, **doubt):
        d = {"min_word_confidence": conf if best else 0.0, "alternatives_disagree": False,
             "has_unk": False, "parse_ambiguous": False, **doubt}
        return sa.Answer(sa.Sample("f/x.wav", "en", expected), best or "", best, conf, d)

    answers = [ans("12", "12", 0.9), ans("34", "35", 0.9), ans("5", "5", 0.6), ans("6", None, 0.0),
               ans("78", "78", 0.95, parse_ambiguous=True)]
    fig = sa.figures(answers, [(0.5, 0.85), (0.7, 0.95)])
    assert fig.n == 5 and fig.exact == pytest.approx(3 / 5)
    assert fig.digit_error_rate == pytest.approx((0 + 1 + 0 + 1 + 0) / 8)
    assert fig.by_threshold[(0.5, 0.85)] == pytest.approx(
        {"accepted": 2 / 5, "wrongly_accepted": 1 / 5, "confirmed": 2 / 5, "wrong_read_back": 0.0, "reasked": 1 / 5})
    assert fig.by_threshold[(0.7, 0.95)] == pytest.approx(
        {"accepted": 0.0, "wrongly_accepted": 0.0, "confirmed": 3 / 5, "wrong_read_back": 1 / 5, "reasked": 2 / 5})
    assert fig.empty == pytest.approx(1 / 5)  # the one with no words at all
    assert answers[1].decision(DEFAULT) is Decision.ACCEPT and not answers[1].correct
    with pytest.raises(ValueError):
        sa.figures([], [(0.5, 0.85)])


@pytest.mark.parametrize("a,b,d", [("", "", 0), ("123", "123", 0), ("123", "13", 1), ("", "12", 2),
                                   ("1234", "2143", 3), ("12.5", "125", 1)])
def test_edit_distance(a, b, d):
    assert sa.edit_distance(a, b) == d == sa.edit_distance(b, a)


def test_vosk_engine_needs_a_model(capsys):
    with pytest.raises(SystemExit):
        sa.main(["--engine", "vosk"])
    assert "--model" in capsys.readouterr().err


def test_pocketsphinx_engine_is_english_only(capsys):
    with pytest.raises(SystemExit):
        sa.main(["--engine", "pocketsphinx", "--lang", "ru"])
    assert "English only" in capsys.readouterr().err


def test_what_cannot_be_measured_is_named_with_the_reason(capsys, tmp_path):
    if not (SAMPLES / "manifest.csv").is_file():
        pytest.skip(f"labelled speech samples not found at {SAMPLES}")
    sa.main(["--engine", "pocketsphinx", "--engine", "vosk", "--engine", "twilio", "--lang", "ru", "--lang", "uk",
             "--models-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert "measured: nothing" in out
    assert "not measured: pocketsphinx ru: no model (pocketsphinx's model is English only)" in out
    assert f"not measured: vosk ru: no model in {tmp_path / 'ru'}" in out
    assert "not measured: twilio uk: Twilio's recogniser is a remote service" in out


def _wav(seconds: float, rate: int = 16000, tone_hz: float = 0.0, lead_ms: int = 0) -> bytes:
    import math as m

    from speech.audio import pcm_to_wav

    n = int(seconds * rate)
    samples = [0] * int(lead_ms * rate / 1000) + [int(8000 * m.sin(2 * m.pi * tone_hz * i / rate)) if tone_hz else 0
                                                 for i in range(n)]
    return pcm_to_wav(b"".join(v.to_bytes(2, "little", signed=True) for v in samples), rate)


def _level(wav: bytes) -> float:
    from speech.audio import decode_audio, parse_wav_header

    info = parse_wav_header(wav)
    pcm = decode_audio(wav, info.sample_rate, pad_ms=0, normalise=False)
    return sa._audioop().rms(pcm, 2)


def test_the_telephone_line_is_8_khz_mu_law_from_300_to_3400_hz():
    import shutil

    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    from speech.audio import parse_wav_header

    voice, hum, hiss = (sa.telephone(_wav(0.5, tone_hz=f)) for f in (1000, 80, 6000))
    info = parse_wav_header(voice)
    assert (info.format_tag, info.sample_rate, info.bits, info.channels) == (7, 8000, 8, 1)  # μ-law
    assert _level(hum) < 0.2 * _level(voice) and _level(hiss) < 0.2 * _level(voice)  # outside the band: gone


def test_trimming_takes_the_silence_off_both_ends():
    import shutil

    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    from speech.audio import parse_wav_header

    line = sa.telephone(_wav(0.4, tone_hz=1000, lead_ms=600))
    trimmed = sa.trim_silence(line)
    assert parse_wav_header(line).seconds == pytest.approx(1.0, abs=0.02)
    assert parse_wav_header(trimmed).seconds == pytest.approx(0.4, abs=0.05)
    silent = sa.telephone(_wav(0.5))
    assert sa.trim_silence(silent) == silent  # never trimmed to nothing


def test_one_spelling_per_sound_keeps_confidence_whole(tmp_path):
    """Both "oh" and "o" in a grammar halve the posterior of a spoken "oh" (the same sound):
    under the re-ask threshold however clearly it was said. The grammar now has one of them."""
    _needs_real_speech()
    import shutil
    import subprocess

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    wav = tmp_path / "oh.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "120", "-w", str(wav), "one oh five"], check=True)
    grammar = sa.build_grammar("en", "digits")
    assert "oh" in grammar and "o" not in grammar

    def oh_confidence(words):
        rec = sa.PocketsphinxRecognizer()("en", words, wav.read_bytes())  # fresh: no state carried
        assert sa.parse_number(rec.text, "en").best == "105", rec.text
        return next(w.confidence for w in rec.words if w.text in ("oh", "o"))

    split = oh_confidence(grammar[:-1] + ["o", "naught", "[unk]"])  # the spellings listed before
    whole = oh_confidence(grammar)
    assert split < 0.55 and whole > 0.8 and whole - split > 0.3, (split, whole)


@pytest.mark.speech
def test_vosk_engine_is_the_product_path(ko_model_path):
    """``--engine vosk --model PATH``: the speech steps' own decode + recognize with that model
    (here the Korean test model, the only Vosk model available to the tests)."""
    fixtures = ROOT / "tests" / "fixtures" / "audio"
    vosk = sa.VoskRecognizer(ko_model_path)
    rec = vosk("ko", "영 일 이 삼 사 오 육 칠 팔 구".split() + ["[unk]"], (fixtures / "ko_357_16k.wav").read_bytes())
    assert isinstance(rec, Recognition) and rec.words
    assert set(rec.text.split()) <= set("영 일 이 삼 사 오 육 칠 팔 구 [unk]".split())
    with pytest.raises(ValueError):
        vosk("ko", ["삼"], b"not audio at all")
