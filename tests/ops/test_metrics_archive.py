"""Dead workers' metric files: their values are added into one archive file per kind and their
files removed, so a scrape reads as many files however many workers were replaced, and sums the
same values as before."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest, multiprocess

from ivr.ops.metrics import archive_dead_process

ROOT = Path(__file__).resolve().parents[2]
WORKER = """
from ivr.ops.metrics import IN_FLIGHT, REQUEST_SECONDS, RESPONSES
from ivr.voice.recording_fetch import FETCH_FAILURES
import os, sys
n = int(sys.argv[1])
for i in range(n):
    REQUEST_SECONDS.labels("/voice/step/<step>", "POST").observe(0.003 * (i + 1))
    RESPONSES.labels("/voice/step/<step>", "POST", "200").inc()
if n % 2:
    FETCH_FAILURES.labels("unavailable").inc(n)
IN_FLIGHT.labels("/metrics").inc()  # still "in flight" when it dies
print(os.getpid())
"""


def scrape(folder: Path) -> dict:
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(folder))
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for m in registry.collect() for s in m.samples}


def test_dead_workers_are_archived_and_their_values_still_counted(tmp_path):
    folder = tmp_path / "metrics"
    folder.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    pids = [int(subprocess.run([sys.executable, "-c", WORKER, str(n)], env=env, cwd=ROOT, check=True,
                               capture_output=True, text=True).stdout) for n in (1, 2, 3, 4)]
    before = scrape(folder)
    in_flight = ("ivr_http_requests_in_flight", (("route", "/metrics"),))
    assert before[in_flight] == 4
    assert before[("ivr_http_responses_total", (("method", "POST"), ("route", "/voice/step/<step>"),
                                               ("status", "200")))] == 10
    for pid in pids:
        assert archive_dead_process(folder, pid) == 2  # its counters and its histograms
    after = scrape(folder)
    assert in_flight not in after  # the dead workers' requests are no longer in flight
    before.pop(in_flight)
    # Every counter, histogram bucket, sum and count as it was (sums of floats added in another order).
    assert after.keys() == before.keys() and after == pytest.approx(before)
    assert sorted(p.name for p in folder.iterdir()) == ["counter_archive.db", "histogram_archive.db"]
    assert archive_dead_process(folder, pids[0]) == 0  # already archived: nothing changes
    assert scrape(folder) == pytest.approx(after)
    assert b"ivr_http_request_duration_seconds_bucket" in generate_latest(_registry(folder))


def _registry(folder: Path) -> CollectorRegistry:
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(folder))
    return registry
