"""``benchmarks/webhook_ab.py`` on tiny input, this checkout against itself: both sides serve the
scripted keypad call at once and the medians and their ratio are printed (CPU figures are not
asserted); a folder that is no checkout is refused with a clear error."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.benchmark_run import ROOT, run_benchmark

pytestmark = pytest.mark.db


def test_ab_prints_both_sides_and_their_ratio(tmp_path):
    out = run_benchmark("webhook_ab.py", [str(ROOT), "--accounts", "20", "--blocks", "2", "--calls", "2"], tmp_path)
    sides = re.findall(r"^(this checkout|other) .* CPU ms per call: median ([0-9.]+) \(blocks", out, re.M)
    assert [name for name, _ in sides] == ["this checkout", "other"], out
    assert all(float(median) > 0 for _, median in sides), out
    assert re.search(r"^this checkout / other: [0-9]+\.[0-9]{2}$", out, re.M), out


def test_a_folder_that_is_no_checkout_is_refused(tmp_path):
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "webhook_ab.py"), str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert "is not a checkout of this project (no benchmarks/webhook_bench.py)" in run.stderr
