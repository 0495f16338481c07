"""Migration 0018_export_head: on PostgreSQL the readings already there get their export head (the
pages then read the texts Python would write), the triggers keep it from then on; and back, leaving no
column, function or trigger behind. On SQLite it changes nothing."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from alembic import command
from sqlalchemy import inspect, insert, text

from readings_store import export
from readings_store.db import alembic_config, make_engine, make_session_factory, upgrade
from readings_store.models import Reading
from tests import factories as f
from tests.store.test_export_documents import reference

pytestmark = pytest.mark.db

AT = dt.datetime(2026, 10, 24, 22, 30, 0, 5, tzinfo=dt.timezone.utc)
EVERY = export.ReadingFilter(statuses=("accepted", "superseded"))


def _objects(engine) -> set[str]:
    if engine.dialect.name != "postgresql":
        return set()
    with engine.connect() as conn:
        return set(conn.scalars(text("SELECT tgname FROM pg_trigger WHERE tgname LIKE '%export_head%' UNION ALL "
                                     "SELECT proname FROM pg_proc WHERE proname LIKE '%export_head%'")))


def test_migration_writes_the_heads_of_the_readings_already_there_and_goes_back(empty_database_url):
    url = empty_database_url
    upgrade(url, "0017_day_counts")
    engine = make_engine(url)
    with make_session_factory(engine)() as db:  # rows of 0017's tables
        meter = f.meter(db, f.account(db, f.region(db, code="R\"1"), number="100 200"), serial="EL\\1")
        db.execute(insert(Reading), [{"meter_id": meter.id, "register": ("total", "day")[n % 2],
                                      "value": Decimal(f"{n}.{n}0"), "period": "2026-10", "channel": "sms",
                                      "taken_at": AT + dt.timedelta(minutes=n), "received_at": AT,
                                      "status": ("accepted", "superseded")[n % 2]} for n in range(12)])
        db.commit()
    upgrade(url, "0018_export_head")
    with make_session_factory(engine)() as db:
        after, _, _ = export.list_readings(db, EVERY, limit=100)
        assert after == [reference(r) for r in db.query(Reading).order_by(Reading.id)]
    columns = {c["name"] for c in inspect(engine).get_columns("readings")}
    postgres = engine.dialect.name == "postgresql"
    assert ("export_head" in columns) == postgres
    kept = {"readings_export_head", "readings_export_head_kept",
            *(f"{table}_export_heads{part}" for table in ("meters", "accounts", "regions") for part in ("", "_kept"))}
    assert _objects(engine) == (kept if postgres else set())
    command.downgrade(alembic_config(url), "0017_day_counts")
    engine.dispose()
    engine = make_engine(url)
    assert "export_head" not in {c["name"] for c in inspect(engine).get_columns("readings")}
    assert _objects(engine) == set()
    engine.dispose()
