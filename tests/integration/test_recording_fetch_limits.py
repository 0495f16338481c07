"""Recording fetches stay on the allowed hosts and within a size cap: redirects are checked hop by
hop, URLs are compared after parsing (not as string prefixes), and the body is streamed with a cap."""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ivr.voice.recording_fetch import RecordingRefused, fetch_recording, url_allowed
from ivr.voice.speech_steps import SpeechSteps
from tests.conftest import AUTH_TOKEN

from .test_recording_fetch import ACCOUNT_SID, MediaServer

WAV = b"RIFF" + b"\x00" * 60


class Scripted:
    """A local HTTP server answering each path as scripted: ("redirect", location), ("body", bytes),
    ("huge", n_bytes, declare_length). Records (path, Authorization header) of every request."""

    def __init__(self, routes: dict):
        self.routes = routes
        self.seen: list[tuple[str, str | None]] = []
        self.sent = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self):  # noqa: N802
                server.seen.append((self.path, self.headers.get("Authorization")))
                route = server.routes.get(self.path, ("status", 404))
                if route[0] == "redirect":
                    self.send_response(302)
                    self.send_header("Location", route[1].replace("{self}", server.base))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif route[0] == "body":
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(route[1])))
                    self.end_headers()
                    self.wfile.write(route[1])
                elif route[0] == "huge":
                    _, size, declare = route
                    self.send_response(200)
                    if declare:
                        self.send_header("Content-Length", str(size))
                    self.end_headers()
                    chunk = b"\x00" * 65536
                    try:
                        while server.sent < size:
                            self.wfile.write(chunk)
                            server.sent += len(chunk)
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                else:
                    self.send_response(route[1])
                    self.send_header("Content-Length", "0")
                    self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def fetch(url: str, allowed, **kwargs) -> bytes:
    return fetch_recording(url, account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, budget=3.0, allowed=allowed, **kwargs)


# --- URLs compared after parsing ----------------------------------------------------------------

TWILIO = ("https://api.twilio.com/",)
REC = "2010-04-01/Accounts/AC1/Recordings/RE1"


@pytest.mark.parametrize("url", [
    f"https://api.twilio.com/{REC}",
    f"https://API.Twilio.com/{REC}",
    f"https://api.twilio.com:443/{REC}",
])
def test_urls_under_the_prefix(url):
    assert url_allowed(url, TWILIO)
    assert url_allowed(url, ("https://api.twilio.com",))


@pytest.mark.parametrize("url", [
    f"https://api.twilio.com.evil.example/{REC}",
    f"https://api.twilio.com@evil.example/{REC}",
    f"https://user:pw@api.twilio.com/{REC}",
    f"https://api.twilio.com:8443/{REC}",
    f"http://api.twilio.com/{REC}",
    f"https://evil.example/https://api.twilio.com/{REC}",
    f"https://evil.example/?u=https://api.twilio.com/{REC}",
    "https://api.twilio.com\\@evil.example/x",
    "https://api.twilio.com\n.evil.example/x",
    "file:///etc/passwd",
    "//api.twilio.com/x",
    "https://api.twilio.com:notaport/x",
    "https://[::1/x",
    "",
])
def test_urls_outside_the_prefix(url):
    assert not url_allowed(url, TWILIO)
    assert not url_allowed(url, ("https://api.twilio.com",))  # a prefix written without its slash


def test_path_prefix_is_a_whole_segment_and_dot_segments_are_refused():
    prefixes = ("https://api.twilio.com/2010-04-01/Accounts/AC1/",)
    assert url_allowed("https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1", prefixes)
    assert not url_allowed("https://api.twilio.com/2010-04-01/Accounts/AC12/Recordings/RE1", prefixes)
    assert not url_allowed("https://api.twilio.com/2010-04-01/Accounts/AC1/../AC2/Recordings/RE1", prefixes)
    assert not url_allowed("https://api.twilio.com/2010-04-01/Accounts/AC1/%2e%2e/AC2/Recordings/RE1", prefixes)
    assert url_allowed("https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1",
                       ("https://api.twilio.com/2010-04-01/Accounts/AC1",))


