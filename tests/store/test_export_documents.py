"""The database renders each reading of the billing API as its JSON text. That text is, byte for
byte, what ``json.dumps(item, ensure_ascii=False, separators=(",", ":"))`` gives for the reading
read through the ORM's types (``decimal_text``, ``iso``): control characters, quotes, backslashes,
any Unicode, values with trailing zeros, times with and without microseconds."""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from sqlalchemy import text

from readings_store import export, importer, regions
from readings_store.models import Reading
from tests import factories as f

UTC = dt.timezone.utc
# Every character a JSON encoder treats apart, and some it must leave alone (PostgreSQL text
# cannot hold NUL).
AWKWARD = "".join(map(chr, range(1, 0x20))) + '"\\/\x7f\u2028\ufeffȘțЁ🙂 ='


def reference(reading: Reading, status: str | None = None) -> str:
    """The reading as the API rendered it in Python, from the ORM's typed values."""
    meter = reading.meter
    item = {
        "id": reading.id, "account_number": meter.account.number, "region_code": meter.account.region.code,
        "meter_serial": meter.serial, "utility": meter.utility, "register": reading.register,
        "value": export.decimal_text(reading.value), "period": reading.period,
        "taken_at": export.iso(reading.taken_at), "received_at": export.iso(reading.received_at),
        "channel": reading.channel, "status": status or reading.status, "supersedes": reading.supersedes_id,
        "export_batch": reading.export_batch_id,
    }
    return json.dumps(item, ensure_ascii=False, separators=(",", ":"))


@pytest.fixture
def readings(db):
    region = f.region(db, code="R-1")
    made = []
    values = ["1250.50", "100", "100.000", "0", "0.000", "12.0345", "999999.9", "1E+2", "0.5"]
    times = [dt.datetime(2025, 1, 20, 9, tzinfo=UTC), dt.datetime(2025, 1, 20, 9, 0, 0, 123456, tzinfo=UTC),
             dt.datetime(2025, 1, 20, 9, 0, 0, 100, tzinfo=UTC), dt.datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC),
             dt.datetime(2025, 2, 1, 0, 0, 0, 120000, tzinfo=UTC)]
    for i in range(0, len(AWKWARD), 8):
        chunk = AWKWARD[i:i + 8]
        account = f.account(db, region, number=f"{i}{chunk}", holder=chunk)
        meter = f.meter(db, account, serial=f"S{chunk}")
        for k, value in enumerate(values):
            taken = times[(i + k) % len(times)]
            reading = Reading(meter_id=meter.id, register="day" if k % 2 else "total", value=Decimal(value),
                              period="2025-01", taken_at=taken, received_at=times[k % len(times)],
                              channel="api", status="accepted" if k % 3 else "superseded",
                              supersedes_id=made[-1].id if made and k % 2 else None)
            db.add(reading)
            db.flush()
            made.append(reading)
    db.commit()
    for reading in made:
        db.refresh(reading)
    return made


def test_a_page_is_the_json_text_python_gives(db, readings):
    filters = export.ReadingFilter(statuses=("accepted", "superseded"))
    documents, last_id, more = export.list_readings(db, filters, limit=len(readings))
    assert documents == [reference(r) for r in readings]
    assert last_id == readings[-1].id and not more
    rows, last_row_id, _ = export.list_readings(db, filters, limit=len(readings), rows=True)
    assert [json.loads(d) for d in documents] == [dict(zip(export.READING_FIELDS, row)) for row in rows]
    assert last_row_id == last_id


def test_a_batch_is_the_json_text_python_gives_with_the_exported_status(db, readings):
    batch = export.create_batch(db)
    db.commit()
    exported = [r for r in readings if r.status == "accepted"]
    for reading in exported:
        db.refresh(reading)
    documents = list(export.batch_documents(db, batch.id, chunk=3))
    assert documents == [reference(r, "accepted") for r in exported]
    assert list(export.batch_readings(db, batch.id, chunk=3)) == [json.loads(d) for d in documents]
    db.execute(text("UPDATE readings SET status = 'superseded' WHERE id = :id"), {"id": exported[0].id})
    db.commit()
    assert next(export.batch_readings(db, batch.id))["status"] == "accepted"


