"""benchmarks/answer_tail_bench.py on a few real recordings, so that it cannot rot: a line per tail,
right answers counted, the reference tail losing and winning nothing against itself. No figure is
checked (a handful of recordings mean nothing); bad arguments are refused."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.speech, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = Path(os.environ.get("IVR_TEST_SPEECH_SAMPLES", ROOT / "tests" / "speech-samples"))


def _bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "answer_tail_bench.py"), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "IVR_TEST_SPEECH_SAMPLES": str(SAMPLES)})


def test_bench_prints_each_tail_against_the_first():
    pytest.importorskip("pocketsphinx", reason="pocketsphinx (test extra) is not installed")
    if not (SAMPLES / "manifest.csv").is_file():
        pytest.skip(f"labelled speech samples not found at {SAMPLES} (set IVR_TEST_SPEECH_SAMPLES)")
    run = _bench("--limit", "4", "--tails", "600,200")
    assert run.returncode == 0, run.stderr[-3000:]
    assert re.search(r"^(\d) of 4 English recordings with a voice onset", run.stdout, re.M), run.stdout
    rows = re.findall(r"^\s+(\d+) ms\s+(\d+) \(\s*[0-9.]+%\)\s+(\d+)\s+(\d+)$", run.stdout, re.M)
    assert [int(t) for t, *_ in rows] == [600, 200], run.stdout
    assert rows[0][2:] == ("0", "0")  # the reference against itself
    assert all(int(right) <= 4 for _, right, *_ in rows)


@pytest.mark.parametrize("tails", ["", "600,abc", "600,-20", "600,210"])
def test_bench_refuses_bad_tails(tails):
    run = _bench("--tails", tails)
    assert run.returncode == 2 and "--tails" in run.stderr
