"""Fetching a caller's recording from Twilio: only from the allowed URL prefixes (redirects
included), within the time Twilio leaves for an answer, and no larger than a caller's answer can be;
timed and counted for ``/metrics``."""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterable
from urllib.parse import unquote, urljoin, urlsplit

import requests
import urllib3
from prometheus_client import Counter, Histogram

MAX_REDIRECTS = 3
# A 20 s <Record> is about 320 KB of 8 kHz WAV; anything far larger is not a caller's answer.
DEFAULT_MAX_BYTES = 5 * 1024 * 1024
# Twilio gives up after 15 s; the buckets resolve the range that matters for a webhook.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, float("inf"))

FETCH_SECONDS = Histogram("ivr_recording_fetch_duration_seconds",
                          "Time to fetch a caller's recording, failures included", ["outcome"],
                          buckets=LATENCY_BUCKETS)
FETCH_FAILURES = Counter("ivr_recording_fetch_failures_total",
                         "Recordings not fetched: refused (URL or size) or unavailable in time", ["reason"])


class RecordingUnavailable(RuntimeError):
    """The recording could not be fetched within the time Twilio allows for an answer."""


class RecordingRefused(RecordingUnavailable):
    """The recording URL (or a redirect) leaves the allowed prefixes, or the body is too large."""


def _origin(parts) -> tuple[str, str, int | None]:
    scheme = parts.scheme.lower()
    port = parts.port or {"https": 443, "http": 80}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


def url_allowed(url: str, prefixes: Iterable[str]) -> bool:
    """Whether *url* lies under one of *prefixes*, compared after parsing: same scheme, host and
    port, no user name or password in it, and a path under the prefix's path with no ``.``/``..``
    segment. ``https://api.twilio.com.evil.example/`` and ``https://api.twilio.com@evil/`` are
    not under ``https://api.twilio.com/``."""
    try:
        parts = urlsplit(url)
        origin = _origin(parts)
    except ValueError:  # a malformed port, an invalid IPv6 host
        return False
    if parts.username is not None or parts.password is not None or "\\" in url or not origin[1]:
        return False
    if any(ch <= " " or ch == "\x7f" for ch in url):
        return False
    path = unquote(parts.path) or "/"
    if any(segment in (".", "..") for segment in path.split("/")):
        return False
    for prefix in prefixes:
        allowed = urlsplit(prefix)
        base = allowed.path or "/"
        if _origin(allowed) == origin and (path == base.rstrip("/") or path.startswith(base if base.endswith("/")
                                                                                        else base + "/")):
            return True
    return False


def _wait_at_most(response: requests.Response, seconds: float) -> None:
    """Let the next read of the body block at most ``seconds`` (the fetch's time left)."""
    sock = getattr(getattr(response.raw, "connection", None), "sock", None)
    if sock is not None:
        sock.settimeout(max(0.01, seconds))


def _read_capped(response: requests.Response, max_bytes: int, deadline: float) -> bytes:
    """The body, read as it arrives (one socket read at a time), refused beyond ``max_bytes`` and
    abandoned at ``deadline``: a body trickling in a byte at a time must not hold the webhook."""
    declared = response.headers.get("Content-Length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
        raise RecordingRefused(f"recording too large: {int(declared)} bytes declared, the limit is {max_bytes}")
    body = bytearray()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RecordingUnavailable(f"recording body still arriving at the deadline ({len(body)} bytes read)")
        _wait_at_most(response, remaining)
        chunk = response.raw.read1(64 * 1024, decode_content=True)
        if not chunk:
            return bytes(body)
        body += chunk
        if len(body) > max_bytes:
            raise RecordingRefused(f"recording too large: over {max_bytes} bytes, the limit is {max_bytes}")


def fetch_recording(url: str, *, account_sid: str | None, auth_token: str | None, budget: float,
                    session: requests.Session | None = None, allowed: Iterable[str] | None = None,
                    max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """GET a Twilio recording as WAV, retrying while it is not yet available (404) within ``budget`` s:
    one deadline for the whole fetch, every attempt, redirect and the body included. Any failure
    (timeout, connection or read error, an unusable answer) is ``RecordingUnavailable``.

    Redirects are followed by hand, at most ``MAX_REDIRECTS``, and only to URLs under *allowed*
    (default: the first URL's own scheme, host and port); the credentials go only to the first
    URL's host. The body is streamed and refused beyond ``max_bytes``, never held whole first."""
    session = session or requests.Session()
    allowed = tuple(allowed) if allowed is not None else (url,)
    if not url_allowed(url, allowed):
        raise RecordingRefused(f"recording URL outside the allowed prefixes: {url[:80]}")
    auth = (account_sid, auth_token) if account_sid and auth_token else None
    deadline = time.monotonic() + budget
    delay = 0.2
    last = "no attempt"
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RecordingUnavailable(f"recording not available within {budget:.1f} s ({last})")
        try:
            response = _get_following(session, url, auth, allowed, timeout=min(5.0, max(0.05, remaining)))
        except RecordingRefused:
            raise
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            last = f"{type(exc).__name__}"
        else:
            with response:
                if response.status_code == 200:
                    try:
                        content = _read_capped(response, max_bytes, deadline)
                    except RecordingUnavailable:  # refused (too large) or out of time: no retry
                        raise
                    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
                        last = f"{type(exc).__name__} while reading the body"
                    else:
                        if content:
                            return content
                        last = "HTTP 200 with an empty body"
                elif response.status_code in (401, 403):
                    raise RecordingUnavailable(f"Twilio refused the credentials (HTTP {response.status_code}); "
                                               "check IVR_TWILIO_ACCOUNT_SID and IVR_TWILIO_AUTH_TOKEN")
                else:
                    last = f"HTTP {response.status_code}"
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 1.0)


def _get_following(session: requests.Session, url: str, auth, allowed: tuple, *, timeout: float) -> requests.Response:
    """One GET, following redirects only while every hop stays under *allowed*."""
    first = _origin(urlsplit(url))
    for _hop in range(MAX_REDIRECTS + 1):
        same_host = _origin(urlsplit(url)) == first
        response = session.get(url, auth=auth if same_host else None, timeout=timeout, stream=True,
                               allow_redirects=False)
        if not response.is_redirect:
            return response
        target = urljoin(url, response.headers.get("Location", ""))
        response.close()
        if not url_allowed(target, allowed):
            raise RecordingRefused(f"recording URL redirects outside the allowed prefixes: {target[:80]}")
        url = target
    raise RecordingRefused(f"recording URL redirects more than {MAX_REDIRECTS} times")


@contextmanager
def timed_fetch():
    """Around fetching one recording: its time, and a failure by reason."""
    start = time.perf_counter()
    outcome = "ok"
    try:
        yield
    except RecordingRefused:
        outcome = "refused"
        raise
    except RecordingUnavailable:
        outcome = "unavailable"
        raise
    except Exception:
        outcome = "error"
        raise
    finally:
        FETCH_SECONDS.labels(outcome).observe(time.perf_counter() - start)
        if outcome != "ok":
            FETCH_FAILURES.labels(outcome).inc()
