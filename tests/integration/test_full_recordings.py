"""A recordings volume that is full takes the answer without its audio (keys keep working, the
reading is stored) and shows in /healthz; a database that cannot write fails /healthz.

The full volume is ``FakeFullDisk``: a fake of ``os.open`` that refuses to create any file under
the recordings folder with ``OSError(ENOSPC)``, as the kernel does when the volume has no space
left; every other file opens as usual."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from sqlalchemy import event, select

from ivr.app import create_app
from ivr.voice.recording_fetch import RecordingUnavailable
from readings_store.db import make_engine
from readings_store.models import Utterance

from .test_speech_calls import (fake, fetch, records, speech_client, speech_config,  # noqa: F401 - fixtures
                                dial, rec, recording_params, say, stored, to_account)


class FakeFullDisk:
    """``os.open`` on a full volume: creating a file under ``root`` fails with ENOSPC."""

    def __init__(self, root: Path):
        self.root = Path(root).resolve()
        self.real = os.open
        self.refused: list[str] = []

    def __call__(self, path, flags, mode=0o777, *, dir_fd=None):
        target = Path(path).resolve()
        if flags & os.O_CREAT and (target == self.root or self.root in target.parents):
            self.refused.append(str(target))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return self.real(path, flags, mode, dir_fd=dir_fd)


@pytest.fixture
def full_disk(speech_config, monkeypatch):
    disk = FakeFullDisk(speech_config.recordings_dir)
    monkeypatch.setattr(os, "open", disk)
    return disk


def test_a_spoken_answer_is_taken_without_its_audio_and_a_keypad_reading_still_saves(
        db, records, dial, fake, speech_config, full_disk, caplog):  # noqa: F811
    call = dial()
    to_account(call)
    p = say(call, fake, rec("one zero zero zero zero one"))  # recorded, recognised: its audio has no room
    assert "/voice/step/value" in p.gather["action"]
    [utterance] = db.scalars(select(Utterance)).all()
    assert utterance.parsed_value == "100001" and utterance.audio_path is None
    assert full_disk.refused and "recordings folder" in caplog.text and "is full" in caplog.text
    call.press("12100#")  # the value by keypad
    assert "Reading saved." in call.press("1").texts
    assert stored(db) == [("EL000123", "total", "12100", "accepted", "phone_keypad")]
    assert not list(Path(speech_config.recordings_dir).rglob("*.wav"))  # no partial file left behind


def test_a_recording_attached_late_is_dropped_on_a_full_volume(db, records, dial, fake, fetch, full_disk):  # noqa: F811
    call = dial()
    to_account(call)
    fetch.fail = RecordingUnavailable("not yet")
    params = recording_params()
    call._follow(call.last.gather["action"], params)  # noqa: SLF001 - not understood: no audio yet
    fetch.fail = None
    status, _ = call.post("http://localhost/voice/recording-status",
                          {**params, "RecordingStatus": "completed"})
    assert status == 204
    assert db.scalars(select(Utterance.audio_path)).all() == [None]


def test_healthz_reports_a_full_recordings_folder(speech_client, full_disk):  # noqa: F811
    r = speech_client.get("/healthz")
    assert r.status_code == 200  # calls go on: the load balancer keeps this server
    assert r.get_json()["status"] == "degraded" and r.get_json()["recordings"] == "full"
    assert speech_client.get("/healthz?strict=1").status_code == 503  # for monitoring


def test_healthz_reports_a_recordings_folder_it_cannot_write(config, engine, tmp_path):
    config.recordings_dir = tmp_path / "not-a-folder"
    config.recordings_dir.write_text("a file where the folder should be")
    r = create_app(config, engine=engine).test_client().get("/healthz")
    assert r.status_code == 200 and r.get_json()["recordings"] == "not writable"
    assert r.get_json()["status"] == "degraded"


def test_healthz_reports_a_healthy_folder_and_writable_database(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert {k: r.get_json()[k] for k in ("status", "database", "recordings", "media_server")} == \
        {"status": "ok", "database": "ok", "recordings": "ok", "media_server": "not used"}
    assert client.get("/healthz?strict=1").status_code == 200


def read_only_engine(url: str):
    """An engine on the same database whose every write is refused: PostgreSQL in read-only
    transactions (a replica would answer the same), SQLite with ``query_only``."""
    if url.startswith("postgresql"):
        return make_engine(url, connect_args={"connect_timeout": 5,
                                              "options": "-c default_transaction_read_only=on"})
    engine = make_engine(url)

    @event.listens_for(engine, "connect")
    def _read_only(dbapi_conn, _record):
        dbapi_conn.execute("PRAGMA query_only = ON")

    return engine


def test_healthz_fails_when_the_database_cannot_write(config, database_url):
    engine = read_only_engine(database_url)
    try:
        r = create_app(config, engine=engine).test_client().get("/healthz")
    finally:
        engine.dispose()
    assert r.status_code == 503
    assert (r.get_json()["status"], r.get_json()["database"]) == ("error", "read-only")
    assert r.get_json()["schema"]  # it could read
