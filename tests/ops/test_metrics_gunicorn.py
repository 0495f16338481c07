"""/metrics under the repository's gunicorn.conf.py with two workers: one scrape sums every worker."""
from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from prometheus_client import CollectorRegistry, multiprocess

from ivr.voice.simulator import SimulatedCall, Transport, http_transport
from tests.conftest import AUTH_TOKEN
from tests.ops.test_gunicorn import children, gunicorn  # noqa: F401  (the fixture)
from tests.ops.test_metrics import value

HISTOGRAM = "ivr_http_request_duration_seconds_count"


def counting_transport(sent: Counter) -> Transport:
    inner = http_transport()

    def post(url, params, headers):
        status, body = inner.post(url, params, headers)
        sent[(urlsplit(url).path, status)] += 1
        return status, body

    return Transport(post)


def one_call(base: str, sent: Counter) -> None:
    call = SimulatedCall(base, AUTH_TOKEN, counting_transport(sent), caller="+442079460000")
    call.start()
    assert call.hang_up() == 204


def per_worker(folder: Path, pid: int, tmp: Path) -> float:
    """The /voice/incoming count in one worker's own histogram file."""
    only = tmp / f"pid-{pid}"
    only.mkdir()
    shutil.copy(folder / f"histogram_{pid}.db", only)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(only))
    return registry.get_sample_value(HISTOGRAM, {"route": "/voice/incoming", "method": "POST"}) or 0.0


@pytest.fixture
def stale_values(tmp_path):
    """A value file left by an earlier run of the server."""
    folder = tmp_path / "data" / "metrics"
    folder.mkdir(parents=True)
    (folder / "counter_99999.db").write_bytes(b"left over")
    return folder / "counter_99999.db"


def test_one_scrape_sums_every_worker(stale_values, gunicorn, tmp_path):  # noqa: F811
    base, proc = gunicorn
    folder = tmp_path / "data" / "metrics"
    assert not stale_values.exists()  # emptied when the master started
    workers = children(proc.pid)
    assert len(workers) == 2
    sent: Counter = Counter()
    # Calls on connections of their own, several at once, until both workers have answered some.
    with ThreadPoolExecutor(4) as pool:
        for _round in range(15):
            list(pool.map(lambda _: one_call(base, sent), range(8)))
            if all((folder / f"histogram_{pid}.db").exists() for pid in workers):
                break
    assert all((folder / f"histogram_{pid}.db").exists() for pid in workers), "one worker answered every call"
    # A path no route serves, and an unsigned webhook (refused with 403): counted by template.
    assert requests.get(base + "/voice/no-such-page", timeout=5).status_code == 404
    assert requests.post(base + "/voice/incoming", data={"CallSid": "CA" + "d" * 32}, timeout=5).status_code == 403

    response = requests.get(base + "/metrics", timeout=10)
    assert response.status_code == 200, response.text
    text = response.text
    calls = sent[("/voice/incoming", 200)]
    assert calls >= 8 and sent[("/voice/status", 204)] == calls
    assert value(text, HISTOGRAM, route="/voice/incoming", method="POST") == calls + 1
    assert value(text, HISTOGRAM, route="/voice/status", method="POST") == calls
    assert value(text, HISTOGRAM, route="(unmatched)", method="GET") == 1
    assert value(text, "ivr_http_responses_total", route="/voice/incoming", method="POST", status="403") == 1
    assert value(text, "ivr_http_responses_total", route="/voice/incoming", method="POST", status="200") == calls
    # The sum is made of both workers' own counts.
    shares = [per_worker(folder, pid, tmp_path) for pid in workers]
    assert all(share > 0 for share in shares) and sum(shares) == calls + 1
    # Counted in the database: every call, whichever worker took it.
    assert value(text, "ivr_calls", outcome="hung_up") == calls
    assert value(text, "ivr_records_up") == 1
    # Nothing is in flight but the scrape itself.
    assert value(text, "ivr_http_requests_in_flight", route="/voice/incoming") == 0

    # Another address is refused by every worker (X-Forwarded-For: came through a proxy).
    for _ in range(4):
        assert requests.get(base + "/metrics", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=5).status_code == 403

    # A worker replaced (max_requests, a crash): its counts stay in the sum, its in-flight gauge goes.
    gone = workers[0]
    assert (folder / f"gauge_livesum_{gone}.db").exists()
    os.kill(gone, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while (folder / f"gauge_livesum_{gone}.db").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not (folder / f"gauge_livesum_{gone}.db").exists()
    again = requests.get(base + "/metrics", timeout=10).text
    assert value(again, HISTOGRAM, route="/voice/incoming", method="POST") == calls + 1
    # Its own files are gone, its values added into the archives a scrape reads instead.
    assert not list(folder.glob(f"*_{gone}.db")) and (folder / "histogram_archive.db").exists()

    # The log: one JSON object per line, gunicorn's and the app's; the refused webhook names its call.
    records = [json.loads(line) for line in (tmp_path / "gunicorn.log").read_text().splitlines()]
    assert any(r["logger"] == "gunicorn.access" and "/voice/status" in r["message"] for r in records)
    refused = [r for r in records if r["logger"] == "ivr.twilio_webhooks" and "signature" in r["message"]]
    assert [(r["call_sid"], r["path"]) for r in refused] == [("CA" + "d" * 32, "/voice/incoming")]
