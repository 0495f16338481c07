"""One E.164 normaliser for every channel (readings_store.phones)."""
import pytest

from readings_store import phones


@pytest.mark.parametrize("typed, region, expected", [
    ("+37369123456", None, "+37369123456"),
    (" 0037369123456 ", None, "+37369123456"),  # 00 is the international prefix
    ("069 123 456", "MD", "+37369123456"),  # national, with the console's country
    ("069 123 456", None, None),  # national without a country: not a number we can store
    ("+1", None, None),
    ("", None, None),
    (None, None, None),
    ("+" + "1" * 40, None, None),  # longer than any number
    ("call me", None, None),
])
def test_e164(typed, region, expected):
    assert phones.e164(typed, region) == expected


def test_valid_wants_an_assigned_range_possible_only_a_length():
    unassigned = "+37300000000"  # a possible length for Moldova, in no assigned range
    assert phones.e164(unassigned) == unassigned
    assert phones.e164(unassigned, valid=True) is None
    assert phones.e164("+37369123456", valid=True) == "+37369123456"


def test_country_of_a_number():
    assert phones.country("+37369123456") == "MD"
    assert phones.country_code("+37369123456") == 373
    assert phones.country_code("not a number") is None
