"""Day one at a utility, as its administrator does it: `ivr import` of its own CSV into a fresh
database, then calls from a number that is not on file — first straight after the import (regions
named by their codes, keys given by the import), then after naming the regions per language."""
from __future__ import annotations

from decimal import Decimal

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from ivr.cli import cli
from readings_store.models import Meter, Reading

CSV = """region_code,account_number,holder_name,kind,phone,meter_serial,utility,registers,digits,decimals
ORH,5001,Ion Rusu,person,,ORH-EL-1,electricity,1,6,0
CAH,7002,SRL Lumina,company,,CAH-GA-1,gas,1,5,3
"""
NOT_ON_FILE = "+37360000000"


@pytest.fixture
def run(config, monkeypatch):
    monkeypatch.setenv("IVR_DATABASE_URL", config.database_url)

    def invoke(*args):
        result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    return invoke


@pytest.fixture
def imported(run, tmp_path):
    path = tmp_path / "accounts.csv"
    path.write_text(CSV, encoding="utf-8")
    output = run("import", str(path))
    assert "created region ORH with menu key 1" in output
    assert "created region CAH with menu key 2" in output


def _call(phone, keys):
    call = phone(caller=NOT_ON_FILE)
    heard = [call.start()]
    for key in keys:
        heard.append(call.press(key))
    return heard


def _value(db, serial):
    db.expire_all()
    return db.scalars(select(Reading.value).join(Meter).where(Meter.serial == serial)).one()


def test_straight_after_import_a_stranger_can_choose_a_region_and_give_a_reading(imported, db, phone):
    heard = _call(phone, ["4", "2", "7002#", "123*5#", "1"])
    menu = heard[1].texts
    assert "ORH, 1." in menu and "CAH, 2." in menu, menu
    assert _value(db, "CAH-GA-1") == Decimal("123.5")


@pytest.mark.parametrize("lang_key, options, serial", [
    ("4", ["Orhei, 1.", "Cahul, 2."], "ORH-EL-1"),
    ("2", ["Орхей — 1.", "Кагул — 2."], "ORH-EL-1"),
])
def test_regions_named_per_language_are_heard_in_the_callers_language(imported, run, db, phone, lang_key,
                                                                       options, serial):
    run("regions", "set", "ORH", "--name-en", "Orhei", "--name-ru", "Орхей")
    run("regions", "set", "CAH", "--name-en", "Cahul", "--name-ru", "Кагул")
    heard = _call(phone, [lang_key, "1", "5001#", "1500#", "1"])
    assert all(option in heard[1].texts for option in options), heard[1].texts
    assert _value(db, serial) == Decimal(1500)


def test_a_csv_with_region_names_is_heard_by_name_at_once(run, tmp_path, db, phone):
    """The optional last column ``region_name`` names the regions the import creates."""
    path = tmp_path / "named.csv"
    lines = CSV.strip().splitlines()
    path.write_text("\n".join([lines[0] + ",region_name", lines[1] + ",Orhei", lines[2] + ",Cahul",
                               "CAH,7003,Ana Rusu,person,,CAH-GA-2,gas,1,5,3,Kagul"]) + "\n", encoding="utf-8")
    output = run("import", str(path))
    assert "region CAH is named 'Cahul' on line 3; 'Kagul' is ignored" in output
    heard = _call(phone, ["4", "2", "7002#", "42#", "1"])
    assert "Orhei, 1." in heard[1].texts and "Cahul, 2." in heard[1].texts, heard[1].texts
    assert _value(db, "CAH-GA-1") == Decimal(42)
    # A later import does not rename a region an administrator may have named since.
    run("regions", "set", "ORH", "--name", "Orhei (nord)")
    path.write_text(lines[0] + ",region_name\n" + lines[1] + ",Orhei\n", encoding="utf-8")
    run("import", str(path))
    heard = _call(phone, ["4"])
    assert "Orhei (nord), 1." in heard[1].texts, heard[1].texts


def test_a_bad_region_name_is_a_row_error_and_nothing_is_imported(config, monkeypatch, tmp_path, db):
    monkeypatch.setenv("IVR_DATABASE_URL", config.database_url)
    path = tmp_path / "bad.csv"
    lines = CSV.strip().splitlines()
    path.write_text(lines[0] + ",region_name\n" + lines[1] + "," + "x" * 65 + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["import", str(path)])
    assert result.exit_code != 0
    assert "line 2: region_name must be at most 64 characters" in result.output
    db.expire_all()
    assert db.scalars(select(Meter)).all() == []
