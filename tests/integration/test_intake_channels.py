"""One intake policy on every channel, end to end: calls made and texts sent exactly as Twilio makes
and sends them, on SQLite and (``-m db`` with IVR_TEST_DATABASE_URL) PostgreSQL.

The account 1000003 has the customer's number on file and one electricity meter whose last
reading, an import of an earlier period, is the baseline. Periods are calendar months (no
submission window) and that reading is 40 days old, so the tests pass on any day at any hour.
"""
from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from ivr.app import create_app
from readings_store import export
from readings_store.db import make_engine
from readings_store.models import Reading, ValueRefusal, utcnow
from tests import factories as f
from tests.sms.test_sms_readings import message_text, post_sms

pytestmark = pytest.mark.db

CUSTOMER = "+447700900111"  # on file for the account
STRANGER = "+447700900222"
SAVED = "Reading saved."
WILL_CHECK = "Thank you. We will check this reading."
LOWER = "The reading is lower than the previous one."
TOO_HIGH = "The reading means an unusually high consumption."


def _home(db, previous: str) -> None:
    region = f.region(db, window=None)
    account = f.account(db, region, number="1000003", phones=(CUSTOMER,))
    meter = f.meter(db, account, digits=6, decimals=1)
    taken = utcnow() - dt.timedelta(days=40)
    db.add(Reading(meter_id=meter.id, register="total", value=Decimal(previous), period=f"{taken:%Y-%m}",
                   taken_at=taken, received_at=taken, channel="import", status="accepted"))
    db.commit()


@pytest.fixture
def home(db):
    _home(db, "1113")


def by_phone(phone, caller: str, value: str) -> list[str]:
    """English; the customer takes the account offered for their number, anyone else types it;
    the value, confirmed, then finish. What the caller heard once they confirmed."""
    call = phone(caller=caller)
    call.start()
    call.press("4")
    prompt = call.press("1" if caller == CUSTOMER else "1000003#")
    assert "Please enter" in " ".join(prompt.texts) or "Please say" in " ".join(prompt.texts), prompt.texts
    prompt = call.press(value.replace(".", "*") + "#")  # star for the decimal point
    if not any(text.startswith("That's") for text in prompt.texts):
        return prompt.texts  # refused: asked again
    heard = call.press("1").texts
    call.press("3")
    return heard


def by_text(client, sender: str, value: str) -> str:
    """The reply's line about the value."""
    return message_text(post_sms(client, f"1000003 {value}", sender=sender)).splitlines()[1]


def give(channel: str, phone, client, giver: str, value: str) -> str:
    """``giver`` gives ``value`` by ``channel``: "saved", "checked", or "lower"/"too high"/"other"."""
    if channel == "phone":
        heard = " ".join(by_phone(phone, giver, value))
        if SAVED in heard:
            return "saved"
        if WILL_CHECK in heard:
            return "checked"
    else:
        line = by_text(client, giver, value)
        if line.endswith("Accepted."):
            return "saved"
        if line.endswith("We will check it."):
            return "checked"
        heard = line
    return "lower" if "lower than the previous" in heard else "too high" if "unusually high" in heard else heard


def readings(db) -> list[tuple[str, str, str | None]]:
    db.expire_all()
    return [(format(r.value, "f"), r.status, r.status_reason)
            for r in db.scalars(select(Reading).where(Reading.channel != "import").order_by(Reading.id))]


def refusals(db) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(ValueRefusal))


# --- the same outcome, whichever channel comes first ------------------------------------------------

