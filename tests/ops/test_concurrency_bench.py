"""``benchmarks/concurrency_bench.py`` on tiny input: gunicorn with the repository's config serves
concurrent scripted calls, through the callers' way to the app modelled on the deployment's nginx
or over a connection of each caller's own (and behind a real nginx where one is installed), and
each level's line is printed with the CPU per webhook of the callers, the server and the database
(figures are not asserted; only that every call got through without an error)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.benchmark_run import ROOT, run_benchmark

# The benchmark on the database the suite tests: rerun on PostgreSQL by `make test` (-m db).
pytestmark = pytest.mark.db


ROW = re.compile(r"^\s+(\d+) \|\s+[\d.]+ \|\s+\d+ ms \|\s+\d+ ms \|\s+\d+ ms \|\s+(\d+) \|\s+(\d+) \|"
                 r"\s+([\d.]+) /\s+([\d.]+) /\s+([\d.]+) \|\s+\d+%$", re.M)


@pytest.mark.parametrize("client", ["proxy", "per-caller"])
def test_bench_prints_each_level(tmp_path, client):
    args = ["--accounts", "20", "--concurrency", "1,3", "--calls", "1", "--runs", "1", "--client", client]
    out = run_benchmark("concurrency_bench.py", args, tmp_path)
    rows = ROW.findall(out)
    # No fallback and no failure: three callers are far below what two workers of four threads serve.
    assert [row[:3] for row in rows] == [("1", "0", "0"), ("3", "0", "0")], out
    # The callers and the server used CPU (the server's is counted in clock ticks of 10 ms: the
    # 21 webhooks of three calls use several; the database's own is counted only on PostgreSQL).
    assert all(float(row[3]) > 0 for row in rows) and float(rows[1][4]) > 0, out


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed (apt-get install nginx-light)")
def test_bench_behind_nginx(tmp_path):
    args = ["--accounts", "20", "--concurrency", "3", "--calls", "1", "--runs", "1", "--client", "per-caller",
            "--nginx"]
    rows = ROW.findall(run_benchmark("concurrency_bench.py", args, tmp_path))
    assert [row[:3] for row in rows] == [("3", "0", "0")], rows


def test_nginx_asked_for_but_not_installed_is_refused(tmp_path):
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "concurrency_bench.py"), "--nginx"],
                         capture_output=True, text=True, timeout=60, env={**os.environ, "PATH": str(tmp_path)})
    assert run.returncode == 2
    assert "--nginx needs nginx on PATH" in run.stderr


def test_bench_with_callers_starting_together(tmp_path):
    args = ["--accounts", "20", "--concurrency", "3", "--calls", "1", "--runs", "1", "--arrivals", "together"]
    out = run_benchmark("concurrency_bench.py", args, tmp_path)
    assert "callers starting together" in out
    assert [row[:3] for row in ROW.findall(out)] == [("3", "0", "0")], out


def test_only_webhooks_sent_while_every_caller_calls_are_timed():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from concurrency_bench import while_all_call

    # Three callers: the last starts at 2.0, the first finishes at 5.0.
    latencies = [(0.5, 0.1), (1.9, 0.2), (2.0, 0.3), (4.9, 0.4), (5.0, 0.5), (6.0, 0.6)]
    assert while_all_call(latencies, [0.0, 1.0, 2.0], [5.0, 7.0, 6.5]) == ([0.3, 0.4], 3.0)
    # No moment with every caller calling: nothing, and no time.
    assert while_all_call(latencies, [0.0, 3.0], [1.0, 4.0]) == ([], 0.0)
