"""A meter whose submission window is closed: the caller hears when the window a reading given now
counts in opens and closes, once per window in a call, and still gives the reading."""
from __future__ import annotations

import datetime as dt

from ivr.dialog import Day, Say
from ivr.dialog.ports import MeterInfo, Window

from .test_engine import Caller, FakeRecords, asked, keys, said

CLOSED = Window(False, dt.date(2026, 3, 20), dt.date(2026, 4, 5))


def closed_notice(turn):
    return [p for a in turn.actions for p in ((a,) if isinstance(a, Say) else getattr(a, "prompts", ()))
            if p.key == "window_closed"]


def test_a_closed_window_is_said_with_its_days_before_the_value_question():
    records = FakeRecords(windows={100: CLOSED})
    call = Caller(records)
    call(keys("1")); call(keys("1"))
    turn = call(keys("1001#"))
    assert asked(turn) == "value"
    assert closed_notice(turn) == [Say("window_closed", {"opens": Day(dt.date(2026, 3, 20)),
                                                         "closes": Day(dt.date(2026, 4, 5))})]
    assert said(turn).index("window_closed") < said(turn).index("ask_value")
    call(keys("600#"))
    assert "saved" in said(call(keys("1")))  # the reading is still taken (for that period)


def test_an_open_window_says_nothing():
    call = Caller(FakeRecords())
    call(keys("1")); call(keys("1"))
    assert "window_closed" not in said(call(keys("1001#")))


def test_one_window_is_said_once_per_call_another_one_again():
    records = FakeRecords(windows={110: CLOSED, 111: CLOSED})
    call = Caller(records)
    call(keys("1")); call(keys("1")); call(keys("12*34#"))
    assert closed_notice(call(keys("1")))  # the electricity meter: said
    call(keys("1")); call(keys("600#")); call(keys("1"))
    call(keys("600#")); call(keys("1"))
    assert not closed_notice(call(keys("1")))  # the same window again (gas): not said twice
    assert call.state.to_json()["windows_told"] == ["2026-03-20/2026-04-05"]


def test_another_window_is_said_too():
    records = FakeRecords(windows={110: CLOSED, 111: Window(False, dt.date(2026, 3, 25), dt.date(2026, 3, 28))})
    call = Caller(records)
    call(keys("1")); call(keys("1")); call(keys("12*34#"))
    assert closed_notice(call(keys("2")))  # gas
    call(keys("600#")); call(keys("1")); call(keys("1"))
    assert closed_notice(call(keys("1")))  # electricity: another window
    assert call.state.windows_told == ["2026-03-25/2026-03-28", "2026-03-20/2026-04-05"]


def test_a_single_meter_account_hears_it_right_after_the_account():
    records = FakeRecords(windows={200: CLOSED}, meter_table={20: [MeterInfo(200, "cold_water", "0004", ("total",))]})
    call = Caller(records)
    call(keys("1")); call(keys("2"))
    assert closed_notice(call(keys("2002#")))
