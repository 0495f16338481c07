"""Import of account and meter records: one row per meter (CSV from ``ivr import``, JSON from the API).

Every row is checked first and every problem of a row is reported with its line; a batch with any
bad row changes nothing unless ``skip_bad`` is set, in which case only the good rows are applied.
Rows are upserts keyed by (region, account number) and (account, meter serial); phones are added,
never removed. Writing is done in bulk whatever the file's size: the records the file names are
looked up a few thousand keys per query, then new ones inserted and changed ones updated in
batches, so a utility's whole register (hundreds of thousands of rows) imports in seconds.
Everything happens in the caller's transaction.
"""
from __future__ import annotations

import contextlib
import csv
import functools
import io
import itertools
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, NamedTuple, TextIO

import phonenumbers
from sqlalchemy import any_, bindparam, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from . import phones
from .models import ACCOUNT_KINDS, UTILITIES, Account, AccountPhone, Meter, Region, utcnow
from .regions import next_free_menu_key
from .service import keypad_key

COLUMNS = (
    "region_code", "account_number", "holder_name", "kind", "phone",
    "meter_serial", "utility", "registers", "digits", "decimals",
)
# After the required columns, optionally: the region's name as callers hear it (a region the import
# creates is then named at once instead of by its code; an existing region keeps its name).
OPTIONAL_COLUMNS = ("region_name",)
MAX_REGION_NAME = 64  # as ``ivr regions set --name`` allows
MAX_ROWS = 500_000
# Keys per lookup query and rows per write batch: few statements for any file, each well under
# SQLite's 32,766 and PostgreSQL's 65,535 bound parameters.
CHUNK = 4000
_REGION_CODE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
# Account numbers are typed on a keypad: digit groups joined by one separator character.
_ACCOUNT_NUMBER = re.compile(r"^[0-9]+(?:[-/.* ][0-9]+)*$")
_SERIAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,63}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Keys read_csv puts in a row for what the CSV reader itself found wrong with the line.
EXTRA, MALFORMED = "__extra__", "__malformed__"


