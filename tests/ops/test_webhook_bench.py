"""``benchmarks/webhook_bench.py`` on tiny input: it loads accounts, makes the scripted keypad call
through the product, the lean floor and Flask "hello", and prints statements, commits and CPU per
call for each (CPU figures are not asserted; the statement budget is, by test_call_cost)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The benchmark on the database the suite tests: rerun on PostgreSQL by `make test` (-m db).
pytestmark = pytest.mark.db


def test_bench_prints_the_product_the_floor_and_hello(tmp_path):
    args = ["--accounts", "200", "--calls", "3", "--runs", "1"]
    if os.environ.get("IVR_TEST_DATABASE_URL"):
        args += ["--database-url", os.environ["IVR_TEST_DATABASE_URL"]]
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "webhook_bench.py"), *args],
                         capture_output=True, text=True, timeout=600, cwd=ROOT,
                         env={**os.environ, "IVR_DATA_DIR": str(tmp_path)})
    assert run.returncode == 0, run.stderr[-3000:]
    rows = {line[:16].strip(): line[16:].split() for line in run.stdout.splitlines()
            if line.startswith(("product", "lean floor", "flask hello"))}
    assert set(rows) == {"product", "lean floor", "flask hello"}, run.stdout
    assert float(rows["product"][1]) == float(rows["lean floor"][1]) == 7.0  # commits: one per webhook
    assert 0 < float(rows["lean floor"][0]) <= float(rows["product"][0])
    assert float(rows["flask hello"][0]) == 0
