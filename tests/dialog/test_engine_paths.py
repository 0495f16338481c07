"""The paths besides the happy one, in the pure engine: a read-back declined, a spoken account
number, a failed identification by speech, a request for a person, speech not understood, meters
named by their serial's digits, the tariff question, and the bound on a call's length."""
from __future__ import annotations

from decimal import Decimal

import pytest

from ivr import dialog
from ivr.dialog import (Ask, Event, Hangup, Hours, MeterInfo, Outcome, ReportFailedIdentification, Say, SpeechInput,
                        Transfer)
from ivr.dialog.engine import MAX_TURNS, SPEECH_KINDS
from ivr.dialog.ports import AccountInfo

from .test_engine import SILENCE, Caller, FakeRecords, asked, keys, said

OPERATOR = "+37322000111"
HOURS = Hours("12345", "08:00", "17:00")


def spoken(text="", *, value=None, intent=None, decision="accept", utterance_id=None, utility=None):
    return Event("speech", speech=SpeechInput(text, value=value, intent=intent, decision=decision,
                                              utterance_id=utterance_id, utility=utility))


def to_value(c, account="1001#"):
    c(keys("1")); c(keys("1")); c(keys(account))


# --- "2" at the read-back ------------------------------------------------------------------------

def test_two_at_the_read_back_after_the_last_try_asks_for_the_value_again():
    """Refused twice, the third value read back: "2" asks for it again instead of ending the call."""
    r = FakeRecords(operator=None)
    c = Caller(r)
    to_value(c)
    assert "reason_below_previous" in said(c(keys("10#")))
    assert "reason_below_previous" in said(c(keys("11#")))
    assert asked(c(keys("600#"))) == "confirm"
    t = c(keys("2"))
    assert said(t) == ["ask_value"] and not isinstance(t.actions[-1], Hangup)
    c(keys("610#"))
    assert "saved" in said(c(keys("1")))
    assert [(s[2], s[3]) for s in r.saved] == [("610", "accepted")]


def test_a_value_out_of_tries_is_kept_for_review_even_after_a_two():
    """A value refused on the last try is read back and kept for review; after a "2" the next value
    is on the last try too, so it is kept again rather than refused or thrown away."""
    r = FakeRecords(operator=None)
    c = Caller(r)
    to_value(c)
    c(keys("10#")); c(keys("11#"))
    t = c(keys("12#"))  # the last try, still below the previous reading
    assert asked(t) == "confirm" and "reason_below_previous" not in said(t)
    assert asked(c(keys("2"))) == "value"
    t = c(keys("13#"))
    assert asked(t) == "confirm" and c.state.decision == "pending_review"
    assert "will_be_checked" in said(c(keys("1")))
    assert [(s[2], s[3], s[4]) for s in r.saved] == [("13", "pending_review", "below_previous")]


def test_a_read_back_left_unanswered_keeps_the_value_for_review():
    r = FakeRecords(operator=None)
    c = Caller(r)
    to_value(c)
    c(keys("600#"))
    c(SILENCE); c(SILENCE)
    t = c(SILENCE)
    assert isinstance(t.actions[-1], Hangup) and "saved_for_review" in said(t)
    assert [(s[2], s[3], s[4]) for s in r.saved] == [("600", "pending_review", "not_confirmed")]


# --- a spoken account number -------------------------------------------------------------------------

@pytest.mark.parametrize("decision", ["confirm", "review"])
def test_a_spoken_account_number_is_read_back_unless_sure(decision):
    r = FakeRecords()
    c = Caller(r)
    c(keys("1")); c(keys("1"))
    t = c(spoken("one two three four", value="12.34", decision=decision, utterance_id=5))
    assert asked(t) == "confirm_account"
    assert t.actions[-1].prompts[0] == Say("account_read_back", {"tail": dialog.Digits("1234")})
    assert t.actions[-1].speech == SPEECH_KINDS["confirm_account"] == "yes_no"
    assert c.state.account is None  # nothing chosen before the caller confirms
    t = c(spoken("yes", intent="yes", utterance_id=6))
    assert asked(t) == "meter" and c.state.account.id == 11


