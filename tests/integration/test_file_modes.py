"""The SQLite database, callers' recordings and their folders are private to the service's user
(files 0600, folders 0700), whatever the umask."""
from __future__ import annotations

import os
import stat

import pytest
from sqlalchemy import text

from ivr.app import create_app
from ivr.config import ensure_dev_auth_token
from ivr.voice.simulator import SimulatedCall, flask_transport
from ivr.voice.speech_steps import SpeechSteps
from readings_store.db import make_engine, upgrade
from speech.audio import decode_audio
from tests import factories as f
from tests.conftest import AUTH_TOKEN


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def open_umask():
    old = os.umask(0o022)  # the usual default, which would give 0644 files and 0755 folders
    yield
    os.umask(old)


def test_sqlite_database_and_data_dir_are_private(tmp_path, open_umask):
    data = tmp_path / "var"
    db_path = data / "ivr.sqlite3"
    url = f"sqlite:///{db_path}"
    upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:  # WAL mode: -wal and -shm files appear beside the database
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert mode(data) == 0o700
        assert mode(db_path) == 0o600
        for extra in ("-wal", "-shm"):
            side = db_path.with_name(db_path.name + extra)
            if side.exists():
                assert mode(side) == 0o600, extra
        # The file writers queue on (``SqliteWriteLock``) exists once anything was written.
        assert mode(db_path.with_name(db_path.name + ".writelock")) == 0o600
    engine.dispose()
    other = tmp_path / "fresh"
    ensure_dev_auth_token(other)
    assert mode(other) == 0o700 and mode(other / "dev-twilio-auth-token") == 0o600


def test_recordings_and_their_folders_are_private(db, config, engine, tmp_path, open_umask):
    north = f.region(db, code="N", name="North", menu_key=1)
    f.region(db, code="S", name="South", menu_key=2)
    f.meter(db, f.account(db, north, number="100001"), serial="EL000123", previous=1000)
    db.commit()
    config.recordings_dir = tmp_path / "new" / "recordings"
    config.speech_engines = {"en": "vosk", "ru": "vosk", "uk": "vosk", "ro": "twilio"}
    # Not audio: the real decoder refuses it, it is heard as not understood and kept for an operator.
    speech = SpeechSteps(config, fetcher=lambda url: b"not audio at all",
                         recognizer=lambda lang, words, audio: decode_audio(audio))
    app = create_app(config, engine=engine, speech=speech)
    call = SimulatedCall("http://localhost", AUTH_TOKEN, flask_transport(app.test_client()), caller="+442079460000")
    call.start()
    call.press("4")
    call.press("1")
    sid = "RE" + "5" * 32
    call._follow(call.last.gather["action"], {  # noqa: SLF001
        "RecordingUrl": "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/" + sid, "RecordingSid": sid,
        "Digits": "#"})
    folder = config.recordings_dir / call.call_sid
    files = list(folder.iterdir())
    assert len(files) == 1 and files[0].read_bytes() == b"not audio at all"
    assert mode(config.recordings_dir) == 0o700 and mode(folder) == 0o700 and mode(files[0]) == 0o600
