"""Migration 0017_day_counts: the day counts start from the calls and readings already there (one row
per day and key, equal to a count of them), the triggers keep them from then on, the tables and
indexes are as the models describe them; and back, leaving no trigger behind."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import insert, inspect, text

from readings_store import call_figures
from readings_store.db import alembic_config, make_engine, make_session_factory, upgrade
from readings_store.models import Base, Call, Reading
from tests import factories as f
from tests.store.test_day_counts import counted_calls, counted_readings, kept_calls, kept_readings

pytestmark = pytest.mark.db

AT = dt.datetime(2026, 10, 24, 22, 30, tzinfo=dt.timezone.utc)


def test_migration_counts_the_rows_already_there_and_goes_back(empty_database_url):
    url = empty_database_url
    upgrade(url, "0016_org_name")
    engine = make_engine(url)
    figures = call_figures.of_steps([("language", "region", "speech"), ("region", "region", "digits"),
                                     ("region", "account", "digits"), ("account", "transfer", "speech")])
    with make_session_factory(engine)() as db:  # the rows of 0016's tables, written by the models
        meter = f.meter(db, f.account(db, f.region(db)), previous=None)
        db.execute(insert(Call), [{"call_sid": f"CA{n:032d}", "language": ("ro", None)[n % 2],
                                   "region_id": (meter.account.region_id, None)[n % 3 == 0],
                                   "outcome": ("completed", "transferred", None, "hung_up")[n % 4], "state": {},
                                   "steps": [], "started_at": AT + dt.timedelta(minutes=37 * n),
                                   **{c: v * (n % 2) for c, v in figures.items()}} for n in range(40)])
        db.execute(insert(Reading), [{"meter_id": meter.id, "register": "total", "value": Decimal(1), "period": "2026-10",
                                      "received_at": AT + dt.timedelta(minutes=53 * n), "channel": ("sms", "api")[n % 2],
                                      "status": ("accepted", "rejected", "pending_review")[n % 3]} for n in range(40)])
        db.commit()
    upgrade(url, "0017_day_counts")
    with make_session_factory(engine)() as db:
        assert kept_calls(db) == counted_calls(db) and len(counted_calls(db)) > 4
        assert kept_readings(db) == counted_readings(db) and len(counted_readings(db)) > 4
        # One row per day and key, folded; then the triggers append.
        assert db.execute(text("SELECT count(*) FROM call_days WHERE NOT folded")).scalar_one() == 0
        assert db.execute(text("SELECT count(*) FROM call_days")).scalar_one() == len(counted_calls(db))
        db.execute(text("UPDATE calls SET outcome = 'gave_up' WHERE outcome IS NULL"))
        db.execute(text("DELETE FROM readings WHERE channel = 'sms'"))
        db.commit()
        assert kept_calls(db) == counted_calls(db) and kept_readings(db) == counted_readings(db)
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diffs if any(name in repr(d) for name in ("call_days", "reading_days", "ix_calls_unsettled",
                                                                  "ix_review_tasks_resolved",
                                                                  "ix_value_refusals_created_account"))] == []
    command.downgrade(alembic_config(url), "0016_org_name")
    assert not {"call_days", "reading_days"} & set(inspect(engine).get_table_names())
    assert "ix_calls_unsettled" not in {i["name"] for i in inspect(engine).get_indexes("calls")}
    with engine.begin() as conn:  # no trigger is left behind to write to them
        conn.execute(text("UPDATE calls SET outcome = 'completed'"))
        conn.execute(text("UPDATE readings SET status = 'accepted'"))
        conn.execute(text("DELETE FROM readings"))
        conn.execute(text("DELETE FROM calls"))
    engine.dispose()
