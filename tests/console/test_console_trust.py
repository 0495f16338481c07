"""Operator actions keep the ``supersedes`` chain billing follows; the console shows probing."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from readings_store import export, service
from readings_store.models import Reading, ReviewTask
from tests import factories as f


def _fresh(db, model, id_):
    db.expire_all()
    return db.get(model, id_)


def _exported_then_pending(db, *pending_values):
    """An accepted reading billing has received (2000), then readings left pending review."""
    region = f.region(db, window=None)
    meter = f.meter(db, f.account(db, region), previous=1000, previous_days_ago=40)
    db.commit()
    exported = service.store_reading(db, meter, "total", Decimal("2000"), channel="phone_keypad")
    db.commit()
    assert export.create_batch(db) is not None
    db.commit()
    pending = [service.store_reading(db, meter, "total", Decimal(v), channel="phone_speech", status="pending_review",
                                     reason="low_confidence") for v in pending_values]
    db.commit()
    task = db.scalars(select(ReviewTask).where(ReviewTask.reading_id == pending[-1].id)).one()
    return exported, pending, task


def test_accepting_a_pending_reading_names_the_exported_one(oc, db):
    exported, (first, second), task = _exported_then_pending(db, "2050", "2100")
    assert oc.post(f"/console/tasks/{task.id}/accept").status_code == 302
    accepted = _fresh(db, Reading, second.id)
    assert accepted.status == "accepted"
    assert accepted.supersedes_id == exported.id
    assert _fresh(db, Reading, first.id).status == "superseded"


def test_a_correction_names_the_exported_reading_not_the_pending_one(oc, db):
    exported, (pending,), task = _exported_then_pending(db, "2050")
    response = oc.post(f"/console/tasks/{task.id}/correct",
                       data={"correct-value": "2100", "correct-reason": "caller read the wrong dial"})
    assert response.status_code == 302
    new = db.scalars(select(Reading).where(Reading.channel == "operator")).one()
    assert (new.value, new.status, new.supersedes_id) == (Decimal("2100"), "accepted", exported.id)
    assert _fresh(db, Reading, pending.id).status == "superseded"
    batch = export.create_batch(db)
    db.commit()
    assert [(r["id"], r["supersedes"]) for r in export.batch_readings(db, batch.id)] == [(new.id, exported.id)]
