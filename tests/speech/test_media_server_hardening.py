"""The media endpoint against outsiders and its own start-up: streams bound to a call before they
take a slot, the signature checked for IVR_MEDIA_URL, readiness (models loaded first), logs that
cannot be forged or flooded, and a warning when signatures are off."""
from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading

import pytest
import requests

from ivr.voice import media_server
from ivr.logsafe import RateLimitedLog
from ivr.voice.media_server import MediaServer
from tests.stream_harness import Recorder, ServerThread, Silent, new_call_sid, play_stream, silence, until

TOKEN = "test-auth-token-0123456789abcdef"
MEDIA_URL = "wss://media.example.net/voice/stream"
GOOD = "the-one-time-token-of-this-call"


@pytest.fixture(autouse=True)
def fresh_log_budget(monkeypatch):
    """Each test starts with the log's full budget (other tests in this process spend it)."""
    monkeypatch.setattr(media_server, "noisy", RateLimitedLog(media_server.log, burst=10, period=60.0))


def bound_handlers(models=lambda lang: None) -> tuple[Recorder, media_server.Handlers]:
    """Handlers that open a stream only with the token ``GOOD`` (as the phone line's do with the
    call's own token)."""
    rec = Recorder(None, models=models)
    handlers = rec.handlers()
    handlers.authorize = lambda call_sid, parameters: None if parameters.get("token") == GOOD else "wrong token"
    return rec, handlers


def serve(handlers, **kwargs) -> ServerThread:
    kwargs.setdefault("listener_factory", Silent)
    return ServerThread(MediaServer(handlers, auth_token=TOKEN, media_url=MEDIA_URL, **kwargs))


def play(st: ServerThread, token: str | None = GOOD, **kwargs):
    custom = {} if token is None else {"token": token}
    return play_stream(st.url, TOKEN, kwargs.pop("audio", silence(200)), realtime=False, signed_url=MEDIA_URL,
                       custom=custom, **kwargs)


# --- a stream is bound to a call before it takes a slot -------------------------------------------

def test_streams_without_the_calls_token_are_closed_before_taking_a_slot():
    rec, handlers = bound_handlers()
    with serve(handlers, max_streams=2) as st:
        # A captured handshake replayed 30 times, naming live calls or not: none takes a slot.
        async def replay_all():
            return await asyncio.gather(*(play(st, token, hold=asyncio.Event()) for token in [None, "guessed", ""] * 10))

        replays = st.run(replay_all())
        assert {p.close_code for p in replays} == {1008}
        assert st.server.stats.active_streams == 0 and st.server.stats.streams == 0
        # The call's own stream still gets in, and the refusals moved no call anywhere.
        real = st.run(play(st))
        stats = st.server.stats
    assert real.close_code == 1000 and stats.streams == 1
    assert stats.unbound_streams == 30 and stats.refused_streams == 0
    assert [e.kind for e in rec.events] == []  # no on_refused for a stream that is not the call's


def test_a_connection_that_never_says_which_call_is_closed(monkeypatch):
    monkeypatch.setattr(media_server, "START_TIMEOUT", 0.3)

    async def connect_and_wait(url):
        from twilio.request_validator import RequestValidator
        from websockets.asyncio.client import connect

        signature = RequestValidator(TOKEN).compute_signature(MEDIA_URL, {})
        async with connect(url, additional_headers={"X-Twilio-Signature": signature}) as ws:
            await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
            await asyncio.wait_for(ws.wait_closed(), 10)
            return ws.close_code

    _, handlers = bound_handlers()
    with serve(handlers) as st:
        assert st.run(connect_and_wait(st.url)) == 1008
        assert st.server.stats.unbound_streams == 1 and st.server.stats.streams == 0


def test_a_failing_authorization_closes_the_stream():
    rec, handlers = bound_handlers()

    def broken(call_sid, parameters):
        raise RuntimeError("database down")

    handlers.authorize = broken
    with serve(handlers) as st:
        played = st.run(play(st, hold=asyncio.Event()))
    assert played.close_code == 1008 and st.server.stats.streams == 0 and rec.events == []


# --- the signature is checked for IVR_MEDIA_URL ---------------------------------------------------

def test_the_signature_is_checked_for_the_media_url_on_its_own_host():
    _, handlers = bound_handlers()
    server = MediaServer(handlers, auth_token=TOKEN, public_url="https://ivr.example.org", media_url=MEDIA_URL,
                         listener_factory=Silent)
    with ServerThread(server) as st:
        media = st.run(play_stream(st.url, TOKEN, silence(100), realtime=False, signed_url=MEDIA_URL,
                                   custom={"token": GOOD}))
        web_host = st.run(play_stream(st.url, TOKEN, silence(100), realtime=False,
                                      signed_url="wss://ivr.example.org/voice/stream", custom={"token": GOOD}))
    assert (media.status, media.close_code) == (None, 1000)
    assert web_host.status == 403


