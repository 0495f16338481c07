"""Import of account and meter records: one row per meter (CSV from ``ivr import``, JSON from the API).

Rows are validated first; a batch with any bad row changes nothing unless ``skip_bad`` is set,
in which case only the good rows are applied. Everything happens in the caller's transaction.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import phonenumbers
from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import ACCOUNT_KINDS, UTILITIES, Account, AccountPhone, Meter, Region
from .service import keypad_key

COLUMNS = (
    "region_code", "account_number", "holder_name", "kind", "phone",
    "meter_serial", "utility", "registers", "digits", "decimals",
)
MAX_ROWS = 500_000
_REGION_CODE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
# Account numbers are typed on a keypad: digit groups joined by one separator character.
_ACCOUNT_NUMBER = re.compile(r"^[0-9]+(?:[-/.* ][0-9]+)*$")
_SERIAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,63}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


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
    regions_created: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class Row:
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


def _int(value: str, name: str, low: int, high: int) -> int:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a whole number, got {value!r}") from None
    if not low <= number <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {number}")
    return number


def validate_row(line: int, raw: dict) -> Row:
    """Check one row; raises ValueError with a reason a person can act on."""
    missing = [c for c in COLUMNS if c != "phone" and not str(raw.get(c) or "").strip()]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    get = {c: str(raw.get(c) or "").strip() for c in COLUMNS}
    if not _REGION_CODE.match(get["region_code"]):
        raise ValueError(f"region_code {get['region_code']!r} may hold only letters, digits, - and _ (max 32)")
    if len(get["account_number"]) > 64 or not _ACCOUNT_NUMBER.match(get["account_number"]):
        raise ValueError(
            f"account_number {get['account_number']!r} must be digits, optionally in groups joined by one of - / . * or space"
        )
    name = get["holder_name"]
    if len(name) > 300 or _CONTROL.search(name):
        raise ValueError("holder_name must be at most 300 characters without control characters")
    if get["kind"] not in ACCOUNT_KINDS:
        raise ValueError(f"kind must be one of {', '.join(ACCOUNT_KINDS)}, got {get['kind']!r}")
    phone = get["phone"] or None
    if phone:
        try:
            parsed = phonenumbers.parse(phone, None)
        except phonenumbers.NumberParseException:
            raise ValueError(f"phone {phone!r} is not an E.164 number like +37322123456") from None
        if not phonenumbers.is_valid_number(parsed):
            raise ValueError(f"phone {phone!r} is not a valid number")
        phone = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if not _SERIAL.match(get["meter_serial"]):
        raise ValueError(f"meter_serial {get['meter_serial']!r} may hold only letters, digits and _ . / - (max 64)")
    if get["utility"] not in UTILITIES:
        raise ValueError(f"utility must be one of {', '.join(UTILITIES)}, got {get['utility']!r}")
    registers = _int(get["registers"], "registers", 1, 2)
    if registers == 2 and get["utility"] != "electricity":
        raise ValueError("only electricity meters have two registers (day/night)")
    return Row(
        line=line,
        region_code=get["region_code"],
        account_number=get["account_number"],
        holder_name=name,
        kind=get["kind"],
        phone=phone,
        meter_serial=get["meter_serial"],
        utility=get["utility"],
        registers=registers,
        digits=_int(get["digits"], "digits", 1, 12),
        decimals=_int(get["decimals"], "decimals", 0, 4),
    )


def read_csv(text: str) -> Iterator[tuple[int, dict]]:
    """Rows of a CSV file with the documented header, numbered by their line in the file."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = tuple(h.strip() for h in (reader.fieldnames or ()))
    if header != COLUMNS:
        raise ValueError(f"line 1: header must be exactly {','.join(COLUMNS)}; got {','.join(header) or 'nothing'}")
    for raw in reader:
        extra = raw.pop(None, None)
        if extra:
            raw["__extra__"] = extra
        yield reader.line_num, raw


def import_rows(session: Session, rows: Iterable[tuple[int, dict]], *, skip_bad: bool = False) -> ImportReport:
    report = ImportReport()
    good: list[Row] = []
    for line, raw in rows:
        report.rows += 1
        if report.rows > MAX_ROWS:
            report.errors.append(RowError(line, f"more than {MAX_ROWS} rows; split the file"))
            break
        if raw.get("__extra__"):
            report.errors.append(RowError(line, "more fields than the header has"))
            continue
        try:
            good.append(validate_row(line, raw))
        except ValueError as exc:
            report.errors.append(RowError(line, str(exc)))
    if report.errors and not skip_bad:
        return report
    regions = {r.code: r for r in session.scalars(select(Region))}
    for row in good:
        region = regions.get(row.region_code)
        if region is None:
            region = Region(code=row.region_code, name=row.region_code)
            session.add(region)
            session.flush()
            regions[row.region_code] = region
            report.regions_created.append(row.region_code)
            report.warnings.append(
                f"line {row.line}: region {row.region_code} was not known and was created with default settings; edit it"
            )
        _apply(session, region, row, report)
        report.applied += 1
    session.flush()
    return report


def _apply(session: Session, region: Region, row: Row, report: ImportReport) -> None:
    account = session.scalars(
        select(Account).where(Account.region_id == region.id, Account.number == row.account_number)
    ).first()
    if account is None:
        account = Account(region_id=region.id, number=row.account_number, keypad_key=keypad_key(row.account_number),
                          holder_name=row.holder_name, kind=row.kind, active=True)
        session.add(account)
        session.flush()
        report.accounts_created += 1
    elif (account.holder_name, account.kind) != (row.holder_name, row.kind):
        account.holder_name, account.kind = row.holder_name, row.kind
        report.accounts_updated += 1
    if row.phone and row.phone not in {p.phone for p in account.phones}:
        account.phones.append(AccountPhone(phone=row.phone))
    meter = session.scalars(select(Meter).where(Meter.account_id == account.id, Meter.serial == row.meter_serial)).first()
    spec = (row.utility, row.registers, row.digits, row.decimals)
    if meter is None:
        session.add(Meter(account_id=account.id, serial=row.meter_serial, utility=row.utility,
                          registers=row.registers, digits=row.digits, decimals=row.decimals))
        session.flush()
        report.meters_created += 1
    elif (meter.utility, meter.registers, meter.digits, meter.decimals) != spec:
        meter.utility, meter.registers, meter.digits, meter.decimals = spec
        report.meters_updated += 1
