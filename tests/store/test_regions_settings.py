"""Region settings through readings_store.regions: every setting applied, every bad one refused
with a clear reason and nothing changed; removal; the region a caller ID suggests; the migration."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session

from readings_store import rules, service
from alembic import command

from readings_store.db import alembic_config, make_engine, upgrade
from readings_store.models import AuditEvent, Call, Region, SubmissionWindow
from readings_store.regions import (
    RegionError,
    create_region,
    describe,
    get_region,
    region_for_caller,
    remove_region,
    update_region,
)
from tests import factories as f


@pytest.fixture
def chi(db):
    region = create_region(db, "CHI", "Chișinău", menu_key="1", phone_prefixes="+37322")
    db.commit()
    return region


def test_every_setting_is_applied_and_audited(db, chi):
    update_region(
        db, chi,
        names={"ro": "Chișinău", "ru": "Кишинёв", "uk": "Кишинів", "en": "Chisinau"},
        menu_key=" 12 ", timezone="Europe/Chisinau", work_days="5, 1,2", hours="07:30-16:00",
        operator_number="+373 22 123 456", phone_prefixes="+37322, +373 23",
        windows={"water": "20-25", "electricity": "15-end", "all": "25-5"}, ask_org_name="yes",
    )
    db.commit()
    db.expire_all()
    d = describe(get_region(db, "CHI"))
    assert d == {
        "code": "CHI", "name": "Chișinău",
        "names": {"ro": "Chișinău", "ru": "Кишинёв", "uk": "Кишинів", "en": "Chisinau"},
        "menu_key": 12, "timezone": "Europe/Chisinau", "work_days": "125", "work_start": "07:30",
        "work_end": "16:00", "operator_number": "+37322123456", "phone_prefixes": ["+37322", "+37323"],
        "windows": {"all": "25-5", "cold_water": "20-25", "electricity": "15-end", "hot_water": "20-25"},
        "ask_org_name": True,
    }
    audit = db.scalars(select(AuditEvent).where(AuditEvent.action == "region.update")).one()
    assert audit.before["menu_key"] == 1 and audit.after["menu_key"] == 12
    assert audit.before["ask_org_name"] is False and audit.after["ask_org_name"] is True


@pytest.mark.parametrize("text, value", [("no", False), ("off", False), ("YES", True), ("on", True), (True, True)])
def test_the_organisation_name_setting_is_yes_or_no(db, chi, text, value):
    update_region(db, chi, ask_org_name=text)
    assert chi.ask_org_name is value


def test_a_bad_organisation_name_setting_changes_nothing(db, chi):
    with pytest.raises(RegionError, match="organisation's name is yes or no"):
        update_region(db, chi, ask_org_name="maybe", menu_key="5")
    db.rollback()
    assert chi.menu_key == 1 and not chi.ask_org_name


def test_names_and_windows_are_merged_and_removed_one_by_one(db, chi):
    update_region(db, chi, names="ru=Кишинёв; en=Chisinau", windows="gas=1-10; heat=5-6")
    update_region(db, chi, names={"en": ""}, windows={"gas": "none", "heat": "7-8"})
    db.commit()
    d = describe(chi)
    assert d["names"] == {"ru": "Кишинёв"} and d["windows"] == {"heat": "7-8"}
    assert chi.name_in("ru") == "Кишинёв" and chi.name_in("en") == "Chișinău"


def test_end_of_month_window_closes_on_the_last_day(db, chi):
    """"end" is stored as 31, which the billing rules clamp to each month's last day."""
    update_region(db, chi, windows={"electricity": "15-end"})
    db.commit()
    window = service.window_for(db, chi.id, "electricity")
    assert window == (15, 31)
    assert rules.billing_period(dt.date(2027, 2, 28), window) == rules.PeriodDecision("2027-02", True)
    assert rules.billing_period(dt.date(2027, 3, 1), window) == rules.PeriodDecision("2027-03", False)


