"""Phone numbers in E.164 form (``+37369123456``), the one form every table stores them in: the
caller of a call, the sender of a text, the numbers on file for an account, an operator line.
Every channel (Twilio's parameters, the console's search, the account import, the settings)
normalises through ``e164`` here, so that the same number is always the same string.
"""
from __future__ import annotations

import phonenumbers

# Longer than any phone number however it is written: anything longer is refused before parsing.
MAX_LENGTH = 32


def parse(text: str | None, default_region: str | None = None, *,
          valid: bool = False) -> phonenumbers.PhoneNumber | None:
    """The number in ``text``, or None when it is none. International (``+…`` or ``00…``), else
    national in ``default_region`` (an ISO country code; None: national numbers are refused).
    ``valid=False`` takes any number of a possible length for its country, as a caller ID from
    Twilio may be; ``valid=True`` wants a number in an assigned range, as billing's records and the
    settings an operator types should be."""
    text = (text or "").strip()
    if not text or len(text) > MAX_LENGTH:
        return None
    if text.startswith("00"):
        text = "+" + text[2:]
    if not text.startswith("+") and default_region is None:
        return None
    try:
        number = phonenumbers.parse(text, None if text.startswith("+") else default_region)
    except phonenumbers.NumberParseException:
        return None
    ok = phonenumbers.is_valid_number(number) if valid else phonenumbers.is_possible_number(number)
    return number if ok else None


def e164(text: str | None, default_region: str | None = None, *, valid: bool = False) -> str | None:
    """``text`` in E.164 form, or None (see ``parse``)."""
    number = parse(text, default_region, valid=valid)
    return None if number is None else phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def country(e164_number: str) -> str | None:
    """The ISO country of a number in E.164 form (``MD``), or None when no country has its code."""
    number = parse(e164_number)
    return None if number is None else phonenumbers.region_code_for_number(number)


def country_code(e164_number: str) -> int | None:
    """The calling code of a number in E.164 form (373), or None."""
    number = parse(e164_number)
    return None if number is None else number.country_code
