"""A menu choice the recogniser heard below its accept threshold is confirmed by its key before the
call acts on it: a "да" that may have been "два" must not store a reading the caller rejected."""
from __future__ import annotations

import pytest

from ivr import dialog
from ivr.dialog import Ask, CallState, Event, SpeechInput
from ivr.dialog.engine import reask

from .test_engine import Caller, FakeRecords, asked, keys, said


def spoken(decision="confirm", **kw) -> Event:
    return Event("speech", speech=SpeechInput("…", decision=decision, **kw))


def at_confirm(records):
    c = Caller(records)
    c(keys("1")); c(keys("1")); c(keys("1001#")); c(keys("600#"))
    assert c.state.step == "confirm"
    return c


@pytest.mark.parametrize("decision", ["confirm", "review"])
def test_an_unsure_yes_at_the_read_back_is_confirmed_by_key_before_anything_is_stored(decision):
    r = FakeRecords()
    c = at_confirm(r)
    t = c(spoken(decision, intent="yes"))
    ask = t.actions[-1]
    assert isinstance(ask, Ask) and ask.step == "confirm" and ask.speech is None  # keys only
    assert [(p.key, p.params) for p in ask.prompts] == [("confirm_choice", {"key": "1"})]
    assert r.saved == [] and c.state.choice_to_confirm == "1"
    t = c(keys("1"))
    assert "saved" in said(t) and r.saved[0][:4] == (100, "total", "600", "accepted")
    assert c.state.choice_to_confirm is None


def test_the_caller_can_press_the_other_key_instead():
    r = FakeRecords()
    c = at_confirm(r)
    c(spoken(intent="yes"))  # the caller said "два"
    t = c(keys("2"))
    assert asked(t) == "value" and r.saved == []


def test_a_sure_answer_is_acted_on_at_once():
    r = FakeRecords()
    c = at_confirm(r)
    c(spoken("accept", intent="yes"))
    assert r.saved and c.state.step == "next"


def test_silence_after_the_confirmation_question_is_silence_at_the_question():
    r = FakeRecords()
    c = at_confirm(r)
    c(spoken(intent="no"))
    t = c(Event("timeout"))
    assert "reason_no_input" in said(t) and asked(t) == "confirm" and r.saved == []


@pytest.mark.parametrize("setup,answer,step,key", [
    (lambda c: None, {"value": "2"}, "region", "2"),
    (lambda c: (c(keys("1")), c(keys("1")), c(keys("12*34#"))), {"utility": "gas"}, "meter", "2"),
    (lambda c: (c(keys("1")), c(keys("1")), c(keys("12*34#")), c(keys("1"))), {"register": "night"}, "register", "2"),
])
def test_every_menu_confirms_an_unsure_choice(setup, answer, step, key):
    c = Caller(FakeRecords())
    if step == "region":
        c(keys("1"))
    else:
        setup(c)
    assert c.state.step == step
    before = c.state.to_json()
    t = c(spoken(**answer))
    assert t.actions[-1].prompts[0].params == {"key": key} and c.state.step == step
    assert {k: v for k, v in c.state.to_json().items() if k not in ("seq", "choice_to_confirm")} == \
        {k: v for k, v in before.items() if k not in ("seq", "choice_to_confirm")}
    c(keys(key))
    assert c.state.step != step


def test_the_confirmation_is_what_a_fallback_asks_again_and_survives_storage():
    c = at_confirm(FakeRecords())
    c(spoken(intent="yes"))
    state = CallState.from_json(c.state.to_json())
    assert state.choice_to_confirm == "1"
    again = reask(FakeRecords(), state)
    assert again.prompts[0].key == "confirm_choice" and again.speech is None
    assert reask(FakeRecords(), CallState.from_json({**state.to_json(), "choice_to_confirm": None})).speech == "yes_no"


def test_reminder_offer_and_next_menus_confirm_too():
    r = FakeRecords(phones={"+37360000001": [dialog.AccountInfo(10, 1, "1001", True)]})
    c = Caller(r)
    c(keys("1"))
    assert c.state.step == "offer_account"
    t = c(spoken(intent="yes"))
    assert t.actions[-1].prompts[0].key == "confirm_choice" and c.state.step == "offer_account"
    c(keys("1")); c(keys("600#")); c(keys("1"))
    assert c.state.step == "next"
    t = c(spoken(value="3"))
    assert t.actions[-1].prompts[0].params == {"key": "3"} and c.state.step == "next"
    c(keys("3"))
    assert c.state.outcome == "completed"
