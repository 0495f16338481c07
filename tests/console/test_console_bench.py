"""``benchmarks/console_bench.py`` on a tiny month: it builds the records, opens every console page
and CSV, and prints each one's time, SQL statements and memory (figures are not asserted)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_prints_every_console_page_with_its_statements(tmp_path):
    args = ["--calls", "300", "--tasks", "120", "--accounts", "40", "--runs", "1"]
    if os.environ.get("IVR_TEST_DATABASE_URL"):
        args += ["--database-url", os.environ["IVR_TEST_DATABASE_URL"]]
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "console_bench.py"), *args],
                         capture_output=True, text=True, timeout=600, cwd=ROOT,
                         env={**os.environ, "IVR_DATA_DIR": str(tmp_path)})
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    assert "300 calls" in out and "120 review items" in out and "load average" in out
    rows = [line.split() for line in out.splitlines() if line.startswith(("dashboard", "queue", "item page",
                                                                          "lookup", "account page"))]
    names = [" ".join(r[:-5]) for r in rows]
    assert {"dashboard, the month", "dashboard, today", "dashboard, 31 days", "dashboard CSV funnel",
            "dashboard CSV answers", "queue", "queue CSV",
            "item page", "account page"} <= set(names)
    assert all(int(r[-3]) > 0 for r in rows)  # each page ran its statements