@pytest.mark.parametrize("first,then", [("text", "phone"), ("phone", "text")])
@pytest.mark.parametrize("giver,corrector,outcome,status", [
    (CUSTOMER, CUSTOMER, "saved", ("superseded", "accepted")),  # the number on file corrects itself
    (STRANGER, STRANGER, "saved", ("superseded", "accepted")),  # an unknown number corrects its own
    (CUSTOMER, STRANGER, "checked", ("accepted", "pending_review")),  # a stranger cannot replace it
    (STRANGER, CUSTOMER, "saved", ("superseded", "accepted")),  # the customer replaces a stranger's
], ids=["customer-corrects", "same-unknown-number-corrects", "stranger-after-customer", "customer-after-stranger"])
def test_cross_channel_both_ways(db, home, phone, client, first, then, giver, corrector, outcome, status):
    assert give(first, phone, client, giver, "1500") == "saved"
    assert give(then, phone, client, corrector, "1510") == outcome
    assert [(value, s) for value, s, _ in readings(db)] == [("1500", status[0]), ("1510", status[1])]
    assert refusals(db) == 0


# --- a stranger's first reading of the period does not block the customer ---------------------------

@pytest.mark.parametrize("channel", ["phone", "text"])
def test_a_strangers_first_reading_does_not_block_the_customer(db, home, phone, client, channel):
    """A withheld caller gives 1999.9 over the last 1113 and hears "saved"; the customer, from the
    number on file, gives the true 1150.5: accepted, and it is what billing exports."""
    assert SAVED in by_phone(phone, "anonymous", "1999.9")
    assert give(channel, phone, client, CUSTOMER, "1150.5") == "saved"
    assert readings(db) == [("1999.9", "superseded", None), ("1150.5", "accepted", None)]
    batch = export.create_batch(db)
    db.commit()
    exported = [(r["value"], r["channel"], r["supersedes"]) for r in export.batch_readings(db, batch.id)
                if r["channel"] != "import"]
    assert exported == [("1150.5", "phone_keypad" if channel == "phone" else "sms", None)]


# --- the customer corrects their own reading of the period ------------------------------------------

@pytest.mark.parametrize("channels", [("phone", "phone", "phone"), ("text", "text", "text"),
                                      ("phone", "text", "phone")])
def test_the_customer_corrects_their_own_reading(db, phone, client, config, channels):
    """Last reading 400; saved 500, then 1200 (more than a day's limit above 500, not above 400's
    40 days), then 450 (lower than 500, above 400): each accepted, none counted as a probe."""
    _home(db, "400")
    config.probe_limit = 1
    for channel, value in zip(channels, ("500", "1200", "450")):
        assert give(channel, phone, client, CUSTOMER, value) == "saved", value
    assert readings(db) == [("500", "superseded", None), ("1200", "superseded", None), ("450", "accepted", None)]
    assert refusals(db) == 0
    # Below the baseline is still refused, and that counts.
    assert give(channels[0], phone, client, CUSTOMER, "390") == "lower"
    assert refusals(db) == 1


# --- the refusal limit holds under parallel texts ------------------------------------------------------

def test_twenty_parallel_texts_get_no_more_directions_than_the_limit(db, home, config):
    """Twenty texts of a value below the previous reading, from twenty numbers, each on its own
    worker, at the same moment: the count and the new refusal are one step per account under its
    write lock, so exactly ``probe_limit`` of them are told "lower" and the rest "we will check"."""
    assert config.probe_limit == 5
    workers = [create_app(config, engine=make_engine(config.database_url)) for _ in range(20)]
    barrier = threading.Barrier(len(workers))
    replies: list[str] = []
    errors: list[BaseException] = []

    def text(app, n):
        client = app.test_client()
        barrier.wait()
        try:
            replies.append(message_text(post_sms(client, "1000003 1000", sender=f"+4477009003{n:02d}")))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=text, args=(app, n)) for n, app in enumerate(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for app in workers:
        app.extensions["ivr"].engine.dispose()
    assert errors == [] and len(replies) == 20
    assert sum("lower than the previous" in reply for reply in replies) == 5
    assert sum("We will check it." in reply for reply in replies) == 15
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(ValueRefusal)) == 5
    kept = [(status, reason) for _, status, reason in readings(db)]
    assert sorted(set(kept)) == [("pending_review", "repeated_refusals"), ("superseded", "repeated_refusals")]
    assert kept.count(("pending_review", "repeated_refusals")) == 1 and len(kept) == 15
