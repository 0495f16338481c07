"""``benchmarks/concurrency_bench.py`` on tiny input: gunicorn with the repository's config serves
concurrent scripted calls, and each level's line is printed (figures are not asserted; only that
every call got through without an error)."""
from __future__ import annotations

import re

import pytest

from tests.benchmark_run import run_benchmark

# The benchmark on the database the suite tests: rerun on PostgreSQL by `make test` (-m db).
pytestmark = pytest.mark.db


def test_bench_prints_each_level(tmp_path):
    args = ["--accounts", "20", "--concurrency", "1,3", "--calls", "1", "--runs", "1"]
    out = run_benchmark("concurrency_bench.py", args, tmp_path)
    rows = re.findall(r"^\s+(\d+) \|\s+[\d.]+ \|\s+\d+ ms \|\s+\d+ ms \|\s+\d+ ms \|\s+(\d+) \|\s+(\d+)$",
                      out, re.M)
    # No fallback and no failure: three callers are far below what two workers of four threads serve.
    assert rows == [("1", "0", "0"), ("3", "0", "0")], out
