"""The region step of the pure engine: names in the call's language, the two-digit menu, the
region the caller ID suggests (with one key to change it), and no region to offer."""
from __future__ import annotations

from ivr import dialog
from ivr.dialog import Ask, Digits, Hangup, Say, Transfer
from ivr.dialog.engine import CHANGE_REGION_KEY
from ivr.dialog.ports import RegionInfo

from .test_engine import SILENCE, Caller, FakeRecords, asked, keys, said

NORTH = RegionInfo(1, 1, "North", {"ru": "Север", "uk": "Північ"})
SOUTH = RegionInfo(2, 2, "South", {"ru": "Юг"})


def _options(turn) -> list[dict]:
    return [p.params for p in turn.actions[-1].prompts if p.key.startswith("region_option")]


def test_region_names_in_the_call_language_with_fallback():
    records = FakeRecords(regions_list=[NORTH, SOUTH])
    c = Caller(records, lang="uk")
    t = c(keys("3"))
    assert [o["name"] for o in _options(t)] == ["Північ", "South"]
    c = Caller(records, lang="en")
    assert [o["name"] for o in _options(c(keys("4")))] == ["North", "South"]
    assert [o["name"] for o in _options(Caller(records, lang="ru")(keys("2")))] == ["Север", "Юг"]


def test_single_digit_menu_is_one_key_with_speech():
    t = Caller(FakeRecords(regions_list=[NORTH, SOUTH]))(keys("4"))
    ask = t.actions[-1]
    assert (ask.expect, ask.max_digits, ask.speech) == ("choice", 1, "menu")
    assert "region_two_digits" not in said(t)
    assert [o["key"] for o in _options(t)] == [1, 2]


def test_keys_above_nine_ask_for_two_digits_and_say_so():
    regions = [RegionInfo(i, k, f"R{k}") for i, k in enumerate((1, 5, 12), start=1)]
    c = Caller(FakeRecords(regions_list=regions))
    t = c(keys("4"))
    ask = t.actions[-1]
    assert said(t)[:2] == ["ask_region", "region_two_digits"]
    assert (ask.expect, ask.max_digits) == ("choice", 2)
    assert [o["keys"] for o in _options(t)] == [Digits("01"), Digits("05"), Digits("12")]
    assert asked(c(keys("12"))) == "account" and c.state.region_id == 3
    c = Caller(FakeRecords(regions_list=regions))
    c(keys("4"))
    assert asked(c(keys("05"))) == "account" and c.state.region_id == 2
    c = Caller(FakeRecords(regions_list=regions))
    c(keys("4"))
    t = c(keys("13"))
    assert asked(t) == "region" and "reason_invalid_choice" in said(t)


def test_caller_id_region_is_said_and_kept_on_silence_or_1():
    records = FakeRecords(regions_list=[NORTH, SOUTH], caller_regions={"+37322000001": SOUTH})
    for answer in (SILENCE, keys("1")):
        c = Caller(records, caller="+37322000001", lang="ru")
        t = c(keys("2"))
        assert asked(t) == "region_assumed" and c.state.region_id == 2
        prompt = t.actions[-1].prompts[0]
        assert prompt == Say("region_assumed", {"name": "Юг", "key": CHANGE_REGION_KEY})
        assert asked(c(answer)) == "account" and c.state.region_id == 2
    c = Caller(records, caller="+37322000001")
    c(keys("4"))
    assert asked(c(keys("1"))) == "account"
    c(keys("2002#"))
    assert c.state.account.id == 20


def test_change_key_opens_the_region_menu():
    records = FakeRecords(regions_list=[NORTH, SOUTH], caller_regions={"+37322000001": SOUTH})
    c = Caller(records, caller="+37322000001")
    c(keys("4"))
    t = c(keys(CHANGE_REGION_KEY))
    assert asked(t) == "region" and c.state.region_id is None
    c(keys("1"))
    assert c.state.region_id == 1 and c.state.step == "account"


def test_a_wrong_key_at_the_assumed_region_is_retried_then_given_up():
    records = FakeRecords(regions_list=[NORTH, SOUTH], caller_regions={"+37322000001": SOUTH},
                          operator="+37322999999")
    c = Caller(records, caller="+37322000001")
    c(keys("4"))
    t = c(keys("5"))
    assert asked(t) == "region_assumed" and said(t)[0] == "reason_invalid_choice"
    c(keys("7"))
    t = c(keys("8"))
    assert isinstance(t.actions[-1], Transfer) and (c.state.outcome, c.state.end_reason) == ("transferred", "region_assumed:invalid_choice")


def test_a_suggested_region_not_offered_is_ignored():
    hidden = RegionInfo(9, 9, "Hidden")
    records = FakeRecords(regions_list=[NORTH, SOUTH], caller_regions={"+37322000001": hidden})
    c = Caller(records, caller="+37322000001")
    assert asked(c(keys("4"))) == "region"


def test_the_account_on_file_comes_before_the_caller_id_region():
    from ivr.dialog.ports import AccountInfo

    account = AccountInfo(10, 1, "1001", True)
    records = FakeRecords(regions_list=[NORTH, SOUTH], phones={"+37322000001": [account]},
                          caller_regions={"+37322000001": SOUTH})
    c = Caller(records, caller="+37322000001")
    assert asked(c(keys("4"))) == "offer_account"
    assert asked(c(keys("2"))) == "region_assumed"  # another account: the caller ID still helps


def test_no_region_to_offer_transfers_or_ends_politely():
    records = FakeRecords(regions_list=[], operator="+37322999999")
    c = Caller(records)
    t = c(keys("4"))
    assert t.actions == [Say("transfer"), Transfer("+37322999999")]
    assert (c.state.outcome, c.state.end_reason) == ("transferred", "language:no_regions")
    assert c.state.step == "transferred"
    c = Caller(FakeRecords(regions_list=[]))
    t = c(keys("4"))
    assert t.actions == [Say("service_not_ready"), Say("goodbye"), Hangup()]
    assert c.state.step == "ended" and not any(isinstance(a, Ask) for a in t.actions)
    assert (c.state.outcome, c.state.end_reason) == ("service_not_ready", None)


def test_fallback_reasks_the_assumed_region():
    records = FakeRecords(regions_list=[NORTH, SOUTH], caller_regions={"+37322000001": NORTH})
    c = Caller(records, caller="+37322000001", lang="uk")
    c(keys("3"))
    ask = dialog.engine.reask(records, c.state)
    assert ask.step == "region_assumed" and ask.prompts[0].params["name"] == "Північ"


def test_a_spoken_region_name_selects_it_and_the_question_offers_the_names():
    from ivr.dialog import Event, SpeechInput

    records = FakeRecords(regions_list=[NORTH, SOUTH, RegionInfo(3, 3, "East", {"ru": "Юг"})])
    c = Caller(records, lang="ru")
    t = c(keys("2"))
    assert t.actions[-1].phrases == ("Север", "Юг")
    assert dialog.engine.speech_phrases(records, c.state) == ("Север", "Юг")
    t = c(Event("speech", speech=SpeechInput(text="север", phrase="Север")))
    assert asked(t) == "account" and c.state.region_id == 1
    # Two regions called the same in this language: the name alone cannot choose.
    c = Caller(records, lang="ru")
    c(keys("2"))
    t = c(Event("speech", speech=SpeechInput(text="юг", phrase="Юг")))
    assert asked(t) == "region" and c.state.region_id is None
    assert dialog.engine.speech_phrases(records, c.state) == ("Север", "Юг")
    c(keys("3"))
    assert dialog.engine.speech_phrases(records, c.state) == ()
