"""The pure dialog engine, step by step, with a fake ``Records`` (no Flask, Twilio, Vosk or database)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal


from ivr import dialog
from ivr.dialog import Ask, Event, Hangup, Hours, NoteRefusal, Outcome, ReportFailedIdentification, SaveReading, Say, SpeechInput, Step, Transfer
from ivr.dialog.ports import AccountInfo, MeterInfo, RegionInfo, ValueVerdict, Window


@dataclass
class FakeRecords:
    """A fake of the records port: two regions, a few accounts, an in-memory list of saved readings.
    The engine only reads it; ``apply`` writes a turn's effects into it, as the turn service would."""

    operator: str | None = None
    phones: dict = field(default_factory=dict)
    saved: list = field(default_factory=list)
    failed_ids: list = field(default_factory=list)
    failed_utterances: list = field(default_factory=list)
    regions_list: list = field(default_factory=lambda: [RegionInfo(1, 1, "North"), RegionInfo(2, 2, "South")])
    accounts: dict = field(default_factory=lambda: {
        (1, "1001"): AccountInfo(10, 1, "1001", True),
        (1, "12*34"): AccountInfo(11, 1, "1234", True),
        (2, "2002"): AccountInfo(20, 2, "2002", True),
        (1, "9999"): AccountInfo(99, 1, "9999", False),
    })
    meter_table: dict = field(default_factory=lambda: {
        10: [MeterInfo(100, "electricity", "0001", ("total",))],
        11: [MeterInfo(110, "electricity", "0002", ("day", "night")), MeterInfo(111, "gas", "0003", ("total",))],
        20: [MeterInfo(200, "cold_water", "0004", ("total",))],
    })
    limits: dict = field(default_factory=lambda: {"previous": Decimal("500")})
    refused: list = field(default_factory=list)
    probe_limit: int = 5
    replace_reason: str | None = None
    caller_regions: dict = field(default_factory=dict)  # phone -> RegionInfo the caller ID suggests
    hours: Hours | None = Hours("12345", "08:00", "17:00")  # None: no operator line at all
    operator_regions: list = field(default_factory=list)  # the regions operators were looked up for
    windows: dict = field(default_factory=dict)  # meter id -> Window (absent: open, this month)
    read: set = field(default_factory=set)  # meter ids with a reading of every register this period
    given: set = field(default_factory=set)  # (meter id, register) with a reading this period
    last: dict = field(default_factory=dict)  # (meter id, register) -> LastReading
    serials: dict = field(default_factory=dict)  # (region id, serial digits) -> AccountInfo (companies)
    org_name_regions: set = field(default_factory=set)  # regions that ask a company's caller its name

    def regions(self):
        return list(self.regions_list)

    def region_for_caller(self, phone):
        return self.caller_regions.get(phone)

    def accounts_for_phone(self, phone):
        return self.phones.get(phone, [])

    def find_account(self, region_id, typed):
        return self.accounts.get((region_id, typed))

    def account(self, account_id):
        return next((a for a in self.accounts.values() if a.id == account_id), None)

    def meters(self, account_id):
        return self.meter_table.get(account_id, [])

    def window(self, meter_id):
        return self.windows.get(meter_id, Window(True, dt.date(2026, 3, 1), dt.date(2026, 3, 31)))

    def given_this_period(self, account_id):
        meters = self.meters(account_id)
        return {(m.id, r) for m in meters if m.id in self.read for r in m.registers} | \
            {(m.id, r) for m in meters for r in m.registers if (m.id, r) in self.given}

    def on_file(self, account_id, phone):
        return any(a.id == account_id for a in self.phones.get(phone, [])) if phone else False

    def last_reading(self, meter_id, register):
        return self.last.get((meter_id, register))  # the engine asks only for a caller on file (asserted)

    def find_account_by_serial(self, region_id, typed):
        return self.serials.get((region_id, typed))

    def asks_org_name(self, region_id):
        return region_id in self.org_name_regions

    def judge_value(self, meter_id, register, value):
        """The intake policy in miniature: lower than ``previous`` is refused and counted; past the
        probe limit (a value given again not counted twice) every value is kept quietly for review;
        ``replace_reason`` keeps a passing value for review."""
        counted = [r for r in self.refused if r[:3] != (meter_id, register, value)]
        if len(counted) >= self.probe_limit:
            return ValueVerdict("review", "repeated_refusals", quiet=True)
        if Decimal(value) < self.limits["previous"]:
            return ValueVerdict("refused", "below_previous", quiet=True, reveals=True)
        if self.replace_reason:
            return ValueVerdict("review", self.replace_reason, quiet=True, reveals=True)
        return ValueVerdict("accepted", reveals=True)

    def apply(self, effects):
        for e in effects:
            if isinstance(e, SaveReading):
                self.saved.append((e.meter_id, e.register, e.value, e.status, e.reason, e.key))
                self.refused = [r for r in self.refused if r != (e.meter_id, e.register, e.value, "not_confirmed")]
            elif isinstance(e, NoteRefusal):
                self.refused.append((e.meter_id, e.register, e.value, e.code))
            elif isinstance(e, ReportFailedIdentification):
                self.failed_ids.append((e.region_id, list(e.attempts)))
                self.failed_utterances.append(list(e.utterances))
            else:
                raise AssertionError(f"unknown effect {e!r}")

    def operator_number(self, region_id):
        self.operator_regions.append(region_id)
        return self.operator

    def operator_hours(self, region_id):
        return self.hours


