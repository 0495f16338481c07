"""Callers whose spoken answers may be recorded hear so once, at the start, before they answer."""
from __future__ import annotations

from ivr import dialog

from .test_engine import SILENCE, FakeRecords, asked, keys, said


def test_the_notice_follows_the_greeting_once():
    records = FakeRecords()
    turn = dialog.start(records, call_sid="CA1", caller=None, language="uk", may_record=True)
    # After the welcome and the operator hint (operators are set up in FakeRecords).
    assert said(turn)[:4] == ["welcome", "operator_hint", "recording_notice", "language_option"]
    heard = list(said(turn))
    # A wrong key asks the language again, without the notice; nor does any later question repeat it.
    turn = dialog.handle(records, turn.state, keys("9"))
    assert asked(turn) == "language"
    heard += said(turn)
    for event in (SILENCE, keys("1")):
        turn = dialog.handle(records, turn.state, event)
        heard += said(turn)
    assert heard.count("recording_notice") == 1


def test_no_notice_where_nothing_is_recorded():
    turn = dialog.start(FakeRecords(), call_sid="CA1", caller=None, language="ro")
    assert "recording_notice" not in said(turn)


def test_a_reminder_call_says_it_after_the_reminder():
    turn = dialog.start_reminder(FakeRecords(), call_sid="CA1", callee="+37369000001", language="ru",
                                 account_id=10, may_record=True)
    assert said(turn) == ["reminder_call", "recording_notice"]
    assert "recording_notice" not in said(dialog.start_reminder(FakeRecords(), call_sid="CA1", callee="+37369000001",
                                                                language="ru", account_id=10))
