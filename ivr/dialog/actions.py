"""What the engine asks a transport to do. Prompts are keys into ``audio_prompts/<lang>/prompts.json``."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Digits:
    """A number read back digit by digit ("1 2 3 point 4")."""

    value: str


@dataclass(frozen=True)
class Term:
    """A word from the prompt file, e.g. ``utility_gas``, spoken in the call's language."""

    key: str


@dataclass(frozen=True)
class Day:
    """A calendar day said by its day and month ("20 December"), a local day of the region."""

    value: dt.date


@dataclass(frozen=True)
class Hours:
    """When operators take calls, as said to the caller: ISO weekdays ("12345" is Monday to
    Friday) and the start and end of the day ("08:00", "17:00"), in the caller's time zone."""

    days: str
    start: str
    end: str


@dataclass(frozen=True)
class Say:
    key: str
    params: dict = field(default_factory=dict)
    lang: str | None = None  # speak in another language than the call's (language menu)


# ``Ask.expect`` of a question whose answer is a recording kept for operators, not recognised.
RECORDS = "record"


@dataclass(frozen=True)
class Ask:
    """Say the prompts while listening; the answer comes back as an event for ``step``.

    ``expect`` is "choice" (one key), "number" (keys until #), "yes_no" (1/2) or "record" (the
    caller speaks after a tone and the audio is kept, not recognised; keys still answer); ``speech`` names
    the grammar kind to listen with when the call's language has a speech engine, or None;
    ``phrases`` are names only this question offers (regions), heard beside the kind's words.
    """

    step: str
    prompts: tuple[Say, ...]
    expect: str = "choice"
    max_digits: int = 1
    speech: str | None = None
    phrases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Transfer:
    number: str


@dataclass(frozen=True)
class Hangup:
    pass
