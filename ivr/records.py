"""The dialog's ``Records`` port over the SQLAlchemy store, for one call inside one transaction.
Read-only (a value's verdict takes the account's lock): what a turn writes is persisted from the
engine's effects by ``ivr/calls.py``."""
from __future__ import annotations

import functools
import re

from sqlalchemy import bindparam, exists, inspect, literal, select
from sqlalchemy.orm import Session, contains_eager, joinedload

from readings_store import regions as region_settings
from readings_store import intake, rules, service
from readings_store.models import (
    DEFAULT_TIMEZONE,
    DEFAULT_WORK_HOURS,
    Account,
    AccountPhone,
    Call,
    Meter,
    Reading,
    Region,
    utcnow,
)

from .config import Config
from .dialog.actions import Hours
from .dialog.ports import AccountInfo, LastReading, MeterInfo, RegionInfo, ValueVerdict, Window

TAIL = 4
_TRAILING_DIGITS = re.compile(r"[0-9]+$")


def serial_tail(serial: str) -> str:
    """The digits a meter's serial ends in, at most four, as a caller is told them; letters are not
    read out ("EL000123" gives "0123", "EL-2024-LC1" gives "1", "12345AB" gives "": it does not end
    in digits, so the meter is named by its utility alone)."""
    found = _TRAILING_DIGITS.search(serial.strip())
    return found.group()[-TAIL:] if found else ""


def serial_digits(serial: str) -> str:
    """Every digit of a serial, letters and separators dropped, as a keypad types it ("EL-2024-LC1"
    gives "20241"): a caller picks a meter by the last of these."""
    return "".join(c for c in serial if "0" <= c <= "9")


def _account_info(account: Account) -> AccountInfo:
    return AccountInfo(id=account.id, region_id=account.region_id,
                       number_tail=account.keypad_key.replace("*", "")[-TAIL:], active=account.active,
                       kind=account.kind)


def _region_info(region: Region) -> RegionInfo:
    return RegionInfo(id=region.id, menu_key=region.menu_key, name=region.name, names=dict(region.names or {}))


def call_meter(session: Session, call: Call, meter_id: int) -> Meter:
    """A meter of the call's account (``Call.account_id``); anything else is a programming error."""
    # With its account and region: the verdict and the reading need both (one query, not three).
    meter = session.get(Meter, meter_id, options=[joinedload(Meter.account).joinedload(Account.region)])
    if meter is None or meter.account_id != call.account_id:
        raise LookupError(f"meter {meter_id} is not on the call's account")
    return meter


def _on_file_column(with_phone: bool):
    """Whether the caller's number (the parameter ``phone``) is on file for the account of the
    row, as a column of the query that loads the account (``intake.on_file`` in the same
    statement); always false for a withheld number."""
    if not with_phone:
        return literal(False)
    return exists(select(AccountPhone.id).where(AccountPhone.account_id == Account.id,
                                                AccountPhone.phone == bindparam("phone")))


# The statements a turn runs are built once, with bind parameters: building a statement and its
# cache key costs more than running it (measured: 0.2-0.25 ms for each of these two).

@functools.cache
def _account_query(with_phone: bool, by_key: bool):
    """Accounts with their region and its windows, their meters, and whether the caller is on
    file: by id (``account_id``), or ``by_key``: the one or two of a region (``region_id``) typed
    as ``key`` (``service.keypad_key``)."""
    query = (select(Account, _on_file_column(with_phone))
             .options(joinedload(Account.region).joinedload(Region.windows), joinedload(Account.meters)))
    if by_key:
        return query.where(Account.keypad_key == bindparam("key"), Account.region_id == bindparam("region_id")) \
            .order_by(Account.id).limit(2)
    return query.where(Account.id == bindparam("account_id"))


_MENU_QUERY = select(Region).where(Region.menu_key.is_not(None)).order_by(Region.menu_key)


@functools.cache
def _meter_query(with_phone: bool, lock: bool):
    """A meter (``meter_id``) with its account, region and windows, and whether the caller is on
    file; ``lock``: with the account's intake lock (PostgreSQL)."""
    query = (select(Meter, _on_file_column(with_phone))
             .join(Meter.account).join(Account.region).outerjoin(Region.windows)
             .options(contains_eager(Meter.account).contains_eager(Account.region).contains_eager(Region.windows))
             .where(Meter.id == bindparam("meter_id")))
    if lock:
        query = query.with_for_update(key_share=True, of=Account)
    return query.execution_options(populate_existing=True)


