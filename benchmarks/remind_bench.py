"""Reminder planning benchmark: ``plan_reminders`` (``ivr remind``) on a region-sized store.

    .venv/bin/python benchmarks/remind_bench.py --database-url postgresql://postgres@127.0.0.1/postgres
    .venv/bin/python benchmarks/remind_bench.py                     # SQLite (a temporary file)

With PostgreSQL a scratch database is created next to the one named in the URL and dropped at the
end. The store gets ``--accounts`` accounts (default 213 377) in 5 regions, each with a phone and an
electricity meter; a third already have a reading for the period, one in 50 phones opted out.
Then, ``--runs`` times (median reported): the dry run (counts per region), and once the real run
(one INSERT ... SELECT into the outbox), which the dry run's counts must match. With ``--call``
the reminder calls of ``ivr remind --call`` are planned instead, with the text reminders of the
period already in the outbox (as when the calls follow the texts).
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, insert, select, text  # noqa: E402

from readings_store.db import make_engine, make_session_factory, scratch_postgres_database, upgrade  # noqa: E402
from readings_store.models import (Account, AccountPhone, Meter, Reading, Region, SmsOptOut,  # noqa: E402
                                   SmsOutbox)
from readings_store.sms import plan_reminders  # noqa: E402

NOW = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.timezone.utc)  # 12:00 in Chișinău
PERIOD = "2026-11"
LANGS = {"373": "ro", "380": "uk", "7": "ru", "*": "en"}
CHUNK = 20_000


def fill(engine, n: int) -> None:
    created = NOW - dt.timedelta(days=400)
    with engine.begin() as conn:
        conn.execute(insert(Region), [{"code": f"R{i}", "name": f"Region {i}", "timezone": "Europe/Chisinau",
                                       "work_start": dt.time(8), "work_end": dt.time(17), "work_days": "12345",
                                       "menu_key": i + 1, "created_at": created} for i in range(5)])
        region_ids = list(conn.scalars(select(Region.id).order_by(Region.id)))
    with engine.begin() as conn:
        for start in range(0, n, CHUNK):
            conn.execute(insert(Account), [{"region_id": region_ids[i % 5], "number": f"{1000000 + i}",
                                            "keypad_key": f"{1000000 + i}", "holder_name": f"Holder {i}",
                                            "kind": "person", "active": True, "created_at": created,
                                            "updated_at": created} for i in range(start, min(n, start + CHUNK))])
    with engine.begin() as conn:
        ids = list(conn.scalars(select(Account.id).order_by(Account.id)))
        for start in range(0, n, CHUNK):
            part = range(start, min(n, start + CHUNK))
            conn.execute(insert(AccountPhone), [{"account_id": ids[i], "phone": f"+3736{i:07d}"} for i in part])
            conn.execute(insert(Meter), [{"account_id": ids[i], "serial": f"EL{i:07d}", "utility": "electricity",
                                          "registers": 1, "digits": 6, "decimals": 1, "active": True,
                                          "created_at": created} for i in part])
        conn.execute(insert(SmsOptOut), [{"phone": f"+3736{i:07d}", "keyword": "STOP", "opted_out_at": created}
                                         for i in range(0, n, 50)])
    with engine.begin() as conn:
        meters = list(conn.scalars(select(Meter.id).order_by(Meter.id)))
        rows = [{"meter_id": m, "register": "total", "value": "1000.5", "period": PERIOD, "out_of_window": False,
                 "taken_at": NOW, "received_at": NOW, "channel": "phone_keypad", "status": "accepted"}
                for k, m in enumerate(meters) if k % 3 == 0]
        for start in range(0, len(rows), CHUNK):
            conn.execute(insert(Reading), rows[start:start + CHUNK])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="PostgreSQL server URL (a scratch database is made); default SQLite")
    parser.add_argument("--accounts", type=int, default=213_377)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--call", action="store_true", help="plan reminder calls (texts already queued)")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        if args.database_url:
            url = stack.enter_context(scratch_postgres_database(args.database_url, "ivr_bench"))
        else:
            url = f"sqlite:///{Path(stack.enter_context(tempfile.TemporaryDirectory())) / 'bench.sqlite3'}"
        run(url, args, postgres=bool(args.database_url))


def run(url: str, args, *, postgres: bool) -> None:
    upgrade(url)
    engine = make_engine(url)
    started = time.perf_counter()
    fill(engine, args.accounts)
    with engine.connect() as conn:
        if postgres:
            conn.execute(text("ANALYZE"))
            conn.commit()
    print(f"{'PostgreSQL' if postgres else 'SQLite'}: {args.accounts} accounts filled in "
          f"{time.perf_counter() - started:.1f} s")
    sessions = make_session_factory(engine)
    kind = "call" if args.call else "reminder"
    if args.call:
        with sessions() as db:
            plan_reminders(db, PERIOD, country_languages=LANGS, now=NOW)
            db.commit()
    runs = []
    for _ in range(args.runs):
        with sessions() as db:
            t = time.perf_counter()
            plan = plan_reminders(db, PERIOD, country_languages=LANGS, dry_run=True, now=NOW, kind=kind)
            runs.append(time.perf_counter() - t)
    print(f"dry run: {plan.total} {kind}s {plan.counts}; median {statistics.median(runs):.2f} s "
          f"(runs {', '.join(f'{r:.2f}' for r in runs)})")
    with sessions() as db:
        t = time.perf_counter()
        real = plan_reminders(db, PERIOD, country_languages=LANGS, now=NOW, kind=kind)
        db.commit()
        took = time.perf_counter() - t
        written = db.scalar(select(func.count()).select_from(SmsOutbox).where(SmsOutbox.kind == kind))
    assert real.counts == plan.counts and written == plan.total, (real.counts, written)
    print(f"real run: {written} outbox rows written in {took:.2f} s")
    engine.dispose()


if __name__ == "__main__":
    main()
