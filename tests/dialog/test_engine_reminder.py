"""A reminder call we placed, in the pure engine: the greeting names the account by its last
digits only, 1 (or yes) goes straight to that account's meters, anything else ends politely."""
from __future__ import annotations

from ivr import dialog
from ivr.dialog import Ask, Digits, Event, Hangup, Outcome, SpeechInput, Step

from .test_engine import SILENCE, FakeRecords, asked, keys, said


def answered(records, account_id=10, lang="ru"):
    return dialog.start_reminder(records, call_sid="CA1", callee="+37369000001", language=lang,
                                 account_id=account_id)


def test_the_greeting_names_the_account_by_its_last_digits_only():
    turn = answered(FakeRecords())
    assert turn.state.step == Step.REMINDER and turn.state.lang == "ru"
    assert turn.state.account.id == 10 and turn.state.region_id == 1
    ask = turn.actions[-1]
    assert isinstance(ask, Ask) and ask.step == "reminder" and ask.speech == "yes_no" and ask.expect == "choice"
    assert ask.prompts[0].key == "reminder_call" and ask.prompts[0].params == {"tail": Digits("1001")}
    assert turn.effects == [] and turn.state.caller == "+37369000001"


def test_one_goes_straight_to_the_reading_of_that_account():
    records = FakeRecords()
    turn = answered(records)
    turn = dialog.handle(records, turn.state, keys("1"))
    assert asked(turn) == "value" and turn.state.meter == 0 and turn.state.register == "total"
    # The same read-back, confirmation and storage as an inbound call.
    turn = dialog.handle(records, turn.state, keys("1234#"))
    records.apply(turn.effects)
    assert asked(turn) == "confirm"
    turn = dialog.handle(records, turn.state, keys("1"))
    records.apply(turn.effects)
    assert [s[:4] for s in records.saved] == [(100, "total", "1234", "accepted")]
    assert said(turn)[0] == "saved" and asked(turn) == "next"
    turn = dialog.handle(records, turn.state, keys("3"))
    assert turn.state.outcome == Outcome.COMPLETED and isinstance(turn.actions[-1], Hangup)


def test_an_account_with_several_meters_is_asked_which_one():
    records = FakeRecords()
    turn = answered(records, account_id=11)
    assert turn.actions[-1].prompts[0].params == {"tail": Digits("1234")}
    turn = dialog.handle(records, turn.state, keys("1"))
    assert asked(turn) == "meter"


def test_yes_said_counts_as_one():
    records = FakeRecords()
    turn = answered(records)
    yes = Event("speech", speech=SpeechInput(text="да", intent="yes"))
    assert asked(dialog.handle(records, turn.state, yes)) == "value"


def test_anything_else_or_silence_ends_politely_without_a_reading():
    records = FakeRecords()
    for event in (keys("2"), keys("9"), SILENCE, Event("speech", speech=SpeechInput(text="нет", intent="no"))):
        turn = dialog.handle(records, answered(records).state, event)
        assert turn.state.step == Step.ENDED and turn.state.outcome == Outcome.NO_READING
        assert said(turn) == ["reminder_call_end"] and isinstance(turn.actions[-1], Hangup)
        assert turn.effects == [] and records.saved == []


def test_an_account_closed_since_the_call_was_queued_ends_at_once():
    turn = answered(FakeRecords(), account_id=99)  # inactive
    assert turn.state.step == Step.ENDED and turn.state.outcome == Outcome.NO_READING and turn.state.account is None
    assert said(turn) == ["reminder_call_end"] and isinstance(turn.actions[-1], Hangup)
    assert answered(FakeRecords(), account_id=12345).state.outcome == Outcome.NO_READING  # gone


def test_the_reminder_state_survives_its_json_form():
    turn = answered(FakeRecords())
    again = dialog.CallState.from_json(turn.state.to_json())
    assert again == turn.state
