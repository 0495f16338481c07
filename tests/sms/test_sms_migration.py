"""Migrations 0007 and 0008: the SMS tables and the outbox's reminder calls as the models describe
them, and back."""
from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from readings_store.db import alembic_config, make_engine, upgrade
from readings_store.models import Base

pytestmark = pytest.mark.db


def _unique_sets(engine) -> set:
    return {tuple(u["column_names"]) for u in inspect(engine).get_unique_constraints("sms_outbox")}


def test_sms_migrations_match_the_models_and_go_back(empty_database_url):
    from alembic import command

    url = empty_database_url
    upgrade(url)  # the models are the newest revision's
    engine = make_engine(url)
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    sms_diffs = [d for d in diffs if "sms_" in repr(d)]
    assert sms_diffs == []
    assert {"sms_messages", "sms_opt_outs"} <= set(inspect(engine).get_table_names())
    assert {("account_id", "period", "kind"), ("token",)} <= _unique_sets(engine)
    command.downgrade(alembic_config(url), "0007")
    engine.dispose()
    engine = make_engine(url)
    assert "token" not in {c["name"] for c in inspect(engine).get_columns("sms_outbox")}
    assert ("account_id", "period") in _unique_sets(engine)
    command.downgrade(alembic_config(url), "0006")
    tables = set(inspect(engine).get_table_names())
    assert "sms_messages" not in tables and "sms_opt_outs" not in tables
    engine.dispose()