def test_the_app_refuses_lookalike_hosts_before_fetching(config):
    fetched = []
    steps = SpeechSteps(config, fetcher=fetched.append)
    for url in (f"https://api.twilio.com.evil.example/{REC}", f"https://api.twilio.com@evil/{REC}"):
        with pytest.raises(RecordingRefused):
            steps.fetch(url)
    assert fetched == []
    heard = steps.from_recording("en", "number", f"https://api.twilio.com@evil/{REC}", 1)
    assert heard.speech.decision == "retry" and heard.audio is None and fetched == []


# --- redirects ------------------------------------------------------------------------------------

def test_redirect_to_another_host_is_not_followed():
    with Scripted({"/secret": ("body", b"internal data")}) as outside, \
            Scripted({"/rec": ("redirect", outside.base + "secret")}) as media:
        with pytest.raises(RecordingRefused, match="redirects outside the allowed prefixes"):
            fetch(media.base + "rec", (media.base,))
    assert len(media.seen) == 1  # refused at once, not retried until the budget
    assert outside.seen == []  # never contacted


def test_redirect_within_the_prefixes_is_followed_without_credentials_to_another_host():
    with Scripted({"/media/RE1.wav": ("body", WAV)}) as cdn, \
            Scripted({"/rec": ("redirect", "{self}rec2"), "/rec2": ("redirect", cdn.base + "media/RE1.wav")}) as api:
        assert fetch(api.base + "rec", (api.base, cdn.base + "media/")) == WAV
    assert [p for p, _ in api.seen] == ["/rec", "/rec2"] and all(auth for _, auth in api.seen)
    assert cdn.seen == [("/media/RE1.wav", None)]  # Twilio's credentials stay with Twilio's host


def test_redirect_loop_is_cut():
    with Scripted({"/a": ("redirect", "{self}b"), "/b": ("redirect", "{self}a")}) as media:
        with pytest.raises(RecordingRefused, match="redirects more than"):
            fetch(media.base + "a", (media.base,))
    assert len(media.seen) == 4


# --- size cap -------------------------------------------------------------------------------------

def test_declared_oversize_body_is_refused_without_reading_it():
    with Scripted({"/rec": ("huge", 400 * 1024 * 1024, True)}) as media:
        with pytest.raises(RecordingRefused, match="too large: 419430400 bytes declared"):
            fetch(media.base + "rec", (media.base,), max_bytes=5 * 1024 * 1024)
        time.sleep(0.2)
        assert media.sent < 64 * 1024 * 1024  # refused on the header, the body was never read


def test_undeclared_oversize_body_is_cut_at_the_cap():
    with Scripted({"/rec": ("huge", 400 * 1024 * 1024, False)}) as media:
        with pytest.raises(RecordingRefused, match="too large: over 1048576 bytes"):
            fetch(media.base + "rec", (media.base,), max_bytes=1024 * 1024)
        time.sleep(0.2)
        assert media.sent < 64 * 1024 * 1024  # the sender was stopped long before 400 MB


def test_cap_comes_from_configuration(config, monkeypatch):
    monkeypatch.setenv("IVR_RECORDING_MAX_BYTES", "1000")
    from ivr.config import load_config

    assert load_config().recording_max_bytes == 1000
    with MediaServer(b"RIFF" + b"\x00" * 5000) as server:
        config.recording_url_prefixes = (server.base,)
        config.twilio_account_sid = ACCOUNT_SID
        config.recording_max_bytes = 1000
        steps = SpeechSteps(config)
        with pytest.raises(RecordingRefused, match="too large"):
            steps.fetch(server.url())
        config.recording_max_bytes = 10_000
        assert steps.fetch(server.url()).startswith(b"RIFF")
