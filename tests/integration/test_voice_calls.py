"""Whole calls through the Flask app exactly as Twilio makes them: signed form posts, TwiML parsed,
its action URLs followed."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from readings_store.models import Call, Reading, ReviewTask
from tests import factories as f
from tests.conftest import AUTH_TOKEN



@pytest.fixture
def records(db):
    north = f.region(db, code="N", name="North", menu_key=1, work=f.NEVER_OPEN)
    f.region(db, code="S", name="South", menu_key=2, work=f.NEVER_OPEN)
    one = f.account(db, north, number="100001")
    f.meter(db, one, serial="EL000123", previous=1000, decimals=1)
    many = f.account(db, north, number="200-02", phones=["+37369111222"])
    f.meter(db, many, serial="EL000777", registers=2, previous=5000, decimals=0)
    f.meter(db, many, serial="CW000888", utility="cold_water", digits=5, decimals=3, previous=10)
    db.commit()
    return {"north": north}


def stored(db):
    db.expire_all()
    return [(r.meter.serial, r.register, str(r.value), r.status, r.channel)
            for r in db.scalars(select(Reading).where(Reading.channel.like("phone%")).order_by(Reading.id))]


LANG_CASES = [
    ("+37369000001", "ro", "ro-RO", "Română — apăsați 1.", "Indicii sunt salvați."),
    ("+380441234567", "uk", "uk-UA", "Українська — натисніть 3.", "Показання збережено."),
    ("+74951234567", "ru", "ru-RU", "Русский — нажмите 2.", "Показания сохранены."),
    ("+442079460000", "en", "en-US", "English — press 4.", "Reading saved."),
]


@pytest.mark.parametrize("caller,lang,say_lang,option,saved", LANG_CASES)
def test_call_in_each_language_defaults_from_caller_id(db, records, phone, client, caller, lang, say_lang, option, saved):
    call = phone(caller=caller)
    p = call.start()
    assert option in p.texts
    p = call.press("")  # silence keeps the language of the caller ID
    p = call.press("1")  # region North
    p = call.press("100001#")
    p = call.press("1100*5#")
    assert any("1 1 0 0" in t for t in p.texts)
    p = call.press("1")
    assert saved in p.texts
    p = call.press("3")
    assert p.ended == "hangup"
    assert stored(db) == [("EL000123", "total", "1100.5", "accepted", "phone_keypad")]
    c = db.scalars(select(Call)).one()
    assert c.language == lang
    # the last TwiML speaks that language
    root = ET.fromstring(c.last_twiml)
    assert {s.get("language") for s in root.iter("Say")} == {say_lang}


def test_language_key_switches_language(db, records, phone):
    call = phone(caller="+37369000001")
    call.start()
    p = call.press("2")
    assert "Выберите регион и нажмите его номер." in p.texts


def test_known_caller_two_register_and_several_meters(db, records, phone):
    call = phone(caller="+37369111222")
    call.start()
    p = call.press("4")
    offer = " ".join(p.texts)
    assert "the account ending in 0 0 0 2 for your phone number" in offer
    assert "Ion" not in offer and "Popescu" not in offer
    p = call.press("1")  # use the offered account
    assert any("electricity meter ending in 0 7 7 7" in t for t in p.texts)
    p = call.press("1")  # electricity
    p = call.press("1")  # day
    assert any("day reading" in t for t in p.texts)
    p = call.press("5100#")
    p = call.press("1")
    assert any("night reading" in t for t in p.texts)
    p = call.press("5050#")
    p = call.press("1")
    p = call.press("1")  # another meter
    p = call.press("2")  # cold water
    p = call.press("12*345#")
    assert "That's 1 2 point 3 4 5." in p.texts
    p = call.press("1")
    p = call.press("3")
    assert "Saved: 3 readings." in p.texts
    assert stored(db) == [
        ("EL000777", "day", "5100", "accepted", "phone_keypad"),
        ("EL000777", "night", "5050", "accepted", "phone_keypad"),
        ("CW000888", "total", "12.345", "accepted", "phone_keypad"),
    ]


def test_a_tariff_given_in_an_earlier_call_is_not_asked_for_again(db, records, phone):
    """Night in one call, day in the next: after the day reading the robot asks what next."""
    first = phone(caller="+37369111222", call_sid="CA" + "1" * 32)
    first.start()
    first.press("4"); first.press("1"); first.press("1")
    first.press("2")  # night
    first.press("5050#")
    p = first.press("1")
    assert any("day reading" in t for t in p.texts)
    first.hang_up()
    second = phone(caller="+37369111222", call_sid="CA" + "2" * 32)
    second.start()
    second.press("4"); second.press("1"); second.press("1")
    p = second.press("1")  # day: still offered, the caller may as well be correcting the night one
    assert any("day reading" in t for t in p.texts)
    second.press("5100#")
    p = second.press("1")
    assert not any("night reading" in t for t in p.texts)
    assert any("press 3" in t.lower() for t in p.texts)  # what next
    assert stored(db) == [("EL000777", "night", "5050", "accepted", "phone_keypad"),
                          ("EL000777", "day", "5100", "accepted", "phone_keypad")]


def test_gather_twiml_shape(db, records, phone):
    call = phone(caller="+442079460000")
    p = call.start()
    assert p.gather["input"] == "dtmf" and p.gather["numDigits"] == "1"
    assert p.gather["actionOnEmptyResult"] == "true"
    assert p.gather["action"].startswith("http://localhost/voice/step/language?seq=1")
    call.press("4")
    p = call.press("1")
    assert p.gather["finishOnKey"] == "#" and "numDigits" not in p.gather
    assert "/voice/step/account?seq=" in p.gather["action"]


def test_after_hours_failure_ends_politely_and_queues_identification(db, records, phone):
    call = phone(caller="+442079460000")
    call.start(); call.press("4"); call.press("1")
    call.press("999#"); call.press("998#")
    p = call.press("997#")
    assert p.ended == "hangup"
    assert "No reading was saved during this call." in p.texts
    task = db.scalars(select(ReviewTask)).one()
    assert task.kind == "identification" and task.details["attempts"] == ["999", "998", "997"]
    c = db.scalars(select(Call)).one()
    assert (c.outcome, c.end_reason) == ("gave_up", "account:account_not_found")


def test_working_hours_failure_transfers_to_operator(db, records, phone):
    records["north"].work_start, records["north"].work_end, records["north"].work_days = f.ALWAYS_OPEN
    db.commit()
    call = phone(caller="+442079460000")
    call.start(); call.press("4"); call.press("1")
    call.press(""); call.press("")
    p = call.press("")
    assert p.ended == "dial:+37322999999"
    assert "Please hold, we are connecting you to an operator." in p.texts
    c = db.scalars(select(Call)).one()
    assert (c.outcome, c.end_reason) == ("transferred", "account:no_input")


def test_value_below_previous_explained_then_pending_review(db, records, phone):
    call = phone(caller="+442079460000")
    call.start(); call.press("4"); call.press("1"); call.press("100001#")
    p = call.press("10#")
    assert "The reading is lower than the previous one." in p.texts
    call.press("11#")
    p = call.press("12#")
    assert "That's 1 2." in p.texts
    p = call.press("1")
    assert "Thank you. We will check this reading." in p.texts
    assert stored(db) == [("EL000123", "total", "12", "pending_review", "phone_keypad")]
    assert db.scalars(select(ReviewTask)).one().reason == "below_previous"


def test_status_callback_records_outcome(db, records, phone):
    call = phone(caller="+442079460000")
    call.start(); call.press("4")
    assert call.hang_up(duration=17) == 204
    c = db.scalars(select(Call)).one()
    db.refresh(c)
    assert (c.twilio_status, c.duration_seconds, c.outcome, c.end_reason) == ("completed", 17, "hung_up",
                                                                             "region:hung_up")
    assert c.ended_at is not None


def test_repeated_webhook_replays_and_stores_once(db, records, phone):
    call = phone(caller="+442079460000")
    call.start(); call.press("4"); call.press("1"); call.press("100001#"); call.press("1100#")
    action = call.last.gather["action"]
    first = call.post(action, {"Digits": "1"})
    again = call.post(action, {"Digits": "1"})
    assert first == again and first[0] == 200
    assert len(stored(db)) == 1


def test_stale_step_url_changes_nothing(db, records, phone):
    call = phone(caller="+442079460000")
    call.start()
    call.press("4")
    status, body = call.post("http://localhost/voice/step/confirm?seq=2", {"Digits": "1"})
    assert status == 200 and body == db.scalars(select(Call)).one().last_twiml
    assert stored(db) == []


def test_fallback_reasks_current_question_without_advancing(db, records, phone):
    call = phone(caller="+442079460000")
    call.start(); call.press("4")
    before = db.scalars(select(Call)).one()
    seq = before.seq
    status, body = call.post("http://localhost/voice/fallback", {"ErrorCode": "11200", "ErrorUrl": "x"})
    assert status == 200 and "Choose your region and press its number." in body and f"seq={seq}" in body
    db.expire_all()
    assert db.scalars(select(Call)).one().seq == seq


def test_demo_like_call_via_public_url_signature(db, records, config, app, monkeypatch):
    """Behind a proxy the signature is over the public URL Twilio called."""
    config.public_url = "https://ivr.example.org"
    client = app.test_client()
    params = {"CallSid": "CA" + "a" * 32, "From": "+442079460000", "To": "+1"}
    sig = RequestValidator(AUTH_TOKEN).compute_signature("https://ivr.example.org/voice/incoming", params)
    r = client.post("/voice/incoming", data=params, headers={"X-Twilio-Signature": sig})
    assert r.status_code == 200 and "https://ivr.example.org/voice/step/language?seq=1" in r.get_data(as_text=True)
    sig_local = RequestValidator(AUTH_TOKEN).compute_signature("http://localhost/voice/incoming", params)
    assert client.post("/voice/incoming", data=params, headers={"X-Twilio-Signature": sig_local}).status_code == 403


def test_recorded_prompt_is_played(db, records, phone, config, tmp_path):
    import shutil

    from ivr.prompts import PACKAGE_DIR

    base = tmp_path / "prompts"
    shutil.copytree(PACKAGE_DIR, base, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (base / "en" / "welcome.wav").write_bytes(b"RIFF....WAVE")
    config.prompts_dir = base
    from ivr.app import create_app
    from ivr.voice.simulator import SimulatedCall, flask_transport

    client = create_app(config).test_client()
    call = SimulatedCall("http://localhost", AUTH_TOKEN, flask_transport(client), caller="+442079460000")
    p = call.start()
    assert p.texts[0] == "[audio http://localhost/voice/prompts/en/welcome]"
    assert client.get("/voice/prompts/en/welcome").status_code == 200
    assert client.get("/voice/prompts/en/goodbye").status_code == 404
    assert client.get("/voice/prompts/en/..%2Fsecret").status_code == 404
