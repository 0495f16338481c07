"""Billing API benchmark: pull every accepted reading through the API, and export them as CSV.

    .venv/bin/python benchmarks/billing_bench.py                       # SQLite (a temporary file)
    .venv/bin/python benchmarks/billing_bench.py --database-url postgresql://postgres@localhost/postgres

With PostgreSQL a scratch database is created next to the one named in the URL and dropped at
the end. The store gets ``--readings`` accepted readings (default 330 000, a month of the Moldovan
billing centres' volume) on 110 000 meters, inserted with Core executemany. Then, ``--runs`` times
each (median reported):

* pull: every page of ``GET /api/v1/readings?limit=5000`` through the Flask test client, the
  next page named by its ``X-Next-Cursor`` header: the time to get the pages' bytes (what the
  server does for a billing client); and the same pull with each page's JSON decoded by the
  client as it comes (the client's own work added);
* export CSV: ``POST /api/v1/exports`` with ``Accept: text/csv`` (batch creation + the streamed CSV);
* export JSON: the same with JSON;
* raw: the same rows as the pull by the driver alone (SQLite ``fetchall``, PostgreSQL ``COPY ... TO
  STDOUT``), and the pull's ratio to it;
* rename: a region's code changed and changed back (``regions.update_region``, what ``ivr regions set
  R0 --code X0`` does): on PostgreSQL that rewrites the export heads of the region's readings;
* after each export, re-reading the batch (``GET /api/v1/exports/{id}``: rendering alone);
* for the pulls, exports and re-reads, "peak +MB": the most this process's peak RSS grew during one
  run (Linux), the bodies read chunk by chunk and dropped as a client on the network would;
between export runs the batch is undone (export_batch_id set back to NULL, then VACUUM on PostgreSQL).
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import delete, func, insert, select, text, update  # noqa: E402

from ivr.api import tokens  # noqa: E402
from ivr.app import create_app  # noqa: E402
from ivr.config import load_config  # noqa: E402
from peak_memory import PeakGrowth, largest  # noqa: E402
from readings_store import regions  # noqa: E402
from readings_store.db import make_engine, make_session_factory, scratch_postgres_database, upgrade  # noqa: E402
from readings_store.models import Account, ExportBatch, Meter, Reading, Region  # noqa: E402


def fill(engine, n_readings: int, per_meter: int = 3) -> None:
    n_meters = (n_readings + per_meter - 1) // per_meter
    now = dt.datetime.now(dt.timezone.utc)
    created = now - dt.timedelta(days=400)
    with engine.begin() as conn:
        conn.execute(insert(Region), [{"code": f"R{i}", "name": f"Region {i}", "timezone": "Europe/Chisinau",
                                       "work_start": dt.time(8), "work_end": dt.time(17), "work_days": "12345",
                                       "menu_key": i + 1, "created_at": created} for i in range(5)])
        region_ids = list(conn.scalars(select(Region.id).order_by(Region.id)))
    chunk = 20_000
    with engine.begin() as conn:
        for start in range(0, n_meters, chunk):
            rows = [{"region_id": region_ids[i % 5], "number": f"{100000 + i}", "keypad_key": f"{100000 + i}",
                     "holder_name": f"Holder {i}", "kind": "person", "active": True, "created_at": created,
                     "updated_at": created} for i in range(start, min(n_meters, start + chunk))]
            conn.execute(insert(Account), rows)
    with engine.begin() as conn:
        account_ids = list(conn.scalars(select(Account.id).order_by(Account.id)))
        for start in range(0, n_meters, chunk):
            rows = [{"account_id": account_ids[i], "serial": f"EL{i:07d}", "utility": "electricity", "registers": 1,
                     "digits": 6, "decimals": 1, "active": True, "created_at": created}
                    for i in range(start, min(n_meters, start + chunk))]
            conn.execute(insert(Meter), rows)
    with engine.begin() as conn:
        meter_ids = list(conn.scalars(select(Meter.id).order_by(Meter.id)))
        periods = ["2025-01", "2025-02", "2025-03"]
        made = 0
        batch = []
        for p, period in enumerate(periods[:per_meter]):
            taken = dt.datetime(2025, p + 1, 20, 9, 0, tzinfo=dt.timezone.utc)
            for k, meter_id in enumerate(meter_ids):
                if made >= n_readings:
                    break
                batch.append({"meter_id": meter_id, "register": "total", "value": f"{1000 + p * 150 + k % 97}.5",
                              "period": period, "out_of_window": False, "taken_at": taken, "received_at": taken,
                              "channel": "phone_keypad", "status": "accepted"})
                made += 1
                if len(batch) >= chunk:
                    conn.execute(insert(Reading), batch)
                    batch = []
        if batch:
            conn.execute(insert(Reading), batch)


def timed(fn, grown: list | None = None):
    """(seconds, what ``fn`` returns); with ``grown``, the peak memory growth is appended to it."""
    with PeakGrowth() as peak:
        start = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - start
    if grown is not None:
        grown.append(peak)
    return seconds, result


def pull_all(client, headers, *, client_decodes: bool = False) -> tuple[float, int]:
    """Every page, as a billing client pulls them, the next page named by ``X-Next-Cursor``:
    (seconds, readings). The seconds are those spent getting the pages' bytes, and with
    ``client_decodes`` also decoding each page's JSON (``json.loads``) as it comes; otherwise the
    pages are decoded outside the time, to count their readings."""
    count, cursor, seconds = 0, None, 0.0
    while True:
        query = {"limit": 5000}
        if cursor:
            query["cursor"] = cursor
        started = time.perf_counter()
        resp = client.get("/api/v1/readings", query_string=query, headers=headers)
        data = resp.get_data()
        body = json.loads(data) if client_decodes else None
        seconds += time.perf_counter() - started
        assert resp.status_code == 200, data[:300]
        if body is None:
            body = json.loads(data)
        count += len(body["items"])
        cursor = resp.headers.get("X-Next-Cursor")
        assert cursor == body["next_cursor"]
        if not cursor:
            return seconds, count


def consumed(resp) -> int:
    """The size of a streamed body, read chunk by chunk as a client on the network would (nothing
    kept, so the process's memory is the server's)."""
    try:
        return sum(len(chunk) for chunk in resp.response)
    finally:
        resp.close()


def export_once(client, headers, accept: str) -> tuple[int, int, int]:
    resp = client.post("/api/v1/exports", headers={**headers, "Accept": accept}, buffered=False)
    assert resp.status_code == 201, resp.status_code
    return int(resp.headers["X-Export-Count"]), consumed(resp), int(resp.headers["X-Export-Batch-Id"])


def reread(client, headers, batch_id: int, accept: str) -> int:
    resp = client.get(f"/api/v1/exports/{batch_id}", headers={**headers, "Accept": accept}, buffered=False)
    assert resp.status_code == 200
    return int(resp.headers["X-Export-Count"]), consumed(resp)


def rename_region(engine, old: str, new: str) -> int:
    """``ivr regions set OLD --code NEW``'s work, committed: on PostgreSQL the triggers rewrite the
    export heads of the region's readings (migration 0018). Returns how many readings it has."""
    with make_session_factory(engine)() as db:
        region = db.scalars(select(Region).where(Region.code == old)).one()
        regions.update_region(db, region, code=new)
        db.commit()
        return db.scalar(select(func.count()).select_from(Reading).join(Meter).join(Account)
                         .where(Account.region_id == region.id))


