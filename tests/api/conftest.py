"""Fixtures for the billing API: tokens, and a small store of accounts, meters and readings."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from ivr.api import tokens
from readings_store.models import Reading, utcnow
from tests import factories as f


@pytest.fixture
def make_token(sessions):
    """``make_token("read")`` -> Authorization headers for a new token of that scope."""
    counter = iter(range(1, 1000))

    def make(scope: str = "read", name: str | None = None) -> dict:
        session = sessions()
        try:
            _, token = tokens.create(session, name or f"client-{scope}-{next(counter)}", scope)
            session.commit()
        finally:
            session.close()
        return {"Authorization": f"Bearer {token}"}

    return make


@pytest.fixture
def read_headers(make_token):
    return make_token("read")


@pytest.fixture
def write_headers(make_token):
    return make_token("write")


def add_reading(db, meter, value, *, period="2025-01", register="total", status="accepted", channel="phone_keypad",
                taken_at=None, supersedes=None) -> Reading:
    taken_at = taken_at or dt.datetime(int(period[:4]), int(period[5:]), 20, 10, 30, tzinfo=dt.timezone.utc)
    reading = Reading(meter_id=meter.id, register=register, value=Decimal(str(value)), period=period,
                      taken_at=taken_at, received_at=taken_at + dt.timedelta(seconds=5), channel=channel,
                      status=status, supersedes_id=supersedes.id if supersedes is not None else None)
    db.add(reading)
    db.flush()
    return reading


class Store:
    """Two regions, three accounts, four meters; the test adds readings."""

    def __init__(self, db):
        self.db = db
        self.chi = f.region(db, code="CHI", name="Chișinău", menu_key=1)
        self.bal = f.region(db, code="BAL", name="Bălți", menu_key=2)
        self.a1 = f.account(db, self.chi, number="100001", holder="Ion Popescu")
        self.a2 = f.account(db, self.chi, number="100-002", holder="Maria Rusu")
        self.a3 = f.account(db, self.bal, number="200001", holder="SRL Apa", kind="company")
        self.el1 = f.meter(db, self.a1, serial="EL0001", utility="electricity", decimals=1)
        self.wa1 = f.meter(db, self.a1, serial="WA0001", utility="cold_water", digits=5, decimals=3)
        self.el2 = f.meter(db, self.a2, serial="EL0002", utility="electricity", registers=2)
        self.gas3 = f.meter(db, self.a3, serial="GA0003", utility="gas")
        for m in (self.el1, self.wa1, self.el2, self.gas3):
            m.created_at = dt.datetime(2024, 1, 15, tzinfo=dt.timezone.utc)
        db.flush()

    def reading(self, meter, value, **kwargs) -> Reading:
        return add_reading(self.db, meter, value, **kwargs)


@pytest.fixture
def store(db) -> Store:
    s = Store(db)
    db.commit()
    return s


def now() -> dt.datetime:
    return utcnow()
