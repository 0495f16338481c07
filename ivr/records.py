"""The dialog's ``Records`` port over the SQLAlchemy store, for one call inside one transaction.
Read-only (a value's verdict takes the account's lock): what a turn writes is persisted from the
engine's effects by ``ivr/calls.py``."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from readings_store import regions as region_settings
from readings_store import intake, service
from readings_store.models import DEFAULT_TIMEZONE, DEFAULT_WORK_HOURS, Account, Call, Meter, Region, utcnow

from .config import Config
from .dialog.ports import AccountInfo, MeterInfo, RegionInfo, ValueVerdict

TAIL = 4


def _account_info(account: Account) -> AccountInfo:
    return AccountInfo(id=account.id, region_id=account.region_id,
                       number_tail=account.keypad_key.replace("*", "")[-TAIL:], active=account.active)


def _region_info(region: Region) -> RegionInfo:
    return RegionInfo(id=region.id, menu_key=region.menu_key, name=region.name, names=dict(region.names or {}))


def call_meter(session: Session, call: Call, meter_id: int) -> Meter:
    """A meter of the call's account (``Call.account_id``); anything else is a programming error."""
    meter = session.get(Meter, meter_id)
    if meter is None or meter.account_id != call.account_id:
        raise LookupError(f"meter {meter_id} is not on the call's account")
    return meter


class SqlRecords:
    def __init__(self, session: Session, config: Config, call: Call):
        self.session = session
        self.config = config
        self.call = call

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
        account = self.session.get(Account, account_id)
        return [MeterInfo(id=m.id, utility=m.utility, serial_tail=m.serial[-TAIL:], registers=m.register_names)
                for m in account.meters if m.active]

    def _meter(self, meter_id: int) -> Meter:
        return call_meter(self.session, self.call, meter_id)

    def source(self, channel: str = "phone_keypad") -> intake.Source:
        """This call as the giver of a value (keys or speech are judged alike)."""
        return intake.Source(channel, phone=self.call.from_number, call_id=self.call.id)

    def judge_value(self, meter_id: int, register: str, value: str) -> ValueVerdict:
        verdict = intake.judge(self.session, self._meter(meter_id), register, value, self.source(), self.config,
                               now=utcnow())
        return ValueVerdict(verdict.outcome, verdict.code, quiet=verdict.quiet, reveals=verdict.reveals)

    def operator_number(self, region_id: int | None) -> str | None:
        region = self.session.get(Region, region_id) if region_id else None
        start, end, days = DEFAULT_WORK_HOURS
        hours = region or Region(timezone=DEFAULT_TIMEZONE, work_start=start, work_end=end, work_days=days)
        number = (region.operator_number if region else None) or self.config.operator_number
        return number if number and service.in_working_hours(hours) else None
