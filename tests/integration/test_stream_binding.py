"""Each media stream is bound to one live call: the call's first answer starts the stream with a
random one-time token (``<Stream><Parameter name="token">``), and the media endpoint opens a stream
only for a live call on the stream transport whose unused token it names. A replayed handshake
(the signature is the same for every call) naming any call, with no token, a guessed one, another
call's, or one used already, is closed before it takes a slot, and moves no call anywhere.

Whole calls as in ``test_stream_calls``: the Flask app, the real media endpoint, the phone line's
handlers, Twilio's REST API played by ``FakeTwilioRest``, recognition scripted."""
from __future__ import annotations

import asyncio
import hashlib
import xml.etree.ElementTree as ET
from collections import deque

from sqlalchemy import select

from ivr.voice.media_server import MediaServer
from readings_store.models import Call
from speech.stream import StreamSettings
from tests.conftest import AUTH_TOKEN
from tests.stream_harness import play_stream, silence

from .test_speech_calls import rec, records  # noqa: F401 - records: a fixture
from .test_stream_calls import (MEDIA_URL, VOICE, FakeListener, line, rest,  # noqa: F401 - fixtures
                                stream_config, to_account)
from .test_stream_refused import dial  # each call its own simulated live call


def row(db, call) -> Call:
    db.expire_all()
    return db.scalars(select(Call).where(Call.call_sid == call.call_sid)).one()


def streams(line, *plays, max_streams: int = 0):
    """Play each (call SID, custom parameters, audio) as a stream, one after the other, against one
    media server (each kept open a moment after its audio, to see whether the server closes it);
    returns their results and the server's counts."""
    async def main():
        server = MediaServer(line.handlers(), auth_token=AUTH_TOKEN, media_url=MEDIA_URL, settings=StreamSettings(),
                             listener_factory=FakeListener, max_streams=max_streams)
        await server.start("127.0.0.1", 0)
        url = f"ws://127.0.0.1:{server.port}/voice/stream"
        try:
            played = []
            for sid, custom, audio in plays:
                played.append(await play_stream(url, AUTH_TOKEN, audio, call_sid=sid, realtime=False,
                                                signed_url=MEDIA_URL, custom=custom, linger=1.0))
            return played, server.stats
        finally:
            await server.stop()
            server.close()

    return asyncio.run(main())


ANSWER = silence(200) + VOICE + silence(800)


def test_the_stream_carries_a_one_time_token_and_a_status_callback(db, records, line, rest):  # noqa: F811
    call = dial(line, rest)
    first, _ = to_account(call)
    stream = ET.fromstring(first).find("Start/Stream")
    assert stream.get("statusCallback") == "http://localhost/voice/stream-status"
    assert stream.get("statusCallbackMethod") == "POST"
    [parameter] = stream.findall("Parameter")
    token = parameter.get("value")
    assert parameter.get("name") == "token" and len(token) >= 40
    assert row(db, call).stream_token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in (row(db, call).last_twiml or "")  # only the first answer carried it
    other = dial(line, rest)
    to_account(other)
    assert other.stream["parameters"]["token"] != token  # one per call


def test_the_calls_stream_opens_once(db, records, line, rest):  # noqa: F811
    call = dial(line, rest)
    to_account(call)
    token = call.stream["parameters"]
    FakeListener.scripts[call.call_sid] = deque([rec("one zero zero zero zero one")])
    (first, again), stats = streams(line, (call.call_sid, token, ANSWER), (call.call_sid, token, ANSWER))
    assert first.close_code == 1000 and again.close_code == 1008  # the token is used up
    assert (stats.streams, stats.unbound_streams, stats.refused_streams) == (1, 1, 0)
    assert [u.split("/voice/")[1].split("?")[0] for u in rest.urls()] == ["listen/account", "step/account"]
    assert row(db, call).stream_opened_at is not None


def test_replayed_handshakes_naming_a_live_call_fill_nothing_and_move_nothing(db, records, line, rest):  # noqa: F811
    victim, other = dial(line, rest), dial(line, rest)
    to_account(victim)
    to_account(other)
    replays = [(victim.call_sid, {}, ANSWER), (victim.call_sid, {"token": "guessed"}, ANSWER),
               (victim.call_sid, other.stream["parameters"], ANSWER),  # another call's token
               ("CA" + "e" * 32, victim.stream["parameters"], ANSWER)] * 5  # a call that does not exist
    FakeListener.scripts[victim.call_sid] = deque([rec("one zero zero zero zero one")])
    played, stats = streams(line, *replays, (victim.call_sid, victim.stream["parameters"], ANSWER), max_streams=1)
    assert [p.close_code for p in played] == [1008] * 20 + [1000]  # the call's own stream still gets in
    assert (stats.streams, stats.unbound_streams, stats.refused_streams) == (1, 20, 0)
    # Nobody's call was moved to <Record> or asked again by the replays.
    assert row(db, other).speech_transport is None and row(db, victim).speech_transport is None
    assert all(sid == victim.call_sid for sid, _ in rest.updates)
    assert [u.split("/voice/")[1].split("?")[0] for u in rest.urls()] == ["listen/account", "step/account"]


def test_a_token_of_a_call_that_is_over_or_recorded_opens_nothing(db, records, line, rest):  # noqa: F811
    over, recorded = dial(line, rest), dial(line, rest)
    to_account(over)
    to_account(recorded)
    assert over.hang_up() == 204
    line.on_refused(recorded.call_sid)  # on the record transport from now on
    updates = len(rest.updates)
    played, stats = streams(line, (over.call_sid, over.stream["parameters"], ANSWER),
                            (recorded.call_sid, recorded.stream["parameters"], ANSWER))
    assert [p.close_code for p in played] == [1008, 1008] and stats.streams == 0
    assert len(rest.updates) == updates and row(db, over).stream_opened_at is None


def test_bind_stream_says_why(db, records, line, rest, stream_config):  # noqa: F811
    from ivr import calls

    call = dial(line, rest)
    to_account(call)
    token = call.stream["parameters"]["token"]
    assert calls.bind_stream(db, stream_config, call.call_sid, None) == "no stream token"
    assert calls.bind_stream(db, stream_config, "CA" + "0" * 32, token) == "unknown call"
    assert calls.bind_stream(db, stream_config, call.call_sid, token + "x") == "wrong stream token"
    assert calls.bind_stream(db, stream_config, call.call_sid, token) is None
    assert calls.bind_stream(db, stream_config, call.call_sid, token) == "the call's stream token was used before"
    stream_config.speech_transport = "record"
    assert calls.bind_stream(db, stream_config, call.call_sid, token).startswith("calls are not streamed")