def test_the_command_passes_the_media_url_and_the_models_to_load(monkeypatch, tmp_path):
    from click.testing import CliRunner

    from ivr.cli import cli

    seen = {}

    def fake_run(self, host, port):
        seen.update(media_url=self.media_url, preload=self.preload, ready=self.ready)

    for key in ("IVR_MEDIA_HANDLERS", "IVR_SPEECH_ENGINES"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("IVR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("IVR_TWILIO_AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("IVR_MEDIA_URL", MEDIA_URL)
    monkeypatch.setenv("IVR_MEDIA_HANDLERS", "tests.speech.test_media_server:fake_handlers_factory")
    model = tmp_path / "models" / "en"  # installed (as far as a look at its files goes)
    for part in ("am", "conf"):
        (model / part).mkdir(parents=True)
    (model / "am" / "final.mdl").write_bytes(b"")
    (model / "conf" / "model.conf").write_text("")
    monkeypatch.setattr(MediaServer, "run", fake_run)
    result = CliRunner().invoke(cli, ["media-server", "--port", "0"])
    assert result.exit_code == 0, result.output
    assert seen["media_url"] == MEDIA_URL
    assert seen["preload"] == ("en",) and seen["ready"] is False  # not ready until the model is loaded
    assert "ready once speech model(s) en are loaded" in result.output


# --- readiness: the models first ------------------------------------------------------------------

def test_streams_wait_for_the_models_and_health_says_so():
    release = threading.Event()
    loaded = []

    def slow_model(lang):
        release.wait(30)
        loaded.append(lang)
        return object()

    rec, handlers = bound_handlers(models=slow_model)
    with serve(handlers, preload=("en",)) as st:
        health = requests.get(f"http://127.0.0.1:{st.port}/healthz", timeout=5)
        assert health.status_code == 503 and health.json()["status"] == "loading"
        early = new_call_sid()
        played = st.run(play(st, call_sid=early, hold=asyncio.Event()))
        assert played.close_code == 1013 and st.server.stats.streams == 0  # refused: heard another way
        until(lambda: rec.kinds(early) == ["refused"], "the early call handed to on_refused")
        release.set()
        until(lambda: st.server.ready, "the model loaded")
        health = requests.get(f"http://127.0.0.1:{st.port}/healthz", timeout=5)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        assert st.run(play(st)).close_code == 1000
        # The close handshake may finish before the server has read the messages queued ahead of it.
        until(lambda: st.server.stats.streams == 1, "the stream admitted once the model is loaded")
    assert loaded == ["en"]


def test_a_model_that_cannot_load_keeps_the_server_unready():
    def broken(lang):
        raise RuntimeError("model folder is empty")

    _, handlers = bound_handlers(models=broken)
    with serve(handlers, preload=("en",)) as st:
        until(lambda: st.server.load_error is not None, "the load failing")
        health = requests.get(f"http://127.0.0.1:{st.port}/healthz", timeout=5)
        assert health.status_code == 503 and health.json()["status"] == "error"
        assert "model folder is empty" in health.json()["error"]
        assert st.run(play(st, hold=asyncio.Event())).close_code == 1013


# --- logs -----------------------------------------------------------------------------------------

def raw_request(port: int, target: bytes) -> bytes:
    """An HTTP upgrade request with ``target`` written as it is (a client library would refuse)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                     b"X-Twilio-Signature: forged\r\n\r\n")
        return sock.recv(1024)


def test_control_characters_from_a_handshake_are_escaped_in_the_log(caplog):
    _, handlers = bound_handlers()
    with caplog.at_level(logging.WARNING, logger="ivr.voice.media_server"), serve(handlers) as st:
        answer = raw_request(st.port, b"/voice/stream?\x1b[2J\x08\x08FORGED")
    assert answer.startswith(b"HTTP/1.1 403")
    lines = [r.getMessage() for r in caplog.records if "bad or missing Twilio signature" in r.getMessage()]
    assert lines and all("\x1b" not in line and "\x08" not in line for line in lines)
    assert "\\x1b[2J\\x08\\x08FORGED" in lines[0]


def test_junk_messages_are_logged_at_a_limited_rate(caplog):
    _, handlers = bound_handlers()
    junk = ["not json"] * 300
    with caplog.at_level(logging.WARNING, logger="ivr.voice.media_server"), serve(handlers) as st:
        st.run(play(st, extra=junk))
        bad = st.server.stats.bad_messages
    lines = [r for r in caplog.records if "message is not JSON" in r.getMessage()]
    assert bad == 300  # all counted
    assert 1 <= len(lines) <= media_server.noisy.burst  # few written


def test_a_warning_when_signatures_are_off(caplog):
    _, handlers = bound_handlers()
    server = MediaServer(handlers, auth_token=None, validate_signatures=False, listener_factory=Silent)
    with caplog.at_level(logging.WARNING, logger="ivr.voice.media_server"), ServerThread(server) as st:
        played = st.run(play_stream(st.url, None, silence(100), realtime=False, signature="",
                                    custom={"token": GOOD}))
    assert played.status is None  # let in, for development...
    warnings = [r.getMessage() for r in caplog.records if "IVR_VALIDATE_SIGNATURES is off" in r.getMessage()]
    assert len(warnings) >= 2  # ... said at start-up, and again for the unchecked handshake


def test_the_log_budget_says_what_it_left_out(caplog):
    moment = [0.0]
    limited = RateLimitedLog(logging.getLogger("ivr.test_budget"), burst=2, period=60.0, clock=lambda: moment[0])
    with caplog.at_level(logging.WARNING, logger="ivr.test_budget"):
        logged = [limited.warning("junk", "junk %d", i) for i in range(5)]
        assert limited.warning("other", "another kind") is True  # each kind has its own budget
        moment[0] = 61.0
        limited.warning("junk", "junk %d", 5)
    assert logged == [True, True, False, False, False]
    assert [r.getMessage() for r in caplog.records] == [
        "junk 0", "junk 1", "another kind", "junk 5 (3 similar lines left out before this one)"]
