"""Migration 0007: the SMS tables as the models describe them, and back."""
from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from readings_store.db import alembic_config, make_engine, upgrade
from readings_store.models import Base

pytestmark = pytest.mark.db


def test_migration_0007_matches_the_models_and_goes_back(empty_database_url):
    from alembic import command

    url = empty_database_url
    upgrade(url, "0007")
    engine = make_engine(url)
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    sms_diffs = [d for d in diffs if "sms_" in repr(d)]
    assert sms_diffs == []
    assert {"sms_messages", "sms_opt_outs"} <= set(inspect(engine).get_table_names())
    command.downgrade(alembic_config(url), "0006")
    tables = set(inspect(engine).get_table_names())
    assert "sms_messages" not in tables and "sms_opt_outs" not in tables
    engine.dispose()