def undo_exports(engine) -> None:
    """Put every reading back to "not exported" (and, on PostgreSQL, vacuum the dead row versions
    this leaves, which a real store, exporting each reading once, would not have)."""
    with engine.begin() as conn:
        conn.execute(update(Reading).where(Reading.export_batch_id.is_not(None)).values(export_batch_id=None))
        conn.execute(delete(ExportBatch))
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE readings"))
            conn.execute(text("VACUUM ANALYZE export_batches"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="PostgreSQL server URL (a scratch database is made); default SQLite")
    parser.add_argument("--readings", type=int, default=330_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    with contextlib.ExitStack() as stack:
        data_dir = stack.enter_context(tempfile.TemporaryDirectory())
        if args.database_url:
            url = stack.enter_context(scratch_postgres_database(args.database_url, "ivr_bench"))
        else:
            url = f"sqlite:///{Path(data_dir) / 'bench.sqlite3'}"
        run(url, data_dir, args, postgres=bool(args.database_url))


def run(url: str, data_dir: str, args, *, postgres: bool) -> None:
    backend = "PostgreSQL" if postgres else "SQLite"
    upgrade(url)
    engine = make_engine(url)
    fill_time, _ = timed(lambda: fill(engine, args.readings))
    if postgres:
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()
    with engine.connect() as conn:
        total = conn.scalar(select(func.count()).select_from(Reading).where(Reading.status == "accepted"))
    print(f"{backend}: {total} accepted readings inserted in {fill_time:.1f} s")

    os.environ.setdefault("IVR_DATA_DIR", data_dir)
    app = create_app(load_config(database_url=url, secret_key="bench"), engine=engine)
    session = make_session_factory(engine)()
    _, token = tokens.create(session, "bench", "write")
    session.commit()
    session.close()
    headers = {"Authorization": f"Bearer {token}"}
    client = app.test_client()

    results = {}  # label -> (seconds of each run, the peak memory growth of each run or None)
    pulls, parsed, pulls_grown = [], [], []
    for _ in range(args.runs):
        with PeakGrowth() as peak:
            seconds, count = pull_all(client, headers)
        pulls_grown.append(peak)
        assert count == total, (count, total)
        pulls.append(seconds)
        seconds, count = pull_all(client, headers, client_decodes=True)
        assert count == total, (count, total)
        parsed.append(seconds)
    results["pull (GET /readings, 5000/page)"] = pulls, pulls_grown
    results["  the same, each page's JSON decoded by the client"] = parsed, None
    raws = []
    for _ in range(args.runs):
        seconds, count = timed(lambda: raw_fetch(engine, postgres))
        assert count == total, (count, total)
        raws.append(seconds)
    results["raw COPY ... TO STDOUT (same rows)" if postgres else "raw fetchall (same rows)"] = raws, None
    renames = []
    for run in range(args.runs):
        seconds, in_region = timed(lambda: rename_region(engine, *(("R0", "X0"), ("X0", "R0"))[run % 2]))
        renames.append(seconds)
        undo_exports(engine)  # vacuums
    results[f"rename a region's code ({in_region:,} readings)"] = renames, None
    for label, accept in (("export CSV (POST /exports)", "text/csv"), ("export JSON (POST /exports)", "application/json")):
        runs, rereads, runs_grown, rereads_grown = [], [], [], []
        for _ in range(args.runs):
            undo_exports(engine)
            seconds, (count, size, batch_id) = timed(lambda: export_once(client, headers, accept), runs_grown)
            assert count == total, (count, total)
            runs.append(seconds)
            seconds, (count, _) = timed(lambda: reread(client, headers, batch_id, accept), rereads_grown)
            assert count == total
            rereads.append(seconds)
        results[f"{label}, {size / 1e6:.0f} MB"] = runs, runs_grown
        results[f"  re-read it, {accept} (GET /exports/{{id}})"] = rereads, rereads_grown
    print(f"{'operation':<52} {'median s':>9} {'readings/s':>11} {'peak +MB':>9}   runs (s)")
    for label, (runs, grown) in results.items():
        med = statistics.median(runs)
        memory = largest(grown) if grown is not None else ""
        print(f"{label:<52} {med:>9.2f} {total / med:>11,.0f} {memory:>9}   {', '.join(f'{r:.2f}' for r in runs)}")
    raw = statistics.median(raws)
    print(f"pull / raw: {statistics.median(pulls) / raw:.2f}x (goal: at most 3x); with the client's JSON decoding "
          f"{statistics.median(parsed) / raw:.2f}x")
    engine.dispose()


# The rows and columns a pull gives, in its order, as one query without the API.
RAW_SQL = ("SELECT r.id, a.number, g.code, m.serial, m.utility, r.register, r.value, r.period, r.taken_at, "
           "r.received_at, r.channel, r.status, r.supersedes_id, r.export_batch_id FROM readings r "
           "JOIN meters m ON r.meter_id = m.id JOIN accounts a ON m.account_id = a.id "
           "JOIN regions g ON a.region_id = g.id WHERE r.status = 'accepted' ORDER BY r.id")


def raw_fetch(engine, postgres: bool) -> int:
    """The floor a pull is compared with: the same rows by the driver alone (SQLite: ``fetchall``;
    PostgreSQL: ``COPY (...) TO STDOUT``, as text). Returns the number of rows."""
    with engine.connect() as conn:
        dbapi = conn.connection.dbapi_connection
        if not postgres:
            return len(dbapi.execute(RAW_SQL).fetchall())
        rows = 0
        with dbapi.cursor() as cur, cur.copy(f"COPY ({RAW_SQL}) TO STDOUT") as copy:
            for block in copy:
                rows += bytes(block).count(b"\n")
        dbapi.rollback()
        return rows


if __name__ == "__main__":
    main()
