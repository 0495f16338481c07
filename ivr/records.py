"""The dialog's ``Records`` port over the SQLAlchemy store, for one call inside one transaction.
Read-only (a value's verdict takes the account's lock): what a turn writes is persisted from the
engine's effects by ``ivr/calls.py``."""
from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from readings_store import regions as region_settings
from readings_store import intake, rules, service
from readings_store.models import DEFAULT_TIMEZONE, DEFAULT_WORK_HOURS, Account, Call, Meter, Reading, Region, utcnow

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


class SqlRecords:
    def __init__(self, session: Session, config: Config, call: Call):
        self.session = session
        self.config = config
        self.call = call
        # The meters read in this turn: the session's identity map holds its objects weakly, so
        # the meter judged would be read again to store its reading.
        self._meters: dict[int, Meter] = {}
        # The verdicts given in this turn, by (meter id, register, value): storing the value reads
        # nothing the verdict has read already.
        self._verdicts: dict[tuple[int, str, str], intake.Verdict] = {}

    def regions(self) -> list[RegionInfo]:
        rows = self.session.scalars(select(Region).where(Region.menu_key.is_not(None)).order_by(Region.menu_key))
        return [_region_info(r) for r in rows]

    def region_for_caller(self, phone: str | None) -> RegionInfo | None:
        found = region_settings.region_for_caller(self.session, phone)
        return _region_info(found[0]) if found else None

    def accounts_for_phone(self, phone: str | None) -> list[AccountInfo]:
        return [_account_info(a) for a in service.accounts_for_phone(self.session, phone)]

    def find_account(self, region_id: int, typed: str) -> AccountInfo | None:
        account = service.find_account(self.session, region_id, typed)
        return _account_info(account) if account is not None else None

    def account(self, account_id: int) -> AccountInfo | None:
        account = self.session.get(Account, account_id)
        return _account_info(account) if account is not None else None

    def meters(self, account_id: int) -> list[MeterInfo]:
        rows = self.session.scalars(select(Meter).where(Meter.account_id == account_id, Meter.active.is_(True))
                                    .order_by(Meter.id))
        return [MeterInfo(id=m.id, utility=m.utility, serial_tail=serial_tail(m.serial), registers=m.register_names,
                          serial_digits=serial_digits(m.serial))
                for m in rows]

    def _any_meter(self, meter_id: int) -> Meter:
        """A meter of the account the turn is identifying (``Call.account_id`` is set after the turn)."""
        meter = self.session.get(Meter, meter_id)
        if meter is None:
            raise LookupError(f"no meter {meter_id}")
        return meter

    def window(self, meter_id: int) -> Window:
        meter = self._any_meter(meter_id)
        # ``service.period_for`` with the region's window read once: it also gives the dates.
        days = service.window_for(self.session, meter.account.region_id, meter.utility)
        decision = rules.billing_period(service.region_now(meter.account.region, utcnow()).date(), days)
        opens, closes = rules.window_dates(decision.period, days)
        return Window(decision.in_window, opens, closes)

    def read_this_period(self, account_id: int) -> set[int]:
        account = self.session.get(Account, account_id)
        now = utcnow()
        meters = {m.id: m for m in account.meters if m.active}
        periods = {i: service.period_for(self.session, m, now).period for i, m in meters.items()}
        if not periods:
            return set()
        rows = self.session.execute(select(Reading.meter_id, Reading.register, Reading.period).where(
            Reading.meter_id.in_(periods), Reading.status.in_(("accepted", "pending_review"))).distinct())
        given: dict[int, set[str]] = {}
        for meter_id, register, period in rows:
            if periods[meter_id] == period:
                given.setdefault(meter_id, set()).add(register)
        # A two-tariff meter with one tariff given is still to read.
        return {i for i, registers in given.items() if set(meters[i].register_names) <= registers}

    def on_file(self, account_id: int, phone: str | None) -> bool:
        return intake.on_file(self.session, account_id, phone)

    def last_reading(self, meter_id: int, register: str) -> LastReading | None:
        meter = self._any_meter(meter_id)
        if not intake.on_file(self.session, meter.account_id, self.call.from_number):
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

    def meter(self, meter_id: int) -> Meter:
        """A meter of the call's account (``call_meter``), read once per turn."""
        if meter_id not in self._meters:
            self._meters[meter_id] = call_meter(self.session, self.call, meter_id)
        return self._meters[meter_id]

    def verdict(self, meter_id: int, register: str, value: str) -> intake.Verdict | None:
        """The verdict ``judge_value`` gave this value in this turn, if it did."""
        return self._verdicts.get((meter_id, register, value))

    def source(self, channel: str = "phone_keypad") -> intake.Source:
        """This call as the giver of a value (keys or speech are judged alike)."""
        return intake.Source(channel, phone=self.call.from_number, call_id=self.call.id)

    def judge_value(self, meter_id: int, register: str, value: str) -> ValueVerdict:
        verdict = intake.judge(self.session, self.meter(meter_id), register, value, self.source(), self.config,
                               now=utcnow())
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
