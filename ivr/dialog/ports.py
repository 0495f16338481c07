"""What the engine reads from the records, as a protocol the transport implements. Read-only:
what a turn writes comes back from the engine as effects (``effects.py``)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Protocol

from .actions import Hours


@dataclass(frozen=True)
class RegionInfo:
    id: int
    menu_key: int
    name: str
    names: dict = field(default_factory=dict)  # the name per call language, when set

    def name_in(self, lang: str | None) -> str:
        """The name said to a caller in ``lang``: the region's name in it, else its only name."""
        return self.names.get(lang or "") or self.name

    def own_name(self, lang: str | None) -> str | None:
        """The region's name in ``lang`` if it has one: only that is listened for in a call in ``lang``
        (a name in another language is neither in the recogniser's words nor said that way)."""
        return self.names.get(lang or "") or None


@dataclass(frozen=True)
class AccountInfo:
    id: int
    region_id: int
    number_tail: str  # last digits only: the holder's name and address are never read out
    active: bool
    kind: str = "person"  # person | company


@dataclass(frozen=True)
class MeterInfo:
    id: int
    utility: str
    serial_tail: str  # the last digits of the serial (letters are not read out); "" when it has none
    registers: tuple[str, ...]
    serial_digits: str = ""  # every digit of the serial, letters dropped: a caller picks a meter by its end


@dataclass(frozen=True)
class Window:
    """The submission window a reading of a meter given now counts in (``rules.billing_period``):
    whether it is open now, and its first and last day, local days of the region."""

    open: bool
    opens: dt.date
    closes: dt.date


@dataclass(frozen=True)
class LastReading:
    """The last accepted reading of a meter's register: its value and the local day it was taken."""

    value: str
    day: dt.date


@dataclass(frozen=True)
class ValueVerdict:
    """What becomes of a value, as the dialog needs to know it: ``refused`` (``code`` is the rule,
    told as ``reason_<code>``), ``accepted``, or ``review`` (kept for an operator; ``code`` says
    why). ``quiet``: the caller may hear only the neutral "we will check this reading" about it.
    ``reveals``: telling the caller how it was judged says something about the account's readings
    (a refusal is counted; a read-back counts until the value is saved)."""

    outcome: str
    code: str | None = None
    quiet: bool = False
    reveals: bool = False

    @property
    def refused(self) -> bool:
        return self.outcome == "refused"

    @property
    def accepted(self) -> bool:
        return self.outcome == "accepted"


class Records(Protocol):
    """Reads only (judging a value takes the account's lock), all within the turn's transaction."""

    def regions(self) -> list[RegionInfo]:
        """The regions a caller can choose, in menu order (each has a key)."""

    def region_for_caller(self, phone: str | None) -> RegionInfo | None:
        """The region the caller ID suggests (configured prefix, else the number's place), if any."""

    def accounts_for_phone(self, phone: str | None) -> list[AccountInfo]: ...

    def find_account(self, region_id: int, typed: str) -> AccountInfo | None: ...

    def account(self, account_id: int) -> AccountInfo | None:
        """The account with this id (a reminder call's), or None."""

    def meters(self, account_id: int) -> list[MeterInfo]: ...

    def window(self, meter_id: int) -> Window:
        """The submission window a reading of the meter given now counts in."""

    def given_this_period(self, account_id: int) -> set[tuple[int, str]]:
        """(meter id, register) of the account's active meters that already have a reading
        (accepted or kept for review) for the period a reading given now counts in."""

    def on_file(self, account_id: int, phone: str | None) -> bool:
        """Whether ``phone`` is one of the account's numbers on file."""

    def last_reading(self, meter_id: int, register: str) -> LastReading | None:
        """The last accepted reading of the meter's register, for a caller on file for its account
        only (None for anyone else, and when there is none)."""

    def find_account_by_serial(self, region_id: int, typed: str) -> AccountInfo | None:
        """The active company account in the region with exactly one active meter whose serial's
        digits are ``typed`` (a company caller identifies by a meter), else None."""

    def asks_org_name(self, region_id: int) -> bool:
        """Whether the region asks a company's caller to say the organisation's name (recorded)."""

    def judge_value(self, meter_id: int, register: str, value: str) -> ValueVerdict:
        """The intake policy's verdict on ``value`` given by this call for the meter and register,
        now (``readings_store.intake``). Judging a value the call already gave again counts nothing
        new, so the engine asks again when the caller confirms it, just before it is saved."""

    def operator_number(self, region_id: int | None) -> str | None:
        """The number to transfer to if an operator is on duty now, else None (for no region:
        the configured fallback operator, in default working hours)."""

    def operator_hours(self, region_id: int | None) -> Hours | None:
        """When the operators who answer for the region take calls (for no region: the configured
        fallback operator's default hours), in the caller's time zone; None when no operator
        line answers for it at all."""
