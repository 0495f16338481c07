"""Callers off the happy path, through the Flask app exactly as Twilio calls it (signed posts,
TwiML followed): a value re-entered at the read-back, a spoken account number read back, a failed
identification by speech, a request for a person, the hours said after hours, meters named by
the digits of their serial.

Speech is recognised by ``FakeRecognizer`` (a scripted fake standing in for Vosk; see
``test_speech_calls``). Working hours never depend on when the test runs: regions are open always
or never, and where a closed line must still have hours to say, the phone line's clock is pinned.
"""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from readings_store import clock
from readings_store.models import Call, ReviewTask, Utterance
from tests import factories as f

from .test_speech_calls import (dial, fake, fetch, rec, say, speech_client,  # noqa: F401 - fixtures
                                speech_config, stored, utterances)

ALWAYS = (dt.time(0), dt.time(23, 59, 59, 999999), "1234567")
NEVER = (dt.time(0), dt.time(0), "")
OFFICE = (dt.time(8), dt.time(17), "12345")
OPERATOR = "+37322555000"
# A Sunday night in every time zone of the test regions: an office open Monday to Friday is closed.
SUNDAY_NIGHT = dt.datetime(2026, 3, 1, 23, 30, tzinfo=dt.timezone.utc)

EN = "+442079460000"  # London: one time zone
RU = "+74951234567"  # Moscow: one time zone
KNOWN = "+37369111222"  # on file for account 200-02


@pytest.fixture
def line(db):
    """North (Chișinău, open at all hours, own operator), Siberia (Novosibirsk, an office)."""
    north = f.region(db, code="N", name="North", menu_key=1, operator_number=OPERATOR, work=ALWAYS)
    siberia = f.region(db, code="S", name="Siberia", menu_key=2, timezone="Asia/Novosibirsk", work=OFFICE,
                       operator_number=OPERATOR)
    one = f.account(db, north, number="100001")
    f.meter(db, one, serial="EL000123", previous=1000, decimals=1)
    known = f.account(db, north, number="200-02", phones=[KNOWN])
    f.meter(db, known, serial="EL-2024-LC1", previous=5000, decimals=0)
    f.meter(db, known, serial="12345AB", utility="gas", previous=10, decimals=3)
    three = f.account(db, north, number="300003")
    f.meter(db, three, serial="EL000555", previous=100, decimals=0)
    s = f.account(db, siberia, number="400004", phones=["+79131234567"])
    f.meter(db, s, serial="HW000777", utility="hot_water", previous=5, decimals=3)
    db.commit()
    return {"north": north, "siberia": siberia}


@pytest.fixture
def sunday_night():
    """The product's clock stopped on a Sunday night."""
    with clock.travel_to(SUNDAY_NIGHT, frozen=True):
        yield SUNDAY_NIGHT


def keypad_call(phone, caller=EN):
    call = phone(caller=caller)
    call.start()
    return call


# --- "2" at the read-back --------------------------------------------------------------------------

def test_two_after_a_value_refused_on_the_last_try_asks_again_and_saves(db, line, phone):
    """A caller refused twice, reads back the next value, presses 2 — and is asked again."""
    call = keypad_call(phone)
    call.press("4"); call.press("1"); call.press("100001#")
    assert "The reading is lower than the previous one." in call.press("10#").texts
    assert "The reading is lower than the previous one." in call.press("11#").texts
    p = call.press("1100#")
    assert "That's 1 1 0 0." in p.texts
    p = call.press("2")
    assert p.ended is None and any("Please enter the electricity meter reading" in t for t in p.texts)
    assert "We could not complete your request." not in p.texts
    call.press("1101#")
    assert "Reading saved." in call.press("1").texts
    assert stored(db) == [("EL000123", "total", "1101", "accepted", "phone_keypad")]


def test_a_value_out_of_tries_is_kept_for_review(db, line, phone):
    call = keypad_call(phone)
    call.press("4"); call.press("1"); call.press("100001#")
    call.press("10#"); call.press("11#")
    p = call.press("12#")  # the last try, below the previous reading: read back, kept for review
    assert "That's 1 2." in p.texts
    p = call.press("1")
    assert "Thank you. We will check this reading." in p.texts
    assert stored(db) == [("EL000123", "total", "12", "pending_review", "phone_keypad")]


# --- a spoken account number --------------------------------------------------------------------------

def test_a_spoken_account_number_not_sure_is_read_back_and_confirmed(db, line, dial, fake):
    call = dial()
    call.start(); call.press("4"); call.press("1")
    p = say(call, fake, rec("three zero zero zero zero three", 0.7))  # heard, not sure
    assert "I heard the account number ending in 0 0 0 3." in p.texts
    assert "/voice/step/confirm_account" in p.gather["action"]
    assert db.scalars(select(Call)).one().account_id is None
    p = say(call, fake, rec("yes"))
    assert any("the electricity reading" in t for t in p.texts)
    say(call, fake, rec("one two zero"))
    say(call, fake, rec("yes"))
    assert stored(db) == [("EL000555", "total", "120", "accepted", "phone_speech")]


def test_a_misheard_account_declined_at_the_read_back_gets_nothing(db, line, dial, fake):
    """The digits heard name another customer's account: the caller says no, and nothing is stored
    on it; the number is asked again."""
    call = dial()
    call.start(); call.press("4"); call.press("1")
    p = say(call, fake, rec("one zero zero zero zero one", 0.6, alternatives=[("one zero zero zero zero one", 0.5),
                                                                               ("three zero zero zero zero three", 0.4)]))
    assert "I heard the account number ending in 0 0 0 1." in p.texts
    p = say(call, fake, rec("no"))
    assert any("account number digit by digit" in t for t in p.texts)
    p = call.press("300003#")
    assert any("meter reading" in t for t in p.texts)
    call.press("150#"); call.press("1")
    assert stored(db) == [("EL000555", "total", "150", "accepted", "phone_keypad")]
    assert db.scalars(select(Call)).one().account.number == "300003"