def test_a_sure_spoken_account_number_is_taken_without_a_read_back():
    c = Caller(FakeRecords())
    c(keys("1")); c(keys("1"))
    t = c(spoken("one zero zero one", value="1001", decision="accept", utterance_id=5))
    assert asked(t) == "value" and c.state.account.id == 10


def test_a_misheard_account_declined_at_the_read_back_is_asked_again_and_stores_nothing():
    r = FakeRecords(operator=None)
    c = Caller(r)
    c(keys("1")); c(keys("1"))
    c(keys("555#")); c(keys("556#"))  # two tries used up
    c(spoken("one zero zero one", value="1001", decision="confirm", utterance_id=5))
    for _ in range(3):  # "2" asks for the number again, whatever the tries
        t = c(keys("2"))
        assert said(t) == ["ask_account"] and c.state.account is None and c.state.tries == 2
        c(spoken("one zero zero one", value="1001", decision="confirm", utterance_id=5))
    c(keys("2"))
    assert asked(c(keys("12*34#"))) == "meter" and c.state.account.id == 11


def test_failed_identification_by_speech_leaves_an_item_with_every_recording():
    r = FakeRecords(operator=None)
    c = Caller(r)
    c(keys("1")); c(keys("1"))
    t = c(spoken("", decision="retry", utterance_id=7))  # not understood
    assert "reason_not_understood" in said(t)
    t = c(spoken("five five five", value="555", decision="accept", utterance_id=8))  # not found
    assert "reason_account_not_found" in said(t)
    c(spoken("one zero zero one", value="1001", decision="confirm", utterance_id=9))
    t = c(spoken("no", intent="no", utterance_id=10))  # not the caller's: the number asked again
    assert asked(t) == "account"
    t = c(spoken("", decision="retry", utterance_id=11))  # the last try
    assert isinstance(t.actions[-1], Hangup)
    assert r.failed_ids == [(1, ["555", "1001"])] and r.failed_utterances == [[7, 8, 9, 11]]
    assert c.state.end_reason == "account:not_understood"


def test_identification_items_name_only_the_answers_since_the_last_account():
    r = FakeRecords(operator=None)
    c = Caller(r)
    c(keys("1")); c(keys("1"))
    c(spoken("", decision="retry", utterance_id=1))
    c(keys("1001#")); c(keys("600#")); c(keys("1"))
    c(keys("2"))  # another account
    for n in (2, 3, 4):
        t = c(spoken("", decision="retry", utterance_id=n))
    assert isinstance(t.actions[-1], Hangup) and r.failed_utterances == [[2, 3, 4]]
    assert r.failed_ids == [(1, [])]


# --- a request for a person ----------------------------------------------------------------------------

def _at(step: str, records: FakeRecords) -> Caller:
    """A call brought to ``step`` by keys (a known caller for offer_account)."""
    caller = "+37360000009" if step == "offer_account" else "+37360000001"
    if step == "offer_account":
        records.phones[caller] = [AccountInfo(10, 1, "1001", True)]
    c = Caller(records, caller=caller)
    path = {"language": [], "offer_account": ["1"], "region": ["1"], "account": ["1", "1"],
            "confirm_account": ["1", "1"], "meter": ["1", "1", "12*34#"], "register": ["1", "1", "12*34#", "1"],
            "value": ["1", "1", "1001#"], "confirm": ["1", "1", "1001#", "600#"],
            "next": ["1", "1", "1001#", "600#", "1"]}[step]
    for k in path:
        c(keys(k))
    if step == "confirm_account":
        c(spoken("one zero zero one", value="1001", decision="confirm"))
    assert c.state.step == step
    return c


ASKED_STEPS = ["language", "offer_account", "region", "account", "confirm_account", "meter", "register", "value",
               "confirm", "next"]


@pytest.mark.parametrize("step", ASKED_STEPS)
@pytest.mark.parametrize("how", ["key", "key#", "speech"])
def test_a_person_asked_for_in_working_hours_is_put_through_at_once(step, how):
    r = FakeRecords(operator=OPERATOR)
    c = _at(step, r)
    event = {"key": keys("0"), "key#": keys("0#"), "speech": spoken("operator", intent="operator")}[how]
    t = c(event)
    assert t.actions[-2:] == [Say("transfer"), Transfer(OPERATOR)]
    assert (c.state.outcome, c.state.end_reason) == (Outcome.TRANSFERRED, f"{step}:asked_operator")


