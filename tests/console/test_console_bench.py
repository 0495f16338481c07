"""``benchmarks/console_bench.py`` on a tiny month: it builds the records, opens every console page
and CSV, and prints each one's time, SQL statements and memory (figures are not asserted)."""
from __future__ import annotations

import pytest

from tests.benchmark_run import run_benchmark

# The benchmark on the database the suite tests: rerun on PostgreSQL by `make test` (-m db).
pytestmark = pytest.mark.db


def test_bench_prints_every_console_page_with_its_statements(tmp_path):
    args = ["--calls", "300", "--tasks", "120", "--accounts", "40", "--runs", "1"]
    out = run_benchmark("console_bench.py", args, tmp_path)
    assert "300 calls" in out and "120 review items" in out and "load average" in out
    rows = [line.split() for line in out.splitlines() if line.startswith(("dashboard", "queue", "item page",
                                                                          "lookup", "account page"))]
    names = [" ".join(r[:-5]) for r in rows]
    assert {"dashboard, the month", "dashboard, today", "dashboard, 31 days", "dashboard CSV funnel",
            "dashboard CSV answers", "queue", "queue CSV",
            "item page", "account page"} <= set(names)
    assert all(int(r[-3]) > 0 for r in rows)  # each page ran its statements
