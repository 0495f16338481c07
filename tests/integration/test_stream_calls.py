"""Speech answers over a Twilio Media Stream, whole calls: the webhooks through the Flask app as
Twilio calls them (``SimulatedCall``), the caller's audio through the real media endpoint
(``ivr.voice.media_server.MediaServer``, signed handshake, JSON messages, μ-law, played by
``tests.stream_harness.play_stream``), the phone line's handlers (``ivr.voice.stream_line``), and
Twilio's REST API played by ``FakeTwilioRest``, a local HTTP server that records every call
update the real ``twilio.rest.Client`` makes.

Recognition is scripted: ``FakeListener`` stands in for the Vosk listener and cuts the audio into
answers by its energy alone, returning the recognition scripted for each answer (the media
endpoint's own tests cover Vosk). Everything else is the real code.
"""
from __future__ import annotations

import asyncio
import threading
import xml.etree.ElementTree as ET
from collections import deque

import pytest
from sqlalchemy import select

from ivr.app import create_app
from ivr.config import ConfigError, load_config
from ivr.voice.media_server import Answer, MediaServer
from ivr.voice.simulator import SimulatedCall, flask_transport
from ivr.voice.speech_steps import SpeechSteps
from ivr.voice.stream_line import STREAM_ENGINE, StreamLine
from readings_store.models import Call, Reading, Utterance
from speech.stream import FRAME_BYTES, StreamSettings, frame_dbfs
from tests.conftest import AUTH_TOKEN
from tests.stream_harness import play_stream, read_pcm8k, silence
from tests.twilio_fake import ACCOUNT_SID, FakeTwilioRest
from tests.speech.conftest import FIXTURES

from .test_speech_calls import FakeRecognizer, rec, records  # noqa: F401 - records is a fixture

EN = "+442079460000"
MEDIA_URL = "wss://ivr.example.org/voice/stream"
VOICE = read_pcm8k(FIXTURES / "ko_357_16k.wav")  # any voiced audio: FakeListener hears energy only


class FakeListener:
    """Stands in for ``ivr.voice.media_server.CallListener``: an answer is a stretch of voiced audio
    ended by 300 ms of silence, and its recognition is the next one scripted for the call. The
    question is asked at the onset, as the real listener does; no question, no answer."""

    scripts: dict[str, deque] = {}

    def __init__(self, call_sid, questions, models, settings):
        self.call_sid, self._questions = call_sid, questions
        self.question = None
        self._voiced = self._quiet = 0
        self._pcm = b""
        self._leftover = b""

    @property
    def listening(self) -> bool:
        return self._voiced > 0

    def feed(self, pcm: bytes):
        started = False
        for i in range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES):
            frame = pcm[i:i + FRAME_BYTES]
            if frame_dbfs(frame) > -45:
                if self._voiced == 0:
                    self.question = self._questions(self.call_sid)
                    started = self.question is not None
                self._voiced += 1
                self._quiet = 0
            elif self._voiced:
                self._quiet += 1
            if self._voiced:
                self._pcm += frame
            if self._voiced and self._quiet >= 15:
                question, self._voiced, self._quiet = self.question, 0, 0
                wav, self._pcm = b"RIFF" + self._pcm[:64], b""
                self._leftover = pcm[i + FRAME_BYTES:]
                script = self.scripts.get(self.call_sid)
                if question is None or not script:
                    continue
                return started, Answer(question, script.popleft(), wav, None)
        self._leftover = b""
        return started, None

    def resume(self):
        pending, self._leftover = self._leftover, b""
        return self.feed(pending)


@pytest.fixture
def stream_config(config, monkeypatch):
    config.speech_engines = {"en": "vosk", "ru": "vosk", "uk": "vosk", "ro": "twilio"}
    config.media_url, config.speech_transport = MEDIA_URL, "stream"
    config.public_url = "http://localhost"
    return config


@pytest.fixture
def rest():
    fake = FakeTwilioRest()
    yield fake
    fake.close()


@pytest.fixture
def line(stream_config, engine, sessions, rest):
    speech = SpeechSteps(stream_config, recognizer=FakeRecognizer())
    app = create_app(stream_config, engine=engine, speech=speech)
    app.config.update(TESTING=True)
    services = app.extensions["ivr"]
    stream_line = StreamLine(stream_config, sessions, speech, services.prompts, rest.client(), models=lambda lang: None)
    stream_line.client = app.test_client()
    return stream_line


def dial(line, rest) -> SimulatedCall:
    call = SimulatedCall("http://localhost", AUTH_TOKEN, flask_transport(line.client), caller=EN)
    rest.call = call
    return call


def speak(line, call: SimulatedCall, *answers, gap_ms: int = 800):
    """The caller speaks ``answers`` (scripted recognitions) over the call's media stream."""
    FakeListener.scripts[call.call_sid] = deque(answers)
    audio = silence(200) + b"".join(VOICE + silence(gap_ms) for _ in answers)

    async def main():
        server = MediaServer(line.handlers(), auth_token=AUTH_TOKEN, public_url=MEDIA_URL.rsplit("/voice", 1)[0],
                             settings=StreamSettings(), listener_factory=FakeListener)
        await server.start("127.0.0.1", 0)
        try:
            played = await play_stream(f"ws://127.0.0.1:{server.port}/voice/stream", AUTH_TOKEN, audio,
                                       call_sid=call.call_sid, realtime=False, signed_url=MEDIA_URL,
                                       custom=call.stream["parameters"])
            assert played.status is None
            return server.stats
        finally:
            await server.stop()
            server.close()

    stats = asyncio.run(main())
    assert stats.callback_errors == 0
    return stats


def stored(db):
    db.expire_all()
    return [(r.meter.serial, r.register, format(r.value.normalize(), "f"), r.status, r.channel)
            for r in db.scalars(select(Reading).where(Reading.channel.like("phone%")).order_by(Reading.id))]


def to_account(call: SimulatedCall):
    first = call.post("http://localhost/voice/incoming")[1]
    call.start()
    call.press("")  # the caller ID's language (English)
    return first, call.press("1")  # region North


def test_the_call_starts_a_stream_once_and_asks_speech_questions_without_record(db, records, line, rest):
    call = dial(line, rest)
    first, p = to_account(call)
    root = ET.fromstring(first)
    stream = root.find("Start/Stream")
    assert stream is not None and stream.get("url") == MEDIA_URL and stream.get("track") == "inbound_track"
    assert p.gather["input"] == "dtmf" and int(p.gather["timeout"]) >= 15 and p.record is None
    assert p.gather["actionOnEmptyResult"] == "true" and p.texts  # the prompt is inside the Gather
    db.expire_all()
    assert ET.fromstring(db.scalars(select(Call)).one().last_twiml).find("Start") is None  # once per call


def test_a_caller_speaks_the_account_and_the_value_over_the_stream(db, records, line, rest):
    call = dial(line, rest)
    to_account(call)
    speak(line, call, rec("one zero zero zero zero one"), rec("one two one zero zero"))
    urls = rest.urls()
    assert [u.split("/voice/")[1].split("?")[0] for u in urls] == ["listen/account", "step/account",
                                                                    "listen/value", "step/value"]
    assert all(sid == call.call_sid and form["Method"] == "POST" for sid, form in rest.updates)
    p = rest.fetched[-1]  # Twilio fetched the step URL: the answer stored for it, the read-back
    assert "That's 1 2 1 0 0." in p.texts and call.last is p
    p = call.press("1")
    assert "Reading saved." in p.texts
    assert stored(db) == [("EL000123", "total", "12100", "accepted", "phone_speech")]
    kept = list(db.scalars(select(Utterance).order_by(Utterance.id)))
    assert [(u.step, u.engine, u.parsed_value) for u in kept] == [("account", STREAM_ENGINE, "100001"),
                                                                  ("value", STREAM_ENGINE, "12100")]
    assert all((line.config.recordings_dir / u.audio_path).read_bytes().startswith(b"RIFF") for u in kept)


def test_a_caller_who_types_during_the_prompt(db, records, line, rest):
    call = dial(line, rest)
    to_account(call)
    p = call.press("100001#")  # keys interrupt the prompt: the webhook takes the turn
    assert "Please enter the electricity meter reading, then press the hash key. For a decimal point, press star." in p.texts
    # Typed once, keypad from then on: the stream hears the caller but asks no question.
    assert line.question(call.call_sid) is None
    speak(line, call, rec("five five"))
    call.press("12100#")
    call.press("1")
    assert stored(db) == [("EL000123", "total", "12100", "accepted", "phone_keypad")]
    assert rest.updates == []


