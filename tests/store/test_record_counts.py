"""The counts ``/metrics`` reads (``record_counts``) are kept by the database as calls, readings
and export batches are inserted, changed and deleted, by the ORM or by plain SQL, and always equal
a count of the rows themselves."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import delete, func, insert, select, update

from ivr.ops.metrics import compact_record_counts, read_record_counts
from readings_store.models import Call, ExportBatch, Reading, RecordCount
from tests import factories as f

pytestmark = pytest.mark.db

AT = dt.datetime(2026, 11, 3, 9, 0, tzinfo=dt.timezone.utc)


def kept(db) -> dict:
    return {(family, first, second): n for family, first, second, n in read_record_counts(db) if n}


def counted(db) -> dict:
    out = {("calls", outcome or "", ""): n for outcome, n in
           db.execute(select(Call.outcome, func.count()).group_by(Call.outcome))}
    out |= {("readings", status, channel): n for status, channel, n in
            db.execute(select(Reading.status, Reading.channel, func.count()).group_by(Reading.status, Reading.channel))}
    created, acknowledged = db.execute(select(func.count(), func.count(ExportBatch.acknowledged_at))).one()
    out |= {("export_batches", "created", ""): created, ("export_batches", "acknowledged", ""): acknowledged}
    return {key: n for key, n in out.items() if n}


def test_counts_follow_every_change_of_the_rows(db):
    assert kept(db) == {}
    meter = f.meter(db, f.account(db, f.region(db)), previous=None)
    calls = [Call(call_sid=f"CA{n:032d}", started_at=AT) for n in range(4)]
    db.add_all(calls)
    db.flush()
    assert kept(db) == counted(db) == {("calls", "", ""): 4}
    calls[0].outcome = "completed"
    calls[1].outcome = "hung_up"
    calls[2].language = "ro"  # not an outcome: moves nothing
    db.flush()
    db.execute(update(Call).where(Call.id == calls[1].id).values(outcome="completed"))
    db.execute(insert(Reading), [{"meter_id": meter.id, "register": "total", "value": Decimal(n), "period": "2026-11",
                                  "channel": channel, "status": status} for n, (channel, status) in
                                 enumerate([("phone_keypad", "accepted"), ("phone_speech", "pending_review"),
                                            ("sms", "accepted"), ("phone_keypad", "accepted")])])
    db.execute(update(Reading).where(Reading.channel == "phone_speech").values(status="accepted"))
    db.execute(update(Reading).where(Reading.channel == "sms").values(channel="api", status="rejected"))
    db.execute(update(Reading).values(period="2026-12"))  # not counted: moves nothing
    db.add_all([ExportBatch(), ExportBatch(acknowledged_at=AT)])
    db.flush()
    assert kept(db) == counted(db) == {
        ("calls", "", ""): 2, ("calls", "completed", ""): 2, ("readings", "accepted", "phone_keypad"): 2,
        ("readings", "accepted", "phone_speech"): 1, ("readings", "rejected", "api"): 1,
        ("export_batches", "created", ""): 2, ("export_batches", "acknowledged", ""): 1}
    db.execute(update(ExportBatch).values(acknowledged_at=AT))
    db.execute(update(ExportBatch).values(acknowledged_at=AT + dt.timedelta(hours=1)))  # still acknowledged
    assert kept(db)[("export_batches", "acknowledged", "")] == 2
    db.execute(update(ExportBatch).where(ExportBatch.id == db.scalar(select(func.min(ExportBatch.id))))
               .values(acknowledged_at=None))
    db.execute(delete(Reading).where(Reading.channel == "phone_keypad"))
    db.execute(delete(ExportBatch).where(ExportBatch.acknowledged_at.is_not(None)))
    db.delete(calls[3])
    db.commit()
    assert kept(db) == counted(db) == {
        ("calls", "", ""): 1, ("calls", "completed", ""): 2, ("readings", "accepted", "phone_speech"): 1,
        ("readings", "rejected", "api"): 1, ("export_batches", "created", ""): 1}
    # A change rolled back leaves the counts as they were.
    db.add(Call(call_sid="CA" + "f" * 32, started_at=AT, outcome="transferred"))
    db.flush()
    db.rollback()
    assert kept(db) == counted(db)
    # Folded into one row per series, the counts are the same, and go on from there.
    appended = db.scalar(select(func.count()).select_from(RecordCount))
    compact_record_counts(db)
    assert db.scalar(select(func.count()).select_from(RecordCount)) < appended
    assert kept(db) == counted(db)
    db.execute(update(Call).values(outcome="no_reading"))
    db.commit()
    assert kept(db) == counted(db) == {
        ("calls", "no_reading", ""): 3, ("readings", "accepted", "phone_speech"): 1,
        ("readings", "rejected", "api"): 1, ("export_batches", "created", ""): 1}


def test_a_scrape_folds_many_changes(db, monkeypatch):
    import ivr.ops.metrics

    monkeypatch.setattr(ivr.ops.metrics, "COMPACT_AFTER", 10)
    db.execute(insert(Call), [{"call_sid": f"CA{n:032d}", "started_at": AT, "state": {}, "steps": [],
                               "outcome": ("completed", "hung_up", None)[n % 3]} for n in range(60)])
    db.commit()
    assert kept(db) == counted(db) == {("calls", "completed", ""): 20, ("calls", "hung_up", ""): 20,
                                       ("calls", "", ""): 20}
    assert db.scalar(select(func.count()).select_from(RecordCount)) <= 3 + 2  # a row per series (and batches')
