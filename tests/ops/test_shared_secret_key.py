"""Without IVR_SECRET_KEY every process of one installation uses the key kept in the data folder,
so a session cookie, CSRF token or API cursor made by one gunicorn worker works in the others."""
from __future__ import annotations

import os
import stat
import threading

import pytest

from ivr.app import create_app
from ivr.config import SECRET_KEY_FILE, load_config
from readings_store.db import make_engine
from tests import factories as f
from tests.api.conftest import add_reading
from tests.console.helpers import PASSWORD, csrf_from, make_operator


@pytest.fixture
def two_workers(database_url, tmp_path, monkeypatch):
    """Two apps as two gunicorn workers would build them: each from its own load_config()."""
    for key in list(os.environ):
        if key.startswith("IVR_") and not key.startswith("IVR_TEST_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("IVR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("IVR_DATABASE_URL", database_url)
    apps = []
    for _ in range(2):
        config = load_config()
        assert config.generated_secrets == ("secret_key",)
        apps.append(create_app(config, engine=make_engine(database_url)))
    yield apps
    for app in apps:
        app.extensions["ivr"].engine.dispose()


def test_generated_key_is_kept_private_and_reused(two_workers, tmp_path):
    a, b = two_workers
    path = tmp_path / "data" / SECRET_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert a.secret_key == b.secret_key == path.read_text().strip()
    assert len(a.secret_key) == 64


def test_session_and_csrf_from_one_worker_work_in_the_other(two_workers, db):
    make_operator(db)
    db.commit()
    a, b = (app.test_client() for app in two_workers)
    for attempt in range(10):
        page = a.get("/console/login")
        token = csrf_from(page.get_data(as_text=True))
        b.set_cookie("session", a.get_cookie("session").value)
        response = b.post("/console/login", data={"username": "olga", "password": PASSWORD, "csrf_token": token})
        assert response.status_code == 302, (attempt, response.status_code)
        a.set_cookie("session", b.get_cookie("session").value)
        assert a.get("/console/queue").status_code == 200  # logged in on the other worker too
        b.post("/console/logout", data={"csrf_token": token})
        a.delete_cookie("session")
        b.delete_cookie("session")


def test_api_cursor_from_one_worker_works_in_the_other(two_workers, db):
    from ivr.api import tokens

    meter = f.meter(db, f.account(db, f.region(db)))
    for value in (10, 20, 30):
        add_reading(db, meter, value)
    _, token = tokens.create(db, "billing", "read")
    db.commit()
    headers = {"Authorization": f"Bearer {token}"}
    a, b = (app.test_client() for app in two_workers)
    first = a.get("/api/v1/readings?limit=1", headers=headers).get_json()
    second = b.get(f"/api/v1/readings?limit=1&cursor={first['next_cursor']}", headers=headers)
    assert second.status_code == 200, second.get_data(as_text=True)
    assert second.get_json()["items"][0]["id"] > first["items"][0]["id"]


def test_workers_starting_at_once_agree_on_one_key(tmp_path, monkeypatch):
    monkeypatch.delenv("IVR_SECRET_KEY", raising=False)
    monkeypatch.setenv("IVR_DATA_DIR", str(tmp_path / "fresh"))
    keys, barrier = [], threading.Barrier(8)

    def start():
        barrier.wait()
        keys.append(load_config().secret_key)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(keys) == 8 and len(set(keys)) == 1
    assert os.listdir(tmp_path / "fresh") == [SECRET_KEY_FILE]  # no temporary files left behind


def test_secret_key_from_the_environment_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("IVR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("IVR_SECRET_KEY", "from-the-environment")
    config = load_config()
    assert config.secret_key == "from-the-environment" and config.generated_secrets == ()
    assert not (tmp_path / SECRET_KEY_FILE).exists()
