"""The ``ivr`` command groups, and what they share: a session on a database that is migrated."""
from __future__ import annotations

import click


def require_schema(config) -> None:
    from readings_store.db import is_current, make_engine

    if not is_current(make_engine(config.database_url)):
        raise click.ClickException("the database has no schema yet: run `ivr db upgrade` first")


def migrated_sessions(config=None):
    """A session factory on the configured database, refusing one that has no schema yet."""
    from readings_store.db import make_engine, make_session_factory

    from ..config import load_config

    config = config or load_config()
    require_schema(config)
    return make_session_factory(make_engine(config.database_url))


def migrated_transaction(config=None):
    from readings_store.db import transaction

    return transaction(migrated_sessions(config))
