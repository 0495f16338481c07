"""The bulk import path: upserts, new regions and their menu keys, all-or-nothing with many bad rows,
every problem of a row at once, unreadable lines, and a number of SQL statements that does not grow
with the number of rows."""
import csv

import pytest
from click.testing import CliRunner
from sqlalchemy import event, func, select

from ivr.cli import cli
from readings_store import importer
from readings_store.importer import import_rows, read_csv
from readings_store.models import Account, AccountPhone, Meter, Region

HEADER = ",".join(importer.COLUMNS) + "\n"


def counts(db):
    return tuple(db.scalar(select(func.count()).select_from(t)) for t in (Region, Account, Meter, AccountPhone))


def generated(n_accounts: int, region: str = "CHI", start: int = 0) -> str:
    """n_accounts accounts; every third has a second meter, every other a phone."""
    lines = []
    for i in range(start, start + n_accounts):
        phone = f"+37369{i:06d}" if i % 2 else ""
        lines.append(f"{region},{700000 + i},Holder {i},person,{phone},E{i},electricity,{1 + i % 2},6,1")
        if i % 3 == 0:
            lines.append(f"{region},{700000 + i},Holder {i},person,,W{i},cold_water,1,5,3")
    return HEADER + "\n".join(lines) + "\n"


def run(db, text, **kwargs):
    report = import_rows(db, read_csv(text), **kwargs)
    db.commit()
    return report


def test_upsert_changes_only_what_changed(db):
    db.add(Region(code="CHI", name="Chișinău", menu_key=1))
    db.commit()
    first = run(db, generated(30))
    assert first.ok and (first.accounts_created, first.meters_created, first.phones_added) == (30, 40, 15)
    stamp = db.scalars(select(Account.updated_at).where(Account.number == "700002")).one()

    same = run(db, generated(30))
    assert (same.accounts_created, same.accounts_updated, same.meters_created, same.meters_updated,
            same.phones_added) == (0, 0, 0, 0, 0)
    assert same.applied == 40 and counts(db) == (1, 30, 40, 15)

    changed = generated(30).replace(
        "700001,Holder 1,person", "700001,Holder One,company"         # holder and kind
    ).replace(
        "E2,electricity,1,6,1", "E2,electricity,2,7,2"                # meter spec
    ).replace(
        "700004,Holder 4,person,,E4", "700004,Holder 4,person,+37322123456,E4"  # a phone added
    ) + "CHI,700005,Holder 5,person,,G5,gas,1,5,3\n"                  # a meter added
    report = run(db, changed)
    assert (report.accounts_created, report.accounts_updated, report.meters_created, report.meters_updated,
            report.phones_added) == (0, 1, 1, 1, 1)
    account = db.scalars(select(Account).where(Account.number == "700001")).one()
    assert (account.holder_name, account.kind) == ("Holder One", "company")
    assert account.updated_at > stamp
    meter = db.scalars(select(Meter).where(Meter.serial == "E2")).one()
    assert (meter.registers, meter.digits, meter.decimals) == (2, 7, 2)
    assert {p.phone for p in db.scalars(select(Account).where(Account.number == "700004")).one().phones} == {
        "+37322123456"}
    # Phones are added, never removed by an import; an untouched account keeps its stamp.
    assert run(db, generated(30).replace("+37369000001", "")).phones_added == 0
    assert counts(db) == (1, 30, 41, 16)
    assert db.scalars(select(Account.updated_at).where(Account.number == "700002")).one() == stamp


def test_rows_of_one_account_that_disagree_keep_the_last_with_a_warning(db):
    text = HEADER + ("CHI,1,Ana,person,,E1,electricity,1,6,1\n"
                     "CHI,1,Ana Rusu,person,,W1,cold_water,1,5,3\n"
                     "CHI,1,Ana Rusu,person,,E1,electricity,2,6,1\n")
    report = run(db, text)
    assert report.ok and (report.accounts_created, report.meters_created) == (1, 2)
    assert any("line 3" in w and "line 2" in w for w in report.warnings)
    assert db.scalars(select(Account.holder_name)).one() == "Ana Rusu"
    assert db.scalars(select(Meter.registers).where(Meter.serial == "E1")).one() == 2


def test_new_regions_get_the_next_free_menu_keys(db):
    db.add_all([Region(code="CHI", name="Chișinău", menu_key=1), Region(code="BAL", name="Bălți", menu_key=3)])
    db.commit()
    text = generated(3, "CAH") + generated(2, "CHI", 10)[len(HEADER):] + generated(2, "UNG", 20)[len(HEADER):]
    report = run(db, text)
    assert report.regions_created == ["CAH", "UNG"] and report.region_keys == {"CAH": 2, "UNG": 4}
    keys = {code: key for code, key in db.execute(select(Region.code, Region.menu_key))}
    assert keys == {"CHI": 1, "BAL": 3, "CAH": 2, "UNG": 4}
    assert any("region CAH" in w and "menu key 2" in w for w in report.warnings)
    assert run(db, text).regions_created == []


def test_no_free_menu_key_still_imports(db):
    db.add_all([Region(code=f"R{k}", name=f"R{k}", menu_key=k) for k in range(1, 100)])
    db.commit()
    report = run(db, generated(1, "LAST"))
    assert report.ok and report.region_keys == {"LAST": None}
    assert any("no menu key" in w for w in report.warnings)


