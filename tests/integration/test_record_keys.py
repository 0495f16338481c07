"""Keys typed while a speech step records: any key ends the ``<Record>`` and is the answer (Twilio
posts it as ``Digits`` with the recording); at a number step it is the first key of the number,
and the rest is gathered before the turn is taken. The simulator answers the ``<Record>`` as
Twilio does (``SimulatedCall.type_late``)."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from sqlalchemy import select

from readings_store.models import Call

from .test_speech_calls import (  # noqa: F401 - fixtures
    dial, fake, fetch, last_twiml, rec, records, say, speech_client, speech_config, stored, to_account, utterances,
)


def _seq(db) -> int:
    db.expire_all()
    return db.scalars(select(Call)).one().seq


def test_an_account_number_typed_after_the_prompt_is_not_lost(db, records, dial, fake, fetch):
    call = dial()
    to_account(call)
    seq = _seq(db)
    p = call.type_late("100001#")
    assert "Please enter the electricity meter reading, then press the hash key. For a decimal point, press star." in p.texts
    assert p.record is None  # typed once: the keypad from now on
    call.press("12100#")
    p = call.press("1")
    assert "Reading saved." in p.texts
    assert stored(db) == [("EL000123", "total", "12100", "accepted", "phone_keypad")]
    assert fake.calls == [] and fetch.urls == [] and utterances(db) == []  # keys win: nothing recognised
    assert _seq(db) == seq + 3  # one turn for the whole account number


def test_the_first_key_alone_then_gathers_the_rest_and_changes_nothing(db, records, dial):
    call = dial()
    to_account(call)
    seq = _seq(db)
    before = last_twiml(db)
    record = call.last.record
    # Only the key that ended the recording: the answer is the rest of the number, silently.
    p = call._follow(record["action"], {"Digits": "1", "RecordingSid": "RE" + "1" * 32, "RecordingDuration": "1",  # noqa: SLF001
                                        "RecordingUrl": "https://api.twilio.com/2010-04-01/Accounts/AC/Recordings/RE1"})
    assert p.texts == [] and p.gather["finishOnKey"] == "#" and p.gather["actionOnEmptyResult"] == "true"
    assert p.gather["action"].endswith(f"seq={seq}&lead=1")
    assert _seq(db) == seq and xml(last_twiml(db)) == xml(before)  # nothing claimed
    p = call.press("00001#")
    assert any("electricity meter reading" in t for t in p.texts) and _seq(db) == seq + 1


def test_one_key_and_then_silence_is_that_number(db, records, dial):
    call = dial()
    to_account(call)
    call.type_late("7")
    p = call.press("")  # nothing more: the number is "7"
    assert "We could not find this account number in the selected region." in p.texts


def test_a_menu_key_typed_during_the_recording_is_the_choice(db, records, dial, fake):
    call = dial()
    to_account(call)
    p = say(call, fake, rec("three zero zero zero zero three"))  # spoken account: two meters
    assert p.record is not None
    p = call.type_late("2")  # the gas meter, by key
    assert any("the gas reading" in t for t in p.texts)  # a menu key leaves speech on
    assert len(fake.calls) == 1  # only the spoken account was recognised


def test_pound_alone_still_ends_a_spoken_answer(db, records, dial, fake):
    call = dial()
    to_account(call)
    fake.script.append(rec("one zero zero zero zero one"))
    p = call.type_late("#")
    assert any("the electricity reading" in t for t in p.texts) and len(fake.calls) == 1


def test_a_late_record_post_for_an_old_turn_gets_the_stored_answer(db, records, dial, client):
    call = dial()
    to_account(call)
    record = dict(call.last.record)
    call.type_late("100001#")
    answer = xml(last_twiml(db))
    status, body = call.post(record["action"], {"Digits": "5", "RecordingSid": "RE" + "2" * 32,
                                                "RecordingUrl": "https://api.twilio.com/x/RE2"})
    assert status == 200 and xml(ET.fromstring(body)) == answer


def test_a_lead_that_is_no_key_is_refused(db, records, dial):
    call = dial()
    to_account(call)
    action = call.last.gather["action"]
    for lead in ("12", "x", "%23"):
        status, body = call.post(f"{action}&lead={lead}", {"Digits": "0001"})
        assert status == 400 and "lead" in body
    assert call.post(f"{action}&lead=", {"Digits": "100001"})[0] == 200  # empty: no lead


def xml(element: ET.Element) -> str:
    return ET.tostring(element, encoding="unicode")