@pytest.mark.parametrize("step", ASKED_STEPS)
def test_a_person_asked_for_out_of_hours_hears_the_hours_and_the_same_question(step):
    r = FakeRecords(operator=None)
    c = _at(step, r)
    before = c.state
    t = c(keys("0"))
    assert t.actions[0] == Say("operator_closed", {"hours": HOURS})
    again = dialog.engine.reask(r, before)
    assert asked(t) == step and t.actions[-1].prompts == again.prompts
    assert c.state.tries == before.tries and c.state.step == before.step and not c.state.over
    assert t.effects == []


def test_with_no_operator_line_the_caller_is_told_so_and_continues():
    r = FakeRecords(operator=None, hours=None)
    c = _at("account", r)
    t = c(keys("0"))
    assert said(t) == ["no_operator", "ask_account"]


def test_transfer_from_the_read_back_keeps_the_value_for_review():
    r = FakeRecords(operator=OPERATOR)
    c = _at("confirm", r)
    t = c(keys("0"))
    assert t.actions[-1] == Transfer(OPERATOR)
    assert [(s[2], s[3], s[4]) for s in r.saved] == [("600", "pending_review", "not_confirmed")]


def test_the_operator_of_the_callers_own_account_answers_before_the_region_is_chosen():
    r = FakeRecords(operator=OPERATOR, phones={"+37360000009": [AccountInfo(20, 2, "2002", True)]})
    c = Caller(r, caller="+37360000009")
    t = c(keys("0"))  # the first question
    assert t.actions[-1] == Transfer(OPERATOR) and r.operator_regions[-1] == 2


def test_zero_alone_asks_for_a_person_and_zero_in_a_number_is_a_digit():
    r = FakeRecords(operator=None)
    c = _at("account", r)
    assert said(c(keys("0#")))[0] == "operator_closed" and c.state.tries == 0
    assert said(c(keys("0")))[0] == "operator_closed"
    assert said(c(keys("01#")))[0] == "reason_account_not_found"
    c = _at("value", FakeRecords(limits={"previous": Decimal(0)}))
    assert said(c(keys("0*5#"))) == ["read_back", "ask_confirm"]


# --- the welcome and the after-hours ending ------------------------------------------------------------

def test_the_welcome_says_once_that_zero_reaches_a_person():
    r = FakeRecords()
    c = Caller(r)
    first = c.turn.actions[-1]
    assert isinstance(first, Ask) and [p.key for p in first.prompts[:2]] == ["welcome", "operator_hint"]
    again = c(keys("9"))  # not a language: asked again, without the hint
    assert "operator_hint" not in said(again)
    assert "operator_hint" not in said(c(keys("0")))


def test_no_hint_where_no_operator_answers():
    c = Caller(FakeRecords(hours=None))
    assert "operator_hint" not in said(c.turn)


def test_an_ending_out_of_hours_says_when_operators_answer():
    r = FakeRecords(operator=None)
    c = _at("value", r)
    c(SILENCE); c(SILENCE)
    t = c(SILENCE)
    assert said(t) == ["not_completed", "operator_hours", "nothing_saved", "goodbye"]
    assert Say("operator_hours", {"hours": HOURS}) in t.actions
    r.hours = None
    c = _at("value", r)
    c(SILENCE); c(SILENCE)
    assert said(c(SILENCE)) == ["not_completed", "nothing_saved", "goodbye"]


# --- what the caller is told when an answer is asked again --------------------------------------------

@pytest.mark.parametrize("step", ["offer_account", "region", "account", "confirm_account", "meter", "register",
                                  "value", "confirm", "next"])
def test_speech_not_understood_is_said_so_at_every_question(step):
    c = _at(step, FakeRecords())
    t = c(spoken("[unk]", decision="retry", utterance_id=3))
    assert said(t)[0] == "reason_not_understood"
    c = _at(step, FakeRecords())
    t = c(spoken("", decision="confirm", utterance_id=3))  # nothing parsed, whatever the decision
    assert said(t)[0] == "reason_not_understood"


