"""A media server that will not recognise a call (full, or behind): the phone line moves that call
to the record transport for good and asks its current question again at once; other calls go on
streaming. Whole calls as in ``test_stream_calls``: the webhooks through the Flask app, the real
media endpoint (``MediaServer`` with ``max_streams``), the phone line's handlers, Twilio's REST
API played by ``FakeTwilioRest`` (the real ``twilio.rest.Client``), and recognition scripted
(``FakeListener`` for the stream, ``FakeRecognizer`` and ``FakeFetch`` for recordings).
"""
from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections import deque

import pytest
from sqlalchemy import select

from ivr.app import create_app
from ivr.voice.media_server import MediaServer
from ivr.voice.simulator import SimulatedCall, flask_transport
from ivr.voice.speech_steps import SpeechSteps
from ivr.voice.stream_line import StreamLine
from readings_store.models import Call, Utterance
from speech.stream import StreamSettings
from tests.conftest import AUTH_TOKEN
from tests.stream_harness import play_stream, silence

from .test_speech_calls import fake, fetch, rec, records, say  # noqa: F401 - fake, fetch, records: fixtures
from .test_stream_calls import (EN, MEDIA_URL, VOICE, FakeListener, rest, stored,  # noqa: F401 - fixtures
                                stream_config, to_account)

RECORD_KEYS = "0123456789*#"


@pytest.fixture
def line(stream_config, engine, sessions, rest, fake, fetch):  # noqa: F811 - the imported fixtures
    stream_config.recording_url_prefixes = ("https://api.twilio.com/",)
    speech = SpeechSteps(stream_config, recognizer=fake, fetcher=fetch)
    app = create_app(stream_config, engine=engine, speech=speech)
    app.config.update(TESTING=True)
    stream_line = StreamLine(stream_config, sessions, speech, app.extensions["ivr"].prompts, rest.client(),
                             models=lambda lang: None)
    stream_line.client = app.test_client()
    return stream_line


def dial(line, rest) -> SimulatedCall:  # noqa: F811
    call = SimulatedCall("http://localhost", AUTH_TOKEN, flask_transport(line.client), caller=EN)
    rest.live_calls[call.call_sid] = call
    return call


def row(db, call: SimulatedCall) -> Call:
    db.expire_all()
    return db.scalars(select(Call).where(Call.call_sid == call.call_sid)).one()


def moves(rest, call: SimulatedCall) -> list[str]:  # noqa: F811
    return [form["Url"].split("/voice/")[1] for sid, form in rest.updates if sid == call.call_sid]


async def _until(condition, what: str):
    for _ in range(3000):  # bounded: the test asserts what happens, not how fast
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


