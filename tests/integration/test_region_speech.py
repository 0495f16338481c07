"""Spoken region names: the region question listens for each region's name in the call's
language (Vosk grammar, Twilio hints), and a recognised name selects the region."""
from __future__ import annotations

import pytest
from sqlalchemy import select

import grammars
from readings_store.models import Call, Utterance
from readings_store.regions import create_region, get_region
from tests import factories as f

from .test_speech_calls import (  # noqa: F401 - fixtures
    RO,
    RU,
    FakeFetch,
    FakeRecognizer,
    dial,
    fake,
    fetch,
    last_twiml,
    rec,
    say,
    speech_client,
    speech_config,
)


@pytest.fixture
def regions(db):
    orh = create_region(db, "ORH", "Orhei", menu_key=1, names={"ro": "Orhei", "ru": "Орхей", "uk": "Оргіїв"})
    create_region(db, "CAH", "Cahul", menu_key=2, names={"ro": "Cahul", "ru": "Кагул", "uk": "Кагул"})
    create_region(db, "BAL", "Bălți", menu_key=3, names={"ro": "Bălți", "ru": "Бельцы"})
    f.account(db, orh, number="5001")
    db.commit()


def _region_of_call(db):
    db.expire_all()
    return db.scalars(select(Call)).one().state["region_id"]


def test_a_region_name_said_in_russian_selects_it(db, regions, dial, fake):
    call = dial(RU)
    call.start()
    p = call.press("2")
    assert "Кагул — 2." in p.texts
    assert last_twiml(db).find("Record") is not None
    p = say(call, fake, rec("кагул"))
    assert "/voice/step/account" in p.gather["action"]
    assert _region_of_call(db) == get_region(db, "CAH").id
    lang, grammar, _ = fake.calls[-1]
    assert lang == "ru" and {"орхей", "кагул", "бельцы", "один", "[unk]"} <= set(grammar)
    utterance = db.scalars(select(Utterance)).one()
    assert (utterance.step, utterance.transcript, utterance.decision) == ("region", "кагул", "accept")


def test_a_name_barely_heard_is_asked_again(db, regions, dial, fake):
    call = dial(RU)
    call.start()
    call.press("2")
    p = say(call, fake, rec("кагул", conf=0.2))
    assert p.texts[:2] == ["Извините, не удалось разобрать ваш ответ.", "Назовите регион или нажмите его номер."]
    assert "/voice/step/region" in p.gather["action"] and _region_of_call(db) is None


def test_a_digit_still_works_by_speech(db, regions, dial, fake):
    call = dial(RU)
    call.start()
    call.press("2")
    say(call, fake, rec("три"))
    assert _region_of_call(db) == get_region(db, "BAL").id


def test_romanian_names_are_twilio_hints_and_are_understood_without_diacritics(db, regions, dial):
    call = dial(RO)
    call.start()
    p = call.press("1")
    assert p.gather["input"] == "dtmf speech"
    assert p.gather["hints"].startswith("Orhei, Cahul, Bălți, ")
    p = call._follow(p.gather["action"], {"SpeechResult": "Balti", "Confidence": "0.91"})  # noqa: SLF001
    assert "/voice/step/account" in p.gather["action"]
    assert _region_of_call(db) == get_region(db, "BAL").id


def test_match_phrase_and_grammar_extra():
    assert grammars.match_phrase("regiunea Balti va rog", "ro", ["Orhei", "Bălți"]) == "Bălți"
    assert grammars.match_phrase("Кагул", "ru", ["Орхей", "Кагул"]) == "Кагул"
    assert grammars.match_phrase("орхей или кагул", "ru", ["Орхей", "Кагул"]) is None  # two names: ask again
    assert grammars.match_phrase("москва", "ru", ["Орхей", "Кагул"]) is None
    assert grammars.match_phrase("ceadir lunga", "ro", ["Ceadîr-Lunga"]) == "Ceadîr-Lunga"
    grammar = grammars.build_grammar("ru", "menu", ["Кишинёв", "Ceadîr-Lunga"])
    assert "кишинев" in grammar and "ceadîr lunga" in grammar and grammar[-1] == "[unk]"


def test_only_names_in_the_calls_language_are_listened_for(db, regions, dial, fake):
    """Bălți has no Ukrainian name: a Ukrainian call does not listen for "Bălți" (nor for the Russian
    "Бельцы"), says the only name it has, and reaches it by its key."""
    call = dial("+380441234567")
    call.start()
    p = call.press("3")
    assert "Bălți — 3." in p.texts
    p = say(call, fake, rec("три"))
    _, grammar, _ = fake.calls[-1]
    assert {"оргіїв", "кагул"} <= set(grammar) and not {"bălți", "бельцы", "orhei", "орхей"} & set(grammar)
    assert _region_of_call(db) == get_region(db, "BAL").id