@dataclass
class RowError:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class ImportReport:
    rows: int = 0
    applied: int = 0
    accounts_created: int = 0
    accounts_updated: int = 0
    meters_created: int = 0
    meters_updated: int = 0
    phones_added: int = 0
    regions_created: list[str] = field(default_factory=list)
    # Menu key given to each region created (None when every key 1-99 was already taken).
    region_keys: dict[str, int | None] = field(default_factory=dict)
    errors: list[RowError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


class RowInvalid(ValueError):
    """Everything wrong with one row; ``str()`` joins the reasons with "; "."""

    def __init__(self, reasons: list[str]):
        super().__init__("; ".join(reasons))
        self.reasons = reasons


class Row(NamedTuple):
    line: int
    region_code: str
    account_number: str
    holder_name: str
    kind: str
    phone: str | None
    meter_serial: str
    utility: str
    registers: int
    digits: int
    decimals: int
    region_name: str = ""


_SMALL_INTS = {str(i): i for i in range(13)}


def _int(value: str, name: str, low: int, high: int, problems: list[str]) -> int:
    number = _SMALL_INTS.get(value)
    if number is None:
        try:
            number = int(value)
        except ValueError:
            problems.append(f"{name} must be a whole number, got {value[:40]!r}")
            return low
    if not low <= number <= high:
        problems.append(f"{name} must be between {low} and {high}, got {number}")
    return number


_E164 = re.compile(r"\+([1-9][0-9]{6,14})")


@functools.lru_cache(maxsize=4096)
def _national_prefix(country_code: int) -> re.Pattern | None:
    region = phonenumbers.region_code_for_country_code(country_code)
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
    prefix = metadata.national_prefix_for_parsing if metadata is not None else None
    return re.compile(prefix) if prefix else None


def _valid_e164(digits: str) -> bool:
    """True when ``+digits`` is a valid number already in E.164 form, decided without the full parser.

    False means "ask the full parser": numbers it would read differently (a national prefix or
    leading zero after the country code) are always left to it.
    """
    for size in (1, 2, 3):
        country_code = int(digits[:size])
        if country_code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return False
    national = digits[size:]
    prefix = _national_prefix(country_code)
    if not national or national[0] == "0" or (prefix is not None and prefix.match(national)):
        return False
    return phonenumbers.is_valid_number(phonenumbers.PhoneNumber(country_code=country_code,
                                                                 national_number=int(national)))


def normalise_phone(phone: str) -> str:
    """E.164 form of a phone number; raises ValueError with a reason."""
    match = _E164.fullmatch(phone)
    if match and _valid_e164(match.group(1)):  # most files: fast, and the same answer as below
        return phone
    return _parse_phone(phone)


@functools.lru_cache(maxsize=8192)
def _parse_phone(phone: str) -> str:
    number = phones.e164(phone, valid=True)
    if number is None:
        raise ValueError(f"phone {phone!r} is not a valid number in E.164 form like +37322123456")
    return number


def _text(value) -> str:
    if type(value) is str:
        return value.strip()
    return "" if value is None else str(value).strip()


def validate_row(line: int, raw: dict) -> Row:
    """Check one row; raises RowInvalid (a ValueError) listing every reason a person can act on."""
    if MALFORMED in raw:
        raise RowInvalid([raw[MALFORMED]])
    problems: list[str] = []
    if raw.get(EXTRA):
        problems.append("more fields than the header has")
    values = [v.strip() if type(v) is str else _text(v) for v in map(raw.get, COLUMNS)]
    region_code, number, name, kind, phone, serial, utility, registers, digits, decimals = values
    if not all(values[:4]) or not all(values[5:]):
        problems.append(f"missing {', '.join(c for c, v in zip(COLUMNS, values) if c != 'phone' and not v)}")
    if region_code and not _REGION_CODE.match(region_code):
        problems.append(f"region_code {region_code[:40]!r} may hold only letters, digits, - and _ (max 32)")
    if number and (len(number) > 64 or not _ACCOUNT_NUMBER.match(number)):
        problems.append(
            f"account_number {number[:80]!r} must be digits, optionally in groups joined by one of - / . * or space"
        )
    if len(name) > 300 or _CONTROL.search(name):
        problems.append("holder_name must be at most 300 characters without control characters")
    if kind and kind not in ACCOUNT_KINDS:
        problems.append(f"kind must be one of {', '.join(ACCOUNT_KINDS)}, got {kind[:40]!r}")
    if phone:
        try:
            if len(phone) > 32:
                raise ValueError(f"phone {phone[:40]!r}... is too long for a phone number")
            phone = normalise_phone(phone)
        except ValueError as exc:
            problems.append(str(exc))
    if serial and not _SERIAL.match(serial):
        problems.append(f"meter_serial {serial[:80]!r} may hold only letters, digits and _ . / - (max 64)")
    if utility and utility not in UTILITIES:
        problems.append(f"utility must be one of {', '.join(UTILITIES)}, got {utility[:40]!r}")
    registers = _int(registers, "registers", 1, 2, problems) if registers else 1
    if registers == 2 and utility != "electricity":
        problems.append("only electricity meters have two registers (day/night)")
    digits = _int(digits, "digits", 1, 12, problems) if digits else 0
    decimals = _int(decimals, "decimals", 0, 4, problems) if decimals else 0
    region_name = raw.get("region_name")
    region_name = (region_name.strip() if type(region_name) is str else _text(region_name)) if region_name else ""
    if len(region_name) > MAX_REGION_NAME or _CONTROL.search(region_name):
        problems.append(f"region_name must be at most {MAX_REGION_NAME} characters without control characters")
    if problems:
        raise RowInvalid(problems)
    return Row(line, region_code, number, name, kind, phone or None, serial, utility, registers, digits, decimals,
               region_name)


def read_csv(source: str | TextIO) -> Iterator[tuple[int, dict]]:
    """Rows of a CSV file with the documented header, numbered by their line in the file.

    ``source`` is the text or a file opened with ``newline=""``. A line the CSV reader cannot
    read (say, a field over the csv module's size limit) becomes a row carrying the reason, so it
    is reported with its line like any other bad row.
    """
    if isinstance(source, str):
        source = io.StringIO(source)
    reader = csv.reader(source)
    try:
        header = next(reader, [])
    except csv.Error as exc:
        raise ValueError(f"line 1: the header cannot be read: {exc}") from None
    header = [h.strip() for h in header]
    if header:
        header[0] = header[0].lstrip("\ufeff")
    columns = tuple(header)
    if columns not in (COLUMNS, COLUMNS + OPTIONAL_COLUMNS):
        raise ValueError(f"line 1: header must be exactly {','.join(COLUMNS)} (optionally followed by "
                         f"{','.join(OPTIONAL_COLUMNS)}); got {','.join(header)[:300] or 'nothing'}")
    width = len(columns)
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield reader.line_num, {MALFORMED: _csv_problem(exc)}
            continue
        if not values:  # blank line
            continue
        raw = dict(zip(columns, values))
        if len(values) > width:
            raw[EXTRA] = values[width:]
        yield reader.line_num, raw


def _csv_problem(exc: csv.Error) -> str:
    if "field larger than field limit" in str(exc):
        return f"a field is longer than {csv.field_size_limit():,} characters; the line was not read"
    return f"the line is not valid CSV: {exc}"


class _NoProgress:
    def update(self, n: int = 1) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


# progress(description, total) -> a context manager with update(n), like tqdm(desc=..., total=...).
Progress = Callable[[str, "int | None"], object]


def _no_progress(description: str, total: int | None) -> _NoProgress:
    return _NoProgress()


class _Plan:
    """The good rows folded into one entry per record (the last row of a record wins), sharing
    strings and keys between rows so that a whole register fits in little memory."""

    def __init__(self) -> None:
        self.regions: dict[str, int] = {}  # code -> first line
        self.region_names: dict[str, tuple[str, int]] = {}  # code -> (name, its first line)
        # (region_code, number) -> [holder_name, kind, line, id once known, the key itself]
        self.accounts: dict[tuple[str, str], list] = {}
        # (account key, serial) -> (utility, registers, digits, decimals)
        self.meters: dict[tuple[tuple[str, str], str], tuple[str, int, int, int]] = {}
        self.phones: set[tuple[tuple[str, str], str]] = set()
        self._shared: dict = {}  # one object for each repeated value (codes, kinds, meter specs)

    def fold(self, row: Row, report: ImportReport) -> None:
        share = self._shared.setdefault
        code = share(row.region_code, row.region_code)
        self.regions.setdefault(code, row.line)
        if row.region_name:
            named = self.region_names.setdefault(code, (row.region_name, row.line))
            if named[0] != row.region_name:
                report.warnings.append(f"line {row.line}: region {code} is named {named[0]!r} on line {named[1]}; "
                                       f"{row.region_name!r} is ignored")
        key = (code, row.account_number)
        known = self.accounts.get(key)
        if known is None:
            self.accounts[key] = [row.holder_name, share(row.kind, row.kind), row.line, None, key]
        else:
            key = known[4]  # the account's meters and phones all point at one key
            if (known[0], known[1]) != (row.holder_name, row.kind):
                report.warnings.append(
                    f"line {row.line}: account {row.account_number} of region {code} has another holder "
                    f"name or kind than on line {known[2]}; line {row.line} is kept"
                )
                known[0], known[1] = row.holder_name, share(row.kind, row.kind)
            known[2] = row.line
        spec = (row.utility, row.registers, row.digits, row.decimals)
        self.meters[(key, row.meter_serial)] = share(spec, spec)
        if row.phone:
            self.phones.add((key, row.phone))


def import_rows(session: Session, rows: Iterable[tuple[int, dict]], *, skip_bad: bool = False,
                progress: Progress | None = None, total: int | None = None) -> ImportReport:
    """Check every row, then (when all are good, or ``skip_bad``) apply the good ones in bulk.

    ``progress`` makes a progress bar per phase (tqdm's signature); ``total`` is the expected
    number of rows, for the bar only.
    """
    report = ImportReport()
    plan = _Plan()
    progress = progress or _no_progress
    with progress("checking", total) as bar:
        pending = 0
        for line, raw in rows:
            report.rows += 1
            pending += 1
            if pending == 2000:
                bar.update(pending)
                pending = 0
            if report.rows > MAX_ROWS:
                report.errors.append(RowError(line, f"more than {MAX_ROWS} rows; split the file"))
                break
            try:
                row = validate_row(line, raw)
            except ValueError as exc:
                report.errors.append(RowError(line, str(exc)))
                continue
            plan.fold(row, report)
            report.applied += 1
        bar.update(pending)
    if report.errors and not skip_bad:
        report.applied = 0
        return report
    if report.applied:
        _write(session, plan, report, progress)
    return report


def _chunks(items: Iterable, size: int = CHUNK) -> Iterator[list]:
    items = iter(items)
    while chunk := list(itertools.islice(items, size)):
        yield chunk


def _bulk_insert(conn, table, columns: tuple[str, ...], rows: Iterable[tuple], bar) -> None:
    """Insert plain values (already in the driver's types) with the least work per row: COPY on
    PostgreSQL, the driver's executemany elsewhere. No ORM and no per-row SQLAlchemy processing."""
    if conn.dialect.name == "postgresql":
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            for chunk in _chunks(rows, CHUNK * 10):
                with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in chunk:
                        copy.write_row(row)
                bar.update(len(chunk))
        finally:
            cursor.close()
        return
    sql = str(table.insert().compile(dialect=conn.dialect, column_keys=list(columns)))
    for chunk in _chunks(rows, CHUNK * 10):
        conn.exec_driver_sql(sql, chunk)
        bar.update(len(chunk))


@contextlib.contextmanager
def _custom_plans(conn):
    """No server-side prepared statements on PostgreSQL while importing: a lookup's plan must
    fit the table as it is now, and a plan made while the table was empty (before this import's
    own inserts) would scan it whole for every later chunk."""
    driver = conn.connection.dbapi_connection
    if conn.dialect.name != "postgresql" or not hasattr(driver, "prepare_threshold"):
        yield
        return
    threshold, driver.prepare_threshold = driver.prepare_threshold, None
    try:
        yield
    finally:
        driver.prepare_threshold = threshold


def _among(conn, column, name: str):
    """``column IN (the list bound as name)``: one array parameter on PostgreSQL (a query of
    thousands of parameters costs the driver more to prepare than the server to run)."""
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(name, type_=postgresql.ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))


