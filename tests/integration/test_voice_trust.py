"""Readings billing can trust, and no oracle over the phone: whole calls on demo data, made exactly
as Twilio makes them.

* A reading that would replace an accepted one given from another phone number (or from a
  withheld number), or one billing already has, is kept for an operator instead.
* After ``probe_limit`` refused values for an account in a period, values are kept for an
  operator and the caller is no longer told which way a value is wrong.
"""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from readings_store import export
from readings_store.demo import load_demo
from readings_store.models import Account, Reading, ReviewTask, ValueRefusal

CUSTOMER = "+37369555111"
NEIGHBOUR = "+37369555222"
LOWER = "The reading is lower than the previous one."
TOO_HIGH = "This reading would mean unusually high consumption."
WILL_CHECK = "Thank you. We will check this reading."
SAVED = "Reading saved."


@pytest.fixture
def demo(db):
    """The demo records: account 1000003 in region 1 has one electricity meter, previous reading 1000."""
    load_demo(db, accounts_per_region=5)
    db.commit()


def call(phone, caller: str, *keys: str):
    """One call: the keys pressed at each prompt, in order; returns everything the caller heard."""
    c = phone(caller=caller)
    c.start()
    for k in keys:
        c.press(k)
    return c.heard


def give(phone, caller: str, value: str):
    """English, region 1, account 1000003, ``value``, confirm, finish: the audit's call."""
    return call(phone, caller, "4", "1", "1000003#", f"{value}#", "1", "3")


def readings(db):
    db.expire_all()
    return [(str(r.value), r.status, r.status_reason) for r in db.scalars(select(Reading).where(
        Reading.channel.like("phone%")).order_by(Reading.id))]


def tasks(db):
    db.expire_all()
    return [(t.reason, t.status, str(t.reading.value)) for t in db.scalars(select(ReviewTask).order_by(ReviewTask.id))]


# --- replacing an accepted reading ------------------------------------------------------------------

def test_anonymous_caller_cannot_replace_the_customers_reading(db, demo, phone):
    """The audit's case: ``ivr call --from anonymous --keys "4 1 1000003# 1690# 1 3"`` after the
    customer's call."""
    assert SAVED in give(phone, CUSTOMER, "1500")
    heard = give(phone, "anonymous", "1690")
    assert WILL_CHECK in heard and SAVED not in heard
    assert readings(db) == [("1500", "accepted", None), ("1690", "pending_review", "replaces_other_caller")]
    assert tasks(db) == [("replaces_other_caller", "open", "1690")]


def test_another_number_cannot_replace_the_customers_reading(db, demo, phone):
    give(phone, CUSTOMER, "1500")
    heard = give(phone, NEIGHBOUR, "1690")
    assert WILL_CHECK in heard
    assert readings(db) == [("1500", "accepted", None), ("1690", "pending_review", "replaces_other_caller")]


def test_same_number_fixes_its_own_reading_before_export(db, demo, phone):
    give(phone, CUSTOMER, "1500")
    heard = give(phone, CUSTOMER, "1510")
    assert SAVED in heard and WILL_CHECK not in heard
    assert readings(db) == [("1500", "superseded", None), ("1510", "accepted", None)]
    assert tasks(db) == []


def test_a_reading_billing_has_goes_to_review_even_from_the_same_number(db, demo, phone):
    give(phone, CUSTOMER, "1500")
    assert export.create_batch(db) is not None
    db.commit()
    heard = give(phone, CUSTOMER, "1510")
    assert WILL_CHECK in heard
    assert readings(db) == [("1500", "accepted", None), ("1510", "pending_review", "replaces_exported")]
    assert tasks(db) == [("replaces_exported", "open", "1510")]


def test_a_withheld_number_corrects_its_reading_in_the_same_call(db, demo, phone):
    """Another account, then the same account again, in one call: the second value replaces the
    first without review; a later call from a withheld number cannot."""
    heard = call(phone, "anonymous", "4", "1", "1000003#", "1500#", "1", "2", "1000003#", "1510#", "1", "3")
    assert heard.count(SAVED) == 2
    assert readings(db) == [("1500", "superseded", None), ("1510", "accepted", None)]
    assert WILL_CHECK in give(phone, "anonymous", "1520")


def test_a_withheld_number_gives_the_first_reading_of_the_month(db, demo, phone):
    """Nothing to replace: the reading is accepted as before."""
    assert SAVED in give(phone, "anonymous", "1500")
    assert readings(db) == [("1500", "accepted", None)]


def test_the_neutral_prompt_in_every_language(db, demo, phone):
    give(phone, CUSTOMER, "1500")
    expected = {"1": "Vă mulțumim. Vom verifica acești indici.", "2": "Спасибо. Мы проверим эти показания.",
                "3": "Дякуємо. Ми перевіримо ці показання."}
    for key, text in expected.items():
        assert text in call(phone, "anonymous", key, "1", "1000003#", "1690#", "1", "3")


# --- probing for the previous reading ---------------------------------------------------------------