def keys(k):
    return Event("digits", digits=k)


SILENCE = Event("timeout")


def asked(turn) -> str | None:
    last = turn.actions[-1]
    return last.step if isinstance(last, Ask) else None


def said(turn) -> list[str]:
    out = []
    for a in turn.actions:
        if isinstance(a, Say):
            out.append(a.key)
        elif isinstance(a, Ask):
            out.extend(p.key for p in a.prompts)
    return out


class Caller:
    """Drives the engine like a transport: keeps the state between turns."""

    def __init__(self, records, caller="+37360000001", lang="ro"):
        self.records = records
        self.turn = dialog.start(records, call_sid="CA1", caller=caller, language=lang)

    def __call__(self, event):
        self.turn = dialog.handle(self.records, self.turn.state, event)
        self.records.apply(self.turn.effects)
        return self.turn

    @property
    def state(self):
        return self.turn.state


def test_start_asks_language_in_every_language():
    turn = dialog.start(FakeRecords(), call_sid="CA1", caller=None, language="ru")
    ask = turn.actions[-1]
    assert ask.step == "language"
    assert [p.lang for p in ask.prompts if p.key == "language_option"] == ["ro", "ru", "uk", "en"]
    assert turn.state.lang == "ru"


def test_language_key_changes_language_and_silence_keeps_default():
    c = Caller(FakeRecords(), lang="ru")
    assert asked(c(keys("4"))) == "region"
    assert c.state.lang == "en"
    c = Caller(FakeRecords(), lang="uk")
    c(SILENCE)
    assert c.state.lang == "uk" and c.state.step == "region"


def test_language_invalid_key_reasks_then_keeps_default():
    c = Caller(FakeRecords(), lang="ru")
    t = c(keys("7"))
    assert asked(t) == "language" and "reason_invalid_choice" in said(t)
    c(keys("8"))
    t = c(keys("9"))
    assert asked(t) == "region" and c.state.lang == "ru"


def test_region_skipped_when_only_one_region():
    records = FakeRecords(regions_list=[RegionInfo(1, 1, "Only")])
    c = Caller(records)
    assert asked(c(keys("1"))) == "account"
    assert c.state.region_id == 1


def test_region_menu_and_invalid_choice():
    c = Caller(FakeRecords())
    c(keys("1"))
    t = c(keys("5"))
    assert asked(t) == "region" and "reason_invalid_choice" in said(t)
    assert asked(c(keys("2"))) == "account"
    assert c.state.region_id == 2


