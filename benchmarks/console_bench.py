"""Operator console benchmark: every console page and CSV at a real utility's volume.

    .venv/bin/python benchmarks/console_bench.py                     # SQLite (a temporary file)
    .venv/bin/python benchmarks/console_bench.py --database-url postgresql://postgres@127.0.0.1/postgres

The data is the month ``tests/console/test_dashboard_month.py`` checks against plain SQL (November
2026 in four regions with different submission windows, calls answered on the keypad and by speech,
with re-asks, transfers and hang-ups, each turn's step a ``call_steps`` row, readings of every
status, review items, refused values), made ``--calls`` calls big (default 100 000), with
``--tasks`` review items (default 50 000) and ``--accounts`` accounts per region (4 regions;
default 25 000, which gives about 330 000 readings). The product's clock is stopped on 3 December
2026 (the dashboard's "today"; its "31 days" are the longest span it shows, 2 November to 3
December). An administrator's console then asks, ``--runs`` times, for each page and CSV, and each is
printed with its median time, the SQL statements it ran, how much it grew the process's peak
memory (Linux: peak RSS reset before each request) and the median CPU time this process spent on
it (with SQLite that includes the database's work; on a shared machine it varies less than the
time). The day counts the bulk insert appended are folded first, as a dashboard folds them, and
that is timed too. With PostgreSQL a scratch database is created
next to the one named in the URL and dropped at the end.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import event, func, select  # noqa: E402

from peak_memory import PeakGrowth, largest  # noqa: E402
from readings_store import clock, day_counts  # noqa: E402
from readings_store.db import make_engine, make_session_factory, scratch_postgres_database, upgrade  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="postgresql://… (a scratch database is made beside it); default SQLite")
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--tasks", type=int, default=50_000, help="review items")
    parser.add_argument("--accounts", type=int, default=25_000, help="accounts per region (4 regions)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        if args.database_url:
            url = stack.enter_context(scratch_postgres_database(args.database_url, "ivr_console_bench"))
        else:
            folder = stack.enter_context(tempfile.TemporaryDirectory())
            url = f"sqlite:///{folder}/bench.sqlite3"
        run(url, args)


def pages(db, query: str) -> list[tuple[str, str]]:
    """(name, path) of every console page and CSV, for records of the generated month."""
    from readings_store.models import Account, ReviewTask
    from tests.console.test_dashboard_month import LAST, NOW

    TODAY = NOW.date()

    task = db.scalar(select(func.min(ReviewTask.id)).where(ReviewTask.status == "open"))
    account = db.get(Account, db.scalar(select(func.min(Account.id))))
    open_items = db.scalar(select(func.count()).select_from(ReviewTask).where(ReviewTask.status == "open"))
    last_page = max(1, -(-open_items // 50))
    out = [("dashboard, the month", f"/console/dashboard?{query}"),
           ("dashboard, one day", f"/console/dashboard?date={LAST}"),
           ("dashboard, today", "/console/dashboard"),
           ("dashboard, 31 days", f"/console/dashboard?from={TODAY - dt.timedelta(days=31)}&to={TODAY}")]
    from ivr.console.views import DashboardFigures
    out += [(f"dashboard CSV {table}", f"/console/dashboard?{query}&format=csv&table={table}")
            for table in DashboardFigures.TABLES]
    out += [("queue", "/console/queue"), (f"queue page {last_page}", f"/console/queue?page={last_page}"),
            ("queue CSV", "/console/queue?format=csv"), ("next item", "/console/tasks/next"),
            ("item page", f"/console/tasks/{task}"), ("lookup by number", f"/console/lookup?q={account.number}&go=0"),
            ("lookup by name", "/console/lookup?q=Popescu"), ("lookup CSV", "/console/lookup?q=Popescu&format=csv"),
            ("account page", f"/console/accounts/{account.id}"), ("profile", "/console/profile"),
            ("operators", "/console/admin/operators"), ("regions", "/console/admin/regions")]
    return out


def run(url: str, args) -> None:
    from ivr.app import create_app
    from ivr.config import load_config
    from readings_store.models import CallStep
    from tests.console.helpers import login
    from tests.console.test_dashboard_month import NOW, QUERY, build_month

    os.environ.setdefault("IVR_DATA_DIR", tempfile.mkdtemp())
    upgrade(url)
    engine = make_engine(url)
    clock.set_clock(NOW, frozen=True)
    started = time.perf_counter()
    with make_session_factory(engine)() as db:
        made = build_month(db, calls_count=args.calls, accounts_per_region=args.accounts, tasks_count=args.tasks)
        steps = db.scalar(select(func.count()).select_from(CallStep))
        written = time.perf_counter() - started
        # The bulk insert left a change per call and reading in the day counts; a dashboard folds
        # them when it finds many (day_counts.fold_if_many): done here, and timed, as a database in
        # service has them folded.
        folding = time.perf_counter()
        day_counts.fold(db)
        folded = time.perf_counter() - folding
        db.connection().exec_driver_sql("ANALYZE")  # as a database in service has its statistics
        db.commit()
        to_time = pages(db, QUERY)
    load = os.getloadavg()
    print(f"{engine.dialect.name}: {made['calls']} calls ({steps} steps), {made['readings']} readings, "
          f"{made['accounts']} accounts, {made['tasks']} review items, written in {written:.1f} s, "
          f"day counts folded in {folded:.1f} s; "
          f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    app = create_app(load_config(database_url=url, twilio_auth_token="t" * 32, secret_key="bench"), engine=engine)
    app.config.update(TESTING=True, WTF_CSRF_ENABLED=False)
    client = app.test_client()
    if login(client, "ada").status_code != 302:
        raise SystemExit("could not log in")
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda conn, cursor, sql, *a: statements.append(sql))
    width = max(len(name) for name, _ in to_time)
    print(f"{'page':<{width}}  median s   runs (s)            SQL  peak +MB  CPU s")
    for name, path in to_time:
        times, grown, cpu = [], [], []
        for _ in range(args.runs):
            statements.clear()
            with PeakGrowth() as peak:
                start, start_cpu = time.perf_counter(), time.process_time()
                response = client.get(path)
                times.append(time.perf_counter() - start)
                cpu.append(time.process_time() - start_cpu)
            grown.append(peak)
            if response.status_code not in (200, 302):
                raise SystemExit(f"{path} answered {response.status_code}")
        memory = largest(grown)
        print(f"{name:<{width}}  {statistics.median(times):8.3f}   {', '.join(f'{t:.3f}' for t in times):<18} "
              f"{len(statements):4d}  {memory}  {statistics.median(cpu):5.3f}")
    load = os.getloadavg()
    print(f"load average after: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    engine.dispose()


if __name__ == "__main__":
    main()