def test_a_sure_spoken_account_number_goes_straight_on(db, line, dial, fake):
    call = dial()
    call.start(); call.press("4"); call.press("1")
    p = say(call, fake, rec("three zero zero zero zero three", 0.97))
    assert any("the electricity reading" in t for t in p.texts)


# --- failed identification by speech -----------------------------------------------------------------

def test_a_failed_identification_by_speech_leaves_an_item_with_the_recordings(db, line, dial, fake, config,
                                                                                sunday_night):
    line["north"].work_start, line["north"].work_end, line["north"].work_days = OFFICE
    db.commit()
    call = dial()
    call.start(); call.press("4"); call.press("1")
    p = say(call, fake, rec("[unk] [unk]"))  # not understood
    assert "Sorry, I did not catch that." in p.texts
    p = say(call, fake, rec("nine nine nine", 0.97))  # not found
    assert "We could not find this account number in the selected region." in p.texts
    p = say(call, fake, rec("one zero zero zero zero one", 0.6))  # found, not sure: read back
    p = say(call, fake, rec("no"))  # not the caller's: asked again
    assert any("account number digit by digit" in t for t in p.texts)
    p = say(call, fake, rec("[unk]"))  # the last try
    assert p.ended == "hangup" and "No reading was saved during this call." in p.texts
    task = db.scalars(select(ReviewTask)).one()
    spoken = [u for u in utterances(db) if u.step == "account"]
    assert (task.kind, task.reason, task.region_id) == ("identification", "account_not_found", line["north"].id)
    assert task.details["utterances"] == [u.id for u in spoken] and len(spoken) == 4
    assert task.details["attempts"] == ["999", "100001"]
    assert all((config.recordings_dir / u.audio_path).is_file() for u in spoken)
    assert stored(db) == []


# --- a request for a person -----------------------------------------------------------------------------

def test_zero_at_the_first_question_on_an_accounts_own_number_in_working_hours_is_put_through(db, line, phone):
    call = keypad_call(phone, caller=KNOWN)
    assert "Pentru un operator, apăsați 0 oricând." in call.last.texts  # said once
    p = call.press("0")
    assert p.ended == f"dial:{OPERATOR}"
    assert "Vă rugăm să rămâneți pe linie. Vă facem legătura cu un operator." in p.texts
    c = db.scalars(select(Call)).one()
    assert (c.outcome, c.end_reason) == ("transferred", "language:asked_operator")


def test_zero_out_of_hours_says_the_hours_in_the_callers_language_and_time_zone(db, line, phone, sunday_night):
    call = keypad_call(phone, caller=RU)
    call.press("2")  # Russian
    p = call.press("2")  # Siberia
    assert any("лицевого счёта" in t for t in p.texts)
    p = call.press("0")
    # Novosibirsk's 8:00-17:00 is 4:00-13:00 in Moscow, where the caller's number is
    assert ("Сейчас операторы не работают. Они отвечают на звонки с понедельника по пятницу с 4:00 до 13:00."
            in p.texts)
    assert p.ended is None and "/voice/step/account" in p.gather["action"]  # where the caller was
    p = call.press("400004#")
    assert any("горячей воды" in t for t in p.texts)


def test_operator_said_at_a_number_question_in_working_hours_is_put_through(db, line, dial, fake):
    call = dial()
    call.start(); call.press("4"); call.press("1")
    p = say(call, fake, rec("operator"))
    assert p.ended == f"dial:{OPERATOR}"
    assert "operator" in fake.calls[-1][1]  # the account question's grammar hears the word
    assert db.scalars(select(Utterance)).one().step == "account"


def test_the_hours_after_a_failed_call_are_said_in_the_callers_time_zone(db, line, phone, sunday_night):
    call = keypad_call(phone, caller=EN)
    call.press("4"); call.press("2")  # Siberia
    call.press("1#"); call.press("2#")
    p = call.press("3#")
    assert p.ended == "hangup"
    # London is 7 hours behind Novosibirsk in March: 8:00 there is 1:00 here
    assert p.texts[:2] == ["We could not complete your request.",
                           "An operator can help you Monday to Friday, from 1:00 to 10:00."]


def test_a_closed_line_without_hours_says_nothing_untrue(db, line, phone):
    line["north"].work_start, line["north"].work_end, line["north"].work_days = NEVER
    line["north"].operator_number = None
    db.commit()
    call = keypad_call(phone, caller=KNOWN)
    call.press("4")
    p = call.press("2")  # not the offered account: the region menu
    p = call.press("0")
    assert p.texts[0] == "Sorry, no operator can take your call on this line."
    assert "/voice/step/region" in p.gather["action"] and "Choose your region and press its number." in p.texts


# --- meters named by the digits of their serial ----------------------------------------------------

def test_meters_are_named_by_the_digits_their_serial_ends_in(db, line, phone):
    call = keypad_call(phone, caller=KNOWN)
    call.press("4")
    p = call.press("1")  # the offered account
    assert "The electricity meter ending in 1: press 1." in p.texts
    assert "For gas, press 2." in p.texts  # "12345AB" does not end in digits
    assert not any("L" in t.split("ending in")[-1] for t in p.texts if "ending in" in t)