def test_single_meter_single_register_full_path():
    r = FakeRecords()
    c = Caller(r)
    c(keys("1")); c(keys("1"))
    t = c(keys("1001#"))
    assert asked(t) == "value"
    t = c(keys("1234*5#"))
    assert asked(t) == "confirm"
    read_back = t.actions[-1].prompts[0]
    assert read_back.key == "read_back" and read_back.params["value"].value == "1234.5"
    t = c(keys("1"))
    assert "saved" in said(t) and asked(t) == "next"
    assert r.saved == [(100, "total", "1234.5", "accepted", None, r.saved[0][5])]
    t = c(keys("3"))
    assert isinstance(t.actions[-1], Hangup) and "saved_count" in said(t)
    assert c.state.outcome == "completed"


def test_separator_account_two_meters_and_two_registers():
    r = FakeRecords()
    c = Caller(r)
    c(keys("1")); c(keys("1"))
    t = c(keys("12*34#"))
    assert asked(t) == "meter"
    meter_options = [p for p in t.actions[-1].prompts if p.key == "meter_option"]
    assert [p.params["key"] for p in meter_options] == [1, 2]
    assert asked(c(keys("1"))) == "register"
    t = c(keys("2"))
    assert asked(t) == "value" and c.state.register == "night"
    c(keys("700#"))
    t = c(keys("1"))
    # the other register follows at once
    assert asked(t) == "value" and c.state.register == "day"
    c(keys("800#"))
    t = c(keys("1"))
    assert asked(t) == "next" and "next_meter" in said(t)
    assert asked(c(keys("1"))) == "meter"
    c(keys("2"))
    c(keys("900#"))
    c(keys("1"))
    assert [(m, reg, v) for m, reg, v, *_ in r.saved] == [(110, "night", "700"), (110, "day", "800"), (111, "total", "900")]
    assert len({s[5] for s in r.saved}) == 3  # a distinct idempotency key per write


def test_a_tariff_given_earlier_this_period_is_not_asked_for_again():
    """Night was given in an earlier call: the caller picks the day tariff, and after it the robot
    goes on to what next, not to the night reading again."""
    r = FakeRecords(given={(110, "night")})
    c = Caller(r)
    c(keys("1")); c(keys("1"))
    c(keys("12*34#"))
    assert asked(c(keys("1"))) == "register"  # still offered: the caller may be correcting night
    c(keys("1"))
    c(keys("800#"))
    t = c(keys("1"))
    assert "saved" in said(t) and asked(t) == "next"
    assert [(m, reg, v) for m, reg, v, *_ in r.saved] == [(110, "day", "800")]


def test_correcting_a_tariff_given_earlier_does_not_ask_for_the_other_given_one():
    r = FakeRecords(read={110})  # both tariffs given earlier this period
    c = Caller(r)
    c(keys("1")); c(keys("1"))
    c(keys("12*34#"))
    c(keys("1"))
    c(keys("2"))  # night, corrected
    c(keys("750#"))
    t = c(keys("1"))
    assert asked(t) == "next" and [(m, reg, v) for m, reg, v, *_ in r.saved] == [(110, "night", "750")]


def test_the_other_tariff_without_a_reading_this_period_follows_at_once():
    r = FakeRecords(given={(111, "total")})  # another meter's reading changes nothing here
    c = Caller(r)
    c(keys("1")); c(keys("1"))
    c(keys("12*34#"))
    c(keys("1"))
    c(keys("1"))
    c(keys("800#"))
    t = c(keys("1"))
    assert asked(t) == "value" and c.state.register == "night"


def test_another_account_from_next_menu():
    r = FakeRecords()
    c = Caller(r)
    c(keys("1")); c(keys("1")); c(keys("1001#")); c(keys("600#")); c(keys("1"))
    assert asked(c(keys("2"))) == "account"
    assert asked(c(keys("1001#"))) == "value"


