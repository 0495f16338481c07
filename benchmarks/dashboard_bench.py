"""Operator console dashboard benchmark: the page and a CSV table for a month of a busy hotline.

    .venv/bin/python benchmarks/dashboard_bench.py                     # SQLite (a temporary file)
    .venv/bin/python benchmarks/dashboard_bench.py --database-url postgresql://postgres@127.0.0.1/postgres

The month is the one ``tests/console/test_dashboard_month.py`` checks against plain SQL (November
2026 in four regions with different submission windows, calls answered on the keypad and by speech,
with re-asks, transfers and hang-ups, readings of every status, review items, refused values),
made ``--calls`` calls big (default 100 000; ``--accounts`` per region, default 5 000). The
product's clock is stopped on 3 December 2026. An administrator's console then asks, ``--runs``
times (median reported), for the dashboard of the whole month and for one CSV table of it.
With PostgreSQL a scratch database is created next to the one named in the URL and dropped at the end.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from readings_store import clock  # noqa: E402
from readings_store.db import make_engine, make_session_factory, scratch_postgres_database, upgrade  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="postgresql://… (a scratch database is made beside it); default SQLite")
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--accounts", type=int, default=5_000, help="accounts per region (4 regions)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--table", default="funnel", help="the CSV table timed (default funnel)")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        if args.database_url:
            url = stack.enter_context(scratch_postgres_database(args.database_url, "ivr_dashboard_bench"))
        else:
            folder = stack.enter_context(tempfile.TemporaryDirectory())
            url = f"sqlite:///{folder}/bench.sqlite3"
        run(url, args)


def run(url: str, args) -> None:
    from ivr.app import create_app
    from ivr.config import load_config
    from tests.console.helpers import login
    from tests.console.test_dashboard_month import NOW, QUERY, build_month

    os.environ.setdefault("IVR_DATA_DIR", tempfile.mkdtemp())
    upgrade(url)
    engine = make_engine(url)
    clock.set_clock(NOW, frozen=True)
    started = time.perf_counter()
    with make_session_factory(engine)() as db:
        made = build_month(db, calls_count=args.calls, accounts_per_region=args.accounts)
    print(f"{engine.dialect.name}: {made['calls']} calls, {made['readings']} readings, {made['accounts']} accounts, "
          f"{made['tasks']} review items, written in {time.perf_counter() - started:.1f} s")
    app = create_app(load_config(database_url=url, twilio_auth_token="t" * 32, secret_key="bench"), engine=engine)
    app.config.update(TESTING=True, WTF_CSRF_ENABLED=False)
    client = app.test_client()
    if login(client, "ada").status_code != 302:
        raise SystemExit("could not log in")
    for name, path in (("page", f"/console/dashboard?{QUERY}"),
                       (f"CSV {args.table}", f"/console/dashboard?{QUERY}&format=csv&table={args.table}")):
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            response = client.get(path)
            times.append(time.perf_counter() - start)
            if response.status_code != 200:
                raise SystemExit(f"{path} answered {response.status_code}")
        print(f"dashboard {name}: median {statistics.median(times):.2f} s of {args.runs} "
              f"({', '.join(f'{t:.2f}' for t in times)})")
    engine.dispose()


if __name__ == "__main__":
    main()
