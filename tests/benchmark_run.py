"""Runs a benchmark of ``benchmarks/`` on tiny input for the suite: on the database the suite tests
(``--database-url`` when IVR_TEST_DATABASE_URL is set), with its own data folder and without the
test process's metrics folder; fails the test with the benchmark's error output."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_benchmark(script: str, args: list[str], data_dir: Path) -> str:
    """``benchmarks/<script>`` with ``args``; its standard output."""
    if os.environ.get("IVR_TEST_DATABASE_URL"):
        args = [*args, "--database-url", os.environ["IVR_TEST_DATABASE_URL"]]
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args],
                         capture_output=True, text=True, timeout=600, cwd=ROOT,
                         env={**env, "IVR_DATA_DIR": str(data_dir)})
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout
