"""``benchmarks/server_floor_bench.py`` on tiny input: the repository's gunicorn.conf.py serves the
fixed TwiML app, and the workers' CPU per request and the rate are printed for each run and as
medians (the figures are not asserted); bad arguments are refused."""
from __future__ import annotations

import re
import subprocess
import sys

from tests.benchmark_run import ROOT, run_benchmark


def test_bench_prints_each_run_and_the_medians(tmp_path):
    out = run_benchmark("server_floor_bench.py", ["--clients", "3", "--requests", "2", "--runs", "2"], tmp_path)
    assert out.startswith("server floor: the repository's gunicorn.conf.py serving a fixed TwiML, 3 clients x 2"), out
    runs = re.findall(r"^run [12]: workers' CPU ([0-9.]+) ms per request, ([0-9]+) requests/s$", out, re.M)
    assert len(runs) == 2 and all(float(rate) > 0 for _, rate in runs), out
    assert re.search(r"^median: workers' CPU [0-9.]+ ms per request, [0-9]+ requests/s$", out, re.M), out


def test_bad_arguments_are_refused():
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "server_floor_bench.py"), "--clients", "0"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert "--clients, --requests and --runs must be at least 1" in run.stderr
