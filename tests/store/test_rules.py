"""Validation rules: each returns None or a Rejection a caller can be told."""
import datetime as dt
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings, strategies as st

from readings_store import rules
from readings_store.models import Region
from readings_store.service import history_time

UTC = dt.timezone.utc


@pytest.mark.parametrize("text,expected", [("123", D("123")), ("12.5", D("12.5")), ("12,5", D("12.5")), ("007", D("7"))])
def test_parse_value(text, expected):
    assert rules.parse_value(text) == expected


@pytest.mark.parametrize("text", ["", ".", "1.2.3", "abc", "-5", "1e5", "١٢"])
def test_parse_value_rejects(text):
    assert rules.parse_value(text).code == "not_a_number"


def test_fits_digits_and_decimals():
    assert rules.check_fits_meter(D("99999"), 5, 0) is None
    assert rules.check_fits_meter(D("100000"), 5, 0).code == "too_many_digits"
    assert rules.check_fits_meter(D("12.345"), 5, 3) is None
    assert rules.check_fits_meter(D("12.3456"), 5, 3).code == "too_many_decimals"
    assert rules.check_fits_meter(D("12.50"), 5, 1) is None  # trailing zero is not a real decimal
    assert rules.check_fits_meter(D("12.5"), 5, 0).code == "too_many_decimals"


def test_not_below_previous_and_rollover():
    assert rules.check_not_below_previous(D("500"), None, 5) is None
    assert rules.check_not_below_previous(D("500"), D("500"), 5) is None
    assert rules.check_not_below_previous(D("499"), D("500"), 5).code == "below_previous"
    # 99 950 → 00 030 on a 5-digit dial: rolled over, 80 units used
    assert rules.check_not_below_previous(D("30"), D("99950"), 5) is None
    assert rules.consumption(D("99950"), D("30"), 5) == D("80")
    # a drop from the middle of the dial is not a roll-over
    assert rules.check_not_below_previous(D("30"), D("50000"), 5).code == "below_previous"
    # edges of the roll-over zone
    assert rules.consumption(D("90000"), D("9999"), 5) == D("19999")
    assert rules.consumption(D("89999"), D("9999"), 5) is None
    assert rules.consumption(D("90000"), D("10000"), 5) is None


def test_daily_consumption_limit():
    now = dt.datetime(2026, 11, 20, 12, tzinfo=UTC)
    ten_days = now - dt.timedelta(days=10)
    assert rules.check_daily_consumption(D("2000"), D("1000"), ten_days, now, 6, D("100")) is None
    assert rules.check_daily_consumption(D("2001"), D("1000"), ten_days, now, 6, D("100")).code == "implausible_consumption"
    # same day: judged against one day's limit
    assert rules.check_daily_consumption(D("1100"), D("1000"), now, now, 6, D("100")) is None
    assert rules.check_daily_consumption(D("1101"), D("1000"), now, now, 6, D("100")).code == "implausible_consumption"
    # across a roll-over
    assert rules.check_daily_consumption(D("50"), D("99990"), ten_days, now, 5, D("10")) is None
    assert rules.check_daily_consumption(D("50"), D("99990"), now, now, 5, D("10")).code == "implausible_consumption"
    assert rules.check_daily_consumption(D("5"), None, None, now, 5, D("1")) is None


@pytest.mark.parametrize("date,window,period,inside", [
    (dt.date(2026, 11, 15), None, "2026-11", True),
    (dt.date(2026, 11, 20), (20, 25), "2026-11", True),
    (dt.date(2026, 11, 25), (20, 25), "2026-11", True),
    (dt.date(2026, 11, 19), (20, 25), "2026-11", False),
    (dt.date(2026, 11, 26), (20, 25), "2026-12", False),
    # wrapping window 25..3: the 2nd of December still closes November
    (dt.date(2026, 12, 2), (25, 3), "2026-11", True),
    (dt.date(2026, 12, 3), (25, 3), "2026-11", True),
    (dt.date(2026, 12, 4), (25, 3), "2026-12", False),
    (dt.date(2026, 11, 25), (25, 3), "2026-11", True),
    (dt.date(2026, 11, 24), (25, 3), "2026-11", False),
    (dt.date(2026, 12, 31), (25, 3), "2026-12", True),
    (dt.date(2027, 1, 1), (25, 3), "2026-12", True),
    # a window on the 31st in a 30-day month closes on the 30th
    (dt.date(2026, 11, 30), (28, 31), "2026-11", True),
    (dt.date(2026, 2, 28), (28, 31), "2026-02", True),
])
def test_billing_period(date, window, period, inside):
    decision = rules.billing_period(date, window)
    assert (decision.period, decision.in_window) == (period, inside)


# --- every day of every month: the period rule, its window dates and the history time agree --------

_windows = st.one_of(st.none(), st.tuples(st.integers(1, 31), st.integers(1, 31)))


@settings(max_examples=400, deadline=None)
@given(day=st.dates(dt.date(2020, 1, 1), dt.date(2035, 12, 31)), window=_windows)
def test_a_day_in_its_periods_window_or_before_it(day, window):
    decision = rules.billing_period(day, window)
    opens, closes = rules.window_dates(decision.period, window)
    if decision.in_window:
        assert opens <= day <= closes
    else:  # kept for the next window to open
        assert day < opens
        assert rules.billing_period(opens, window) == rules.PeriodDecision(decision.period, True)


@settings(max_examples=300, deadline=None)
@given(moment=st.datetimes(dt.datetime(2020, 1, 1), dt.datetime(2035, 12, 31), timezones=st.just(dt.timezone.utc)),
       window=_windows, zone=st.sampled_from(["Europe/Chisinau", "Europe/Kyiv", "Asia/Novosibirsk", "UTC"]),
       days_ago=st.integers(1, 60))
def test_history_is_always_in_an_earlier_period_than_now(moment, window, zone, days_ago):
    region = Region(timezone=zone)
    taken, period = history_time(region, window, moment, days_ago)
    now_period = rules.billing_period(moment.astimezone(ZoneInfo(zone)).date(), window).period
    assert taken <= moment - dt.timedelta(days=days_ago)
    assert period < now_period
    assert period == rules.billing_period(taken.astimezone(ZoneInfo(zone)).date(), window).period


def test_shift_period_crosses_years():
    assert rules.shift_period("2026-01", -1) == "2025-12"
    assert rules.shift_period("2026-12", 1) == "2027-01"
    assert rules.shift_period("2026-03", -14) == "2025-01"
