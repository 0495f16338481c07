"""One deadline for the whole recording fetch, the streamed body included; any failure to fetch is
an answer not understood (the caller is asked again), never a 500."""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ivr.app import create_app
from ivr.voice.simulator import SimulatedCall, flask_transport
from ivr.voice.recording_fetch import RecordingUnavailable, fetch_recording
from ivr.voice.speech_steps import SpeechSteps
from tests.conftest import AUTH_TOKEN

from .test_recording_fetch import ACCOUNT_SID
from .test_speech_calls import ENGINES, FakeRecognizer, records, to_account  # noqa: F401 - records: a fixture

SIZE = 200_000


class Misbehaving:
    """A recording server whose body trickles (one byte every ``pause`` s, ~forever) or breaks off
    (half the declared length, then the connection closes)."""

    def __init__(self, how: str, pause: float = 0.05):
        self.how, self.pause = how, pause
        self.requests = 0
        self.stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802
                server.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "audio/x-wav")
                self.send_header("Content-Length", str(SIZE))
                self.end_headers()
                try:
                    if server.how == "trickle":
                        self.wfile.write(b"RIFF")
                        while not server.stop.is_set():
                            self.wfile.write(b"\0")
                            self.wfile.flush()
                            time.sleep(server.pause)
                    else:
                        self.wfile.write(b"RIFF" + b"\0" * (SIZE // 2))
                        self.wfile.flush()
                        self.close_connection = True
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.url = f"{self.base}2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/RE{'4' * 32}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def test_a_trickling_body_is_abandoned_at_the_deadline():
    with Misbehaving("trickle") as server:
        started = time.monotonic()
        with pytest.raises(RecordingUnavailable):
            fetch_recording(server.url, account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, budget=1.0,
                            allowed=(server.base,))
        elapsed = time.monotonic() - started
    # The body would take SIZE x 50 ms (hours); the fetch ends at its 1 s deadline (+ slack for a
    # loaded machine), not at the end of the body or of a read timeout.
    assert elapsed < 4.0


def test_a_body_that_breaks_off_is_unavailable_not_an_error():
    with Misbehaving("break") as server:
        with pytest.raises(RecordingUnavailable):
            fetch_recording(server.url, account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, budget=1.0,
                            allowed=(server.base,))
        assert server.requests >= 1


@pytest.mark.parametrize("how", ["trickle", "break"])
def test_a_failed_fetch_in_a_call_is_not_understood_and_asked_again(db, records, config, engine, how):  # noqa: F811
    with Misbehaving(how) as server:
        config.speech_engines = dict(ENGINES)
        config.recording_url_prefixes = (server.base,)
        config.twilio_account_sid = ACCOUNT_SID
        config.recording_fetch_budget = 1.0
        app = create_app(config, engine=engine, speech=SpeechSteps(config, recognizer=FakeRecognizer()))
        app.config.update(PROPAGATE_EXCEPTIONS=False)
        call = SimulatedCall("http://localhost", AUTH_TOKEN, flask_transport(app.test_client()), caller="+442079460000")
        p = to_account(call)
        sid = "RE" + "5" * 32
        started = time.monotonic()
        status, body = call.post(p.gather["action"], {"RecordingUrl": server.url, "RecordingSid": sid,
                                                      "RecordingDuration": "2", "Digits": "#"})
        elapsed = time.monotonic() - started
    assert status == 200 and "/voice/step/account" in body  # the same question again
    assert "<Record" in body
    assert elapsed < 10.0  # well inside Twilio's 15 s, whatever the body does
