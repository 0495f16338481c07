"""A company with 40 meters and a caller on file for a household account, through the signed
webhooks (``SimulatedCall``) on the database: meters picked by the last digits of their serials or
all in turn, the account found from a meter's full serial, the last reading said only to a caller
on file. The clock is pinned."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select

from ivr.records import SqlRecords
from readings_store import clock, service
from readings_store.models import Account, AccountPhone, Call, Meter, Reading, utcnow
from tests import factories as f

AT = dt.datetime(2026, 3, 15, 10, 0, tzinfo=dt.timezone.utc)
KNOWN = "+37369111222"
STRANGER = "+442079460000"
OFFER = "To hear the last reading, press 8."


@pytest.fixture
def pinned():
    with clock.travel_to(AT):
        yield


@pytest.fixture
def line(db, pinned):
    region = f.region(db, work=f.NEVER_OPEN)
    company = f.account(db, region, number="500005", kind="company", holder="SRL Apa")
    meters = [f.meter(db, company, serial=f"CO-77{i:04d}", previous=100, decimals=0) for i in range(40)]
    # 35 meters already have this period's reading: five are left for "all in turn".
    for m in meters[:35]:
        db.add(Reading(meter_id=m.id, register="total", value=Decimal(150), period=service.period_for(db, m, utcnow()).period,
                       channel="api", status="accepted"))
    home = f.account(db, region, number="100001", phones=[KNOWN])
    f.meter(db, home, serial="EL000123", previous=1000, decimals=0, previous_days_ago=20)
    db.commit()
    return {"meters": meters}


def company_call(phone, caller=STRANGER, identify="500005#"):
    call = phone(caller=caller)
    call.start()
    call.press("4")
    return call, call.press(identify)


def phone_readings(db):
    return db.scalars(select(Reading).where(Reading.channel.like("phone%")).order_by(Reading.id)).all()


def test_a_meter_by_its_serial_tail_and_a_clash(db, line, phone):
    call, p = company_call(phone)
    assert any("last digits of the meter's serial number" in t for t in p.texts)
    p = call.press("7#")
    assert "Several meters end in these digits. Please enter more digits." in p.texts
    p = call.press("37#")
    assert "The electricity meter ending in 0 0 3 7." in p.texts
    call.press("160#")
    assert "Reading saved." in call.press("1").texts
    assert [(r.meter.serial, r.value) for r in phone_readings(db)] == [("CO-770037", Decimal(160))]


def test_all_in_turn_walks_the_five_without_a_reading(db, line, phone, pinned):
    call, p = company_call(phone)
    p = call.press("*")
    assert "5 meters without a reading this period, one after another. To skip a meter, press star." in p.texts
    assert "The electricity meter ending in 0 0 3 5." in p.texts
    for n in range(5):
        if n == 1:
            p = call.press("*#")
        else:
            call.press(f"{200 + n}#")
            p = call.press("1")
    assert "All meters gone through: 4 readings saved, 1 meter skipped." in p.texts
    assert [r.meter.serial for r in phone_readings(db)] == ["CO-770035", "CO-770037", "CO-770038", "CO-770039"]
    call.press("3")
    assert db.scalars(select(Call)).one().outcome == "completed"


def test_the_account_is_found_from_a_meters_full_serial(db, line, phone):
    call, p = company_call(phone, identify="770036#")
    assert any("last digits of the meter's serial number" in t for t in p.texts)
    call.press("36#"); call.press("170#"); call.press("1")
    assert [(r.meter.serial, r.status) for r in phone_readings(db)] == [("CO-770036", "accepted")]


def test_a_households_serial_is_no_account_number(db, line, phone):
    call, p = company_call(phone, identify="000123#")
    assert "We could not find this account number in the selected region." in p.texts


def test_the_last_reading_for_a_caller_on_file_only(db, line, phone):
    call = phone(caller=KNOWN)
    call.start()
    call.press("4")
    p = call.press("1")  # the account on file
    assert OFFER in p.texts
    taken = db.scalars(select(Reading).join(Meter).where(Meter.serial == "EL000123")).one().taken_at
    day = service.region_now(line["meters"][0].account.region, taken).date()
    p = call.press("8")
    assert f"The last accepted reading, of {day:%B} {day.day}: 1 0 0 0." in p.texts
    assert OFFER not in p.texts
    call.press("1100#")
    assert "Reading saved." in call.press("1").texts

    for caller in (STRANGER, "anonymous"):
        call = phone(caller=caller)
        call.start()
        call.press("4")
        p = call.press("100001#")
        assert OFFER not in p.texts
        p = call.press("8")
        assert not any("last accepted reading" in t for t in p.texts)
        assert "The reading is lower than the previous one." in p.texts


def test_the_records_port_says_the_last_reading_to_the_accounts_numbers_only(db, line, config):
    """Whatever the dialog asks: the port over the database says nothing to another number."""
    meter = db.scalars(select(Meter).where(Meter.serial == "EL000123")).one()
    for caller, expected in ((KNOWN, "1000"), (STRANGER, None), (None, None)):
        call = Call(call_sid=f"CA{caller}", from_number=caller, account_id=meter.account_id)
        last = SqlRecords(db, config, call).last_reading(meter.id, "total")
        assert (last.value if last else None) == expected


def test_a_two_tariff_meter_with_one_tariff_given_has_that_tariff_given(db, line, config):
    company = line["meters"][0].account
    two = f.meter(db, company, serial="CO-DN0001", registers=2, previous=50, decimals=0)
    db.add(Reading(meter_id=two.id, register="day", value=Decimal(60), period=service.period_for(db, two, utcnow()).period,
                   channel="api", status="accepted"))
    db.commit()
    given = SqlRecords(db, config, Call(call_sid="CAx", from_number=None)).given_this_period(company.id)
    assert given == {(m.id, "total") for m in line["meters"][:35]} | {(two.id, "day")}


# --- the company's choices said, where speech is on -------------------------------------------------

def _spoken(call, text: str):
    return call._follow(call.last.gather["action"], {"SpeechResult": text, "Confidence": "0.95"})  # noqa: SLF001


@pytest.fixture
def twilio_speech(config):
    config.speech_engines = {"ro": "twilio", "ru": "off", "uk": "off", "en": "off"}
    return config


def test_all_meters_said_walks_like_the_star(db, line, phone, twilio_speech):
    company = db.scalars(select(Account).where(Account.number == "500005")).one()
    company.phones.append(AccountPhone(phone=KNOWN))
    db.commit()
    call = phone(caller=KNOWN)
    call.start()
    p = call.press("1")  # Romanian: heard by Twilio's recogniser
    p = call.press("1")
    assert "dtmf speech" in p.gather["input"]
    assert any("spuneți «toate contoarele» sau apăsați steluța" in t for t in p.texts)
    p = _spoken(call, "Toate contoarele.")
    assert any(t.startswith("5 contoare fără indici") for t in p.texts), p.texts


def test_last_reading_said_by_a_caller_on_file(db, line, phone, twilio_speech):
    call = phone(caller=KNOWN)
    call.start()
    call.press("1")
    p = call.press("1")  # the household account on file: its meter's value, with the offer
    assert any("spuneți «ultimii indici» sau apăsați 8" in t for t in p.texts), p.texts
    p = _spoken(call, "ultimii indici")
    assert any(t.startswith("Ultimii indici acceptați") for t in p.texts), p.texts
    assert not phone_readings(db)


def test_the_keypad_wording_names_no_words(db, line, phone):
    call, p = company_call(phone)  # English: no speech engine here
    assert any("For all meters in turn, press star." in t for t in p.texts)
    assert not any("all meters'" in t for t in p.texts)


@pytest.mark.parametrize("lang, kind, text, choice", [
    ("en", "serial", "all meters", "all_meters"), ("ru", "serial", "все счетчики", "all_meters"),
    ("uk", "serial", "всі лічильники", "all_meters"), ("en", "number_last", "last reading", "last_reading"),
    ("ru", "number_last", "последние показания", "last_reading"), ("uk", "number_last", "останні показання", "last_reading"),
])
def test_the_speech_parser_makes_the_choice_the_key_makes(config, lang, kind, text, choice):
    from ivr.voice.speech_steps import SpeechSteps
    from tests.integration.test_speech_calls import rec

    steps = SpeechSteps(config, recognizer=lambda *args: None)
    heard = steps.from_recognition(lang, kind, rec(text), 1)
    assert (heard.speech.choice, heard.speech.value, heard.speech.decision) == (choice, None, "accept")
    assert steps.from_recognition(lang, kind, rec(text, 0.2), 1).speech.choice is None  # barely heard: none
    base = "digits" if kind == "serial" else "number"
    assert steps.from_recognition(lang, base, rec(text), 1).speech.choice is None  # a question without it
    other = "number_last" if kind == "serial" else "serial"
    assert steps.from_recognition(lang, other, rec(text), 1).speech.choice is None  # nor the other choice
    digits = steps.from_recognition(lang, kind, rec("1 7"), 1).speech
    assert digits.value == "17" and digits.choice is None