def test_account_not_found_three_times_after_hours_ends_politely():
    r = FakeRecords(operator=None)
    c = Caller(r)
    c(keys("1")); c(keys("1"))
    t = c(keys("5555#"))
    assert asked(t) == "account" and "reason_account_not_found" in said(t)
    c(keys("5556#"))
    t = c(keys("5557#"))
    assert isinstance(t.actions[-1], Hangup)
    assert said(t) == ["not_completed", "operator_hours", "nothing_saved", "goodbye"]
    assert Say("operator_hours", {"hours": Hours("12345", "08:00", "17:00")}) in t.actions
    assert r.failed_ids == [(1, ["5555", "5556", "5557"])]
    assert (c.state.outcome, c.state.end_reason) == (Outcome.GAVE_UP, "account:account_not_found")


def test_give_up_in_working_hours_transfers():
    r = FakeRecords(operator="+37322000111")
    c = Caller(r)
    c(keys("1"))
    c(SILENCE); c(SILENCE)
    t = c(SILENCE)
    assert t.actions[-1] == Transfer("+37322000111")
    assert c.state.step == Step.TRANSFERRED
    assert (c.state.outcome, c.state.end_reason) == (Outcome.TRANSFERRED, "region:no_input")


def test_inactive_account_is_refused():
    c = Caller(FakeRecords())
    c(keys("1")); c(keys("1"))
    t = c(keys("9999#"))
    assert "reason_account_inactive" in said(t) and asked(t) == "account"


def test_non_digit_and_too_long_input_reasks():
    c = Caller(FakeRecords())
    c(keys("1")); c(keys("1"))
    t = c(keys("x"))
    assert "reason_not_a_number" in said(t)
    t = c(keys("1" * 500 + "#"))
    assert "reason_not_a_number" in said(t) and asked(t) == "account"


def test_value_failing_rules_is_explained_then_kept_for_review_on_last_try():
    r = FakeRecords()
    c = Caller(r)
    c(keys("1")); c(keys("1")); c(keys("1001#"))
    t = c(keys("100#"))
    assert "reason_below_previous" in said(t) and asked(t) == "value"
    c(keys("101#"))
    t = c(keys("102#"))
    assert asked(t) == "confirm"
    t = c(keys("1"))
    # The same words as for any value kept for a check: nothing said about which way it is wrong.
    assert "will_be_checked" in said(t)
    assert r.saved[0][3:5] == ("pending_review", "below_previous")


def test_revealing_refusals_are_counted_and_past_the_limit_values_go_quietly_to_review():
    r = FakeRecords(probe_limit=2)
    c = Caller(r)
    c(keys("1")); c(keys("1")); c(keys("1001#"))
    c(keys("100#"))
    t = c(keys("9.99#"))
    assert "reason_below_previous" in said(t)
    assert r.refused == [(100, "total", "100", "below_previous"), (100, "total", "9.99", "below_previous")]
    # From then on, a value below the previous one or not: no direction, read back, kept for an
    # operator (this call and the next).
    for value in ("101", "700"):
        c = Caller(r)
        c(keys("1")); c(keys("1")); c(keys("1001#"))
        t = c(keys(f"{value}#"))
        assert asked(t) == "confirm" and not [k for k in said(t) if k.startswith("reason_")]
        t = c(keys("1"))
        assert "will_be_checked" in said(t) and "saved" not in said(t)
        assert r.saved[-1][2:5] == (value, "pending_review", "repeated_refusals")
    assert len(r.refused) == 2


def test_values_read_back_count_until_confirmed():
    r = FakeRecords(probe_limit=2)
    c = Caller(r)
    c(keys("1")); c(keys("1")); c(keys("1001#"))
    c(keys("600#"))
    assert r.refused == [(100, "total", "600", "not_confirmed")]
    c(keys("2"))  # dropped: it stays counted
    c(keys("610#"))
    c(keys("1"))  # confirmed and saved: no longer counted
    assert r.refused == [(100, "total", "600", "not_confirmed")]
    c = Caller(r)
    c(keys("1")); c(keys("1")); c(keys("1001#"))
    c(keys("620#"))  # read back, and the caller hangs up: counted
    c = Caller(r)
    c(keys("1")); c(keys("1")); c(keys("1001#"))
    t = c(keys("100#"))
    assert asked(t) == "confirm" and "reason_below_previous" not in said(t)


