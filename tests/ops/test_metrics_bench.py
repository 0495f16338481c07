"""``benchmarks/metrics_bench.py`` on tiny input: it writes calls and readings, scrapes /metrics,
leaves and archives dead workers' files, and prints each median (figures are not asserted)."""
from __future__ import annotations

import re

import pytest

from tests.benchmark_run import run_benchmark

# The benchmark on the database the suite tests: rerun on PostgreSQL by `make test` (-m db).
pytestmark = pytest.mark.db


def test_bench_prints_each_scrape_median(tmp_path):
    args = ["--calls", "300", "--readings", "900", "--restarts", "12", "--scrapes", "3"]
    out = run_benchmark("metrics_bench.py", args, tmp_path)
    assert "300 calls, 900 readings" in out and "load average after" in out
    medians = dict(re.findall(r"^(.+?):\s+median\s+([\d.]+) ms", out, re.M))
    assert set(medians) == {"scrape, 300 calls", "the same counts by GROUP BY over every row",
                            "scrape, 12 dead workers, files left", "scrape, 12 dead workers, archived"}
    # The counts scraped are the rows written, kept by the database as they were inserted.
    assert re.search(r'ivr_calls\{outcome="completed"\} \d+\.0\)', out)
    left = int(re.search(r"files left:.*\((\d+) files\)", out).group(1))
    archived = int(re.search(r"archived:.*\((\d+) files\)", out).group(1))
    assert left >= 12 * 2 and archived < 8  # a file or two per kind, however many workers died
