"""Recordings kept no longer than needed: `ivr recordings purge` deletes a call's recordings
IVR_RECORDINGS_KEEP_DAYS after its last review item is decided or, for a call without one, after
the call; nothing else. Every date is pinned (the product's clock and explicit `now`)."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from ivr.calls import store_audio
from ivr.cli import cli
from ivr.ops.recordings import purge
from readings_store import clock, retention
from readings_store.models import AuditEvent, Call, ReviewTask, Utterance
from tests import factories as f

NOW = dt.datetime(2031, 5, 14, 10, 0, tzinfo=dt.timezone.utc)
KEEP = 90


def days_before(days: float) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


class Calls:
    """Calls with recordings on disk, each dated and reviewed as a test needs."""

    def __init__(self, db, root: Path):
        self.db, self.root = db, root
        self.region = f.region(db)
        self.count = 0

    def call(self, ended_days_ago: float | None, *, started_days_ago: float | None = None, answers: int = 2,
             items: tuple = ()) -> Call:
        """``items``: per review item, None (open) or the days ago it was decided."""
        self.count += 1
        started = days_before(started_days_ago if started_days_ago is not None else ended_days_ago)
        call = Call(call_sid=f"CA{self.count:032x}", from_number="+37369000001", language="en",
                    region_id=self.region.id, started_at=started,
                    ended_at=days_before(ended_days_ago) if ended_days_ago is not None else None)
        self.db.add(call)
        self.db.flush()
        for i in range(answers):
            path = store_audio(self.root, call.call_sid, f"{i:03d}-value.wav", b"RIFF-audio")
            self.db.add(Utterance(call_id=call.id, step="value", engine="vosk", audio_path=path,
                                  created_at=started + dt.timedelta(seconds=10 * i)))
        for decided in items:
            self.db.add(ReviewTask(kind="identification", reason="account_not_found", region_id=self.region.id,
                                   call_id=call.id, created_at=started, status="open" if decided is None else "done",
                                   resolved_at=None if decided is None else days_before(decided),
                                   resolution=None if decided is None else "closed"))
        self.db.commit()
        return call

    def files(self, call: Call) -> list[str]:
        folder = self.root / call.call_sid
        return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.fixture
def calls(db, config):
    return Calls(db, Path(config.recordings_dir))


def _kept(db, call) -> list:
    db.expire_all()
    return db.scalars(select(Utterance.audio_path).where(Utterance.call_id == call.id,
                                                         Utterance.audio_path.is_not(None))).all()


def test_only_what_is_due_is_deleted(calls, db, sessions, config):
    due_after_call = calls.call(ended_days_ago=KEEP + 1)
    recent_call = calls.call(ended_days_ago=KEEP - 1)
    never_ended = calls.call(ended_days_ago=None, started_days_ago=KEEP + 0.5)
    open_item = calls.call(ended_days_ago=400, items=(None,))
    decided_long_ago = calls.call(ended_days_ago=300, items=(KEEP + 2,))
    decided_lately = calls.call(ended_days_ago=300, items=(10,))
    one_of_two_decided_lately = calls.call(ended_days_ago=300, items=(200, KEEP - 5))
    one_open_of_two = calls.call(ended_days_ago=300, items=(200, None))

    done = purge(sessions, Path(config.recordings_dir), KEEP, now=NOW)

    assert (done.calls, done.recordings) == (3, 6)
    for call in (due_after_call, never_ended, decided_long_ago):
        assert calls.files(call) == [] and _kept(db, call) == []
        deleted = db.scalars(select(Utterance.audio_deleted_at).where(Utterance.call_id == call.id)).all()
        assert deleted == [NOW, NOW]
        assert not (Path(config.recordings_dir) / call.call_sid).exists()  # the call's folder goes too
    for call in (recent_call, open_item, decided_lately, one_of_two_decided_lately, one_open_of_two):
        assert calls.files(call) == ["000-value.wav", "001-value.wav"] and len(_kept(db, call)) == 2
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "recordings.purge")).one()
    assert event.after == {"calls": 3, "recordings": 6, "keep_days": KEEP}
    # Running again finds nothing more; the recent call is due a day later, not before.
    assert purge(sessions, Path(config.recordings_dir), KEEP, now=NOW).recordings == 0
    assert purge(sessions, Path(config.recordings_dir), KEEP, now=NOW + dt.timedelta(hours=23)).recordings == 0
    later = purge(sessions, Path(config.recordings_dir), KEEP, now=NOW + dt.timedelta(days=1, minutes=1))
    assert later.calls == 1 and calls.files(recent_call) == []


def test_deletion_time_follows_the_last_decision(calls, db):
    call = calls.call(ended_days_ago=300, items=(250, None))
    assert retention.deletion_time(db, call, KEEP) is None  # an open item keeps every recording of the call
    task = db.scalars(select(ReviewTask).where(ReviewTask.call_id == call.id, ReviewTask.status == "open")).one()
    task.status, task.resolved_at, task.resolution = "done", days_before(3), "closed"
    db.commit()
    assert retention.deletion_time(db, call, KEEP) == days_before(3) + dt.timedelta(days=KEEP)
    plain = calls.call(ended_days_ago=5)
    assert retention.deletion_time(db, plain, 30) == days_before(5) + dt.timedelta(days=30)


def test_a_file_already_gone_or_outside_the_folder_is_still_marked_deleted(calls, db, sessions, config, tmp_path):
    call = calls.call(ended_days_ago=KEEP + 1)
    utterances = db.scalars(select(Utterance).where(Utterance.call_id == call.id).order_by(Utterance.id)).all()
    (Path(config.recordings_dir) / utterances[0].audio_path).unlink()
    outside = tmp_path / "elsewhere.wav"
    outside.write_bytes(b"not ours")
    utterances[1].audio_path = "../../elsewhere.wav"
    db.commit()
    assert purge(sessions, Path(config.recordings_dir), KEEP, now=NOW).recordings == 2
    assert _kept(db, call) == [] and outside.exists()


def test_the_command_uses_the_setting_and_the_products_clock(calls, db, config, monkeypatch):
    kept = calls.call(ended_days_ago=20)
    due = calls.call(ended_days_ago=40)
    monkeypatch.setenv("IVR_DATABASE_URL", config.database_url)
    monkeypatch.setenv("IVR_RECORDINGS_DIR", str(config.recordings_dir))
    monkeypatch.setenv("IVR_RECORDINGS_KEEP_DAYS", "30")
    runner = CliRunner()
    with clock.travel_to(NOW, frozen=True):
        dry = runner.invoke(cli, ["recordings", "purge", "--dry-run"])
        assert dry.exit_code == 0, dry.output
        assert dry.output.strip() == "2 recording(s) of 1 call(s) due (kept 30 days after the decision or the call)"
        assert calls.files(due) == ["000-value.wav", "001-value.wav"]
        result = runner.invoke(cli, ["recordings", "purge"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "2 recording(s) of 1 call(s) deleted (kept 30 days after the decision or the call)"
    assert calls.files(due) == [] and calls.files(kept) == ["000-value.wav", "001-value.wav"]
    monkeypatch.setenv("IVR_RECORDINGS_KEEP_DAYS", "0")
    result = runner.invoke(cli, ["recordings", "purge"])
    assert result.exit_code != 0
    assert "IVR_RECORDINGS_KEEP_DAYS must be an integer from 1 to 3650" in str(result.exception)
    assert calls.files(kept) == ["000-value.wav", "001-value.wav"]


def test_the_timer_runs_the_purge():
    unit = (Path(__file__).resolve().parents[2] / "deploy" / "ivr-sms.service").read_text()
    assert "ExecStart=-/opt/ivr/venv/bin/ivr recordings purge" in unit
