"""A caller on file for the account may hear a meter's last accepted reading before giving a new
one: one key, told once per call. Anybody else is neither told of it nor heard asking for it: the
key is the value 8 for them."""
from __future__ import annotations

import datetime as dt

from ivr.dialog import Day, Digits, Say
from ivr.dialog.ports import AccountInfo, LastReading

from .test_engine import Caller, FakeRecords, asked, keys, said

KNOWN = "+37369000001"
LAST = {(100, "total"): LastReading("1234.5", dt.date(2026, 2, 28)),
        (110, "day"): LastReading("700", dt.date(2026, 2, 27)), (111, "total"): LastReading("900", dt.date(2026, 2, 26))}


def records():
    accounts = FakeRecords().accounts
    return FakeRecords(phones={KNOWN: [accounts[(1, "1001")], accounts[(1, "12*34")]]}, last=dict(LAST))


def test_a_caller_on_file_is_told_the_key_once_and_hears_the_reading_and_its_day():
    call = Caller(records(), caller=KNOWN)
    call(keys("1"))
    turn = call(keys("1"))  # the account on file
    assert asked(turn) == "value" and said(turn)[-1] == "last_reading_offer"
    turn = call(keys("8"))
    assert turn.actions[0] == Say("last_reading", {"date": Day(dt.date(2026, 2, 28)), "value": Digits("1234.5")})
    assert asked(turn) == "value" and "last_reading_offer" not in said(turn) and call.state.tries == 0
    # Said once for the meter: 8 again is a value (here refused as lower than the previous one).
    assert "reason_below_previous" in said(call(keys("8#")))
    call(keys("1300#"))
    assert "saved" in said(call(keys("1")))


def test_the_offer_is_made_once_per_call_and_the_key_works_for_each_meter():
    rec = records()
    rec.phones[KNOWN] = [rec.accounts[(1, "12*34")]]
    call = Caller(rec, caller=KNOWN)
    call(keys("1")); call(keys("1"))
    turn = call(keys("1"))  # electricity, day/night
    turn = call(keys("1"))  # day
    assert said(turn)[-1] == "last_reading_offer"
    call(keys("800#")); call(keys("1"))  # day saved; night asked
    assert "last_reading_offer" not in said(call.turn)
    turn = call(keys("8"))
    assert said(turn)[0] == "no_last_reading"  # the night register has none
    call(keys("800#")); call(keys("1")); call(keys("1"))
    turn = call(keys("2"))  # gas
    assert "last_reading_offer" not in said(turn)
    assert call(keys("8")).actions[0] == Say("last_reading", {"date": Day(dt.date(2026, 2, 26)), "value": Digits("900")})


def test_a_caller_not_on_file_is_not_told_and_eight_is_a_value():
    for caller in ("+37369999999", None):
        rec = records()
        call = Caller(rec, caller=caller)
        call(keys("1")); call(keys("1"))
        turn = call(keys("1001#"))
        assert asked(turn) == "value" and "last_reading_offer" not in said(turn)
        turn = call(keys("8"))
        assert "last_reading" not in said(turn) and said(turn)[0] == "reason_below_previous"
        assert not call.state.last_heard


def test_a_caller_on_file_for_another_account_is_not_told():
    rec = records()
    rec.phones[KNOWN] = [AccountInfo(20, 2, "2002", True)]
    call = Caller(rec, caller=KNOWN)
    call(keys("1")); call(keys("2"))  # not the offered account
    call(keys("1"))
    turn = call(keys("1001#"))
    assert "last_reading_offer" not in said(turn)
    assert said(call(keys("8")))[0] == "reason_below_previous"
