"""A utility's own records on day one: import a hand-written CSV with two new regions, give them
keys and names per language with `ivr regions set`, and take readings by phone in English and
Russian. Also: the region a caller ID suggests (prefix, then geocoder) with one key to change it,
the two-digit menu, and a call when no region can be offered."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from ivr.cli import cli
from readings_store import service
from readings_store.db import transaction
from readings_store.importer import import_rows, read_csv
from readings_store.models import Call, Meter, Reading, Region
from readings_store.regions import create_region, describe, get_region

CSV = """region_code,account_number,holder_name,kind,phone,meter_serial,utility,registers,digits,decimals
ORH,5001,Ion Rusu,person,,ORH-EL-1,electricity,1,6,0
ORH,5002,Maria Ceban,person,+37369111222,ORH-WA-1,cold_water,1,5,3
CAH,7001-12,Олег Иванов,person,,CAH-EL-1,electricity,1,6,0
CAH,7002,SRL Lumina,company,,CAH-GA-1,gas,1,5,3
"""
NOT_ON_FILE = "+37360000000"  # Moldovan mobile: the geocoder says only "Moldova"


@pytest.fixture
def regions_cli(config, monkeypatch):
    monkeypatch.setenv("IVR_DATABASE_URL", config.database_url)
    runner = CliRunner()

    def run(*args):
        return runner.invoke(cli, ["regions", *args], catch_exceptions=False)

    return run


@pytest.fixture
def imported(sessions, regions_cli):
    """The CSV imported through the import API, then set up by an administrator with the CLI."""
    with transaction(sessions) as session:
        report = import_rows(session, read_csv(CSV))
        assert report.ok and report.accounts_created == 4, report.errors
        assert sorted(report.regions_created) == ["CAH", "ORH"]
    # Whatever keys the import gave (if any), the administrator decides them.
    for code in ("ORH", "CAH"):
        assert regions_cli("set", code, "--menu-key", "none").exit_code == 0
    steps = [
        ("ORH", "1", "Orhei", "Orhei", "Орхей", "Оргіїв", "Orhei"),
        ("CAH", "2", "Cahul", "Cahul", "Кагул", "Кагул", "Cahul"),
    ]
    for code, key, name, ro, ru, uk, en in steps:
        result = regions_cli("set", code, "--menu-key", key, "--name", name, "--name-ro", ro, "--name-ru", ru,
                             "--name-uk", uk, "--name-en", en, "--window", "all=1-end")
        assert result.exit_code == 0, result.output
        assert f"region {code} updated" in result.output


def _reading(db, serial):
    db.expire_all()
    return db.scalars(select(Reading).join(Meter).where(Meter.serial == serial)).one()


@pytest.mark.parametrize("lang_key, menu, chosen, account, serial", [
    ("4", ["Orhei, 1.", "Cahul, 2."], "2", "7001*12#", "CAH-EL-1"),
    ("2", ["Орхей — 1.", "Кагул — 2."], "1", "5001#", "ORH-EL-1"),
])
def test_imported_regions_take_readings_by_phone(imported, db, phone, lang_key, menu, chosen, account, serial):
    call = phone(caller=NOT_ON_FILE)
    call.start()
    prompt = call.press(lang_key)
    assert prompt.gather["action"].split("?")[0].endswith("/voice/step/region")
    assert all(option in prompt.texts for option in menu), prompt.texts
    prompt = call.press(chosen)
    assert "/voice/step/account" in prompt.gather["action"]
    prompt = call.press(account)
    assert "/voice/step/value" in prompt.gather["action"], prompt.texts
    prompt = call.press("1500#")
    assert "/voice/step/confirm" in prompt.gather["action"]
    prompt = call.press("1")
    reading = _reading(db, serial)
    assert reading.value == Decimal(1500) and reading.status == "accepted" and reading.channel == "phone_keypad"
    assert db.scalars(select(Call)).one().region_id == get_region(db, serial[:3]).id


def test_region_list_shows_every_setting(imported, regions_cli):
    result = regions_cli("list")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split() == ["KEY", "CODE", "NAME", "NAMES", "TIMEZONE", "DAYS", "HOURS", "OPERATOR", "PREFIXES",
                                "WINDOWS", "ORG", "NAME", "ACCOUNTS"]
    assert lines[1].startswith("1    ORH   Orhei") and "ru=Орхей; uk=Оргіїв" in lines[1]
    assert "all=1-end" in lines[1] and "08:00-17:00" in lines[1] and lines[1].endswith("2")


def test_prefix_assumes_the_region_and_one_key_changes_it(imported, db, phone, regions_cli):
    assert regions_cli("set", "ORH", "--prefixes", "+373235").exit_code == 0
    call = phone(caller="+37323512345")
    call.start()
    prompt = call.press("4")
    assert prompt.texts == ["It looks like you are calling from Orhei. To continue, press 1. "
                            "To choose another region, press 9."]
    prompt = call.press("9")
    assert "Cahul, 2." in prompt.texts
    call.press("2")
    call.press("7002#"); call.press("12*5#"); call.press("1")
    assert _reading(db, "CAH-GA-1").value == Decimal("12.5")

    # Pressing 1 (or nothing) keeps the assumed region; in Russian the name is said in Russian.
    call = phone(caller="+37323512345")
    call.start()
    prompt = call.press("2")
    assert prompt.texts[0].startswith("Судя по вашему номеру, вы звоните из региона Орхей.")
    prompt = call.press("")
    assert "/voice/step/account" in prompt.gather["action"]
    call.press("5001#"); call.press("42#"); call.press("1")
    assert _reading(db, "ORH-EL-1").value == Decimal(42)


def test_a_wrong_key_at_the_assumed_region_is_explained(imported, phone, regions_cli):
    assert regions_cli("set", "CAH", "--prefixes", "+373299").exit_code == 0
    call = phone(caller="+37329912345")
    call.start(); call.press("4")
    prompt = call.press("5")
    assert prompt.texts[0] == "That is not one of the options."
    assert "It looks like you are calling from Cahul." in prompt.texts[1]


def test_geocoder_place_assumes_the_region_without_a_prefix(imported, db, phone):
    assert all(not describe(r)["phone_prefixes"] for r in db.scalars(select(Region)))
    call = phone(caller="+37329912345")  # the geocoder says "Cahul"
    call.start()
    prompt = call.press("3")
    assert prompt.texts == ["Схоже, ви телефонуєте з регіону Кагул. Щоб продовжити, натисніть 1. "
                            "Щоб обрати інший регіон, натисніть 9."]
    prompt = call.press("1")
    assert "/voice/step/account" in prompt.gather["action"]
    call.press("7001*12#"); call.press("100#"); call.press("1")
    assert _reading(db, "CAH-EL-1").value == Decimal(100)


def test_more_than_nine_regions_ask_for_two_digits(db, phone):
    for key in range(1, 11):
        create_region(db, f"R{key}", f"Region {key}", menu_key=key, names={"ru": f"Регион {key}"})
    db.commit()
    call = phone(caller=NOT_ON_FILE)
    call.start()
    prompt = call.press("4")
    assert prompt.texts[:3] == ["Choose your region and press its number.",
                                "Each region has a two-digit number: press both digits.", "Region 1, 0 1."]
    assert "Region 10, 1 0." in prompt.texts
    assert prompt.gather["numDigits"] == "2"
    prompt = call.press("10")
    assert "/voice/step/account" in prompt.gather["action"]
    assert db.scalars(select(Call)).one().state["region_id"] == get_region(db, "R10").id

    call = phone(caller=NOT_ON_FILE)
    call.start()
    prompt = call.press("2")
    assert "Номер региона состоит из двух цифр: нажмите обе цифры." in prompt.texts
    assert "Регион 3 — 0 3." in prompt.texts
    prompt = call.press("03")
    assert "/voice/step/account" in prompt.gather["action"]


WEDNESDAY_NOON = dt.datetime(2027, 3, 3, 10, 0, tzinfo=dt.timezone.utc)  # 12:00 in Chișinău
SUNDAY_NOON = dt.datetime(2027, 3, 7, 10, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def imported_without_keys(sessions):
    """Regions straight from an import, none with a menu key yet: there is nothing to offer."""
    with transaction(sessions) as session:
        assert import_rows(session, read_csv(CSV)).ok
        for region in session.scalars(select(Region)):
            region.menu_key = None


def test_no_region_to_offer_goes_to_the_operator_in_working_hours(imported_without_keys, db, phone, monkeypatch):
    monkeypatch.setattr(service, "utcnow", lambda: WEDNESDAY_NOON)
    call = phone(caller=NOT_ON_FILE)
    call.start()
    prompt = call.press("4")
    assert prompt.ended == "dial:+37322999999"
    assert prompt.texts == ["Please hold, we are connecting you to an operator."]
    c = db.scalars(select(Call)).one()
    assert (c.outcome, c.end_reason) == ("transferred", "language:no_regions")


@pytest.mark.parametrize("when", [SUNDAY_NOON, None], ids=["after-hours", "no-operator-number"])
def test_no_region_to_offer_says_the_service_is_being_set_up(imported_without_keys, db, phone, monkeypatch, config,
                                                             when):
    if when is None:
        monkeypatch.setattr(config, "operator_number", None)
        when = WEDNESDAY_NOON
    monkeypatch.setattr(service, "utcnow", lambda: when)
    call = phone(caller=NOT_ON_FILE)
    call.start()
    prompt = call.press("2")
    assert prompt.ended == "hangup"
    assert prompt.texts == ["Сервис ещё настраивается. Пожалуйста, позвоните позже.",
                            "Спасибо за звонок. До свидания."]
    c = db.scalars(select(Call)).one()
    assert (c.outcome, c.end_reason) == ("service_not_ready", None)


BAD_SETTINGS = [
    (["--menu-key", "2"], "menu key 2 is already used by region CAH (Cahul)"),
    (["--menu-key", "0"], "menu key must be from 1 to 99"),
    (["--menu-key", "x"], "menu key must be a whole number"),
    (["--code", "CAH"], "region code CAH is already used by region CAH (Cahul)"),
    (["--code", "O R H"], "region code 'O R H' may hold only letters"),
    (["--name", ""], "the region name must not be empty"),
    (["--timezone", "Mars/Olympus"], "timezone 'Mars/Olympus' is not a known time zone"),
    (["--work-days", "12389"], "working days must be ISO weekday digits"),
    (["--hours", "18:00-09:00"], "working hours must start before they end"),
    (["--hours", "9-18"], "must be a time of day like 08:00"),
    (["--operator", "+37322"], "operator number '+37322' is not a valid phone number in E.164 form"),
    (["--operator", "022123456"], "is not a valid phone number in E.164 form"),
    (["--prefixes", "37322"], "phone prefix '37322' must be + and 1-15 digits"),
    (["--prefixes", "+999"], "phone prefix +999 does not begin with a country calling code"),
    (["--window", "water=25-40"], "a window day must be from 1 to 31"),
    (["--window", "water"], "a window is written utility=start-end"),
    (["--window", "steam=1-5"], "utility 'steam' is not one of"),
]


@pytest.mark.parametrize("args, message", BAD_SETTINGS, ids=[m for _, m in BAD_SETTINGS])
def test_every_bad_setting_via_the_cli_is_one_clear_line_and_changes_nothing(imported, db, regions_cli, args,
                                                                             message):
    before = describe(get_region(db, "ORH"))
    # A good setting given with the bad one is not applied either.
    result = regions_cli("set", "ORH", "--name-en", "Orhei town", *args)
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and result.output.startswith("Error: ")
    assert message in result.output and result.output.rstrip().endswith("nothing was changed")
    db.expire_all()
    assert describe(get_region(db, "ORH")) == before


def test_cli_add_set_and_remove(imported, db, regions_cli):
    result = regions_cli("add", "UNG", "--name", "Ungheni", "--name-ru", "Унгены", "--menu-key", "3",
                         "--prefixes", "+373236", "--operator", "+37323612345", "--hours", "09:00-18:00",
                         "--work-days", "123456", "--timezone", "Europe/Chisinau",
                         "--window", "electricity=15-end", "--window", "water=20-25")
    assert result.exit_code == 0 and "region UNG added with menu key 3" in result.output
    db.expire_all()
    assert describe(get_region(db, "UNG")) == {
        "code": "UNG", "name": "Ungheni", "names": {"ru": "Унгены"}, "menu_key": 3, "timezone": "Europe/Chisinau",
        "work_days": "123456", "work_start": "09:00", "work_end": "18:00", "operator_number": "+37323612345",
        "phone_prefixes": ["+373236"],
        "windows": {"cold_water": "20-25", "electricity": "15-end", "hot_water": "20-25"}, "ask_org_name": False,
    }
    bad = regions_cli("add", "CAL", "--menu-key", "3")
    assert bad.exit_code == 1 and "menu key 3 is already used by region UNG (Ungheni)" in bad.output
    assert regions_cli("set", "UNG", "--code", "UNGH").exit_code == 0
    nothing = regions_cli("set", "UNGH")
    assert nothing.exit_code == 1 and "nothing to change" in nothing.output
    refused = regions_cli("remove", "ORH")
    assert refused.exit_code == 1
    assert "Error: region ORH (Orhei) still has 2 account(s); it was not removed" in refused.output
    assert regions_cli("remove", "UNGH").output == "region UNGH removed\n"
    missing = regions_cli("remove", "UNGH")
    assert missing.exit_code == 1 and "no region with code 'UNGH'" in missing.output
    db.expire_all()
    assert sorted(r.code for r in db.scalars(select(Region))) == ["CAH", "ORH"]
