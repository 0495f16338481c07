"""``benchmarks/billing_bench.py`` on tiny input: it loads readings, pulls them through the API,
fetches the same rows by the driver alone, exports them as CSV and JSON, and prints the medians
and the pull's ratio to the raw fetch (the figures are not asserted, only that every step ran
and every reading was pulled and exported)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The benchmark on the database the suite tests: rerun on PostgreSQL by `make test` (-m db).
pytestmark = pytest.mark.db


def test_bench_pulls_and_exports_every_reading(tmp_path):
    args = ["--readings", "40", "--runs", "1"]
    if os.environ.get("IVR_TEST_DATABASE_URL"):
        args += ["--database-url", os.environ["IVR_TEST_DATABASE_URL"]]
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "billing_bench.py"), *args],
                         capture_output=True, text=True, timeout=600, cwd=ROOT,
                         env={**os.environ, "IVR_DATA_DIR": str(tmp_path)})
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.splitlines()
    assert any(": 40 accepted readings inserted in " in line for line in lines), run.stdout
    for label in ("pull (GET /readings", "raw ", "export CSV", "export JSON", "  re-read it, text/csv",
                  "  re-read it, application/json"):
        assert any(line.startswith(label) for line in lines), (label, run.stdout)
    assert any(line.startswith("pull / raw: ") for line in lines), run.stdout