def test_a_caller_who_speaks_over_the_prompt(db, records, line, rest):
    call = dial(line, rest)
    to_account(call)
    speak(line, call, rec("one zero zero zero zero one"))
    assert [u.split("/voice/")[1].split("?")[0] for u in rest.urls()] == ["listen/account", "step/account"]
    # Speech started: the call was moved to the same question without its prompt (barge-in).
    p = rest.fetched[0]
    assert p.texts == [] and "/voice/step/account?seq=" in p.gather["action"]
    # The answer ended: the call was moved on to the next question.
    p = rest.fetched[1]
    assert any("the electricity reading" in t for t in p.texts)
    call.press("12100#")
    call.press("1")
    assert stored(db) == [("EL000123", "total", "12100", "accepted", "phone_keypad")]


def test_a_key_and_a_voice_answer_together_exactly_one_wins(db, records, line, rest):
    call = dial(line, rest)
    to_account(call)
    question = line.question(call.call_sid)
    assert question.step == "account"
    action = call.last.gather["action"]
    barrier = threading.Barrier(2)
    results = {}

    def keys():
        barrier.wait()
        results["keys"] = call.post(action, {"Digits": "100001"})

    def voice():
        barrier.wait()
        line.on_utterance(call.call_sid, question, rec("one zero zero zero zero one"), b"RIFF")

    threads = [threading.Thread(target=keys), threading.Thread(target=voice)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    db.expire_all()
    c = db.scalars(select(Call)).one()
    assert c.seq == question.seq + 1 and c.state["step"] == "value"  # one turn taken
    spoken = db.scalars(select(Utterance)).all()
    assert len(spoken) == len(rest.updates) <= 1  # voice won: its answer kept and the call moved
    # The same answer for both: whichever won, the other replays it.
    assert results["keys"][0] == 200 and ET.fromstring(results["keys"][1]).find("Gather") is not None


def test_a_voice_answer_to_a_question_the_call_left_is_dropped(db, records, line, rest):
    call = dial(line, rest)
    to_account(call)
    question = line.question(call.call_sid)
    call.press("100001#")
    line.on_utterance(call.call_sid, question, rec("two two two two two two"), b"RIFF")
    assert rest.updates == [] and db.scalars(select(Utterance)).all() == []
    db.expire_all()
    assert db.scalars(select(Call)).one().state["step"] == "value"


def test_the_transport_setting(monkeypatch):
    for key in ("IVR_MEDIA_URL", "IVR_SPEECH_TRANSPORT"):
        monkeypatch.delenv(key, raising=False)
    assert load_config().speech_transport == "record"
    monkeypatch.setenv("IVR_MEDIA_URL", MEDIA_URL)
    assert load_config().speech_transport == "stream"
    monkeypatch.setenv("IVR_SPEECH_TRANSPORT", "record")
    assert load_config().speech_transport == "record"
    for bad in ("https://ivr.example.org/voice/stream", "wss://", "wss://h/voice/stream?x=1"):
        monkeypatch.setenv("IVR_MEDIA_URL", bad)
        with pytest.raises(ConfigError, match="IVR_MEDIA_URL"):
            load_config()
    monkeypatch.delenv("IVR_MEDIA_URL")
    monkeypatch.setenv("IVR_SPEECH_TRANSPORT", "stream")
    with pytest.raises(ConfigError, match="needs IVR_MEDIA_URL"):
        load_config()
    monkeypatch.setenv("IVR_SPEECH_TRANSPORT", "carrier-pigeon")
    with pytest.raises(ConfigError, match="stream or record"):
        load_config()


def test_the_media_server_loads_the_phone_line_handlers(stream_config):
    from ivr.voice.media_server import Handlers, load_handlers

    stream_config.twilio_account_sid = ACCOUNT_SID
    handlers = load_handlers("ivr.voice.stream_line:handlers", stream_config)
    assert isinstance(handlers, Handlers) and handlers.on_speech_started is not None
    stream_config.twilio_account_sid = None
    with pytest.raises(ValueError, match="IVR_TWILIO_ACCOUNT_SID"):
        load_handlers("ivr.voice.stream_line:handlers", stream_config)
