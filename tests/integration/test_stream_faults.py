"""A media server that dies is survivable: Twilio's report that the call's stream stopped or failed
(``<Stream statusCallback>``) moves the call to the record transport at once and asks its question
again with ``<Record>``; if that report is lost, the streamed question's ``<Gather>`` running out
with no answer does the same. Whole calls as in ``test_stream_refused`` (the Flask app, the phone
line's handlers, Twilio's REST API played by ``FakeTwilioRest``, recognition scripted); the media
server that is killed runs in a process of its own (``tests/media_child.py``) and dies by SIGKILL."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from sqlalchemy import select

from readings_store.models import Call, Reading, Utterance
from tests.conftest import AUTH_TOKEN
from tests.stream_harness import play_stream, silence, until
from tests.twilio_fake import ACCOUNT_SID

from .test_speech_calls import fake, fetch, rec, records, say  # noqa: F401 - fake, fetch, records: fixtures
from .test_stream_calls import EN, MEDIA_URL, VOICE, rest, stored, stream_config, to_account  # noqa: F401
from .test_stream_refused import RECORD_KEYS, dial, line, moves  # noqa: F401 - line: a fixture

ROOT = Path(__file__).resolve().parents[2]


def row(db, call) -> Call:
    db.expire_all()
    return db.scalars(select(Call).where(Call.call_sid == call.call_sid)).one()


def stream_status(call, event: str, error: str | None = None) -> int:
    """Twilio's <Stream statusCallback> for the call's stream, signed like every webhook."""
    params = {"StreamSid": "MZ" + "1" * 32, "StreamName": "MZ" + "1" * 32, "StreamEvent": event,
              "Timestamp": "2026-11-22T10:00:00.000Z"}
    if error:
        params["StreamError"] = error
    status, _ = call.post(call.stream["status_callback"], params)
    return status


@pytest.fixture
def web_rest(line, rest):  # noqa: F811
    """The web app moves live calls through the same fake REST API."""
    line.client.application.extensions["ivr"].rest = rest.client()
    return rest


# --- the stream's status callback -----------------------------------------------------------------

def test_a_failed_stream_moves_the_call_to_record_at_once(db, records, line, web_rest, fake):  # noqa: F811
    call = dial(line, web_rest)
    to_account(call)
    seq = row(db, call).seq
    assert stream_status(call, "stream-started") == 204 and web_rest.updates == []
    assert stream_status(call, "stream-error", "Stream - WebSocket - Connection Broken Pipe") == 204
    assert row(db, call).speech_transport == "record"
    assert moves(web_rest, call) == [f"listen/account?seq={seq}&prompt=1"]
    assert call.last.record is not None and call.last.record["finishOnKey"] == RECORD_KEYS
    assert any("account number" in t for t in call.last.texts)  # asked again, prompt and all
    # Twilio also reports the stop: the call is not moved twice.
    assert stream_status(call, "stream-stopped") == 204
    assert len(moves(web_rest, call)) == 1
    say(call, fake, rec("one zero zero zero zero one"))
    say(call, fake, rec("one two one zero zero"))
    assert "Reading saved." in call.press("1").texts
    assert stored(db) == [("EL000123", "total", "12100", "accepted", "phone_speech")]


def test_a_stream_stopping_after_the_call_ended_changes_nothing(db, records, line, web_rest):  # noqa: F811
    call = dial(line, web_rest)
    to_account(call)
    assert call.hang_up() == 204
    assert stream_status(call, "stream-stopped") == 204
    assert row(db, call).speech_transport is None and web_rest.updates == []


def test_a_call_twilio_will_not_move_is_still_recorded_from_its_next_question(db, records, line, rest, stream_config):  # noqa: F811
    from twilio.rest import Client

    dead = Client(ACCOUNT_SID, AUTH_TOKEN)
    dead.api.base_url = "http://127.0.0.1:9"  # nothing listens: the update fails
    line.client.application.extensions["ivr"].rest = dead
    call = dial(line, rest)
    to_account(call)
    assert stream_status(call, "stream-error", "gone") == 204
    assert row(db, call).speech_transport == "record"


def test_the_stream_status_webhook_is_signed(db, records, line, rest):  # noqa: F811
    call = dial(line, rest)
    to_account(call)
    response = line.client.post("/voice/stream-status", data={"CallSid": call.call_sid, "StreamEvent": "stream-error"})
    assert response.status_code == 403 and row(db, call).speech_transport is None


# --- a streamed question that nobody answered -----------------------------------------------------

def test_a_streamed_question_timing_out_with_no_answer_asks_again_with_record(db, records, line, rest, fake):  # noqa: F811
    call = dial(line, rest)
    to_account(call)
    before = row(db, call)
    p = call.press("")  # the stream heard nothing for 20 s: the Gather runs out
    after = row(db, call)
    assert after.speech_transport == "record" and (after.seq, after.state) == (before.seq, before.state)
    assert p.record is not None and any("account number" in t for t in p.texts)  # no try lost, no "sorry"
    assert rest.updates == []
    say(call, fake, rec("one zero zero zero zero one"))
    call.press("12100#")
    assert "Reading saved." in call.press("1").texts
    assert stored(db) == [("EL000123", "total", "12100", "accepted", "phone_keypad")]


def test_a_keypad_question_timing_out_is_an_ordinary_silence(db, records, line, rest):  # noqa: F811
    call = dial(line, rest)
    to_account(call)
    call.press("100001#")  # typed: keypad from then on
    p = call.press("")
    assert row(db, call).speech_transport is None and p.record is None
    assert row(db, call).state["tries"] == 1


# --- kill -9 ----------------------------------------------------------------------------------------

@pytest.fixture
def media_process(stream_config, rest, tmp_path):  # noqa: F811
    """Start ``tests/media_child.py`` on the test's database and fake REST API: (process, port)."""
    started = []

    def start(scripts: dict[str, list[str]]):
        spec = tmp_path / f"media-{len(started)}.json"
        spec.write_text(json.dumps({
            "database_url": stream_config.database_url, "auth_token": AUTH_TOKEN, "account_sid": ACCOUNT_SID,
            "public_url": stream_config.public_url, "media_url": MEDIA_URL, "rest_url": rest.url,
            "speech_engines": stream_config.speech_engines, "scripts": scripts}))
        log = (tmp_path / f"media-{len(started)}.log").open("w")
        proc = subprocess.Popen([sys.executable, "-m", "tests.media_child", str(spec)], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=log, text=True)
        started.append(proc)
        first = proc.stdout.readline()
        if not first.startswith("port "):
            proc.kill()
            raise AssertionError(f"the media server did not start: {(tmp_path / spec.stem).with_suffix('.log')}")
        return proc, int(first.split()[1])

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def stream_in_background(port: int, call) -> tuple[threading.Thread, dict]:
    """Twilio's side of the call's stream: the caller's answer, then the line kept open (the call
    goes on) until the server goes away."""
    out = {}

    def run():
        out["played"] = asyncio.run(play_stream(
            f"ws://127.0.0.1:{port}/voice/stream", AUTH_TOKEN, silence(200) + VOICE + silence(800),
            call_sid=call.call_sid, realtime=False, signed_url=MEDIA_URL, custom=call.stream["parameters"],
            linger=120, stop=False))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


