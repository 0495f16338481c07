"""The API's text of a value and a time read straight from SQLite's stored text is the text the
typed path (``decimal_text``, ``iso``) gives for the same value and time."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from readings_store.export import _sqlite_time, _sqlite_value, decimal_text, iso


@pytest.mark.parametrize("value", ["1250.5", "1250.50", "1250.5000", "100", "100.00", "0.000", "0", "12.0345",
                                   "999999.9", "-0.0"])
def test_a_stored_value_reads_as_its_decimal_text(value):
    assert _sqlite_value(format(Decimal(value), "f")) == decimal_text(Decimal(value))


@pytest.mark.parametrize("stored, at", [
    ("2025-01-20 09:00:00.000000", dt.datetime(2025, 1, 20, 9, tzinfo=dt.timezone.utc)),
    ("2025-01-20 09:00:00.123456", dt.datetime(2025, 1, 20, 9, 0, 0, 123456, tzinfo=dt.timezone.utc)),
    ("2025-01-20 09:00:00.000100", dt.datetime(2025, 1, 20, 9, 0, 0, 100, tzinfo=dt.timezone.utc)),
    ("2025-01-20 09:00:00", dt.datetime(2025, 1, 20, 9, tzinfo=dt.timezone.utc)),  # not as SQLAlchemy writes
    ("2025-01-20 11:00:00+02:00", dt.datetime(2025, 1, 20, 9, tzinfo=dt.timezone.utc)),
])
def test_a_stored_time_reads_as_its_iso_text(stored, at):
    assert _sqlite_time(stored) == iso(at)
    assert _sqlite_time(None) is None
