"""Working hours as a caller hears them: in the time zone of the caller's number when it has one."""
from __future__ import annotations

import datetime as dt

import pytest

from ivr.records import serial_tail
from readings_store.models import Region
from readings_store.regions import caller_timezone, hours_in_zone

WINTER = dt.datetime(2026, 1, 14, 12, 0, tzinfo=dt.timezone.utc)
SUMMER = dt.datetime(2026, 7, 14, 12, 0, tzinfo=dt.timezone.utc)


def office(zone="Asia/Novosibirsk", start=dt.time(8), end=dt.time(17), days="12345") -> Region:
    return Region(timezone=zone, work_start=start, work_end=end, work_days=days)


@pytest.mark.parametrize("phone,zone", [
    ("+37369000001", "Europe/Chisinau"), ("+442079460000", "Europe/London"), ("+74951234567", "Europe/Moscow"),
    ("+79131234567", None),  # a Russian mobile: eleven zones
    ("+15551234567", None),  # Etc/Unknown
    (None, None), ("not a number", None),
])
def test_caller_timezone(phone, zone):
    assert caller_timezone(phone) == zone


def test_hours_in_the_regions_own_zone_are_unchanged():
    assert hours_in_zone(office(), "Asia/Novosibirsk", WINTER) == ("12345", dt.time(8), dt.time(17))


def test_hours_move_with_the_callers_clock_and_summer_time():
    # Novosibirsk is UTC+7 all year; Chișinău UTC+2 in winter, UTC+3 in summer
    assert hours_in_zone(office(), "Europe/Chisinau", WINTER) == ("12345", dt.time(3), dt.time(12))
    assert hours_in_zone(office(), "Europe/Chisinau", SUMMER) == ("12345", dt.time(4), dt.time(13))


def test_the_hours_of_the_next_working_day_when_summer_time_starts_in_between():
    # London moves its clocks on Sunday 29 March 2026; Novosibirsk keeps its own
    friday = dt.datetime(2026, 3, 27, 5, 0, tzinfo=dt.timezone.utc)  # Friday, during the office's hours
    friday_evening = dt.datetime(2026, 3, 27, 20, 0, tzinfo=dt.timezone.utc)
    sunday = dt.datetime(2026, 3, 29, 0, 30, tzinfo=dt.timezone.utc)  # before the clocks move
    assert hours_in_zone(office(), "Europe/London", friday) == ("12345", dt.time(1), dt.time(10))
    assert hours_in_zone(office(), "Europe/London", friday_evening) == ("12345", dt.time(2), dt.time(11))
    assert hours_in_zone(office(), "Europe/London", sunday) == ("12345", dt.time(2), dt.time(11))


def test_a_start_on_the_day_before_moves_the_days_back():
    early = office(start=dt.time(6), end=dt.time(15), days="15")  # Monday and Friday
    assert hours_in_zone(early, "Europe/London", WINTER) == ("47", dt.time(23), dt.time(8))


def test_a_start_on_the_next_day_moves_the_days_on():
    late = office(zone="Europe/London", start=dt.time(20), end=dt.time(23), days="7")  # Sunday evening
    assert hours_in_zone(late, "Asia/Novosibirsk", WINTER) == ("1", dt.time(3), dt.time(6))


@pytest.mark.parametrize("serial,tail", [
    ("EL000123", "0123"), ("EL-2024-LC1", "1"), ("12345AB", ""), ("AB-77", "77"), (" W 0042 ", "0042"), ("", ""),
])
def test_a_meter_is_named_by_the_digits_its_serial_ends_in(serial, tail):
    assert serial_tail(serial) == tail
