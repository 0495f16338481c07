"""CSV import of accounts and meters: upserts, per-line errors, all-or-nothing, --skip-bad."""
from click.testing import CliRunner
from sqlalchemy import func, select

from ivr.cli import cli
from readings_store.importer import import_rows, read_csv
from readings_store.models import Account, AccountPhone, Meter, Region

HEADER = "region_code,account_number,holder_name,kind,phone,meter_serial,utility,registers,digits,decimals\n"
GOOD = (
    "CHI,100001,Ion Popescu,person,+37322123456,EL1,electricity,2,6,1\n"
    "CHI,100001,Ion Popescu,person,,CW1,cold_water,1,5,3\n"
    "NEW,200-01,SRL Apa,company,,GS1,gas,1,5,3\n"
)


def counts(db):
    return tuple(db.scalar(select(func.count()).select_from(t)) for t in (Region, Account, Meter, AccountPhone))


def test_import_creates_and_upserts(db):
    db.add(Region(code="CHI", name="Chișinău", menu_key=1))
    db.commit()
    report = import_rows(db, read_csv(HEADER + GOOD))
    db.commit()
    assert report.ok and report.applied == 3
    assert (report.accounts_created, report.meters_created) == (2, 3)
    assert report.regions_created == ["NEW"] and "NEW" in report.warnings[0]
    assert counts(db) == (2, 2, 3, 1)
    acc = db.scalars(select(Account).where(Account.number == "200-01")).one()
    assert acc.keypad_key == "200*01" and acc.kind == "company"
    # second run: same rows change nothing; a changed row updates in place
    again = import_rows(db, read_csv(HEADER + GOOD.replace("EL1,electricity,2,6,1", "EL1,electricity,2,7,1")))
    db.commit()
    assert (again.accounts_created, again.meters_created, again.meters_updated) == (0, 0, 1)
    assert counts(db) == (2, 2, 3, 1)


BAD_ROWS = [
    ("CHI,,Ion,person,,EL2,electricity,1,6,0", "missing account_number"),
    ("CHI,100002,Ion,alien,,EL2,electricity,1,6,0", "kind must be one of"),
    ("CHI,100002,Ion,person,12345,EL2,electricity,1,6,0", "phone"),
    ("CHI,100002,Ion,person,,EL2,water,1,6,0", "utility must be one of"),
    ("CHI,100002,Ion,person,,EL2,gas,2,6,0", "only electricity"),
    ("CHI,100002,Ion,person,,EL2,gas,1,60,0", "digits must be between"),
    ("CHI,100002,Ion,person,,EL2,gas,1,x,0", "digits must be a whole number"),
    ("CHI,ABC'; DROP TABLE accounts;--,Ion,person,,EL2,gas,1,6,0", "account_number"),
    ("CH I,100002,Ion,person,,EL2,gas,1,6,0", "region_code"),
    ("CHI,100002,Ion,person,,EL2,gas,1,6,0,extra", "more fields"),
    ("CHI,100002,\"Ion\x07\",person,,EL2,gas,1,6,0", "control characters"),
    ("CHI,100002,Ion,person,,../../etc,gas,1,6,0", "meter_serial"),
]


def test_each_bad_row_reported_with_line_and_nothing_changes(db):
    text = HEADER + GOOD + "\n".join(row for row, _ in BAD_ROWS) + "\n"
    report = import_rows(db, read_csv(text))
    db.rollback()
    assert report.applied == 0 and counts(db) == (0, 0, 0, 0)
    assert [e.line for e in report.errors] == list(range(5, 5 + len(BAD_ROWS)))
    for error, (_, reason) in zip(report.errors, BAD_ROWS):
        assert reason in error.reason, (error, reason)


def test_skip_bad_applies_good_rows(db):
    report = import_rows(db, read_csv(HEADER + GOOD + BAD_ROWS[0][0] + "\n"), skip_bad=True)
    db.commit()
    assert report.applied == 3 and len(report.errors) == 1
    assert counts(db)[1:3] == (2, 3)


def test_injection_in_names_is_stored_as_text(db):
    name = "=HYPERLINK(\"http://x\");<script>alert(1)</script>'; DROP TABLE accounts;--"
    row = f'CHI,100003,"{name.replace(chr(34), chr(34) * 2)}",person,,EL3,electricity,1,6,0\n'
    report = import_rows(db, read_csv(HEADER + row))
    db.commit()
    assert report.ok
    assert db.scalars(select(Account)).one().holder_name == name


def test_wrong_header_is_refused():
    import pytest

    with pytest.raises(ValueError, match="line 1: header must be exactly"):
        list(read_csv("region,account\nCHI,1\n"))


def _cli_env(config, monkeypatch):
    monkeypatch.setenv("IVR_DATABASE_URL", config.database_url)


def test_cli_import_all_or_nothing(config, db, tmp_path, monkeypatch):
    _cli_env(config, monkeypatch)
    path = tmp_path / "records.csv"
    path.write_text(HEADER + GOOD + BAD_ROWS[1][0] + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["import", str(path)])
    assert result.exit_code == 1
    assert "line 5: kind must be one of" in result.output
    assert "nothing was imported" in result.output
    assert counts(db) == (0, 0, 0, 0)
    result = CliRunner().invoke(cli, ["import", "--skip-bad", str(path)])
    assert result.exit_code == 0, result.output
    assert "imported 3 of 4 rows" in result.output and "region NEW was not known" in result.output
    db.expire_all()
    assert counts(db)[1:3] == (2, 3)


def test_cli_import_not_utf8(config, tmp_path, monkeypatch):
    _cli_env(config, monkeypatch)
    path = tmp_path / "bad.csv"
    path.write_bytes(b"\xff\xfe\x00bad")
    result = CliRunner().invoke(cli, ["import", str(path)])
    assert result.exit_code == 1 and "not UTF-8" in result.output


def test_cli_demo_data_prints_accounts(config, db, monkeypatch):
    _cli_env(config, monkeypatch)
    result = CliRunner().invoke(cli, ["demo-data", "--accounts", "20"])
    assert result.exit_code == 0, result.output
    assert "Accounts to try" in result.output
    assert db.scalar(select(func.count()).select_from(Account)) == 80
    utilities = set(db.scalars(select(Meter.utility)))
    assert utilities == {"electricity", "cold_water", "hot_water", "gas", "heat"}
    assert db.scalar(select(func.count()).select_from(Meter).where(Meter.registers == 2)) > 0
