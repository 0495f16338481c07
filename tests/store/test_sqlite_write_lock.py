"""SQLite writers queue on a lock file (``readings_store.db.SqliteWriteLock``): a writer waits for
the one before it without SQLite's growing sleeps, readers never wait, and the lock is given back
however a transaction ends."""
from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from readings_store import db as store_db
from readings_store.db import make_engine


ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sqlite_path(tmp_path):
    path = tmp_path / "locks.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)"))
        conn.execute(text("INSERT INTO t (id, v) VALUES (1, 0)"))
    engine.dispose()
    return path


@pytest.fixture
def engine(sqlite_path):
    engine = make_engine(f"sqlite:///{sqlite_path}")
    yield engine
    engine.dispose()


def lock_is_free(path: Path) -> bool:
    fd = os.open(f"{path}.writelock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing the descriptor lets go of the lock taken through it
    return True


def test_a_second_writer_waits_for_the_first_to_commit_and_readers_do_not(engine, sqlite_path):
    events: list[str] = []
    first_wrote, second_started = threading.Event(), threading.Event()

    def first():
        with engine.begin() as conn:
            conn.execute(text("UPDATE t SET v = 1 WHERE id = 1"))
            first_wrote.set()
            second_started.wait(5)
            time.sleep(0.2)  # the second writer is waiting meanwhile
            # A reader on another connection is not held up by the writer.
            with engine.connect() as reader:
                events.append(f"read {reader.scalar(text('SELECT v FROM t WHERE id = 1'))}")
            events.append("first commits")

    def second():
        first_wrote.wait(5)
        second_started.set()
        with engine.begin() as conn:
            conn.execute(text("UPDATE t SET v = v + 10 WHERE id = 1"))
            events.append("second wrote")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert events == ["read 0", "first commits", "second wrote"]
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT v FROM t WHERE id = 1")) == 11
    assert lock_is_free(sqlite_path)


@pytest.mark.parametrize("end", ["commit", "rollback", "close", "invalidate", "error"])
def test_the_lock_is_given_back_however_the_transaction_ends(engine, sqlite_path, end):
    conn = engine.connect()
    conn.execute(text("UPDATE t SET v = 5 WHERE id = 1"))
    assert not lock_is_free(sqlite_path)
    if end == "commit":
        conn.commit()
    elif end == "rollback":
        conn.rollback()
    elif end == "invalidate":
        conn.invalidate()
        conn.rollback()
    elif end == "error":
        with pytest.raises(OperationalError):
            conn.execute(text("INSERT INTO no_such_table VALUES (1)"))
        conn.rollback()
    conn.close()  # "close": returned to the pool with its transaction open (the pool rolls it back)
    assert lock_is_free(sqlite_path)
    # And the next writer writes at once.
    with engine.begin() as other:
        other.execute(text("UPDATE t SET v = 7 WHERE id = 1"))


def test_reads_take_no_lock(engine, sqlite_path):
    with engine.connect() as conn:
        conn.execute(text("SELECT v FROM t"))
        assert lock_is_free(sqlite_path)


def test_a_writer_in_another_process_holds_us_until_it_commits(engine, sqlite_path):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from sqlalchemy import text\n"
         "from readings_store.db import make_engine\n"
         f"engine = make_engine('sqlite:///{sqlite_path}')\n"
         "with engine.begin() as conn:\n"
         "    conn.execute(text('UPDATE t SET v = 100 WHERE id = 1'))\n"
         "    print('holding', flush=True)\n"
         "    time.sleep(0.5)\n"
         "    conn.execute(text('UPDATE t SET v = v + 1 WHERE id = 1'))\n"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout.readline().strip() == "holding"
        with engine.begin() as conn:
            # Waits for the other process's transaction, then sees what it committed.
            conn.execute(text("UPDATE t SET v = v * 2 WHERE id = 1"))
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT v FROM t WHERE id = 1")) == 202
    finally:
        assert holder.wait(30) == 0


def test_a_writer_that_waits_past_the_deadline_gets_a_clear_error(engine, sqlite_path, monkeypatch):
    monkeypatch.setattr(store_db, "SQLITE_BUSY_TIMEOUT_S", 0.3)
    holder = engine.connect()
    holder.execute(text("UPDATE t SET v = 1 WHERE id = 1"))
    waited = {}

    def other_thread():
        with engine.connect() as conn:
            try:
                conn.execute(text("UPDATE t SET v = 2 WHERE id = 1"))
            except OperationalError as error:
                waited["error"] = str(error)

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join(10)
    holder.rollback()
    holder.close()
    assert "database is locked" in waited["error"]
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT v FROM t WHERE id = 1")) == 0
    assert lock_is_free(sqlite_path)