def test_replacing_someone_elses_reading_is_kept_for_review_with_a_neutral_prompt():
    r = FakeRecords(replace_reason="replaces_other_caller")
    c = Caller(r)
    c(keys("1")); c(keys("1")); c(keys("1001#")); c(keys("600#"))
    t = c(keys("1"))
    assert "will_be_checked" in said(t)
    assert r.saved[0][2:5] == ("600", "pending_review", "replaces_other_caller")


def test_confirm_no_always_asks_the_value_again():
    r = FakeRecords(operator=None)
    c = Caller(r)
    c(keys("1")); c(keys("1")); c(keys("1001#"))
    for value in ("600#", "601#", "602#", "603#"):
        c(keys(value))
        t = c(keys("2"))
        assert said(t) == ["ask_value"] and c.state.tries == 0
    c(keys("604#"))
    assert "saved" in said(c(keys("1")))
    assert [(s[2], s[3]) for s in r.saved] == [("604", "accepted")]


def test_decimal_forms_on_keypad():
    for typed, expected in (("12*5#", "12.5"), ("*5#", "0.5"), ("12*#", "12")):
        c = Caller(FakeRecords(limits={"previous": Decimal(0)}))
        c(keys("1")); c(keys("1")); c(keys("1001#"))
        t = c(keys(typed))
        assert asked(t) == "confirm", typed
        assert c.state.value == expected
    c = Caller(FakeRecords())
    c(keys("1")); c(keys("1")); c(keys("1001#"))
    assert "reason_not_a_number" in said(c(keys("1*2*3#")))


def test_known_caller_is_offered_account_without_name():
    r = FakeRecords(phones={"+37360000001": [AccountInfo(20, 2, "2002", True)]})
    c = Caller(r)
    t = c(keys("1"))
    assert asked(t) == "offer_account"
    offer = t.actions[-1].prompts[0]
    assert offer.params == {"tail": dialog.Digits("2002")}
    t = c(keys("1"))
    assert asked(t) == "value" and c.state.region_id == 2


def test_known_caller_may_choose_another_account():
    r = FakeRecords(phones={"+37360000001": [AccountInfo(20, 2, "2002", True)]})
    c = Caller(r)
    c(keys("1"))
    assert asked(c(keys("2"))) == "region"


def test_withheld_caller_works():
    c = Caller(FakeRecords(), caller=None)
    assert asked(c(keys("1"))) == "region"


def test_next_menu_silence_finishes():
    c = Caller(FakeRecords())
    c(keys("1")); c(keys("1")); c(keys("1001#")); c(keys("600#")); c(keys("1"))
    t = c(SILENCE)
    assert isinstance(t.actions[-1], Hangup) and c.state.outcome == "completed"


def test_late_event_after_end_changes_nothing():
    r = FakeRecords()
    c = Caller(r)
    c(keys("1")); c(keys("1")); c(keys("1001#")); c(keys("600#")); c(keys("1")); c(keys("3"))
    before = list(r.saved)
    t = c(keys("1"))
    assert isinstance(t.actions[-1], Hangup) and r.saved == before


def test_speech_events_drive_the_same_steps():
    r = FakeRecords()
    c = Caller(r)
    c(keys("1")); c(keys("1"))
    t = c(Event("speech", speech=SpeechInput("one zero zero one", value="1001", utterance_id=5)))
    assert asked(t) == "value"
    t = c(Event("speech", speech=SpeechInput("seven hundred", value="700", decision="confirm", utterance_id=6)))
    assert asked(t) == "confirm"
    t = c(Event("speech", speech=SpeechInput("yes", intent="yes", utterance_id=7)))
    assert r.saved[0][:4] == (100, "total", "700", "accepted")


