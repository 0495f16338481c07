"""``benchmarks/metrics_bench.py`` on tiny input: it writes calls and readings, scrapes /metrics,
leaves and archives dead workers' files, and prints each median (figures are not asserted)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The benchmark on the database the suite tests: rerun on PostgreSQL by `make test` (-m db).
pytestmark = pytest.mark.db


def test_bench_prints_each_scrape_median(tmp_path):
    args = ["--calls", "300", "--readings", "900", "--restarts", "12", "--scrapes", "3"]
    if os.environ.get("IVR_TEST_DATABASE_URL"):
        args += ["--database-url", os.environ["IVR_TEST_DATABASE_URL"]]
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "metrics_bench.py"), *args],
                         capture_output=True, text=True, timeout=600, cwd=ROOT,
                         env={**env, "IVR_DATA_DIR": str(tmp_path)})
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    assert "300 calls, 900 readings" in out and "load average after" in out
    medians = dict(re.findall(r"^(.+?):\s+median\s+([\d.]+) ms", out, re.M))
    assert set(medians) == {"scrape, 300 calls", "the same counts by GROUP BY over every row",
                            "scrape, 12 dead workers, files left", "scrape, 12 dead workers, archived"}
    # The counts scraped are the rows written, kept by the database as they were inserted.
    assert re.search(r'ivr_calls\{outcome="completed"\} \d+\.0\)', out)
    left = int(re.search(r"files left:.*\((\d+) files\)", out).group(1))
    archived = int(re.search(r"archived:.*\((\d+) files\)", out).group(1))
    assert left >= 12 * 2 and archived < 8  # a file or two per kind, however many workers died
