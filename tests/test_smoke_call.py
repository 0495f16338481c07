"""A first whole call on the keypad, to prove the fixtures and the simulator work together."""
from sqlalchemy import select

from readings_store.models import Reading
from tests import factories as f


def test_keypad_call_stores_reading(db, phone):
    r = f.region(db)
    a = f.account(db, r, number="100001")
    f.meter(db, a, previous=1000)
    db.commit()
    call = phone(caller="+447700900123")
    p = call.start()
    assert "English — press 4." in p.texts
    p = call.press("4")
    assert any("account number" in t for t in p.texts)
    p = call.press("100001#")
    assert any("electricity" in t for t in p.texts)
    p = call.press("1250*5#")
    assert "That's 1 2 5 0 point 5." in p.texts
    p = call.press("1")
    assert "Reading saved." in p.texts
    readings = db.scalars(select(Reading).where(Reading.channel == "phone_keypad")).all()
    assert [(str(x.value), x.status) for x in readings] == [("1250.5", "accepted")]