def test_probing_for_the_previous_reading_stops_giving_directions(db, demo, phone):
    """The audit's script: anonymous calls, two probes each, binary search on "lower than the
    previous one" (the baseline, 1000: the customer's own reading of the period is never judged
    against). After five refused values for the account (across calls), every value is kept for
    review and the caller hears only that it will be checked."""
    give(phone, CUSTOMER, "1500")
    answers = []
    for low, high in (("750", "875"), ("937", "968")):
        heard = call(phone, "anonymous", "4", "1", "1000003#", f"{low}#", f"{high}#")
        answers.append(heard.count(LOWER))
        # The caller hangs up at the third try: nothing stored.
    heard = call(phone, "anonymous", "4", "1", "1000003#", "984#")
    answers.append(heard.count(LOWER))
    assert answers == [2, 2, 1]
    assert readings(db) == [("1500", "accepted", None)]
    account = db.scalars(select(Account).where(Account.number == "1000003")).one()
    assert db.scalar(select(func.count()).select_from(ValueRefusal).where(ValueRefusal.account_id == account.id)) == 5

    # The sixth value, whatever it is, gets no direction: read back, then kept for an operator.
    for value in ("1475", "1600", "99999"):
        c = phone(caller="anonymous")
        c.start(); c.press("4"); c.press("1"); c.press("1000003#")
        p = c.press(f"{value}#")
        assert LOWER not in p.texts and TOO_HIGH not in p.texts
        assert f"That's {' '.join(value)}." in p.texts
        p = c.press("1")
        assert WILL_CHECK in p.texts and SAVED not in p.texts
        c.press("3")
    # Each stored value superseded the previous pending one; the customer's reading stands.
    assert readings(db) == [("1500", "accepted", None), ("1475", "superseded", "repeated_refusals"),
                            ("1600", "superseded", "repeated_refusals"),
                            ("99999", "pending_review", "repeated_refusals")]
    assert [t[:2] for t in tasks(db)] == [("repeated_refusals", "done"), ("repeated_refusals", "done"),
                                         ("repeated_refusals", "open")]


def test_values_read_back_and_dropped_count_as_probes(db, demo, phone, config):
    """A script can learn as much from "That's ..." (the value passed) as from "lower": a value
    read back and not confirmed counts; one confirmed and saved does not."""
    config.probe_limit = 3
    give(phone, CUSTOMER, "1500")  # confirmed: not counted
    call(phone, "anonymous", "4", "1", "1000003#", "1600#")  # read back, hung up
    call(phone, "anonymous", "4", "1", "1000003#", "1550#", "2", "950#")  # dropped, then lower
    refusals = db.scalars(select(ValueRefusal).order_by(ValueRefusal.id)).all()
    assert [(r.code, r.value, r.caller) for r in refusals] == [
        ("not_confirmed", "1600", None), ("not_confirmed", "1550", None), ("below_previous", "950", None)]
    heard = call(phone, "anonymous", "4", "1", "1000003#", "1400#")
    assert LOWER not in heard and "That's 1 4 0 0." in heard


def test_the_limit_holds_for_the_customer_too_and_counts_per_account(db, demo, phone, config):
    config.probe_limit = 1
    give(phone, CUSTOMER, "1500")
    call(phone, "anonymous", "4", "1", "1000003#", "10#")
    # Another account is not affected.
    assert SAVED in call(phone, CUSTOMER, "4", "2", "2000003#", "1500#", "1", "3")
    heard = give(phone, CUSTOMER, "1400")
    assert LOWER not in heard and WILL_CHECK in heard
    assert readings(db)[-1] == ("1400", "pending_review", "repeated_refusals")


def test_implausible_values_count_and_malformed_ones_are_still_explained(db, demo, phone, config):
    config.probe_limit = 2
    heard = call(phone, CUSTOMER, "4", "1", "1000003#", "900000#", "1#")
    assert heard.count(TOO_HIGH) == 1 and heard.count(LOWER) == 1
    # A value that cannot be on the dial says nothing about the history: it is still explained.
    heard = call(phone, CUSTOMER, "4", "1", "1000003#", "12345678#")
    assert "The reading has more digits than the meter shows." in heard
    refusals = db.scalars(select(ValueRefusal).order_by(ValueRefusal.id)).all()
    assert [(r.code, r.value, r.caller) for r in refusals] == [
        ("implausible_consumption", "900000", CUSTOMER), ("below_previous", "1", CUSTOMER)]


def test_parallel_calls_on_several_workers_get_no_more_directions_than_the_limit(db, demo, config):
    """Six anonymous calls, each on its own worker, type a value at the same moment: the count and
    the new refusal are one step per account, so only ``probe_limit`` of them hear "lower"."""
    import threading

    from ivr.app import create_app
    from ivr.voice.simulator import SimulatedCall, flask_transport
    from readings_store.db import make_engine
    from tests.conftest import AUTH_TOKEN

    config.probe_limit = 3
    workers = [create_app(config, engine=make_engine(config.database_url)) for _ in range(6)]
    calls = []
    for app in workers:
        c = SimulatedCall("http://localhost", AUTH_TOKEN, flask_transport(app.test_client()), caller="anonymous")
        c.start()
        for keys in ("4", "1", "1000003#"):
            c.press(keys)
        calls.append(c)
    barrier = threading.Barrier(len(calls))
    heard = []

    def value(c):
        barrier.wait()
        heard.append(c.press("500#").texts)

    threads = [threading.Thread(target=value, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(heard) == 6
    assert sum(LOWER in texts for texts in heard) == 3
    assert sum("That's 5 0 0." in texts for texts in heard) == 3
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(ValueRefusal)) == 3
