"""Migration 0016_org_name: regions get the organisation's-name setting (off), and the calls that
asked a company's serial question are counted again with the appended questions, exactly as their
turns count them now; and back."""
from __future__ import annotations

import datetime as dt

import pytest
from alembic import command
from sqlalchemy import inspect, text

from readings_store import call_figures
from readings_store.db import alembic_config, make_engine, upgrade
from tests.console.helpers import step_rows

pytestmark = pytest.mark.db

AT = dt.datetime(2026, 11, 3, 9, 0, tzinfo=dt.timezone.utc)
COMPANY = [("language", "account", "digits"), ("account", "meter_serial", "digits"),
           ("meter_serial", "meter_serial", "digits"), ("meter_serial", "value", "digits"),
           ("value", "confirm", "digits"), ("confirm", "next", "digits")]
HOUSEHOLD = [("language", "account", "digits"), ("account", "value", "digits"), ("value", "confirm", "speech"),
             ("confirm", "next", "digits")]


def test_the_setting_is_added_off_and_serial_calls_are_counted_again(empty_database_url):
    url = empty_database_url
    upgrade(url, "0015_volume")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO regions (code, name, timezone, work_start, work_end, work_days, names, "
                          "phone_prefixes, created_at) VALUES ('N', 'North', 'Europe/Chisinau', '08:00:00', "
                          "'17:00:00', '12345', '{}', '[]', :at)"), {"at": AT.isoformat(sep=" ")})
        for n, steps in ((1, COMPANY), (2, HOUSEHOLD)):
            entries = [{"at": AT.isoformat(), "step": s, "event": {"kind": k}, "next": nx} for s, nx, k in steps]
            rows = step_rows(n, entries, "ro", None)
            figures = call_figures.of_steps((r["step"], r["next"], r["kind"]) for r in rows)
            # As 0015 counted them: the serial question was no question then.
            old = {c: v for c, v in figures.items()}
            if n == 1:
                old = {**figures, "questions_reached": figures["questions_reached"] & 511,
                       "questions_passed": figures["questions_passed"] & 511,
                       "questions_asked": figures["questions_asked"] - 2, "questions_reasked": 0}
            conn.execute(text("INSERT INTO calls (id, call_sid, language, state, steps, seq, started_at, "
                              + ", ".join(call_figures.COLUMNS) + ") VALUES (:n, :sid, 'ro', '{}', '[]', 1, :at, "
                              + ", ".join(f":{c}" for c in call_figures.COLUMNS) + ")"),
                         {"n": n, "sid": f"CA{n:032d}", "at": AT.isoformat(sep=" "), **old})
            for row in rows:
                conn.execute(text("INSERT INTO call_steps (call_id, seq, at, step, next, kind) "
                                  "VALUES (:call_id, :seq, :at, :step, :next, :kind)"),
                             {k: row[k] for k in ("call_id", "seq", "step", "next", "kind")} |
                             {"at": row["at"].isoformat(sep=" ")})
    with engine.connect() as conn:
        before = {row[0]: dict(zip(call_figures.COLUMNS, row[1:])) for row in conn.execute(
            text(f"SELECT id, {', '.join(call_figures.COLUMNS)} FROM calls ORDER BY id"))}
    upgrade(url, "head")
    with engine.connect() as conn:
        got = {row[0]: dict(zip(call_figures.COLUMNS, row[1:])) for row in conn.execute(
            text(f"SELECT id, {', '.join(call_figures.COLUMNS)} FROM calls ORDER BY id"))}
        assert conn.execute(text("SELECT ask_org_name FROM regions")).scalar_one() in (False, 0)
    company = call_figures.of_steps(COMPANY)
    assert got[1] == company and company["questions_reached"] & call_figures.BIT["meter_serial"]
    assert company["questions_reasked"] == 1 and got[1] != before[1]
    assert got[2] == before[2] == call_figures.of_steps(HOUSEHOLD)  # untouched
    command.downgrade(alembic_config(url), "0015_volume")
    assert "ask_org_name" not in {c["name"] for c in inspect(engine).get_columns("regions")}
    engine.dispose()
