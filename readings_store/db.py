"""Engine, sessions and Alembic migrations (``ivr db upgrade``)."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str, **kwargs) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1].split("?", 1)[0] if "///" in url else ""
        if path and path != ":memory:" and not path.startswith("file:"):
            create_private_file(Path(path))
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            # WAL lets several worker processes read while one writes.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
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
