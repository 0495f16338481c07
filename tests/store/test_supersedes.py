"""What ``supersedes`` names: the reading billing can follow the chain from.

A new accepted reading names the last reading of its meter, register and period that billing has
received in an export batch, else nothing. A reading replaced before it was exported is never
exported and never named; pending and rejected readings are never the target.
"""
from decimal import Decimal as D

from readings_store import export, service
from readings_store.models import Reading
from tests import factories as f


def _meter(db):
    region = f.region(db, window=None)
    meter = f.meter(db, f.account(db, region), previous=1000, previous_days_ago=40)
    db.commit()
    return meter


def _fresh(db, reading):
    db.expire_all()
    return db.get(Reading, reading.id)


def test_audit_case_supersedes_the_exported_reading_not_the_pending_one(db):
    """2000 saved and exported (A); a value left pending review (B); 2100 saved (C): C names A."""
    meter = _meter(db)
    a = service.store_reading(db, meter, "total", D("2000"), channel="phone_keypad")
    db.commit()
    assert export.create_batch(db) is not None
    db.commit()
    b = service.store_reading(db, meter, "total", D("2050"), channel="phone_speech", status="pending_review",
                              reason="low_confidence")
    c = service.store_reading(db, meter, "total", D("2100"), channel="phone_keypad")
    db.commit()
    assert b.id > a.id
    assert _fresh(db, c).supersedes_id == a.id
    assert (_fresh(db, a).status, _fresh(db, b).status) == ("superseded", "superseded")


def test_a_pending_reading_names_nothing(db):
    meter = _meter(db)
    service.store_reading(db, meter, "total", D("2000"), channel="phone_keypad")
    first = service.store_reading(db, meter, "total", D("2010"), channel="phone_speech", status="pending_review",
                                  reason="low_confidence")
    second = service.store_reading(db, meter, "total", D("2020"), channel="phone_speech", status="pending_review",
                                   reason="low_confidence")
    db.commit()
    assert _fresh(db, first).status == "superseded"
    assert _fresh(db, second).supersedes_id is None


def test_exported_reading_wins_over_a_later_accepted_one_billing_never_saw(db):
    """A exported; A2 accepted (not exported) supersedes A; C supersedes A, and A2 is never exported."""
    meter = _meter(db)
    a = service.store_reading(db, meter, "total", D("2000"), channel="phone_keypad")
    db.commit()
    export.create_batch(db)
    db.commit()
    a2 = service.store_reading(db, meter, "total", D("2001"), channel="operator")
    assert a2.supersedes_id == a.id
    c = service.store_reading(db, meter, "total", D("2002"), channel="api")
    db.commit()
    assert _fresh(db, c).supersedes_id == a.id
    assert _fresh(db, a2).status == "superseded" and _fresh(db, a2).export_batch_id is None
    batch = export.create_batch(db)
    db.commit()
    assert [r["id"] for r in export.batch_readings(db, batch.id)] == [c.id]


def test_the_last_exported_reading_is_named(db):
    meter = _meter(db)
    a = service.store_reading(db, meter, "total", D("2000"), channel="phone_keypad")
    db.commit()
    export.create_batch(db)
    b = service.store_reading(db, meter, "total", D("2001"), channel="phone_keypad")
    db.commit()
    export.create_batch(db)
    db.commit()
    c = service.store_reading(db, meter, "total", D("2002"), channel="phone_keypad")
    db.commit()
    assert (_fresh(db, b).supersedes_id, _fresh(db, c).supersedes_id) == (a.id, b.id)


def test_without_an_export_nothing_is_named_and_the_replaced_reading_is_never_exported(db):
    """Saved 120, corrected to 125 before any export: the batch holds 125 alone, naming nothing."""
    meter = _meter(db)
    a = service.store_reading(db, meter, "total", D("1120"), channel="phone_keypad")
    rejected = service.store_reading(db, meter, "total", D("1122"), channel="phone_speech", status="pending_review",
                                     reason="low_confidence")
    rejected.status = "rejected"
    db.flush()
    c = service.store_reading(db, meter, "total", D("1125"), channel="phone_keypad")
    db.commit()
    assert _fresh(db, c).supersedes_id is None
    assert (_fresh(db, a).status, _fresh(db, rejected).status) == ("superseded", "rejected")
    batch = export.create_batch(db)
    db.commit()
    this_period = [(r["id"], r["supersedes"]) for r in export.batch_readings(db, batch.id) if r["period"] == c.period]
    assert this_period == [(c.id, None)]


def test_other_registers_and_periods_are_not_targets(db):
    region = f.region(db, window=None)
    meter = f.meter(db, f.account(db, region), registers=2)
    db.commit()
    day = service.store_reading(db, meter, "day", D("100"), channel="phone_keypad")
    night = service.store_reading(db, meter, "night", D("50"), channel="phone_keypad")
    db.commit()
    assert (day.supersedes_id, night.supersedes_id) == (None, None)
