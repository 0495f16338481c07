"""A company's caller, where the region asks for it, says the organisation's name after the tone: a
question that records (nothing recognised, nothing decided), told first that spoken answers are
recorded if the caller has not heard so. The company's choices may be said where speech is on: "all
meters" at the serial question, "last reading" at a value question of a caller offered it."""
from __future__ import annotations

import datetime as dt

import pytest

from ivr import dialog
from ivr.dialog import RECORDS, Event, Say, SpeechInput
from ivr.dialog.engine import LAST_READING_KIND, SPEECH_KINDS
from ivr.dialog.ports import AccountInfo, LastReading, MeterInfo

from .test_engine import SILENCE, Caller, FakeRecords, asked, keys, said

COMPANY = AccountInfo(30, 1, "3030", True, "company")
METERS = [MeterInfo(3000 + i, "electricity", f"{i:04d}", ("total",), serial_digits=f"77{i:04d}") for i in range(3)]
KNOWN = "+37369000001"


def records(*, asks: bool = True, **kwargs) -> FakeRecords:
    rec = FakeRecords(org_name_regions={1} if asks else set(), **kwargs)
    rec.accounts[(1, "3030")] = COMPANY
    rec.meter_table[30] = list(METERS)
    return rec


def identified(rec: FakeRecords, *, may_record: bool = False, caller: str = "+37360000001"):
    call = Caller(rec, caller=caller)
    call.turn = dialog.start(rec, call_sid="CA1", caller=caller, language="ro", may_record=may_record)
    call(keys("1")); call(keys("1"))
    return call, call(keys("3030#"))


def test_a_company_caller_is_asked_the_name_with_the_notice_on_a_line_that_said_none():
    call, turn = identified(records())
    assert asked(turn) == "org_name" and turn.actions[-1].expect == RECORDS and turn.actions[-1].speech is None
    # Nothing was said of recording at the start (a keypad-only line): said now, before the question.
    assert said(turn) == ["recording_notice", "ask_org_name"] and call.state.notice_said
    # The recording, whatever it holds, decides nothing: on to the meters, no try used.
    turn = call(Event("recording", speech=SpeechInput(text="", utterance_id=7)))
    assert asked(turn) == "meter_serial" and call.state.tries == 0 and call.records.saved == []


def test_the_notice_is_not_said_twice():
    call, turn = identified(records(), may_record=True)
    assert said(turn) == ["ask_org_name"]  # heard at the start of the call already


@pytest.mark.parametrize("event", [SILENCE, keys("5"), keys("#"), Event("recording", speech=SpeechInput(text=""))],
                         ids=["silence", "a key", "hash", "no audio"])
def test_anything_or_nothing_goes_on_to_the_meters(event):
    call, _ = identified(records())
    turn = call(event)
    assert asked(turn) == "meter_serial" and call.state.tries == 0


def test_zero_at_the_name_reaches_the_operator_rules():
    call, _ = identified(records())
    turn = call(keys("0"))  # nobody on duty in FakeRecords: told the hours, asked again
    assert said(turn)[0] == "operator_closed" and asked(turn) == "org_name"


def test_not_asked_where_the_region_does_not_ask_or_of_a_household():
    _, turn = identified(records(asks=False))
    assert asked(turn) == "meter_serial" and "ask_org_name" not in said(turn)
    rec = records()
    call = Caller(rec)
    call(keys("1")); call(keys("1"))
    turn = call(keys("12*34#"))  # a person's account in the same region
    assert asked(turn) == "meter" and "ask_org_name" not in said(turn)


def test_a_company_with_one_meter_goes_to_its_value_after_the_name():
    rec = records()
    rec.meter_table[30] = METERS[:1]
    call, turn = identified(rec)
    assert asked(turn) == "org_name"
    assert asked(call(SILENCE)) == "value"


def test_the_name_question_is_asked_again_as_it_was():
    call, _ = identified(records())
    ask = dialog.reask(call.records, call.state)
    assert ask.step == "org_name" and ask.expect == RECORDS and [p.key for p in ask.prompts] == ["ask_org_name"]


# --- the company's choices by name ------------------------------------------------------------------

def spoken(choice: str | None = None, value: str | None = None, decision: str = "accept") -> Event:
    return Event("speech", speech=SpeechInput(text="...", value=value, choice=choice, decision=decision))


def test_all_meters_said_walks_like_the_star():
    call, _ = identified(records(asks=False))
    assert SPEECH_KINDS["meter_serial"] == "serial"
    turn = call(spoken("all_meters"))
    assert said(turn)[0] == "walk_start" and asked(turn) == "value" and call.state.walk is not None


def test_a_choice_not_heard_well_enough_is_asked_again():
    call, _ = identified(records(asks=False))
    turn = call(spoken("all_meters", decision="retry"))
    assert asked(turn) == "meter_serial" and call.state.walk is None and call.state.tries == 1


def test_last_reading_said_by_a_caller_offered_it():
    rec = FakeRecords(last={(100, "total"): LastReading("1234.5", dt.date(2026, 2, 28))})
    rec.phones[KNOWN] = [rec.accounts[(1, "1001")]]
    call = Caller(rec, caller=KNOWN)
    call(keys("1"))
    turn = call(keys("1"))  # the account on file: its one meter's value, with the offer
    assert said(turn)[-1] == "last_reading_offer" and turn.actions[-1].speech == LAST_READING_KIND
    turn = call(spoken("last_reading"))
    assert said(turn)[0] == "last_reading" and asked(turn) == "value" and call.state.tries == 0
    assert dialog.reask(rec, call.state).speech == LAST_READING_KIND


def test_last_reading_said_by_anybody_else_is_no_value():
    call = Caller(FakeRecords())
    call(keys("1")); call(keys("1"))
    turn = call(keys("1001#"))
    assert asked(turn) == "value" and "last_reading_offer" not in said(turn)
    turn = call(spoken("last_reading"))
    assert said(turn)[0] == "reason_not_a_number" and "last_reading" not in said(turn)


def test_the_household_path_is_unchanged():
    """A household's first call says nothing of the organisation and asks no more questions."""
    call = Caller(records())
    steps = [asked(call(keys(k))) for k in ("1", "1", "1001#", "600#", "1")]
    assert steps == ["region", "account", "value", "confirm", "next"]
    assert "ask_org_name" not in said(call.turn) and "recording_notice" not in said(call.turn)


def test_the_state_keeps_whether_the_notice_was_said():
    call, _ = identified(records())
    again = dialog.CallState.from_json(call.state.to_json())
    assert again.notice_said and again.step == dialog.Step.ORG_NAME
    assert not dialog.CallState.from_json({"call_sid": "CA1", "caller": None, "lang": "ro"}).notice_said


def test_no_notice_twice_after_an_operator_request():
    call, _ = identified(records())
    turn = call(keys("0"))
    assert Say("recording_notice") not in turn.actions and said(turn).count("recording_notice") == 0
