"""Validation rules for a reading, as plain functions.

Each returns ``None`` when the input is fine, or a ``Rejection`` whose ``code`` names a prompt the
caller can be told (``audio_prompts/<lang>/prompts.json`` has ``reason_<code>``) and whose
``detail`` is for operators and logs.
"""
from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
import re
from decimal import Decimal, InvalidOperation

# ASCII digits only: str.isdigit() would let other scripts' digits through.
_VALUE = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")


@dataclass(frozen=True)
class Rejection:
    code: str
    detail: str

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"


def parse_value(text: str) -> Decimal | Rejection:
    """A meter value typed or spoken: digits with an optional single decimal point."""
    text = (text or "").strip().replace(",", ".")
    if not _VALUE.fullmatch(text):
        return Rejection("not_a_number", f"{text!r} is not a meter value")
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - guarded above
        return Rejection("not_a_number", f"{text!r} is not a meter value")


def check_account(account) -> Rejection | None:
    if account is None:
        return Rejection("account_not_found", "no such account in this region")
    if not account.active:
        return Rejection("account_inactive", f"account {account.number} is closed")
    return None


def check_meter(account, meter) -> Rejection | None:
    if meter is None or meter.account_id != account.id:
        return Rejection("meter_not_on_account", "the meter does not belong to the account")
    if not meter.active:
        return Rejection("meter_inactive", f"meter {meter.serial} is not in service")
    return None


def check_fits_meter(value: Decimal, digits: int, decimals: int) -> Rejection | None:
    """The value must be representable on the meter's dial."""
    if value < 0:
        return Rejection("not_a_number", "negative value")
    exponent = value.normalize().as_tuple().exponent
    places = max(0, -exponent) if isinstance(exponent, int) else 0
    if places > decimals:
        return Rejection("too_many_decimals", f"{value} has {places} decimals, meter shows {decimals}")
    if value >= Decimal(10) ** digits:
        return Rejection("too_many_digits", f"{value} does not fit {digits} digits")
    return None


def consumption(previous: Decimal, value: Decimal, digits: int) -> Decimal | None:
    """Consumption since ``previous``, counting a roll-over past 999…9 to 0; None if it went back."""
    if value >= previous:
        return value - previous
    rolled = value + Decimal(10) ** digits - previous
    # A real roll-over happens only near the top of the dial: treat it as one only when the
    # previous value was in the top tenth and the new one in the bottom tenth.
    top = Decimal(10) ** digits
    if previous >= top * Decimal("0.9") and value < top * Decimal("0.1"):
        return rolled
    return None


def check_not_below_previous(value: Decimal, previous: Decimal | None, digits: int) -> Rejection | None:
    if previous is None:
        return None
    if consumption(previous, value, digits) is None:
        return Rejection("below_previous", f"{value} is below the previous reading {previous}")
    return None


def check_daily_consumption(
    value: Decimal,
    previous: Decimal | None,
    previous_at: dt.datetime | None,
    now: dt.datetime,
    digits: int,
    daily_limit: Decimal,
) -> Rejection | None:
    """Consumption per day since the previous accepted reading must stay under the limit."""
    if previous is None or previous_at is None:
        return None
    used = consumption(previous, value, digits)
    if used is None:
        return None  # reported by check_not_below_previous
    # At least one day, so two readings on the same day are judged against one day's limit.
    days = max(Decimal(1), Decimal((now - previous_at).total_seconds()) / Decimal(86400))
    if used / days > daily_limit:
        return Rejection(
            "implausible_consumption",
            f"{used} in {days:.1f} days is above the limit of {daily_limit} per day",
        )
    return None


@dataclass(frozen=True)
class PeriodDecision:
    period: str  # YYYY-MM
    in_window: bool


def _month_add(year: int, month: int, n: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + n
    return index // 12, index % 12 + 1


def _clamp_day(year: int, month: int, day: int) -> int:
    return min(day, calendar.monthrange(year, month)[1])


def shift_period(period: str, months: int) -> str:
    """``period`` (YYYY-MM) moved by ``months`` (negative: earlier)."""
    y, m = _month_add(int(period[:4]), int(period[5:7]), months)
    return f"{y:04d}-{m:02d}"


def window_dates(period: str, window: tuple[int, int] | None) -> tuple[dt.date, dt.date]:
    """The first and last local day on which a reading counts for ``period`` inside its window.

    Without a window the period is its calendar month. ``end_day < start_day`` wraps: the window
    of a period opens in its own month and closes in the next one.
    """
    y, m = int(period[:4]), int(period[5:7])
    start, end = window if window is not None else (1, 31)
    opens = dt.date(y, m, _clamp_day(y, m, start))
    if end >= start:
        return opens, dt.date(y, m, _clamp_day(y, m, end))
    ny, nm = _month_add(y, m, 1)
    return opens, dt.date(ny, nm, _clamp_day(ny, nm, end))


def billing_period(local_date: dt.date, window: tuple[int, int] | None) -> PeriodDecision:
    """The billing period a reading taken on ``local_date`` (region time) belongs to.

    ``window`` is (start_day, end_day) of the month; end_day < start_day wraps into the next month
    (e.g. 25..3: readings from the 25th to the 3rd of the next month close the month of the 25th).
    A reading outside the window is kept and marked for the next window's period.
    """
    if window is None:
        return PeriodDecision(f"{local_date:%Y-%m}", True)
    this_month = f"{local_date:%Y-%m}"
    # The window opening in this month, and the one opened last month (when it wraps).
    for period in (shift_period(this_month, -1), this_month):
        opens, closes = window_dates(period, window)
        if opens <= local_date <= closes:
            return PeriodDecision(period, True)
    # Outside: the next window to open decides the period.
    if local_date < window_dates(this_month, window)[0]:
        return PeriodDecision(this_month, False)
    return PeriodDecision(shift_period(this_month, 1), False)
