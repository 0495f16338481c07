"""Migration 0015_volume: each call's dashboard figures counted from the ``call_steps`` rows its
turns wrote, exactly as the turns count them (``readings_store.call_figures``); the indexes the
console counts from and the counts /metrics reads, as the models describe them; and back."""
from __future__ import annotations

import datetime as dt
import random

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from readings_store import call_figures
from readings_store.db import alembic_config, make_engine, upgrade
from readings_store.models import Base
from tests.console.helpers import step_rows
from tests.console.test_dashboard_month import _call_steps

pytestmark = pytest.mark.db

AT = dt.datetime(2026, 11, 3, 9, 0, tzinfo=dt.timezone.utc)
# What later revisions add to those tables (0017_day_counts: the day counts and their indexes).
LATER = ("call_days", "reading_days", "ix_calls_unsettled", "ix_review_tasks_resolved",
         "ix_value_refusals_created_account")


def test_migration_counts_each_calls_steps_as_its_turns_would_and_goes_back(empty_database_url):
    url = empty_database_url
    upgrade(url, "0014")
    engine = make_engine(url)
    rnd = random.Random(15)
    expected = {}
    with engine.begin() as conn:
        for n in range(1, 121):
            entries = [] if n % 17 == 0 else _call_steps(rnd, AT, two_tariff=n % 3 == 0)[0]
            if n == 5:  # a step of something that is not a question, and one that led nowhere
                entries.append({"at": AT.isoformat(), "step": "sms_optin", "event": {}, "next": "language"})
                entries.append({"at": AT.isoformat(), "step": "value", "event": {"kind": "digits"}, "next": None})
            rows = step_rows(n, entries, "ro", None)
            conn.execute(text("INSERT INTO calls (id, call_sid, language, state, steps, seq, started_at) "
                              "VALUES (:n, :sid, 'ro', '{}', '[]', 1, :at)"),
                         {"n": n, "sid": f"CA{n:032d}", "at": AT.isoformat(sep=" ")})
            for row in rows:
                conn.execute(text("INSERT INTO call_steps (call_id, seq, at, step, next, kind) "
                                  "VALUES (:call_id, :seq, :at, :step, :next, :kind)"),
                             {k: row[k] for k in ("call_id", "seq", "step", "next", "kind")} |
                             {"at": row["at"].isoformat(sep=" ")})
            expected[n] = call_figures.of_steps((r["step"], r["next"], r["kind"]) for r in rows)
    upgrade(url, "0015_volume")
    with engine.connect() as conn:
        got = {row[0]: dict(zip(call_figures.COLUMNS, row[1:])) for row in conn.execute(
            text(f"SELECT id, {', '.join(call_figures.COLUMNS)} FROM calls ORDER BY id"))}
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        # The counts /metrics reads start from the rows already there.
        counts = conn.execute(text("SELECT family, first, second, n FROM record_counts WHERE n <> 0")).all()
    assert got == expected
    assert [tuple(row) for row in counts] == [("calls", "", "", 120)]
    assert any(figures["questions_left"] for figures in got.values())  # the outcome-dependent pass is counted
    assert got[17] == dict.fromkeys(call_figures.COLUMNS, 0)
    assert [d for d in diffs if any(name in repr(d) for name in ("calls", "readings", "record_counts",
                                                                  "accounts", "review_tasks"))
            and not any(name in repr(d) for name in LATER)] == []
    command.downgrade(alembic_config(url), "0014")
    assert not set(call_figures.COLUMNS) & {c["name"] for c in inspect(engine).get_columns("calls")}
    assert "ix_readings_received" not in {i["name"] for i in inspect(engine).get_indexes("readings")}
    assert "record_counts" not in inspect(engine).get_table_names()
    with engine.begin() as conn:  # no trigger is left behind to write to it
        conn.execute(text("UPDATE calls SET outcome = 'completed'"))
        conn.execute(text("DELETE FROM call_steps"))
        conn.execute(text("DELETE FROM calls"))
    engine.dispose()