class SqlRecords:
    """The port for one turn, and what the turn has read: each account and meter is read once, with
    its region, the region's submission windows and whether the caller is on file for the account,
    by one statement (a value's meter also takes the account's lock with it), and the menu's
    regions once. Nothing is kept from one turn to the next: a turn reads the records as they are."""

    def __init__(self, session: Session, config: Config, call: Call):
        self.session = session
        self.config = config
        self.call = call
        # Held strongly: the session's identity map holds its objects weakly.
        self._accounts: dict[int, Account] = {}
        self._meters: dict[int, Meter] = {}
        self._on_file: dict[int, bool] = {}  # by account id, for ``call.from_number``
        self._menu: list[Region] | None = None
        self._for_phone: dict[str | None, list[AccountInfo]] = {}
        self._given: dict[int, set[tuple[int, str]]] = {}  # by account id
        # The verdicts given in this turn, by (meter id, register, value): storing the value reads
        # nothing the verdict has read already.
        self._verdicts: dict[tuple[int, str, str], intake.Verdict] = {}

    # --- what the turn has read ---------------------------------------------------------------

    def _keep(self, account: Account, on_file: bool) -> Account:
        self._accounts[account.id] = account
        self._on_file[account.id] = bool(on_file)
        if "meters" not in inspect(account).unloaded:
            for meter in account.meters:
                self._meters.setdefault(meter.id, meter)
        return account

    def _account(self, account_id: int) -> Account | None:
        if account_id not in self._accounts:
            row = self.session.execute(_account_query(bool(self.call.from_number), by_key=False),
                                       {"account_id": account_id, "phone": self.call.from_number}).unique().first()
            if row is None:
                return None
            self._keep(row[0], row[1])
        return self._accounts[account_id]

    def _meter(self, meter_id: int, *, lock: bool = False) -> Meter:
        """A meter with its account, region and windows (any account's: the turn may be identifying
        it). ``lock``: the account's intake lock is taken by the same statement (``intake.judge``
        then takes it no more); on SQLite the claim of the turn holds the database's write lock."""
        meter = self._meters.get(meter_id)
        if meter is not None and not (lock and self._needs_lock(meter.account_id)):
            return meter
        locks = lock and self._needs_lock(None)
        row = self.session.execute(_meter_query(bool(self.call.from_number), locks),
                                   {"meter_id": meter_id, "phone": self.call.from_number}).unique().first()
        if row is None:
            raise LookupError(f"no meter {meter_id}")
        meter = row[0]
        self._meters[meter_id] = meter
        self._keep(meter.account, row[1])
        if locks:
            intake.note_account_lock(self.session, meter.account_id)
        return meter

    def _needs_lock(self, account_id: int | None) -> bool:
        """Whether loading a meter to judge a value must take its account's lock (PostgreSQL)."""
        if self.session.get_bind().dialect.name == "sqlite":
            return False
        return account_id is None or account_id not in intake.locked_accounts(self.session)

    def _menu_regions(self) -> list[Region]:
        if self._menu is None:
            self._menu = list(self.session.scalars(_MENU_QUERY))
        return self._menu

    # --- the port -----------------------------------------------------------------------------

    def regions(self) -> list[RegionInfo]:
        return [_region_info(r) for r in self._menu_regions()]

    def region_for_caller(self, phone: str | None) -> RegionInfo | None:
        found = region_settings.region_among(self._menu_regions(), phone)
        return _region_info(found[0]) if found else None

    def accounts_for_phone(self, phone: str | None) -> list[AccountInfo]:
        if phone not in self._for_phone:
            self._for_phone[phone] = [_account_info(a) for a in service.accounts_for_phone(self.session, phone)]
        return self._for_phone[phone]

    def find_account(self, region_id: int, typed: str) -> AccountInfo | None:
        key = service.keypad_key(typed)  # as ``service.key_match``
        if not key:
            return None
        rows = self.session.execute(_account_query(bool(self.call.from_number), by_key=True),
                                    {"key": key, "region_id": region_id, "phone": self.call.from_number}
                                    ).unique().all()
        if len(rows) != 1:
            return None  # two accounts typed alike cannot be told apart on a keypad (``service.find_account``)
        return _account_info(self._keep(*rows[0]))

    def account(self, account_id: int) -> AccountInfo | None:
        account = self._account(account_id)
        return _account_info(account) if account is not None else None

    def meters(self, account_id: int) -> list[MeterInfo]:
        account = self._account(account_id)
        rows = [m for m in account.meters if m.active] if account is not None else []
        return [MeterInfo(id=m.id, utility=m.utility, serial_tail=serial_tail(m.serial), registers=m.register_names,
                          serial_digits=serial_digits(m.serial))
                for m in sorted(rows, key=lambda m: m.id)]

    def _any_meter(self, meter_id: int) -> Meter:
        """A meter of the account the turn is identifying (``Call.account_id`` is set after the turn)."""
        return self._meter(meter_id)

    def window(self, meter_id: int) -> Window:
        meter = self._any_meter(meter_id)
        region = meter.account.region
        # ``service.period_for`` with the region's window read once: it also gives the dates.
        days = service.region_window(self.session, region, meter.utility)
        decision = rules.billing_period(service.region_now(region, utcnow()).date(), days)
        opens, closes = rules.window_dates(decision.period, days)
        return Window(decision.in_window, opens, closes)

    def given_this_period(self, account_id: int) -> set[tuple[int, str]]:
        if account_id not in self._given:
            self._given[account_id] = self._given_this_period(account_id)
        return self._given[account_id]

    def _given_this_period(self, account_id: int) -> set[tuple[int, str]]:
        account = self._account(account_id)
        if account is None:
            return set()
        now = utcnow()
        meters = {m.id: m for m in account.meters if m.active}
        periods = {i: service.period_for(self.session, m, now).period for i, m in meters.items()}
        if not periods:
            return set()
        rows = self.session.execute(select(Reading.meter_id, Reading.register, Reading.period).where(
            Reading.meter_id.in_(periods), Reading.status.in_(("accepted", "pending_review"))).distinct())
        return {(meter_id, register) for meter_id, register, period in rows if periods[meter_id] == period}

    def on_file(self, account_id: int, phone: str | None) -> bool:
        if phone == self.call.from_number and self._account(account_id) is not None:
            return self._on_file[account_id]
        return intake.on_file(self.session, account_id, phone)

    def last_reading(self, meter_id: int, register: str) -> LastReading | None:
        meter = self._any_meter(meter_id)
        if not self.on_file(meter.account_id, self.call.from_number):
            return None  # said to the account's own numbers only, whatever the dialog asks
        now = utcnow()
        reading = self.session.scalars(select(Reading).where(
            Reading.meter_id == meter.id, Reading.register == register, Reading.status == "accepted",
            Reading.taken_at <= now).order_by(Reading.taken_at.desc(), Reading.id.desc()).limit(1)).first()
        if reading is None:
            return None
        day = service.region_now(meter.account.region, reading.taken_at).date()
        return LastReading(format(reading.value.normalize(), "f"), day)

    def find_account_by_serial(self, region_id: int, typed: str) -> AccountInfo | None:
        digits = typed
        if not digits.isdigit():
            return None
        meters = self.session.scalars(select(Meter).join(Account).where(
            Account.region_id == region_id, Account.kind == "company", Account.active.is_(True),
            Meter.active.is_(True))).all()
        found = [m for m in meters if serial_digits(m.serial) == digits]
        # Two meters with the same digits cannot be told apart on a keypad: not found, like an account.
        return _account_info(found[0].account) if len(found) == 1 else None

    def asks_org_name(self, region_id: int) -> bool:
        region = self.session.get(Region, region_id)
        return bool(region is not None and region.ask_org_name)

    def meter(self, meter_id: int, *, lock: bool = False) -> Meter:
        """A meter of the call's account (as ``call_meter``), read once per turn."""
        meter = self._meter(meter_id, lock=lock)
        if meter.account_id != self.call.account_id:
            raise LookupError(f"meter {meter_id} is not on the call's account")
        return meter

    def verdict(self, meter_id: int, register: str, value: str) -> intake.Verdict | None:
        """The verdict ``judge_value`` gave this value in this turn, if it did."""
        return self._verdicts.get((meter_id, register, value))

    def source(self, channel: str = "phone_keypad") -> intake.Source:
        """This call as the giver of a value (keys or speech are judged alike)."""
        return intake.Source(channel, phone=self.call.from_number, call_id=self.call.id)

    def judge_value(self, meter_id: int, register: str, value: str) -> ValueVerdict:
        meter = self.meter(meter_id, lock=True)
        verdict = intake.judge(self.session, meter, register, value, self.source(), self.config, now=utcnow(),
                               on_file=self._on_file[meter.account_id])
        self._verdicts[(meter_id, register, value)] = verdict
        return ValueVerdict(verdict.outcome, verdict.code, quiet=verdict.quiet, reveals=verdict.reveals)

    def _operator_line(self, region_id: int | None) -> tuple[str | None, Region]:
        """(number, the region whose working hours it keeps): the region's operator, else the
        configured one; for no region, the configured one in the default working hours."""
        region = self.session.get(Region, region_id) if region_id else None
        number = (region.operator_number if region else None) or self.config.operator_number
        if region is None:
            start, end, days = DEFAULT_WORK_HOURS
            region = Region(timezone=DEFAULT_TIMEZONE, work_start=start, work_end=end, work_days=days)
        return number, region

    def operator_number(self, region_id: int | None) -> str | None:
        number, hours = self._operator_line(region_id)
        return number if number and service.in_working_hours(hours) else None

    def operator_hours(self, region_id: int | None) -> Hours | None:
        number, region = self._operator_line(region_id)
        if not number or not region.work_days or region.work_start >= region.work_end:
            return None  # nobody, or hours in which nobody ever answers
        zone = region_settings.caller_timezone(self.call.from_number) or region.timezone
        # the same clock as in_working_hours: the hours of the next working day as of now
        days, start, end = region_settings.hours_in_zone(region, zone, service.region_now(region))
        return Hours(days, region_settings.format_time(start), region_settings.format_time(end))
