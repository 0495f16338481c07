"""The product's one clock: every "now" in the product comes from ``utcnow()`` here.

Tests and tools move it with ``travel_to`` (time keeps flowing from the chosen instant, so
durations, rate limits and ordering still behave) or stop it with ``freeze``; production code
never calls ``datetime.now`` itself.
"""
from __future__ import annotations

import datetime as dt
import threading
from contextlib import contextmanager
from typing import Iterator

_lock = threading.Lock()
_offset = dt.timedelta(0)
_frozen: dt.datetime | None = None


def _real_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def utcnow() -> dt.datetime:
    """The current instant, timezone-aware UTC."""
    frozen = _frozen
    if frozen is not None:
        return frozen
    return _real_now() + _offset


def _aware(at: dt.datetime) -> dt.datetime:
    if at.tzinfo is None:
        raise ValueError("give the clock an aware datetime (with its time zone), not a naive one")
    return at.astimezone(dt.timezone.utc)


def set_clock(at: dt.datetime | None, *, frozen: bool = False) -> None:
    """Move the clock to ``at`` (None: back to real time). Frozen: it stays there until moved."""
    global _offset, _frozen
    with _lock:
        if at is None:
            _offset, _frozen = dt.timedelta(0), None
        elif frozen:
            _offset, _frozen = dt.timedelta(0), _aware(at)
        else:
            _offset, _frozen = _aware(at) - _real_now(), None


@contextmanager
def travel_to(at: dt.datetime, *, frozen: bool = False) -> Iterator[None]:
    """Within the block, "now" starts at ``at`` (and flows on unless ``frozen``)."""
    global _offset, _frozen
    saved = (_offset, _frozen)
    set_clock(at, frozen=frozen)
    try:
        yield
    finally:
        with _lock:
            _offset, _frozen = saved
