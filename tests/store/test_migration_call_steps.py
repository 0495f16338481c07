"""Migration 0011: the steps each call logged in its ``calls.steps`` JSON become ``call_steps``
rows (the JSON emptied), as the models describe them, and back."""
from __future__ import annotations

import json

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from readings_store.db import alembic_config, make_engine, upgrade
from readings_store.models import Base

pytestmark = pytest.mark.db

AT = "2026-01-01 00:00:00+00"
LOGGED = [
    {"at": "2026-01-01T10:00:00+00:00", "step": "incoming", "event": {"from": "withheld"}, "next": "language"},
    {"at": "2026-01-01T10:00:09+00:00", "step": "language", "event": {"kind": "digits", "keys": 1, "decision": None},
     "next": "account"},
    {"at": "2026-01-01T10:00:30+00:00", "step": "account", "event": {"kind": "speech", "keys": 0,
                                                                    "decision": "confirm"}, "next": "account"},
]


def test_migration_0011_makes_a_row_of_each_logged_step_and_goes_back(empty_database_url):
    url = empty_database_url
    upgrade(url, "0010")
    engine = make_engine(url)
    with engine.begin() as conn:
        for n, logged in ((1, LOGGED), (2, []), (3, [LOGGED[0], "not a step"])):
            conn.execute(text("INSERT INTO calls (id, call_sid, language, state, steps, seq, started_at) "
                              "VALUES (:n, :sid, 'ro', '{}', :steps, 1, :at)"),
                         {"n": n, "sid": f"CA{n:032d}", "steps": json.dumps(logged), "at": AT})
    upgrade(url, "0011")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT call_id, seq, step, next, kind, keys, decision, detail, language "
                                 "FROM call_steps ORDER BY call_id, seq")).all()
        assert [tuple(r) for r in rows] == [
            (1, 0, "incoming", "language", None, None, None, "withheld", "ro"),
            (1, 1, "language", "account", "digits", 1, None, None, "ro"),
            (1, 2, "account", "account", "speech", 0, "confirm", None, "ro"),
            (3, 0, "incoming", "language", None, None, None, "withheld", "ro")]
        emptied = [json.loads(s) if isinstance(s, str) else s for s in conn.execute(text("SELECT steps FROM calls")).scalars()]
        assert emptied == [[], [], []]
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diffs if "call_steps" in repr(d)] == []
    command.downgrade(alembic_config(url), "0010")
    assert "call_steps" not in inspect(engine).get_table_names()
    with engine.connect() as conn:
        back = {n: json.loads(s) if isinstance(s, str) else s
                for n, s in conn.execute(text("SELECT id, steps FROM calls ORDER BY id"))}
    assert back == {1: LOGGED, 2: [], 3: [LOGGED[0]]}
    engine.dispose()
