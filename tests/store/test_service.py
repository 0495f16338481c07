"""Storing readings: periods, superseding, idempotency, review tasks."""
import datetime as dt
from decimal import Decimal as D

from sqlalchemy import select

from readings_store import service
from readings_store.models import Reading, ReviewTask, utcnow
from tests import factories as f


def _setup(db, **meter):
    r = f.region(db, window=None)
    a = f.account(db, r)
    m = f.meter(db, a, **meter)
    db.commit()
    return r, a, m


def test_second_reading_in_period_supersedes_first_keeping_history(db):
    _, _, m = _setup(db)
    now = utcnow()
    first = service.store_reading(db, m, "total", D("100"), channel="phone_keypad", now=now)
    second = service.store_reading(db, m, "total", D("110"), channel="phone_keypad", now=now)
    db.commit()
    assert first.status == "superseded" and second.status == "accepted"
    assert second.supersedes_id is None  # billing never received the first: it is never exported
    assert len(db.scalars(select(Reading)).all()) == 2


def test_pending_reading_does_not_replace_accepted(db):
    _, _, m = _setup(db)
    accepted = service.store_reading(db, m, "total", D("100"), channel="phone_keypad")
    pending = service.store_reading(db, m, "total", D("5"), channel="phone_speech", status="pending_review",
                                    reason="low_confidence")
    db.commit()
    assert accepted.status == "accepted" and pending.status == "pending_review"
    task = db.scalars(select(ReviewTask)).one()
    assert (task.kind, task.reason, task.reading_id) == ("reading", "low_confidence", pending.id)


def test_idempotency_key_stores_once(db):
    _, _, m = _setup(db)
    a = service.store_reading(db, m, "total", D("100"), channel="phone_keypad", idempotency_key="CA1:5")
    b = service.store_reading(db, m, "total", D("100"), channel="phone_keypad", idempotency_key="CA1:5")
    db.commit()
    assert a.id == b.id and len(db.scalars(select(Reading)).all()) == 1


def test_outside_window_is_kept_for_next_period(db):
    r = f.region(db, window=(1, 1))
    a = f.account(db, r)
    m = f.meter(db, a)
    db.commit()
    when = dt.datetime(2026, 11, 15, 12, tzinfo=dt.timezone.utc)
    reading = service.store_reading(db, m, "total", D("100"), channel="api", now=when)
    assert (reading.period, reading.out_of_window, reading.status) == ("2026-12", True, "accepted")


def test_keypad_key_and_find_account(db):
    r = f.region(db)
    f.account(db, r, number="123-456")
    f.account(db, r, number="123/457")
    db.commit()
    assert service.keypad_key("123-456") == "123*456"
    assert service.keypad_key(" 12 / 34 ") == "12*34"
    assert service.find_account(db, r.id, "123*456").number == "123-456"
    assert service.find_account(db, r.id, "123*457").number == "123/457"
    assert service.find_account(db, r.id, "123456") is None


def test_one_lookup_by_keypad_key_for_every_channel(db):
    """The phone line (per region), a text (any region) and the console's search (separators
    ignored) all find accounts by ``accounts_by_key``; two accounts typed alike are found by none."""
    north, south = f.region(db), f.region(db, code="SUD", name="Sud", menu_key=2)
    f.account(db, north, number="12-34")
    f.account(db, south, number="12-34")
    f.account(db, south, number="555-1")
    db.commit()
    assert [a.region_id for a in service.accounts_by_key(db, "12*34", limit=5)] == [north.id, south.id]
    assert service.find_account(db, north.id, "12 34").region_id == north.id
    assert service.find_account(db, None, "12*34") is None  # alike in two regions: not told apart
    assert service.find_account(db, None, "555/1").number == "555-1"
    assert service.accounts_by_key(db, "5551") == []
    assert [a.number for a in service.accounts_by_key(db, "5551", any_separators=True)] == ["555-1"]
    assert service.accounts_by_key(db, " - ") == []


def test_working_hours_in_region_timezone():
    from readings_store.models import Region

    region = Region(timezone="Asia/Novosibirsk", work_start=dt.time(8), work_end=dt.time(17), work_days="12345")
    # Monday 2026-11-23 02:00 UTC is 09:00 in Novosibirsk (UTC+7)
    assert service.in_working_hours(region, dt.datetime(2026, 11, 23, 2, tzinfo=dt.timezone.utc))
    assert not service.in_working_hours(region, dt.datetime(2026, 11, 23, 10, tzinfo=dt.timezone.utc))
    # Saturday
    assert not service.in_working_hours(region, dt.datetime(2026, 11, 21, 2, tzinfo=dt.timezone.utc))