def test_speech_review_decision_stores_pending_review():
    r = FakeRecords()
    c = Caller(r)
    c(keys("1")); c(keys("1")); c(keys("1001#"))
    c(Event("speech", speech=SpeechInput("seven hundred", value="700", decision="review", utterance_id=6)))
    t = c(keys("1"))
    assert "saved_for_review" in said(t)
    assert r.saved[0][3:5] == ("pending_review", "low_confidence")


def test_speech_retry_and_unknown_reasks():
    c = Caller(FakeRecords())
    c(keys("1")); c(keys("1")); c(keys("1001#"))
    t = c(Event("speech", speech=SpeechInput("[unk]", value="7", decision="retry", utterance_id=1)))
    assert "reason_not_understood" in said(t) and asked(t) == "value"
    t = c(Event("speech", speech=SpeechInput("[unk]", value=None, decision="retry", utterance_id=2)))
    assert "reason_not_understood" in said(t) and "reason_not_a_number" not in said(t)


def test_asking_for_operator_transfers():
    c = Caller(FakeRecords(operator="+1555"))
    t = c(Event("speech", speech=SpeechInput("operator", intent="operator")))
    assert t.actions[-1] == Transfer("+1555")


def test_state_is_json_serialisable():
    import json

    c = Caller(FakeRecords())
    for e in (keys("1"), keys("1"), keys("12*34#"), keys("1"), keys("1"), keys("700#")):
        c(e)
        data = json.loads(json.dumps(c.state.to_json()))
        assert dialog.CallState.from_json(data) == c.state


def test_unanswered_confirmation_keeps_value_for_review():
    r = FakeRecords(operator=None)
    c = Caller(r)
    c(keys("1")); c(keys("1")); c(keys("1001#"))
    c(keys("600#"))
    c(SILENCE); c(SILENCE)
    t = c(SILENCE)
    assert isinstance(t.actions[-1], Hangup)
    assert r.saved[0][:5] == (100, "total", "600", "pending_review", "not_confirmed")
    # told that an operator will check the value, not that the request failed
    assert said(t) == ["saved_for_review", "goodbye"]
    assert (c.state.outcome, c.state.end_reason) == (Outcome.GAVE_UP, "confirm:no_input")


def test_unconfirmed_value_after_saved_readings_counts_only_the_earlier_ones():
    r = FakeRecords(operator=None)
    c = Caller(r)
    c(keys("1")); c(keys("1")); c(keys("12*34#"))
    c(keys("2")); c(keys("900#")); c(keys("1"))  # gas saved
    c(keys("1")); c(keys("1")); c(keys("1")); c(keys("700#"))  # electricity, day: never confirmed
    c(keys("7")); c(keys("8"))
    t = c(keys("9"))
    assert said(t) == ["saved_for_review", "saved_count", "goodbye"]
    count = [a for a in t.actions if isinstance(a, Say) and a.key == "saved_count"][0]
    assert count.params == {"count": 1}
    assert [s[3:5] for s in r.saved] == [("accepted", None), ("pending_review", "not_confirmed")]


def test_unconfirmed_value_in_working_hours_goes_to_operator():
    r = FakeRecords(operator="+37322000111")
    c = Caller(r)
    c(keys("1")); c(keys("1")); c(keys("1001#")); c(keys("600#"))
    c(SILENCE); c(SILENCE)
    t = c(SILENCE)
    assert said(t) == ["transfer"] and t.actions[-1] == Transfer("+37322000111")
    assert r.saved[0][3:5] == ("pending_review", "not_confirmed")


def test_typing_at_a_speech_step_switches_to_keypad_only():
    c = Caller(FakeRecords())
    c(keys("1"))
    t = c(keys("1"))  # a menu key does not change how numbers are asked
    assert t.actions[-1].speech == "digits"
    t = c(keys("1001#"))
    assert asked(t) == "value" and t.actions[-1].speech is None
    assert c.state.keypad_only is True
