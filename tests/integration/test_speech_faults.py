"""A recorded answer on a server that cannot recognise it (speech model missing or broken, ffmpeg
absent) is heard as "not understood": the caller is asked again, the audio is kept for an operator,
and an error names the problem. Never an HTTP 500 that loses the caller's audio."""
from __future__ import annotations

import logging
import struct
from pathlib import Path

import pytest
from sqlalchemy import select

from ivr.app import create_app
from ivr.voice.simulator import SimulatedCall, flask_transport
from ivr.voice.speech_steps import SpeechSteps
from readings_store.models import Utterance
from tests import factories as f
from tests.conftest import AUTH_TOKEN

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "audio"
MEDIA = "https://api.twilio.com/2010-04-01/Accounts/AC" + "0" * 32 + "/Recordings/"
RECORDING_SID = "RE" + "4" * 32


def float_wav(seconds: float = 0.5, rate: int = 8000) -> bytes:
    """A 32-bit float WAV (format tag 3): only ffmpeg decodes it."""
    frames = b"".join(struct.pack("<f", 0.0) for _ in range(int(seconds * rate)))
    fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * 4, 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(frames)) + frames
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.fixture
def regions(db):
    north = f.region(db, code="N", name="North", menu_key=1)
    f.region(db, code="S", name="South", menu_key=2)
    f.meter(db, f.account(db, north, number="100001"), serial="EL000123", previous=1000)
    db.commit()


def answer_by_recording(config, engine, audio: bytes):
    """A call reaches the account step, and the caller's answer arrives as a recording."""
    fetched = []

    def fetch(url):
        fetched.append(url)
        return audio

    app = create_app(config, engine=engine, speech=SpeechSteps(config, fetcher=fetch))
    call = SimulatedCall("http://localhost", AUTH_TOKEN, flask_transport(app.test_client()), caller="+442079460000")
    call.start()
    call.press("4")
    call.press("1")
    prompt = call._follow(call.last.gather["action"], {  # noqa: SLF001 - the simulator's TwiML follower
        "RecordingUrl": MEDIA + RECORDING_SID, "RecordingSid": RECORDING_SID, "RecordingDuration": "2",
        "Digits": "#"})
    assert fetched == [MEDIA + RECORDING_SID]
    return prompt


def check_kept_and_asked_again(db, config, caplog, prompt, audio: bytes, problem: str):
    assert "Sorry, I did not catch that." in prompt.texts  # asked again
    assert any("account number" in t for t in prompt.texts)
    utt = db.scalars(select(Utterance)).one()
    assert utt.decision == "retry" and utt.step == "account" and utt.recording_sid == RECORDING_SID
    assert (config.recordings_dir / utt.audio_path).read_bytes() == audio  # kept for an operator
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and r.name == "ivr.voice.speech_steps"]
    assert errors and problem in errors[0], errors


def test_model_missing_on_this_host(db, config, engine, regions, caplog, tmp_path):
    """Another worker (with the model) asked for the recording; this one has none."""
    config.speech_engines = {"en": "vosk", "ru": "vosk", "uk": "vosk", "ro": "twilio"}
    config.models_dir = tmp_path / "no-models"
    audio = (FIXTURES / "ko_357_16k.wav").read_bytes()
    with caplog.at_level(logging.WARNING):
        prompt = answer_by_recording(config, engine, audio)
    check_kept_and_asked_again(db, config, caplog, prompt, audio, "No Vosk model for language 'en'")


def test_model_broken(db, config, engine, regions, caplog, tmp_path):
    """The folder looks like a model (and has a word list) but Vosk cannot load it."""
    model = tmp_path / "models" / "en"
    (model / "am").mkdir(parents=True)
    (model / "conf").mkdir()
    (model / "graph").mkdir()
    (model / "am" / "final.mdl").write_bytes(b"garbage, not a Kaldi model")
    (model / "conf" / "model.conf").write_text("--sample-frequency=16000\n")
    (model / "graph" / "words.txt").write_text("zero 1\none 2\n")
    config.speech_engines = {"en": "vosk", "ru": "off", "uk": "off", "ro": "off"}
    config.models_dir = tmp_path / "models"
    audio = (FIXTURES / "ko_357_16k.wav").read_bytes()
    with caplog.at_level(logging.WARNING):
        prompt = answer_by_recording(config, engine, audio)
    check_kept_and_asked_again(db, config, caplog, prompt, audio, "Vosk could not load the 'en' model")


def test_ffmpeg_absent(db, config, engine, regions, caplog, monkeypatch, tmp_path):
    """A recording format only ffmpeg decodes, on a server without ffmpeg."""
    import speech.audio

    monkeypatch.setattr(speech.audio.shutil, "which", lambda name, *a, **k: None)
    config.speech_engines = {"en": "vosk", "ru": "vosk", "uk": "vosk", "ro": "twilio"}
    config.models_dir = tmp_path / "no-models"
    audio = float_wav()
    with caplog.at_level(logging.WARNING):
        prompt = answer_by_recording(config, engine, audio)
    check_kept_and_asked_again(db, config, caplog, prompt, audio, "ffmpeg is needed")
