"""A caller whose meter's submission window is closed hears when the next one opens and closes, in
the call's language and the region's days (``rules.billing_period`` / ``rules.window_dates``), through
the signed webhooks; the reading given then is kept for that period. The clock is pinned."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from readings_store import clock
from readings_store.models import Reading
from tests import factories as f

# 23:30 UTC on 9 March is 10 March in Chișinău (UTC+2): outside a 20..5 window, whose next days
# are 20 March to 5 April. In UTC it would still be the 9th: the region's day decides.
CLOSED_AT = dt.datetime(2026, 3, 9, 23, 30, tzinfo=dt.timezone.utc)
OPEN_AT = dt.datetime(2026, 3, 22, 9, 0, tzinfo=dt.timezone.utc)
SAID = {"1": "20 martie până la 5 aprilie", "2": "с 20 марта по 5 апреля", "3": "з 20 березня по 5 квітня",
        "4": "from March 20 to April 5"}


@pytest.fixture
def line(db):
    def build():
        region = f.region(db, work=f.NEVER_OPEN, window=(20, 5))
        account = f.account(db, region, number="100001")
        f.meter(db, account, serial="EL000123", previous=1000, decimals=0)
        db.commit()
    return build


@pytest.mark.parametrize("lang_key", sorted(SAID))
def test_a_closed_window_is_said_in_every_language(db, line, phone, lang_key):
    with clock.travel_to(CLOSED_AT):
        line()
        call = phone(caller="+442079460000")
        call.start()
        call.press(lang_key)
        p = call.press("100001#")
        assert any(SAID[lang_key] in t for t in p.texts), p.texts
        call.press("1200#")
        call.press("1")
    reading = db.scalars(select(Reading).where(Reading.channel.like("phone%"))).one()
    assert (reading.period, reading.out_of_window) == ("2026-03", True)


def test_an_open_window_is_not_mentioned(db, line, phone):
    with clock.travel_to(OPEN_AT):
        line()
        call = phone(caller="+442079460000")
        call.start()
        call.press("4")
        p = call.press("100001#")
        assert not any("period is open" in t for t in p.texts) and any("reading" in t for t in p.texts)
