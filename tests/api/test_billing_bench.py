"""``benchmarks/billing_bench.py`` on tiny input: it loads readings, pulls them through the API,
fetches the same rows by the driver alone, renames a region, exports them as CSV and JSON, and prints the medians
and the pull's ratio to the raw fetch (the figures are not asserted, only that every step ran
and every reading was pulled and exported)."""
from __future__ import annotations

import pytest

from tests.benchmark_run import run_benchmark

# The benchmark on the database the suite tests: rerun on PostgreSQL by `make test` (-m db).
pytestmark = pytest.mark.db


def test_bench_pulls_and_exports_every_reading(tmp_path):
    args = ["--readings", "40", "--runs", "1"]
    out = run_benchmark("billing_bench.py", args, tmp_path)
    lines = out.splitlines()
    assert any(": 40 accepted readings inserted in " in line for line in lines), out
    for label in ("pull (GET /readings", "  the same, each page's JSON decoded", "raw ", "export CSV", "export JSON",
                  "rename a region's code (", "  re-read it, text/csv",
                  "  re-read it, application/json"):
        assert any(line.startswith(label) for line in lines), (label, out)
    assert lines[1].startswith("operation") and "peak +MB" in lines[1], out
    assert any(line.startswith("pull / raw: ") and "with the client's JSON decoding" in line for line in lines), out