BAD = [
    ({"code": "C H I"}, "region code 'C H I' may hold only letters"),
    ({"name": "  "}, "the region name must not be empty"),
    ({"names": {"de": "Kischinau"}}, "language 'de' is not one of ro, ru, uk, en"),
    ({"names": "ru Кишинёв"}, "a name per language is written lang=name"),
    ({"names": {"ru": "x" * 201}}, "the ru name must be at most 200 characters"),
    ({"menu_key": "0"}, "menu key must be from 1 to 99"),
    ({"menu_key": "100"}, "menu key must be from 1 to 99"),
    ({"menu_key": "one"}, "menu key must be a whole number"),
    ({"menu_key": "2"}, "menu key 2 is already used by region BAL (Bălți)"),
    ({"code": "BAL"}, "region code BAL is already used by region BAL (Bălți)"),
    ({"timezone": "Europe/Atlantis"}, "timezone 'Europe/Atlantis' is not a known time zone"),
    ({"timezone": "../etc/passwd"}, "is not a known time zone"),
    ({"work_days": "1238"}, "working days must be ISO weekday digits"),
    ({"work_days": "112"}, "without repeats"),
    ({"work_days": ""}, "working days must be ISO weekday digits"),
    ({"hours": "17:00-08:00"}, "working hours must start before they end, got 17:00-08:00"),
    ({"work_end": "07:00"}, "working hours must start before they end, got 08:00-07:00"),
    ({"hours": "8-17"}, "the start of working hours must be a time of day like 08:00"),
    ({"hours": "08:00"}, "working hours are written start-end"),
    ({"work_start": "25:00"}, "the start of working hours must be a time of day"),
    ({"operator_number": "+3732"}, "operator number '+3732' is not a valid phone number in E.164 form"),
    ({"operator_number": "022123456"}, "is not a valid phone number in E.164 form"),
    ({"operator_number": "+37322abc"}, "is not a valid phone number"),
    ({"phone_prefixes": "37322"}, "phone prefix '37322' must be + and 1-15 digits"),
    ({"phone_prefixes": "+37322, +3a"}, "phone prefix '+3a' must be + and 1-15 digits"),
    ({"phone_prefixes": "+999"}, "phone prefix +999 does not begin with a country calling code"),
    ({"phone_prefixes": "+373231"}, "phone prefix +373231 is already used by region BAL (Bălți)"),
    ({"windows": {"water": "0-5"}}, "a window day must be from 1 to 31"),
    ({"windows": {"gas": "20-32"}}, "a window day must be from 1 to 31"),
    ({"windows": {"gas": "20"}}, "a submission window is written start-end"),
    ({"windows": {"steam": "1-5"}}, "utility 'steam' is not one of all, electricity"),
    ({"windows": "gas 1-5"}, "a window is written utility=start-end"),
    ({"colour": "red"}, "unknown region setting(s): colour"),
]


@pytest.mark.parametrize("settings, message", BAD, ids=[m for _, m in BAD])
def test_a_bad_setting_is_refused_and_changes_nothing(db, chi, settings, message):
    create_region(db, "BAL", "Bălți", menu_key=2, phone_prefixes=["+373231"])
    db.commit()
    before = describe(chi)
    # Good settings given together with the bad one are not applied either.
    with pytest.raises(RegionError) as caught:
        update_region(db, chi, **{"name": "Renamed", "names": {"en": "Chisinau"}, "windows": {"gas": "1-5"},
                                   "timezone": "Europe/Kyiv", **settings})
    assert message in str(caught.value)
    db.rollback()
    db.expire_all()
    assert describe(get_region(db, "CHI")) == before
    assert db.scalars(select(SubmissionWindow)).all() == []


def test_creating_a_region_is_checked_the_same_way(db, chi):
    with pytest.raises(RegionError, match="menu key 1 is already used by region CHI"):
        create_region(db, "BAL", "Bălți", menu_key=1)
    with pytest.raises(RegionError, match="region code CHI is already used"):
        create_region(db, "CHI", "Another")
    db.rollback()
    assert [r.code for r in db.scalars(select(Region))] == ["CHI"]


def test_remove_refuses_a_region_with_accounts_or_calls(db, chi):
    account = f.account(db, chi)
    db.commit()
    with pytest.raises(RegionError, match=r"region CHI \(Chișinău\) still has 1 account\(s\); it was not removed"):
        remove_region(db, chi)
    db.rollback()
    db.delete(db.get(type(account), account.id))
    db.add(Call(call_sid="CA" + "1" * 32, region_id=chi.id, state={}, steps=[]))
    db.commit()
    with pytest.raises(RegionError, match=r"appears in 1 call\(s\) or review item\(s\)"):
        remove_region(db, chi)
    db.rollback()
    assert get_region(db, "CHI") is not None