@pytest.mark.parametrize("twilio_reports_it", [True, False], ids=["stream-error reported", "report lost"])
def test_the_media_server_killed_mid_call_the_call_finishes_by_recording(
        db, records, line, web_rest, fake, media_process, twilio_reports_it):  # noqa: F811
    call = dial(line, web_rest)
    to_account(call)
    proc, port = media_process({call.call_sid: ["one zero zero zero zero one"]})
    thread, out = stream_in_background(port, call)
    # The account is spoken over the stream and moves the call on: the media server works.
    until(lambda: [m.split("?")[0] for m in moves(web_rest, call)] == ["listen/account", "step/account"],
          "the spoken account moving the call on")
    value_question = row(db, call)
    assert value_question.state["step"] == "value" and value_question.speech_transport is None

    os.kill(proc.pid, signal.SIGKILL)  # mid-call, the stream open
    proc.wait(10)
    thread.join(30)
    assert out["played"].close_code not in (1000, None)  # the connection was lost, not closed

    # The caller says the value into the dead stream: nobody hears it. Then either Twilio reports
    # the stream's failure, or (that report lost) the streamed question's Gather runs out.
    if twilio_reports_it:
        assert stream_status(call, "stream-error", "Stream - WebSocket - Connection Reset") == 204
        assert moves(web_rest, call)[-1] == f"listen/value?seq={value_question.seq}&prompt=1"
    else:
        call.press("")
        assert len(moves(web_rest, call)) == 2
    assert call.last.record is not None and row(db, call).speech_transport == "record"
    assert row(db, call).state["tries"] == value_question.state["tries"]  # no try lost to our fault

    # The call finishes by recording, and the reading is stored once.
    p = say(call, fake, rec("one two one zero zero"))
    assert "That's 1 2 1 0 0." in p.texts
    assert "Reading saved." in call.press("1").texts
    assert call.hang_up() == 204
    assert stored(db) == [("EL000123", "total", "12100", "accepted", "phone_speech")]
    assert len(db.scalars(select(Reading).where(Reading.call_id == row(db, call).id)).all()) == 1
    kept = db.scalars(select(Utterance).order_by(Utterance.id)).all()
    assert [(u.step, u.engine) for u in kept] == [("account", "vosk-stream"), ("value", "vosk")]
    assert ET.fromstring(row(db, call).last_twiml).find("Start") is None
