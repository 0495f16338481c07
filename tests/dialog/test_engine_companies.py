"""A company's many meters: picked by the last digits of their serials (a clash asks for more), or
all in turn (every meter still without a reading this period, one summary at the end); a company's
caller may identify by a meter's full serial number."""
from __future__ import annotations

from ivr.dialog import Say
from ivr.dialog.engine import MAX_TURNS
from ivr.dialog.ports import AccountInfo, MeterInfo

from .test_engine import Caller, FakeRecords, SaveReading, asked, keys, said

COMPANY = AccountInfo(30, 1, "3030", True, "company")
METERS = [MeterInfo(3000 + i, "electricity", f"{i:04d}"[-4:], ("total",), serial_digits=f"77{i:04d}") for i in range(40)]


def records(**kwargs):
    rec = FakeRecords(**kwargs)
    rec.accounts[(1, "3030")] = COMPANY
    rec.meter_table[30] = list(METERS)
    rec.serials[(1, "770017")] = COMPANY
    return rec


def company_call(rec):
    call = Caller(rec)
    call(keys("1")); call(keys("1"))
    turn = call(keys("3030#"))
    assert asked(turn) == "meter_serial" and "meter_option" not in said(turn)
    return call


def test_a_meter_by_the_last_digits_of_its_serial():
    call = company_call(records())
    turn = call(keys("17#"))
    assert said(turn)[0] == "meter_named" and turn.actions[0].params["tail"].value == "0017"
    assert asked(turn) == "value" and call.state.meter == 17
    call(keys("600#")); call(keys("1"))
    assert call.records.saved[0][0] == 3017


def test_a_clash_asks_for_more_digits_without_using_a_try():
    call = company_call(records())
    turn = call(keys("7#"))  # 770007, 770017, 770027, 770037
    assert said(turn)[0] == "reason_serial_ambiguous" and asked(turn) == "meter_serial"
    turn = call(keys("7#"))
    turn = call(keys("7#"))
    assert asked(turn) == "meter_serial" and call.state.tries == 0
    assert call(keys("37#")) and call.state.meter == 37


def test_no_meter_ending_so_is_a_failed_try():
    call = company_call(records())
    turn = call(keys("99#"))
    assert said(turn)[0] == "reason_serial_not_found" and call.state.tries == 1


def test_a_whole_serial_that_ends_a_longer_one_still_names_its_meter():
    rec = records()
    rec.meter_table[30] = [MeterInfo(1, "gas", "0123", ("total",), serial_digits="123"),
                           MeterInfo(2, "gas", "0123", ("total",), serial_digits="90123")]
    call = company_call(rec)
    call(keys("123#"))
    assert call.state.meter == 0


def test_all_in_turn_walks_the_meters_without_a_reading_with_a_skip_and_one_summary():
    rec = records(read={3000 + i for i in range(35)})  # five meters still to read
    call = company_call(rec)
    turn = call(keys("*"))
    assert turn.actions[0] == Say("walk_start", {"count": 5}) and said(turn)[1] == "meter_named"
    assert asked(turn) == "value" and call.state.meter == 35
    for n in range(5):
        if n == 2:
            turn = call(keys("*#"))  # skipped
        else:
            call(keys("600#"))
            turn = call(keys("1"))
            assert said(turn)[0] == "saved"
        if n < 4:
            assert "meter_named" in said(turn) and asked(turn) == "value" and call.state.meter == 36 + n
    assert Say("walk_summary", {"count": 4, "skipped": 1}) in turn.actions and asked(turn) == "next"
    assert [s[0] for s in rec.saved] == [3035, 3036, 3038, 3039]
    assert said(turn).count("walk_summary") == 1 and "saved_count" not in said(turn)


def test_all_in_turn_asks_a_two_tariff_meter_only_for_the_tariff_without_a_reading():
    two = [MeterInfo(3100, "electricity", "0100", ("day", "night"), serial_digits="770100"),
           MeterInfo(3101, "electricity", "0101", ("day", "night"), serial_digits="770101")]
    rec = records(read={m.id for m in METERS}, given={(3100, "day")})
    rec.meter_table[30] = [*METERS, *two]
    call = company_call(rec)
    turn = call(keys("*"))
    assert turn.actions[0] == Say("walk_start", {"count": 2})
    assert asked(turn) == "value" and call.state.meter == 40 and call.state.register == "night"
    call(keys("600#"))
    turn = call(keys("1"))  # on to the next meter, not to 3100's day reading
    assert "meter_named" in said(turn) and call.state.meter == 41 and call.state.register == "day"
    call(keys("700#"))
    turn = call(keys("1"))
    assert asked(turn) == "value" and call.state.register == "night"
    call(keys("800#"))
    turn = call(keys("1"))
    assert Say("walk_summary", {"count": 3, "skipped": 0}) in turn.actions
    assert [(m, reg) for m, reg, *_ in rec.saved] == [(3100, "night"), (3101, "day"), (3101, "night")]


def test_all_in_turn_with_every_meter_read_says_so():
    call = company_call(records(read={m.id for m in METERS}))
    turn = call(keys("*"))
    assert said(turn)[0] == "walk_none" and asked(turn) == "next"


def test_all_forty_in_turn_fit_the_call():
    call = company_call(records())
    call(keys("*"))
    for _ in range(40):
        call(keys("600#"))
        turn = call(keys("1"))
    assert len(call.records.saved) == 40 and asked(turn) == "next"
    assert call.state.seq > MAX_TURNS / 2 and not call.state.over
    turn = call(keys("1"))  # another meter: by serial again
    assert asked(turn) == "meter_serial"


def test_a_company_caller_identifies_by_a_meters_full_serial():
    rec = records()
    call = Caller(rec)
    call(keys("1")); call(keys("1"))
    turn = call(keys("770017#"))
    assert asked(turn) == "meter_serial" and call.state.account.id == 30


def test_a_household_with_few_meters_keeps_the_menu():
    call = Caller(records())
    call(keys("1")); call(keys("1"))
    assert asked(call(keys("12*34#"))) == "meter"


def test_more_than_nine_meters_of_a_person_are_picked_by_serial_too():
    rec = records()
    rec.accounts[(1, "3030")] = AccountInfo(30, 1, "3030", True, "person")
    company_call(rec)


def test_digits_heard_unsurely_pick_no_meter():
    from ivr.dialog import Event, SpeechInput
    call = company_call(records())
    turn = call(Event("speech", speech=SpeechInput("one seven", value="17", decision="confirm")))
    assert said(turn)[0] == "reason_not_understood" and asked(turn) == "meter_serial" and call.state.meter is None
    turn = call(Event("speech", speech=SpeechInput("one seven", value="17", decision="accept")))
    assert call.state.meter == 17


def test_walk_after_walk_still_ends():
    from ivr.dialog.engine import MAX_EXTRA_TURNS
    call = company_call(records())
    while not call.state.over:
        call(keys("*"))  # start a walk, or skip its meter
        if call.state.step.value == "next":
            call(keys("1"))
    assert call.state.seq <= MAX_TURNS + MAX_EXTRA_TURNS + 1 and call.state.outcome is not None
