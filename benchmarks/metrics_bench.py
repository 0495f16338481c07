"""/metrics benchmark: a scrape's time with a real month's calls and readings, and after many
worker restarts.

    .venv/bin/python benchmarks/metrics_bench.py                     # SQLite (a temporary file)
    .venv/bin/python benchmarks/metrics_bench.py --database-url postgresql://postgres@127.0.0.1/postgres

Writes ``--calls`` calls (default 100 000, outcomes of every kind) and ``--readings`` readings
(default 330 000, statuses and channels of every kind) with bulk inserts, which the database's
triggers count as the phone line's rows would be (the first scrape folds those changes, and is
printed on its own). Then it scrapes ``/metrics`` ``--scrapes`` times
(default 20) in the app, as gunicorn's workers do, and prints the median; and again after
``--restarts`` workers (default 2 000) have each left their metric files (copies of this process's
own, so with the product's series), first as they were left before dead workers were archived,
then archived as gunicorn's ``child_exit`` does (``ivr.ops.metrics.archive_dead_process``). For
comparison it also prints the time of the same counts made by GROUP BY over every call and
reading, which is what a scrape used to run. With PostgreSQL a scratch database is created next
to the one named in the URL and dropped at the end.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

# Multi-process metrics, as under gunicorn: prometheus_client picks its value files at import.
_FOLDER = tempfile.mkdtemp(prefix="ivr-metrics-bench-")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _FOLDER
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, insert, select  # noqa: E402

from readings_store.db import make_engine, make_session_factory, scratch_postgres_database, upgrade  # noqa: E402

OUTCOMES = ("completed", "completed", "completed", "no_reading", "transferred", "gave_up", "hung_up", None)
STATUSES = ("accepted",) * 6 + ("pending_review", "rejected", "superseded")
CHANNELS = ("phone_keypad", "phone_speech", "sms", "api", "operator", "import")
CHUNK = 20_000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="postgresql://… (a scratch database is made beside it); default SQLite")
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--readings", type=int, default=330_000)
    parser.add_argument("--restarts", type=int, default=2_000, help="dead workers whose metric files are left")
    parser.add_argument("--scrapes", type=int, default=20)
    args = parser.parse_args(argv)
    try:
        with contextlib.ExitStack() as stack:
            if args.database_url:
                url = stack.enter_context(scratch_postgres_database(args.database_url, "ivr_metrics_bench"))
            else:
                folder = stack.enter_context(tempfile.TemporaryDirectory())
                url = f"sqlite:///{folder}/bench.sqlite3"
            run(url, args)
    finally:
        shutil.rmtree(_FOLDER, ignore_errors=True)


def fill(db, calls: int, readings: int) -> None:
    """Calls and readings with bulk inserts; one region, account and meter carry the readings."""
    from readings_store.models import Account, Call, Meter, Reading, Region

    rnd = random.Random(23)
    region = Region(code="CHI", name="Chișinău", timezone="Europe/Chisinau", menu_key=1, names={},
                    phone_prefixes=[], work_start=dt.time(8), work_end=dt.time(17), work_days="12345")
    db.add(region)
    db.flush()
    account = Account(region_id=region.id, number="100001", keypad_key="100001", holder_name="Ion Popescu")
    db.add(account)
    db.flush()
    meter = Meter(account_id=account.id, serial="EL0001", utility="electricity")
    db.add(meter)
    db.flush()
    start = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    rows = [{"call_sid": f"CA{n:032x}", "outcome": rnd.choice(OUTCOMES), "state": {}, "steps": [],
             "started_at": start + dt.timedelta(seconds=n * 26)} for n in range(calls)]
    for first in range(0, len(rows), CHUNK):
        db.execute(insert(Call), rows[first:first + CHUNK])
    rows = [{"meter_id": meter.id, "register": "total", "value": Decimal(n), "period": "2026-11",
             "channel": rnd.choice(CHANNELS), "status": rnd.choice(STATUSES)} for n in range(readings)]
    for first in range(0, len(rows), CHUNK):
        db.execute(insert(Reading), rows[first:first + CHUNK])
    db.commit()


def median_ms(client, scrapes: int) -> tuple[float, bytes]:
    times, body = [], b""
    for _ in range(scrapes):
        start = time.perf_counter()
        response = client.get("/metrics")
        times.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"/metrics answered {response.status_code}")
        body = response.data
    return statistics.median(times), body


def run(url: str, args) -> None:
    from ivr.app import create_app
    from ivr.config import load_config
    from ivr.ops.metrics import ADDITIVE_KINDS, archive_dead_process
    from readings_store.models import Call, Reading

    os.environ.setdefault("IVR_DATA_DIR", tempfile.mkdtemp())
    upgrade(url)
    engine = make_engine(url)
    started = time.perf_counter()
    with make_session_factory(engine)() as db:
        fill(db, args.calls, args.readings)
        db.connection().exec_driver_sql("ANALYZE")  # as a database in service has its statistics
        db.commit()
    load = os.getloadavg()
    print(f"{engine.dialect.name}: {args.calls} calls, {args.readings} readings written in "
          f"{time.perf_counter() - started:.1f} s; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    app = create_app(load_config(database_url=url, twilio_auth_token="t" * 32, secret_key="bench"), engine=engine)
    client = app.test_client()
    # The first scrape folds the changes the bulk insert appended (one per row written); after it,
    # VACUUM as autovacuum soon would on PostgreSQL (the folded rows are dead tuples until then).
    start = time.perf_counter()
    client.get("/metrics")  # this process's own value files exist from here on
    print(f"{'first scrape, folding the changes appended:':<44} {(time.perf_counter() - start) * 1000:8.1f} ms")
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE record_counts")

    scrape, body = median_ms(client, args.scrapes)
    calls_line = next(line for line in body.decode().splitlines() if line.startswith('ivr_calls{outcome="completed"}'))
    print(f"{f'scrape, {args.calls} calls:':<44} median {scrape:8.1f} ms of {args.scrapes} ({calls_line})")
    with make_session_factory(engine)() as db:
        times = []
        for _ in range(max(3, args.scrapes // 4)):
            start = time.perf_counter()
            db.execute(select(Call.outcome, func.count()).group_by(Call.outcome)).all()
            db.execute(select(Reading.status, Reading.channel, func.count()).group_by(Reading.status, Reading.channel)).all()
            times.append((time.perf_counter() - start) * 1000)
    print(f"{'the same counts by GROUP BY over every row:':<44} median {statistics.median(times):8.1f} ms")

    folder = Path(_FOLDER)
    own = [p for p in folder.glob("*.db") if p.name.split("_")[0] in ADDITIVE_KINDS]
    dead = list(range(4_000_000, 4_000_000 + args.restarts))  # no real process has these ids
    for pid in dead:
        for path in own:
            shutil.copy(path, folder / f"{path.name.split('_')[0]}_{pid}.db")
    files = len(list(folder.glob("*.db")))
    left, _ = median_ms(client, args.scrapes)
    print(f"{f'scrape, {args.restarts} dead workers, files left:':<44} median {left:8.1f} ms ({files} files)")
    for pid in dead:
        archive_dead_process(folder, pid)
    files = len(list(folder.glob("*.db")))
    archived, _ = median_ms(client, args.scrapes)
    print(f"{f'scrape, {args.restarts} dead workers, archived:':<44} median {archived:8.1f} ms ({files} files)")
    load = os.getloadavg()
    print(f"load average after: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    engine.dispose()


if __name__ == "__main__":
    main()