@pytest.mark.parametrize("step", ["region", "meter", "register", "confirm", "next"])
def test_keys_that_are_no_option_are_said_to_be_no_option(step):
    c = _at(step, FakeRecords())
    assert said(c(keys("8")))[0] == "reason_invalid_choice"
    c = _at(step, FakeRecords())
    assert said(c(SILENCE))[0] == "reason_no_input" or step == "next"


@pytest.mark.parametrize("step,typed", [("account", "12#34#"), ("value", "1*2*3#")])
def test_keys_that_are_no_number_are_said_to_be_no_number(step, typed):
    c = _at(step, FakeRecords())
    assert said(c(keys(typed)))[0] == "reason_not_a_number"


# --- meters and tariffs ----------------------------------------------------------------------------------

def test_a_meter_whose_serial_ends_in_letters_is_named_by_its_utility():
    r = FakeRecords(meter_table={10: [MeterInfo(100, "electricity", "0427", ("total",)),
                                      MeterInfo(101, "gas", "", ("total",))]})
    c = Caller(r)
    t = c(keys("1")); t = c(keys("1")); t = c(keys("1001#"))
    prompts = t.actions[-1].prompts
    assert prompts[1].key == "meter_option" and prompts[1].params["tail"] == dialog.Digits("0427")
    assert prompts[2] == Say("meter_option_no_tail", {"key": 2, "utility": dialog.Term("utility_gas")})


def test_the_tariff_is_asked_only_while_there_is_a_choice():
    c = _at("register", FakeRecords())
    c(keys("2")); c(keys("700#"))
    t = c(keys("1"))  # the night saved: the day is asked at once
    assert asked(t) == "value" and c.state.register == "day"
    c(keys("710#")); c(keys("1"))
    c(keys("1"))  # another meter
    t = c(keys("1"))  # the same two-tariff meter, both given: the choice is back
    assert asked(t) == "register"


def test_a_meter_with_one_register_left_goes_straight_to_its_value():
    c = _at("meter", FakeRecords())
    c.state.done = [(110, "day")]  # the day given earlier in the call
    t = c(keys("1"))
    assert asked(t) == "value" and c.state.register == "night"
    c = _at("meter", FakeRecords())
    t = c(keys("2"))  # gas: one register, never asked
    assert asked(t) == "value" and c.state.register == "total"


# --- every call ends -------------------------------------------------------------------------------------

def test_a_call_ends_after_at_most_max_turns():
    r = FakeRecords(operator=None)
    c = _at("value", r)
    turns = c.state.seq
    while not c.state.over:
        c(keys("600#"))
        c(keys("2"))  # wrong, again and again
        turns += 2
        assert turns <= MAX_TURNS + 2
    assert c.state.seq == MAX_TURNS + 1 and c.state.end_reason in ("value:too_many_turns", "confirm:too_many_turns")
    assert isinstance(c.turn.actions[-1], Hangup)


def test_a_late_event_after_the_end_changes_nothing():
    r = FakeRecords(operator=OPERATOR)
    c = _at("account", r)
    c(keys("0"))
    t = c(keys("0"))
    assert said(t) == ["goodbye"] and isinstance(t.actions[-1], Hangup) and t.effects == []


def test_failed_identification_effect_is_written_once():
    r = FakeRecords(operator=None)
    c = _at("account", r)
    for n in range(3):
        t = c(spoken("", decision="retry", utterance_id=n + 1))
    assert [e for e in t.effects if isinstance(e, ReportFailedIdentification)] == [
        ReportFailedIdentification(1, (), 3, (1, 2, 3))]


def test_zero_at_a_reminder_call_question_reaches_the_accounts_operators():
    r = FakeRecords(operator=OPERATOR)
    turn = dialog.start_reminder(r, call_sid="CA9", callee="+37369000001", language="ru", account_id=20)
    turn = dialog.handle(r, turn.state, keys("0"))
    assert turn.actions[-1] == Transfer(OPERATOR) and r.operator_regions[-1] == 2
    r = FakeRecords(operator=None)
    turn = dialog.start_reminder(r, call_sid="CA9", callee="+37369000001", language="ru", account_id=20)
    turn = dialog.handle(r, turn.state, keys("0"))
    assert said(turn)[0] == "operator_closed" and asked(turn) == "reminder"
