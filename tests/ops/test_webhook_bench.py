"""``benchmarks/webhook_bench.py`` on tiny input: it loads accounts, makes the scripted keypad call
through the product, the lean floor (in process, and served as signed webhooks) and Flask "hello",
and prints statements, commits and CPU per call for each (CPU figures are not asserted; the
statement budget is, by test_call_cost)."""
from __future__ import annotations

import pytest

from tests.benchmark_run import run_benchmark

# The benchmark on the database the suite tests: rerun on PostgreSQL by `make test` (-m db).
pytestmark = pytest.mark.db


def test_bench_prints_the_product_the_floor_and_hello(tmp_path):
    args = ["--accounts", "200", "--calls", "3", "--runs", "1", "--parts"]
    out = run_benchmark("webhook_bench.py", args, tmp_path)
    rows = {line[:16].strip(): line[16:].split() for line in out.splitlines()
            if line.startswith(("product  ", "lean floor", "lean webhooks", "flask hello"))}
    assert set(rows) == {"product", "lean floor", "lean webhooks", "flask hello"}, out
    assert float(rows["product"][1]) == float(rows["lean floor"][1]) == float(rows["lean webhooks"][1]) == 7.0
    assert 0 < float(rows["lean floor"][0]) == float(rows["lean webhooks"][0]) <= float(rows["product"][0])
    assert "product / lean webhooks (the floor with Flask, the signature check" in out, out
    assert float(rows["flask hello"][0]) == 0
    # --parts: each part of the turn, and the rest, with its share of the product's CPU.
    assert "where the product's server CPU goes (3 calls, one run, parts wrapped)" in out, out
    for part in ("claiming a turn", "judging a value", "flush and commit", "rendering TwiML",
                 "the rest (Flask, signature, other reads)"):
        line = next((line for line in out.splitlines() if line.strip().startswith(part)), None)
        assert line is not None and line.rstrip().endswith("%"), (part, out)
