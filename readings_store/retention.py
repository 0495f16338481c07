"""How long a call's recordings are kept: the one rule, for the retention command and the console.

A caller's recorded answers are kept while an operator may need them, and no longer: until
``keep_days`` after the last review item of the call is decided, or, for a call without review
items, ``keep_days`` after the call ended (its start, if its end was never recorded). While any
review item of the call is open, its recordings are kept, however old.
"""
from __future__ import annotations

import datetime as dt
from typing import Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import Call, ReviewTask, Utterance


def deletion_time(session: Session, call: Call, keep_days: int) -> dt.datetime | None:
    """When the call's recordings are due for deletion; None while a review item of it is open."""
    items = session.execute(select(ReviewTask.status, ReviewTask.resolved_at)
                            .where(ReviewTask.call_id == call.id)).all()
    if any(status == "open" or resolved_at is None for status, resolved_at in items):
        return None
    since = max(resolved_at for _, resolved_at in items) if items else (call.ended_at or call.started_at)
    return since + dt.timedelta(days=keep_days)


def calls_due(session: Session, keep_days: int, now: dt.datetime) -> Iterator[Call]:
    """Calls with recordings still kept that are due for deletion at ``now``, oldest first.

    A recording is made during its call, so one made less than ``keep_days`` ago cannot be due: only
    older ones are looked at (an index holds just the kept ones), which keeps a run that finds nothing
    cheap however long the history is."""
    cutoff = now - dt.timedelta(days=keep_days)
    call_ids = session.scalars(
        select(Utterance.call_id).where(Utterance.audio_path.is_not(None), Utterance.created_at <= cutoff)
        .group_by(Utterance.call_id).order_by(Utterance.call_id)
    ).all()
    for call_id in call_ids:
        call = session.get(Call, call_id)
        due = deletion_time(session, call, keep_days)
        if due is not None and due <= now:
            yield call


def kept_recordings(session: Session, call: Call) -> list[Utterance]:
    return list(session.scalars(select(Utterance).where(Utterance.call_id == call.id, Utterance.audio_path.is_not(None))
                                .order_by(Utterance.id)))