@pytest.mark.parametrize("stored, shown", [
    ("2025-01-20 09:00:00", "2025-01-20T09:00:00Z"),
    ("2025-01-20 11:00:00+02:00", "2025-01-20T09:00:00Z"),
    ("2025-01-20T09:00:00.123456", "2025-01-20T09:00:00.123456Z"),
    ("2025-01-20 09:00:00.000100", "2025-01-20T09:00:00.000100Z"),
])
def test_sqlite_times_not_written_by_sqlalchemy_read_as_utc(db, readings, stored, shown):
    if db.get_bind().dialect.name != "sqlite":
        pytest.skip("SQLite stores times as text")
    db.execute(text("UPDATE readings SET taken_at = :t WHERE id = :id"), {"t": stored, "id": readings[1].id})
    db.commit()
    documents, _, _ = export.list_readings(db, export.ReadingFilter(), limit=1)
    assert json.loads(documents[0])["taken_at"] == shown


def test_a_page_names_the_account_region_and_meter_as_they_are_now(db, readings):
    """On PostgreSQL the account, region and meter fields are kept on each reading by triggers
    (migration 0018): a change to any of them, by the ORM, by SQL, or by an import, shows in the
    next page and batch, and a reading stored by plain SQL has them too."""
    meter = readings[0].meter
    account = meter.account
    regions.update_region(db, account.region, code="R-2", hours="08:00-17:00")  # the factory's are never open
    meter.serial, meter.utility = 'S"new\\', "water"
    db.commit()
    db.execute(text("UPDATE accounts SET number = :n WHERE id = :id"), {"n": "7\u2028", "id": readings[-1].meter.account.id})
    db.execute(text("UPDATE readings SET value = 7.25, register = 'night', period = '2025-02', channel = 'sms', "
                    "taken_at = received_at WHERE id = :id"), {"id": readings[1].id})
    plain = f.meter(db, f.account(db, account.region, number="555"), serial="PLAIN-1")
    db.add(Reading(meter_id=plain.id, register="total", value=Decimal(9), period="2025-01", channel="api",
                   status="accepted"))
    db.commit()
    row = {"region_code": "R-2", "account_number": "555", "holder_name": "X", "kind": "person", "phone": "",
           "meter_serial": "PLAIN-1", "utility": "gas", "registers": "1", "digits": "6", "decimals": "0"}
    report = importer.import_rows(db, [(2, row)])
    assert report.meters_updated == 1, report
    stored = db.execute(text("INSERT INTO readings (meter_id, register, value, period, out_of_window, taken_at, "
                             "received_at, channel, status, trusted) VALUES (:m, 'total', 3, '2025-03', false, "
                             ":t, :t, 'api', 'accepted', true) RETURNING id"),
                        {"m": meter.id, "t": dt.datetime(2025, 3, 2, 1, 2, 3, 4, tzinfo=UTC)}).scalar_one()
    db.commit()
    db.expire_all()
    everything = sorted(db.query(Reading).all(), key=lambda r: r.id)
    assert stored == everything[-1].id
    assert {r.meter.utility for r in everything} >= {"water", "gas", "electricity"}
    filters = export.ReadingFilter(statuses=("accepted", "superseded"))
    documents, _, _ = export.list_readings(db, filters, limit=len(everything))
    assert documents == [reference(r) for r in everything]
    chosen = export.ReadingFilter(statuses=("accepted", "superseded"), region="R-2", utility="water")
    documents, _, _ = export.list_readings(db, chosen, limit=len(everything))
    assert documents == [reference(r) for r in everything if r.meter.utility == "water"] != []
    batch = export.create_batch(db)
    db.commit()
    db.expire_all()
    exported = [r for r in everything if r.status == "accepted"]
    assert list(export.batch_documents(db, batch.id)) == [reference(r, "accepted") for r in exported]
