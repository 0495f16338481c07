"""Twilio Media Streams' messages read and checked (ivr.voice.twilio_media), apart from the server."""
import base64
import json

import pytest

from ivr.voice import twilio_media as tm

SID = "CA" + "a" * 32


def test_a_start_names_its_call_stream_and_parameters():
    event, msg = tm.read(json.dumps({"event": "start", "streamSid": "MZ1", "start": {
        "callSid": SID, "customParameters": {"token": "t"},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000}}}))
    assert event == "start"
    assert tm.start(msg) == tm.Start(SID, "MZ1", {"token": "t"})


@pytest.mark.parametrize("message, why", [
    (b"\x00", "binary message ignored"),
    ("{", "message is not JSON"),
    ("[1]", "message is not a JSON object"),
    ('{"event": "hello"}', "unknown event 'hello'"),
])
def test_what_is_not_a_message_of_twilio_is_refused_with_the_reason(message, why):
    with pytest.raises(tm.BadMessage, match=why):
        tm.read(message)


@pytest.mark.parametrize("start, why", [
    (None, "without start object"),
    ({"callSid": "CA123"}, "without a valid callSid"),
    ({"callSid": SID, "mediaFormat": {"encoding": "audio/l16", "sampleRate": 8000}}, "unsupported media format"),
    ({"callSid": SID, "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 16000}}, "unsupported media format"),
])
def test_a_start_we_cannot_use_is_refused(start, why):
    with pytest.raises(tm.BadMessage, match=why):
        tm.start({"event": "start", "start": start})


def test_inbound_audio_only_and_within_a_frame():
    frame = bytes(range(160))
    payload = base64.b64encode(frame).decode()
    assert tm.inbound_audio({"media": {"payload": payload}}) == frame
    assert tm.inbound_audio({"media": {"payload": payload, "track": "outbound"}}) == b""
    too_big = base64.b64encode(bytes(tm.MAX_FRAME_BYTES + 3)).decode()
    with pytest.raises(tm.BadMessage, match="oversized media frame"):
        tm.inbound_audio({"media": {"payload": too_big}})
    with pytest.raises(tm.BadMessage, match="not base64"):
        tm.inbound_audio({"media": {"payload": "***"}})
    with pytest.raises(tm.BadMessage, match="without payload"):
        tm.inbound_audio({"media": {}})
