"""What callers hear, through the Flask app exactly as Twilio calls it: native sentences with the
utility and tariff in the right case, and an honest ending for a value never confirmed."""
from __future__ import annotations


import pytest
from sqlalchemy import select

from readings_store.models import Call, Reading, ReviewTask
from tests import factories as f



@pytest.fixture
def records(db):
    north = f.region(db, code="N", name="North", menu_key=1, work=f.NEVER_OPEN)
    f.region(db, code="S", name="South", menu_key=2, work=f.NEVER_OPEN)
    one = f.account(db, north, number="100001")
    f.meter(db, one, serial="EL000123", previous=1000, decimals=1)
    two = f.account(db, north, number="200002")
    f.meter(db, two, serial="EL000777", registers=2, previous=5000, decimals=0)
    f.meter(db, two, serial="GS000888", utility="gas", digits=5, decimals=3, previous=10)
    db.commit()
    return {"north": north}


def readings(db):
    db.expire_all()
    return [(r.meter.serial, r.register, str(r.value), r.status)
            for r in db.scalars(select(Reading).where(Reading.channel.like("phone%")).order_by(Reading.id))]


def test_russian_caller_hears_meters_and_tariffs_in_the_right_case(db, records, phone):
    call = phone(caller="+74951234567")
    call.start()
    call.press("")  # keep Russian, guessed from the caller ID
    call.press("1")  # region North
    p = call.press("200002#")
    assert "Счётчик электроэнергии с окончанием 0 7 7 7 — нажмите 1." in p.texts
    assert "Счётчик газа с окончанием 0 8 8 8 — нажмите 2." in p.texts
    assert "Дневной тариф — нажмите 1. Ночной тариф — нажмите 2." in call.press("1").texts
    p = call.press("2")
    assert ("Введите показания счётчика электроэнергии по ночному тарифу и нажмите решётку. "
            "Вместо запятой нажмите звёздочку.") in p.texts
    call.press("5100#")
    p = call.press("1")
    assert "Показания сохранены." in p.texts
    assert any("счётчика электроэнергии по дневному тарифу" in t for t in p.texts)


def test_ukrainian_value_question_for_gas(db, records, phone):
    call = phone(caller="+380441234567")
    call.start(); call.press(""); call.press("1"); call.press("200002#")
    p = call.press("2")
    assert ("Введіть показання лічильника газу та натисніть решітку. Замість коми натисніть зірочку."
            in p.texts)
    p = call.press("12*5#")
    assert "Показання: 1 2 кома 5." in p.texts


@pytest.mark.parametrize("caller,told", [
    ("+74951234567", ["Показания записаны, их проверит оператор.", "Спасибо за звонок. До свидания."]),
    ("+442079460000", ["Your reading has been recorded and will be checked by an operator.",
                       "Thank you, goodbye."]),
])
def test_value_never_confirmed_is_told_it_goes_to_an_operator(db, records, phone, caller, told):
    call = phone(caller=caller)
    call.start(); call.press(""); call.press("1"); call.press("100001#")
    call.press("1100*5#")  # read back, then the caller never confirms
    call.press(""); call.press("")
    p = call.press("")
    assert p.ended == "hangup"
    # no "could not complete your request", and the unconfirmed value is not counted as saved
    assert p.texts == told
    assert readings(db) == [("EL000123", "total", "1100.5", "pending_review")]
    assert db.scalars(select(ReviewTask)).one().reason == "not_confirmed"
    c = db.scalars(select(Call)).one()
    assert (c.outcome, c.end_reason) == ("gave_up", "confirm:no_input")


def test_unconfirmed_value_after_a_saved_one_counts_only_the_saved(db, records, phone):
    call = phone(caller="+442079460000")
    call.start(); call.press(""); call.press("1"); call.press("200002#")
    call.press("2"); call.press("12*5#"); call.press("1")  # gas saved
    call.press("1"); call.press("1"); call.press("1"); call.press("5100#")  # electricity day, not confirmed
    call.press("7"); call.press("8")
    p = call.press("9")
    assert p.texts[-3:] == ["Your reading has been recorded and will be checked by an operator.",
                            "Saved: 1 reading.", "Thank you, goodbye."]
    assert readings(db) == [("GS000888", "total", "12.5", "accepted"), ("EL000777", "day", "5100", "pending_review")]
