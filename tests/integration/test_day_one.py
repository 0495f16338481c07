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
    assert "For ORH, press 1." in menu and "For CAH, press 2." in menu, menu
    assert _value(db, "CAH-GA-1") == Decimal("123.5")


@pytest.mark.parametrize("lang_key, options, serial", [
    ("4", ["For Orhei, press 1.", "For Cahul, press 2."], "ORH-EL-1"),
    ("2", ["Орхей — нажмите 1.", "Кагул — нажмите 2."], "ORH-EL-1"),
])
def test_regions_named_per_language_are_heard_in_the_callers_language(imported, run, db, phone, lang_key,
                                                                       options, serial):
    run("regions", "set", "ORH", "--name-en", "Orhei", "--name-ru", "Орхей")
    run("regions", "set", "CAH", "--name-en", "Cahul", "--name-ru", "Кагул")
    heard = _call(phone, [lang_key, "1", "5001#", "1500#", "1"])
    assert all(option in heard[1].texts for option in options), heard[1].texts
    assert _value(db, serial) == Decimal(1500)