def test_a_full_media_server_moves_the_second_call_to_the_record_transport(db, records, line, rest, fake):  # noqa: F811
    first, second = dial(line, rest), dial(line, rest)
    to_account(first)
    to_account(second)
    FakeListener.scripts[first.call_sid] = deque([rec("one zero zero zero zero one")])
    FakeListener.scripts[second.call_sid] = deque([rec("three zero zero zero zero three")])
    audio = silence(200) + VOICE + silence(800)

    async def main():
        server = MediaServer(line.handlers(), auth_token=AUTH_TOKEN, public_url="wss://ivr.example.org",
                             settings=StreamSettings(), listener_factory=FakeListener, max_streams=1)
        await server.start("127.0.0.1", 0)
        url = f"ws://127.0.0.1:{server.port}/voice/stream"
        try:
            release = asyncio.Event()
            a = asyncio.create_task(play_stream(url, AUTH_TOKEN, audio, call_sid=first.call_sid, realtime=False,
                                                signed_url=MEDIA_URL, hold=release,
                                                custom=first.stream["parameters"]))
            await _until(lambda: len(moves(rest, first)) == 2, "the first call's answer moving it on")
            # The first call holds the server's one stream: the second caller's stream is refused.
            b = await play_stream(url, AUTH_TOKEN, audio, call_sid=second.call_sid, realtime=False,
                                  signed_url=MEDIA_URL, hold=asyncio.Event(), custom=second.stream["parameters"])
            release.set()
            return await a, b, server.stats
        finally:
            await server.stop()
            server.close()

    a, b, stats = asyncio.run(main())
    assert (a.close_code, b.close_code) == (1000, 1013)
    assert (stats.streams, stats.refused_streams, stats.shed_streams, stats.callback_errors) == (1, 1, 0, 0)

    # The first call streams on: its answer moved it on, its next question has no <Record>.
    assert [m.split("?")[0] for m in moves(rest, first)] == ["listen/account", "step/account"]
    assert row(db, first).speech_transport is None and first.last.record is None
    assert int(first.last.gather["timeout"]) >= 15

    # The second: marked, and moved at once to its question again, with the prompt and <Record>.
    seq = row(db, second).seq
    assert row(db, second).speech_transport == "record" and row(db, second).state["step"] == "account"
    assert moves(rest, second) == [f"listen/account?seq={seq}&prompt=1"]
    assert any("account number" in t for t in second.last.texts)
    assert second.last.record["finishOnKey"] == RECORD_KEYS and second.last.gather["timeout"] == "1"
    status, body = second.post(f"http://localhost/voice/{moves(rest, second)[0]}")
    root = ET.fromstring(body)
    assert status == 200 and root.find(".//Stream") is None and root.find("Start") is None
    assert root.find("Record").get("finishOnKey") == RECORD_KEYS
    assert line.question(second.call_sid) is None  # nothing is expected over a stream any more

    # The caller answers as the record transport hears answers, to the end of the reading.
    p = say(second, fake, rec("one zero zero zero zero one"))
    assert p.record is not None and p.record["finishOnKey"] == RECORD_KEYS  # the next question too
    p = say(second, fake, rec("one two one zero zero"))
    assert "That's 1 2 1 0 0." in p.texts
    assert "Reading saved." in second.press("1").texts
    assert stored(db) == [("EL000123", "total", "12100", "accepted", "phone_speech")]
    kept = db.scalars(select(Utterance).join(Call).where(Call.call_sid == second.call_sid)).all()
    assert [(u.step, u.engine) for u in kept] == [("account", "vosk"), ("value", "vosk")]
    assert moves(rest, second) == [f"listen/account?seq={seq}&prompt=1"]  # moved once, nothing since


def test_a_refused_call_at_a_keypad_question_is_marked_but_not_moved(db, records, line, rest):  # noqa: F811
    call = dial(line, rest)
    to_account(call)
    call.press("100001#")  # typed: keypad from then on, the question sounds the same either way
    line.on_refused(call.call_sid)
    assert row(db, call).speech_transport == "record" and rest.updates == []


def test_a_refusal_for_a_call_that_is_over_or_unknown_changes_nothing(db, records, line, rest):  # noqa: F811
    call = dial(line, rest)
    to_account(call)
    assert call.hang_up() == 204
    line.on_refused(call.call_sid)
    line.on_refused("CA" + "f" * 32)
    assert row(db, call).speech_transport is None and rest.updates == []
    assert db.scalars(select(Call)).all() == [row(db, call)]


def test_listen_takes_prompt_0_or_1_only(db, records, line, rest):  # noqa: F811
    call = dial(line, rest)
    to_account(call)
    seq = row(db, call).seq
    status, body = call.post(f"http://localhost/voice/listen/account?seq={seq}&prompt=yes")
    assert status == 400 and "prompt must be 0 or 1" in body
    status, body = call.post(f"http://localhost/voice/listen/account?seq={seq}&prompt=1")
    gather = ET.fromstring(body).find("Gather")
    assert status == 200 and len(gather) > 0 and int(gather.get("timeout")) >= 15  # streamed: no <Record>
    status, body = call.post(f"http://localhost/voice/listen/account?seq={seq}")
    assert status == 200 and len(ET.fromstring(body).find("Gather")) == 0  # barge-in: no prompt