def test_remove_deletes_an_unused_region_with_its_windows(db, chi):
    update_region(db, chi, windows={"all": "20-5"})
    db.commit()
    remove_region(db, chi)
    db.commit()
    assert db.scalars(select(Region)).all() == [] and db.scalars(select(SubmissionWindow)).all() == []
    assert db.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()[-1] == "region.remove"


def test_the_longest_prefix_wins(db):
    country = create_region(db, "MD", "Moldova", menu_key=1, phone_prefixes="+373")
    chi = create_region(db, "CHI", "Chișinău", menu_key=2, phone_prefixes="+37322")
    bal = create_region(db, "BAL", "Bălți", menu_key=3, phone_prefixes="+373231")
    db.commit()
    assert region_for_caller(db, "+37322123456") == (chi, "prefix")
    assert region_for_caller(db, "+37323112345") == (bal, "prefix")
    assert region_for_caller(db, "+37369123456") == (country, "prefix")
    assert region_for_caller(db, None) is None


def test_the_geocoder_place_is_matched_against_names_and_codes(db):
    chi = create_region(db, "CHI", "Chișinău", menu_key=1)
    bal = create_region(db, "BAL", "Bălți", menu_key=2)  # the geocoder says "Balţi" (t-cedilla)
    kyiv = create_region(db, "KYI", "Київ", menu_key=3, names={"en": "Kyiv"})  # "Kyiv city"
    create_region(db, "UNG", "Ungheni")  # no menu key: never assumed
    db.commit()
    assert region_for_caller(db, "+37322123456") == (chi, "geocoder")
    assert region_for_caller(db, "+37323112345") == (bal, "geocoder")
    assert region_for_caller(db, "+380441234567") == (kyiv, "geocoder")
    assert region_for_caller(db, "+37323612345") is None  # Ungheni is not offered
    assert region_for_caller(db, "+442079460000") is None  # London: no such region
    # A configured prefix is preferred to the geocoder.
    update_region(db, bal, phone_prefixes="+37322")
    assert region_for_caller(db, "+37322123456") == (bal, "prefix")




@pytest.mark.db
def test_migration_adds_the_settings_to_an_existing_database(empty_database_url):
    url = empty_database_url
    upgrade(url, "0001")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO regions (code, name, timezone, work_start, work_end, work_days, menu_key, "
                          "created_at) VALUES ('OLD', 'Old', 'Europe/Chisinau', '08:00:00', '17:00:00', '12345', 1, "
                          "'2026-01-01 00:00:00+00')"))
    upgrade(url)
    columns = {c["name"] for c in inspect(engine).get_columns("regions")}
    assert {"names", "phone_prefixes"} <= columns
    with Session(engine) as session:
        old = session.scalars(select(Region)).one()
        assert old.names == {} and old.phone_prefixes == [] and old.name_in("ru") == "Old"
        update_region(session, old, names={"ru": "Старый"}, phone_prefixes="+37322")
        session.commit()
    with Session(engine) as session:
        assert session.scalars(select(Region)).one().name_in("ru") == "Старый"
    engine.dispose()
    command.downgrade(alembic_config(url), "0001")  # and back down
    engine = make_engine(url)
    assert "names" not in {c["name"] for c in inspect(engine).get_columns("regions")}
    engine.dispose()


def test_a_key_taken_at_the_same_moment_is_a_clear_error(db, sessions, chi, monkeypatch):
    """Two administrators at once: the check passed before the other change was committed, so
    the database's unique key refuses it, and that is a clear error rather than a crash."""
    from readings_store import regions as module

    create_region(db, "BAL", "Bălți", menu_key=2)
    db.commit()
    other = sessions()
    try:
        # As if the check had run before BAL took key 2.
        monkeypatch.setattr(module, "_check", lambda session, region, settings: module._Checked({"menu_key": 2},
                                                                                                None, None))
        with pytest.raises(RegionError, match="saved at the same time"):
            update_region(other, get_region(other, "CHI"), menu_key=2)
        other.rollback()
    finally:
        other.close()
    db.expire_all()
    assert get_region(db, "CHI").menu_key == 1
