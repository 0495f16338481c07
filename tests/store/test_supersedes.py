"""What ``supersedes`` names: the reading billing can follow the chain from.

A new accepted reading supersedes the last reading of its meter, register and period that billing
has received (exported), or, if none was exported, the last accepted one. Pending and rejected
readings are never the target.
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


def test_without_an_export_the_last_accepted_is_named_and_rejected_never(db):
    meter = _meter(db)
    a = service.store_reading(db, meter, "total", D("2000"), channel="phone_keypad")
    rejected = service.store_reading(db, meter, "total", D("2005"), channel="phone_speech", status="pending_review",
                                     reason="low_confidence")
    rejected.status = "rejected"
    db.flush()
    c = service.store_reading(db, meter, "total", D("2010"), channel="phone_keypad")
    db.commit()
    assert _fresh(db, c).supersedes_id == a.id
    assert _fresh(db, rejected).status == "rejected"


def test_other_registers_and_periods_are_not_targets(db):
    region = f.region(db, window=None)
    meter = f.meter(db, f.account(db, region), registers=2)
    db.commit()
    day = service.store_reading(db, meter, "day", D("100"), channel="phone_keypad")
    night = service.store_reading(db, meter, "night", D("50"), channel="phone_keypad")
    db.commit()
    assert (day.supersedes_id, night.supersedes_id) == (None, None)


def test_who_may_replace_an_accepted_reading_by_phone(db):
    from readings_store.models import Call

    meter = _meter(db)
    mine = Call(call_sid="CA" + "1" * 32, from_number="+37369000001")
    db.add(mine)
    db.flush()
    assert service.review_reason_to_replace(db, meter, "total", "+37369000001", mine.id) is None  # nothing yet
    service.store_reading(db, meter, "total", D("2000"), channel="phone_keypad", call_id=mine.id)
    db.flush()
    assert service.review_reason_to_replace(db, meter, "total", "+37369000001") is None
    assert service.review_reason_to_replace(db, meter, "total", None, mine.id) is None  # same call
    assert service.review_reason_to_replace(db, meter, "total", "+37369000002") == "replaces_other_caller"
    assert service.review_reason_to_replace(db, meter, "total", None) == "replaces_other_caller"
    # A reading an operator (or an import, or the API) gave is nobody's own, even with the call's id.
    service.store_reading(db, meter, "total", D("2001"), channel="operator", call_id=mine.id)
    db.flush()
    assert service.review_reason_to_replace(db, meter, "total", "+37369000001", mine.id) == "replaces_other_caller"
    db.commit()
    export.create_batch(db)
    db.commit()
    assert service.review_reason_to_replace(db, meter, "total", "+37369000001", mine.id) == "replaces_exported"
