"""Callers' recordings on disk: where a stored one is, and deleting them when they are no longer
needed (``IVR_RECORDINGS_KEEP_DAYS``, the rule in ``readings_store.retention``) or when a caller's
number is erased (``ivr privacy erase``). The organisation's name a company's caller recorded is one
of them (an ``Utterance`` of the ``org_name`` question): kept, deleted and erased alike.

A file is deleted before the transaction that records its deletion commits: if the commit fails,
the next run finds the utterance still pointing at it and finishes the job, so a recording is never
left on disk with nothing in the records saying it is there.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from readings_store import retention
from readings_store.models import Call, Utterance, utcnow
from readings_store.service import audit

from ivr.dialog.state import Step

log = logging.getLogger(__name__)


def recording_file(root: Path, stored: str) -> Path | None:
    """The file of an utterance's ``audio_path``, only if it lies inside the recordings folder."""
    root = Path(root).resolve()
    candidate = Path(stored)
    candidate = (candidate if candidate.is_absolute() else root / candidate).resolve()
    if not candidate.is_relative_to(root):
        return None
    return candidate


def org_names(session: Session, call_ids) -> dict[int, Utterance]:
    """The organisation's name each of the calls recorded (its last), by call id: the recording may
    be gone since (``audio_path`` None)."""
    ids = sorted({i for i in call_ids if i is not None})
    if not ids:
        return {}
    rows = session.scalars(select(Utterance).where(Utterance.call_id.in_(ids), Utterance.step == Step.ORG_NAME.value)
                           .order_by(Utterance.id))
    return {u.call_id: u for u in rows}


def delete_audio(root: Path, utterances: Iterable[Utterance], now: dt.datetime) -> int:
    """Delete the utterances' audio files and mark them deleted (the caller commits). Returns how
    many recordings there were."""
    count = 0
    for utterance in utterances:
        if utterance.audio_path is None:
            continue
        path = recording_file(root, utterance.audio_path)
        if path is None:
            log.warning("recording of utterance %s lies outside the recordings folder; not deleted from disk",
                        utterance.id)
        else:
            path.unlink(missing_ok=True)
            try:
                path.parent.rmdir()  # the call's folder, once its last recording is gone
            except OSError:
                pass
        utterance.audio_path = None
        utterance.audio_deleted_at = now
        count += 1
    return count


@dataclass
class Purged:
    calls: int = 0
    recordings: int = 0


def purge(sessions: sessionmaker[Session], root: Path, keep_days: int, *, now: dt.datetime | None = None,
          dry_run: bool = False) -> Purged:
    """Delete every recording that is due (``retention``), one call per transaction."""
    now = now or utcnow()
    done = Purged()
    with sessions() as session:
        call_ids = [call.id for call in retention.calls_due(session, keep_days, now)]
    for call_id in call_ids:
        with sessions() as session:
            call = session.get(Call, call_id)
            due = retention.deletion_time(session, call, keep_days)
            if due is None or due > now:  # an item was reopened meanwhile
                continue
            kept = retention.kept_recordings(session, call)
            done.calls += 1
            if dry_run:
                done.recordings += len(kept)
                continue
            done.recordings += delete_audio(root, kept, now)
            session.commit()
    if done.recordings and not dry_run:
        with sessions() as session:
            audit(session, actor_kind="system", action="recordings.purge", entity="call", entity_id=None,
                  after={"calls": done.calls, "recordings": done.recordings, "keep_days": keep_days})
            session.commit()
    return done