def test_cli_names_the_key_of_each_new_region(config, db, tmp_path, monkeypatch):
    monkeypatch.setenv("IVR_DATABASE_URL", config.database_url)
    db.add(Region(code="CHI", name="Chișinău", menu_key=1))
    db.commit()
    path = tmp_path / "records.csv"
    path.write_text(generated(2, "NEW"), encoding="utf-8")
    result = CliRunner().invoke(cli, ["import", str(path)])
    assert result.exit_code == 0, result.output
    assert "created region NEW with menu key 2" in result.output
    assert "imported 3 of 3 rows" in result.output
    assert "rows/s" not in result.output and "it/s" not in result.output  # no progress bar off a terminal


BAD = "CHI,900001,Bad,alien,12345,S1,gas,2,60,x"  # kind, phone, two registers for gas, digits, decimals


def test_every_problem_of_a_row_is_reported_at_once(db):
    report = run(db, HEADER + BAD + "\n")
    assert [e.line for e in report.errors] == [2]
    reason = report.errors[0].reason
    for fragment in ("kind must be one of", "phone '12345'", "only electricity", "digits must be between",
                     "decimals must be a whole number"):
        assert fragment in reason, (fragment, reason)
    with pytest.raises(importer.RowInvalid) as raised:
        importer.validate_row(2, dict(zip(importer.COLUMNS, BAD.split(","))))
    assert len(raised.value.reasons) == 5
    missing = run(db, HEADER + "CHI,,,person,,,gas,1,6,0\n").errors[0].reason
    assert "missing account_number, holder_name, meter_serial" in missing


def test_bad_rows_among_many_change_nothing_unless_skip_bad(db):
    text = generated(300, "NEW").splitlines()
    bad_lines = {5: BAD, 150: "NEW,1,x,person,,E1,electricity,1,6,0,extra", 290: "NEW,1,x,person"}
    for line, row in bad_lines.items():
        text[line - 1] = row
    text = "\n".join(text) + "\n"
    report = run(db, text)
    assert [e.line for e in report.errors] == sorted(bad_lines) and report.applied == 0
    assert counts(db) == (0, 0, 0, 0)  # not even the new region
    report = run(db, text, skip_bad=True)
    assert len(report.errors) == 3 and report.applied == report.rows - 3
    assert counts(db)[0] == 1 and counts(db)[2] == report.meters_created == report.applied
    assert db.scalar(select(func.count()).select_from(Account).where(Account.number == "700002")) == 0  # line 5


def test_a_field_over_the_csv_size_limit_is_a_line_error(db, config, tmp_path, monkeypatch):
    huge = "x" * (csv.field_size_limit() + 10)
    text = (HEADER + "CHI,1,Ana,person,,E1,electricity,1,6,1\n"
            + f"CHI,2,{huge},person,,E2,electricity,1,6,1\n"
            + "CHI,3,Ion,person,,E3,electricity,1,6,1\n")
    report = run(db, text)
    assert [(e.line, "longer than" in e.reason) for e in report.errors] == [(3, True)]
    assert counts(db) == (0, 0, 0, 0)
    report = run(db, text, skip_bad=True)
    assert report.applied == 2 and sorted(db.scalars(select(Account.number))) == ["1", "3"]
    # The command: a clean message, no traceback.
    monkeypatch.setenv("IVR_DATABASE_URL", config.database_url)
    path = tmp_path / "huge.csv"
    path.write_text(text.replace("CHI,1,", "CHI,11,").replace("CHI,3,", "CHI,13,"), encoding="utf-8")
    result = CliRunner().invoke(cli, ["import", str(path)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "line 3: a field is longer than" in result.output and "Traceback" not in result.output
    assert sorted(db.scalars(select(Account.number))) == ["1", "3"]


def test_the_callers_loaded_records_are_refreshed(db):
    run(db, generated(2))
    account = db.scalars(select(Account).where(Account.number == "700001")).one()
    assert account.holder_name == "Holder 1"
    import_rows(db, read_csv(generated(2).replace("Holder 1,", "Holder Uno,")))
    assert account.holder_name == "Holder Uno"
    db.rollback()


def test_progress_is_reported_per_phase(db):
    seen = []

    class Bar:
        def __init__(self, description, total):
            self.description, self.count = description, 0
            seen.append(self)

        def update(self, n=1):
            self.count += n

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

    run(db, generated(50), progress=Bar, total=67)
    assert [(b.description, b.count) for b in seen] == [("checking", 67), ("writing", 50 + 67 + 25)]


def _statements(engine, db, text) -> int:
    executed = []

    def count(*args):
        executed.append(1)

    event.listen(engine, "before_cursor_execute", count)
    try:
        report = run(db, text)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert report.ok
    return len(executed)


def test_statements_do_not_grow_with_rows(engine, db):
    """A query per row would add thousands of statements here; the bulk path adds none."""
    small_first = _statements(engine, db, generated(200, "AAA"))
    small_again = _statements(engine, db, generated(200, "AAA"))
    big_first = _statements(engine, db, generated(2000, "BBB"))
    big_again = _statements(engine, db, generated(2000, "BBB"))
    assert counts(db)[1] == 2200
    assert big_first <= small_first + 3, (small_first, big_first)
    assert big_again <= small_again + 3, (small_again, big_again)
    assert small_first < 40 and small_again < 40, (small_first, small_again)


@pytest.mark.parametrize("phone", [
    "+37369123456", "+37322123456", "+373 69 123 456", "+78121234567", "+79161234567", "+390612345678",
    "+16502530000", "+442079460000", "+4407911123456", "+3736912345", "+999123456", "+12", "+37300123456",
    "+380441234567", "+8613812345678",
])
def test_the_fast_phone_check_agrees_with_the_full_parser(phone):
    try:
        expected = importer._parse_phone(phone)
    except ValueError:
        expected = None
    try:
        got = importer.normalise_phone(phone)
    except ValueError:
        got = None
    assert got == expected
