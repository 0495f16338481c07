"""Shared fixtures: a migrated database (SQLite by default, PostgreSQL when IVR_TEST_DATABASE_URL
is set), the Flask app on it, and a simulator that calls the app exactly as Twilio does."""
from __future__ import annotations

import os
import shutil
import threading

import pytest
from sqlalchemy import text
from werkzeug.serving import make_server

from ivr.app import create_app
from ivr.config import load_config
from ivr.voice.simulator import SimulatedCall, flask_transport
from readings_store import clock
from readings_store.db import make_engine, make_session_factory, scratch_postgres_database, upgrade
from readings_store.models import Base

AUTH_TOKEN = "test-auth-token-0123456789abcdef"
PG_URL = os.environ.get("IVR_TEST_DATABASE_URL")


@pytest.fixture(autouse=True)
def _clock_back_to_real_time():
    """A test that moves the product's clock (``clock.travel_to``/``set_clock``) never leaks it."""
    yield
    clock.set_clock(None)


@pytest.fixture(scope="session")
def database_template(tmp_path_factory):
    """Migrate once per test session: a SQLite file to copy, or a fresh PostgreSQL database."""
    if PG_URL:
        with scratch_postgres_database(PG_URL, "ivr_test") as url:
            upgrade(url)
            yield url
    else:
        path = tmp_path_factory.mktemp("template") / "template.sqlite3"
        upgrade(f"sqlite:///{path}")
        yield path


@pytest.fixture
def empty_database_url(tmp_path):
    """A database with no schema (for migration tests): SQLite, or a new PostgreSQL database."""
    if not PG_URL:
        yield f"sqlite:///{tmp_path / 'old.sqlite3'}"
        return
    with scratch_postgres_database(PG_URL, "ivr_mig") as url:
        yield url


@pytest.fixture
def database_url(database_template, tmp_path):
    """A migrated, empty database for one test."""
    if PG_URL:
        engine = make_engine(database_template)
        with engine.begin() as conn:
            tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        engine.dispose()
        return database_template
    path = tmp_path / "ivr.sqlite3"
    shutil.copy(database_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def config(database_url, tmp_path, monkeypatch):
    for key in list(os.environ):
        if key.startswith("IVR_") and key != "IVR_TEST_DATABASE_URL":
            monkeypatch.delenv(key)
    monkeypatch.setenv("IVR_DATA_DIR", str(tmp_path / "data"))
    return load_config(database_url=database_url, twilio_auth_token=AUTH_TOKEN, secret_key="test-secret",
                       operator_number="+37322999999")


@pytest.fixture
def engine(config):
    engine = make_engine(config.database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine):
    return make_session_factory(engine)


@pytest.fixture
def db(sessions):
    session = sessions()
    yield session
    session.close()


@pytest.fixture
def app(config, engine):
    app = create_app(config, engine=engine)
    app.config.update(TESTING=True)
    return app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def live_server(app):
    """The app served over real HTTP on a free localhost port; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


@pytest.fixture
def phone(client):
    """Start simulated calls: ``phone(caller="+373...")`` returns a SimulatedCall on the app."""

    def make(caller: str = "+37360000000", **kwargs) -> SimulatedCall:
        return SimulatedCall("http://localhost", AUTH_TOKEN, flask_transport(client), caller=caller, **kwargs)

    return make


# The longest tests (`make test` prints the slowest), longest first, started before the rest: pytest-xdist hands tests out in
# collection order, and these, collected last, used to leave one worker running alone at the end.
LONG_FIRST = ("tests/test_caller_model.py::test_callers_keep_every_invariant", "tests/api/test_api_readme.py",
              "tests/test_readme_regions.py", "tests/api/test_api_schemathesis.py", "tests/speech/test_stream_turn_bench.py",
              "tests/grammars/test_grammars_oracle.py", "tests/ops/test_preload.py", "tests/ops/test_metrics_archive.py",
              "tests/ops/test_webhook_bench.py", "tests/ops/test_metrics_bench.py", "tests/ops/test_concurrency_bench.py",
              "tests/api/test_billing_bench.py", "tests/ops/test_check.py", "tests/integration/test_stream_faults.py",
              "tests/speech/test_speech_models.py", "tests/speech/test_speech_accuracy.py", "tests/ops/test_gunicorn.py",
              "tests/ops/test_overload.py", "tests/ops/test_metrics_gunicorn.py")


def pytest_collection_modifyitems(items):
    """Mark every test that touches the database, so CI can rerun just those on PostgreSQL (-m db);
    put the longest first."""
    for item in items:
        if "database_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.db)
    def rank(item) -> int:  # stable sort: the rest keep their order
        return next((i for i, prefix in enumerate(LONG_FIRST) if item.nodeid.startswith(prefix)), len(LONG_FIRST))

    items.sort(key=rank)
