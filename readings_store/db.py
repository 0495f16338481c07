"""Engine, sessions and Alembic migrations (``ivr db upgrade``)."""
from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
import time
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str, **kwargs) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1].split("?", 1)[0] if "///" in url else ""
        on_disk = bool(path) and path != ":memory:" and not path.startswith("file:")
        if on_disk:
            create_private_file(Path(path))
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S}, **kwargs)
        if on_disk:
            SqliteWriteLock(engine, Path(path))

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            # WAL lets several worker processes read while one writes.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
            cur.close()
            # SQLite's lower() knows only ASCII: names in Cyrillic or with diacritics are compared
            # case-insensitively through Python's casefold (PostgreSQL has ILIKE).
            dbapi_conn.create_function("casefold", 1, _casefold, deterministic=True)

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    # An unreachable server must fail fast: Twilio waits 15 s for a webhook's answer.
    kwargs.setdefault("connect_args", {"connect_timeout": 5})
    # No ping before each checkout (a round trip per request): a connection found dead by its
    # first statement invalidates the pool, and the web app serves that request again once
    # (``ivr.app.IvrFlask``).
    return create_engine(url, pool_pre_ping=False, **kwargs)


SQLITE_BUSY_TIMEOUT_S = 30
_READS = ("SELECT", "PRAGMA", "EXPLAIN")
# One lock per database file and process, whichever engine writes to it.
_PROCESS_LOCKS: dict[Path, threading.Lock] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()


def _process_lock(path: Path) -> threading.Lock:
    with _PROCESS_LOCKS_GUARD:
        return _PROCESS_LOCKS.setdefault(path, threading.Lock())


# A forked worker starts with locks of its own (the parent's could be held by a thread it does not have).
os.register_at_fork(after_in_child=_PROCESS_LOCKS.clear)


def _locked(statement: str) -> OperationalError:
    """What SQLite's own lock gives after its busy timeout, as SQLAlchemy wraps it."""
    return OperationalError(statement, None, sqlite3.OperationalError("database is locked (waited for the write lock)"))


class SqliteWriteLock:
    """Writers to one SQLite file queue on a lock file beside it (``flock``), each connection
    from its first write until its transaction ends, so that a writer starts as soon as the one
    before it is done. SQLite itself has one writer at a time too, but a writer that finds the
    database locked sleeps in growing steps (up to 100 ms) before it tries again: with several
    workers and threads, a webhook could wait a second for a lock that was free after a few ms.
    Readers never take it (WAL: they do not wait for the writer). Taken with the same deadline
    as SQLite's own (``SQLITE_BUSY_TIMEOUT_S``); released when the transaction commits or rolls
    back, or its connection is reset, closed or invalidated."""

    POLL_S = 0.0005

    def __init__(self, engine: Engine, database: Path):
        self.path = database.with_name(database.name + ".writelock")
        self.key = self.path.resolve()
        event.listen(engine, "before_cursor_execute", self._before_execute)
        for name in ("commit", "rollback"):
            event.listen(engine, name, self._transaction_end)
        event.listen(engine.pool, "reset", self._connection_reset)
        event.listen(engine.pool, "close", self._connection_closed)
        event.listen(engine.pool, "invalidate", self._connection_invalidated)

    def _before_execute(self, conn, _cursor, statement, *_args):
        info = conn.connection.info
        if "ivr_write_lock" in info or statement.lstrip()[:7].upper().startswith(_READS):
            return
        deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
        # The threads of a process queue on a lock of the process (woken at once, no polling);
        # the one at the head of the queue takes the file lock, which other processes hold at times.
        in_process = _process_lock(self.key)
        if not in_process.acquire(timeout=SQLITE_BUSY_TIMEOUT_S):
            raise _locked(statement)
        try:
            fd = info.get("ivr_write_lock_fd")
            if fd is None:
                fd = info["ivr_write_lock_fd"] = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise _locked(statement) from None
                    time.sleep(self.POLL_S)
        except BaseException:
            in_process.release()
            raise
        info["ivr_write_lock"] = in_process

    @staticmethod
    def _release(info) -> None:
        in_process = info.pop("ivr_write_lock", None)
        if in_process is not None:
            fcntl.flock(info["ivr_write_lock_fd"], fcntl.LOCK_UN)
            in_process.release()

    def _transaction_end(self, conn):
        if not conn.invalidated:  # an invalidated connection gave the lock back then
            self._release(conn.connection.info)

    def _connection_reset(self, dbapi_connection, connection_record, reset_state):
        self._release(connection_record.info)

    def _connection_closed(self, dbapi_connection, connection_record):
        self._release(connection_record.info)
        fd = connection_record.info.pop("ivr_write_lock_fd", None)
        if fd is not None:
            os.close(fd)

    def _connection_invalidated(self, dbapi_connection, connection_record, exception):
        self._connection_closed(dbapi_connection, connection_record)


def _casefold(text):
    return text.casefold() if isinstance(text, str) else text


def create_private_file(path: Path) -> None:
    """Create the SQLite file (and its folder) readable by its owner only, before SQLite does with
    the umask's 0644: it holds callers' numbers and readings. SQLite gives its -wal and -shm files
    the database file's mode. An existing file is left as it is."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def is_current(engine: Engine) -> bool:
    """True when the schema has been migrated (the app refuses to start on an empty database)."""
    return inspect(engine).has_table("alembic_version")


@contextlib.contextmanager
def transaction(factory: sessionmaker[Session]):
    """A session committed on success, rolled back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextlib.contextmanager
def scratch_postgres_database(server_url: str, prefix: str = "ivr_scratch"):
    """A new, empty PostgreSQL database beside the one *server_url* names (its URL is yielded),
    dropped afterwards even while connections remain: for tests and benchmarks."""
    import uuid

    from sqlalchemy import text

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server_url.replace("postgresql://", "postgresql+psycopg://", 1),
                          isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield server_url.rsplit("/", 1)[0] + "/" + name
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