def _bound(conn, column, value):
    """``value`` as the driver receives it for ``column`` (e.g. a timestamp as SQLite's text)."""
    process = column.type.bind_processor(conn.dialect)
    return process(value) if process else value


def _write(session: Session, plan: _Plan, report: ImportReport, progress: Progress) -> None:
    session.flush()  # the caller's pending changes go first
    region_ids = _regions(session, plan, report)
    conn = session.connection()
    accounts, meters, phones = Account.__table__, Meter.__table__, AccountPhone.__table__
    now = utcnow()
    stamp, yes = _bound(conn, accounts.c.created_at, now), _bound(conn, accounts.c.active, True)
    account_query = select(accounts.c.id, accounts.c.number, accounts.c.holder_name, accounts.c.kind).where(
        accounts.c.region_id == bindparam("region_id"), _among(conn, accounts.c.number, "numbers"))
    meter_query = select(meters.c.id, meters.c.account_id, meters.c.serial, meters.c.utility, meters.c.registers,
                         meters.c.digits, meters.c.decimals).where(_among(conn, meters.c.account_id, "ids"))
    phone_query = select(phones.c.account_id, phones.c.phone).where(_among(conn, phones.c.account_id, "ids"))

    def find_accounts(keys: list[tuple[str, str]]) -> Iterator[tuple[list, str, str]]:
        """(plan entry, holder, kind) of the accounts on file among ``keys``; sets the entries' ids."""
        by_region: dict[str, list[str]] = {}
        for code, number in keys:
            by_region.setdefault(code, []).append(number)
        for code, numbers in by_region.items():
            for chunk in _chunks(numbers):
                params = {"region_id": region_ids[code], "numbers": chunk}
                for id_, number, holder, kind in conn.execute(account_query, params):
                    entry = plan.accounts[(code, number)]
                    entry[3] = id_
                    yield entry, holder, kind

    work = len(plan.accounts) + len(plan.meters) + len(plan.phones)
    with progress("writing", work) as bar, _custom_plans(conn):
        # Accounts on file, a chunk at a time: update the changed ones, and set aside the meters
        # and phones they already have (what stays in the plan afterwards is new).
        changed, changed_meters = [], []
        meters_in_file, phones_in_file = len(plan.meters), len(plan.phones)
        for keys in _chunks(list(plan.accounts)):
            key_of = {}
            for entry, holder, kind in find_accounts(keys):
                key_of[entry[3]] = entry[4]
                if (holder, kind) != (entry[0], entry[1]):
                    changed.append({"_id": entry[3], "holder_name": entry[0], "kind": entry[1], "updated_at": now})
            if not key_of:
                continue
            ids = list(key_of)
            for id_, account_id, serial, *spec in conn.execute(meter_query, {"ids": ids}):
                wanted = plan.meters.pop((key_of[account_id], serial), None)
                if wanted is not None and wanted != tuple(spec):
                    changed_meters.append({"_id": id_, "utility": wanted[0], "registers": wanted[1],
                                           "digits": wanted[2], "decimals": wanted[3]})
            for account_id, phone in conn.execute(phone_query, {"ids": ids}):
                plan.phones.discard((key_of[account_id], phone))
            bar.update(len(key_of))
        for chunk in _chunks(changed):
            conn.execute(update(accounts).where(accounts.c.id == bindparam("_id")), chunk)
        report.accounts_updated = len(changed)
        for chunk in _chunks(changed_meters):
            conn.execute(update(meters).where(meters.c.id == bindparam("_id")), chunk)
        report.meters_updated = len(changed_meters)
        del changed, changed_meters

        # New accounts. On PostgreSQL their ids are drawn from the table's sequence first (COPY
        # returns nothing); elsewhere they are looked up after the insert like the old ones'.
        new = [entry for entry in plan.accounts.values() if entry[3] is None]
        columns = ("region_id", "number", "keypad_key", "holder_name", "kind", "active", "created_at", "updated_at")
        if new and conn.dialect.name == "postgresql":
            ids = conn.execute(text("SELECT nextval(pg_get_serial_sequence('accounts', 'id')) "
                                    "FROM generate_series(1, :n)"), {"n": len(new)}).scalars()
            for entry, id_ in zip(new, ids):
                entry[3] = id_
            columns = ("id",) + columns
        _bulk_insert(conn, accounts, columns,
                     ((*((entry[3],) if entry[3] else ()), region_ids[entry[4][0]], entry[4][1],
                       keypad_key(entry[4][1]), entry[0], entry[1], yes, stamp, stamp) for entry in new), bar)
        report.accounts_created = len(new)
        if new and new[0][3] is None:
            for keys in _chunks(entry[4] for entry in new):
                for _ in find_accounts(keys):
                    pass
        del new

        # Whatever meters and phones are left in the plan are new.
        report.meters_created = len(plan.meters)
        bar.update(meters_in_file - len(plan.meters) + phones_in_file - len(plan.phones))
        _bulk_insert(conn, meters, ("account_id", "serial", "utility", "registers", "digits", "decimals", "active",
                                    "created_at"),
                     ((plan.accounts[key][3], serial, *spec, yes, stamp) for (key, serial), spec in plan.meters.items()),
                     bar)
        report.phones_added = len(plan.phones)
        _bulk_insert(conn, phones, ("account_id", "phone"),
                     sorted((plan.accounts[key][3], phone) for key, phone in plan.phones), bar)
    # Records the caller's session had loaded may have changed underneath it.
    session.expire_all()


def _regions(session: Session, plan: _Plan, report: ImportReport) -> dict[str, int]:
    """Ids of the file's regions; unknown ones are created, each with the next free menu key."""
    query = select(Region.code, Region.id).where(Region.code.in_(list(plan.regions)))
    ids = {code: id_ for code, id_ in session.execute(query)}
    taken: set[int] = set()
    for code, line in sorted(plan.regions.items(), key=lambda item: item[1]):
        if code in ids:
            continue
        try:
            key = next_free_menu_key(session, taken=taken)
        except ValueError:
            key = None
        else:
            taken.add(key)
        region = Region(code=code, name=plan.region_names.get(code, (code,))[0], menu_key=key)
        session.add(region)
        session.flush()
        ids[code] = region.id
        report.regions_created.append(code)
        report.region_keys[code] = key
        where = f"menu key {key}" if key is not None else "no menu key (every key 1-99 is taken)"
        report.warnings.append(
            f"line {line}: region {code} was not known and was created with default settings and {where}; edit it"
        )
    return ids
