"""The typed call state and its JSON form, including rows written before the state had a type."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest

from ivr import dialog
from ivr.dialog import CallState, Decision, Outcome, Step
from ivr.dialog.state import AccountRef, MeterRef, legacy_outcome

from .test_engine import Caller, FakeRecords, asked, keys

# A call at the confirmation of its second register, as the dialog stored it before (a plain dict).
OLD_IN_PROGRESS = {
    "call_sid": "CA1", "caller": "+37360000001", "lang": "ro", "max_tries": 3, "step": "confirm", "tries": 1,
    "region_id": 1, "account": {"id": 11, "region_id": 1, "tail": "1234"},
    "meters": [{"id": 110, "utility": "electricity", "tail": "0002", "registers": ["day", "night"]},
               {"id": 111, "utility": "gas", "tail": "0003", "registers": ["total"]}],
    "meter": 0, "register": "day", "value": "800", "status": "pending_review", "reason": "below_previous",
    "utterance_id": None, "saved": [{"meter_id": 110, "register": "night", "value": "700", "status": "accepted"}],
    "done": [[110, "night"]], "attempts": [], "seq": 9, "keypad_only": True,
}


def test_an_old_row_in_progress_loads_and_the_call_goes_on():
    state = CallState.from_json(json.loads(json.dumps(OLD_IN_PROGRESS)))
    assert state.step is Step.CONFIRM and state.decision is Decision.PENDING_REVIEW
    assert state.account == AccountRef(11, 1, "1234") and state.meters[1] == MeterRef(111, "gas", "0003", ["total"])
    assert state.saved == 1 and state.done == [(110, "night")]  # an older row's list counts its readings
    records = FakeRecords(limits={"previous": Decimal("900")})  # 800 is still below the previous reading
    turn = dialog.handle(records, state, keys("1"))
    records.apply(turn.effects)
    # Both registers are done: on to the next question, the reading kept for review as judged.
    assert asked(turn) == "next" and records.saved[0][:5] == (110, "day", "800", "pending_review", "below_previous")
    assert records.saved[0][5] == "CA1:10"


def test_the_state_round_trips_and_handle_leaves_the_old_state_alone():
    c = Caller(FakeRecords())
    for event in (keys("1"), keys("1"), keys("12*34#"), keys("1"), keys("1"), keys("700#")):
        before = c.state
        frozen = json.dumps(before.to_json())
        c(event)
        assert json.dumps(before.to_json()) == frozen
        assert CallState.from_json(json.loads(json.dumps(c.state.to_json()))) == c.state


@pytest.mark.parametrize("old, step, expected", [
    ("completed", "ended", (Outcome.COMPLETED, None)),
    ("no_reading", "ended", (Outcome.NO_READING, None)),
    ("hung_up_at_value", "value", (Outcome.HUNG_UP, "value:hung_up")),
    ("account_account_not_found", "ended", (Outcome.GAVE_UP, "account:account_not_found")),
    ("offer_account_no_input", "transferred", (Outcome.TRANSFERRED, "offer_account:no_input")),
    ("region_assumed_invalid_choice", "ended", (Outcome.GAVE_UP, "region_assumed:invalid_choice")),
    ("asked_operator", "transferred", (Outcome.TRANSFERRED, "asked_operator")),
    ("no_regions", "transferred", (Outcome.TRANSFERRED, "no_regions")),
    ("no_regions", "ended", (Outcome.SERVICE_NOT_READY, None)),
])
def test_old_outcome_strings_stand_for_an_outcome_and_an_end_reason(old, step, expected):
    assert legacy_outcome(old, step) == expected
    state = CallState.from_json({**OLD_IN_PROGRESS, "step": step, "outcome": old})
    assert (state.outcome, state.end_reason) == expected


def test_something_that_is_no_call_state_is_refused():
    for bad in ({}, {"call_sid": "CA1"}, {**OLD_IN_PROGRESS, "step": "dancing"},
                {**OLD_IN_PROGRESS, "status": "maybe"}, {**OLD_IN_PROGRESS, "meters": [{"id": 1}]}):
        with pytest.raises(ValueError):
            CallState.from_json(bad)


def test_enums_are_their_stored_strings():
    assert [o.value for o in Outcome] == ["completed", "no_reading", "transferred", "gave_up", "hung_up",
                                          "service_not_ready"]
    assert Step.VALUE == "value" and str(Step.VALUE) == "value" and str(Outcome.GAVE_UP) == "gave_up"


def test_what_a_turn_stores_does_not_grow_with_the_length_of_the_call():
    """A caller who gives an account's reading again and again: the state written after the 30th
    reading is as large as after the second (a count, not a list of the readings)."""
    c = Caller(FakeRecords())
    c(keys("1")); c(keys("1"))
    sizes = []
    for n in range(30):  # 122 turns, within MAX_TURNS
        assert asked(c(keys("1001#"))) == "value"
        assert asked(c(keys(f"{1234 + n}#"))) == "confirm"
        assert asked(c(keys("1"))) == "next"
        sizes.append(len(json.dumps(c.state.to_json())))
        assert asked(c(keys("2"))) == "account"
    assert c.state.saved == 30
    assert max(sizes) - min(sizes) <= 4  # the digits of the count and of the turn number (a list: +80 a reading)
