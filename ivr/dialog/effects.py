"""What a turn wants written. The engine decides everything by reading the ``Records`` port; these
are the writes that follow from its decision, persisted by the turn service in the same
transaction as the turn itself (so a turn is written whole, or not at all)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SaveReading:
    """Store a reading with the status the engine decided (``pending_review`` opens a review task
    with ``reason``); it supersedes older readings of its meter, register and billing period, and
    a value read back earlier in the call and now saved no longer counts as refused."""

    meter_id: int
    register: str
    value: str
    status: str  # accepted | pending_review
    reason: str | None
    key: str  # idempotency key: "<CallSid>:<turn>"
    utterance_id: int | None


@dataclass(frozen=True)
class NoteRefusal:
    """Count a value refused by the rule ``code``, or read back (``not_confirmed``)."""

    meter_id: int
    register: str
    value: str
    code: str


@dataclass(frozen=True)
class ReportFailedIdentification:
    """Open an identification review task: the account numbers the caller gave were not found,
    not understood, or not confirmed at the read-back; ``utterances`` names every spoken answer
    given to the account question, so an operator can listen to each."""

    region_id: int | None
    attempts: tuple[str, ...]
    utterance_id: int | None
    utterances: tuple[int, ...] = ()
