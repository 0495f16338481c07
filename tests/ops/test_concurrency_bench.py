"""``benchmarks/concurrency_bench.py`` on tiny input: gunicorn with the repository's config serves
concurrent scripted calls, and each level's line is printed (figures are not asserted; only that
every call got through without an error)."""
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


def test_bench_prints_each_level(tmp_path):
    args = ["--accounts", "20", "--concurrency", "1,3", "--calls", "1", "--runs", "1"]
    if os.environ.get("IVR_TEST_DATABASE_URL"):
        args += ["--database-url", os.environ["IVR_TEST_DATABASE_URL"]]
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "concurrency_bench.py"), *args],
                         capture_output=True, text=True, timeout=600, cwd=ROOT,
                         env={k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"})
    assert run.returncode == 0, run.stderr[-3000:]
    rows = re.findall(r"^\s+(\d+) \|\s+[\d.]+ \|\s+\d+ ms \|\s+\d+ ms \|\s+\d+ ms \|\s+(\d+) \|\s+(\d+)$",
                      run.stdout, re.M)
    # No fallback and no failure: three callers are far below what two workers of four threads serve.
    assert rows == [("1", "0", "0"), ("3", "0", "0")], run.stdout
