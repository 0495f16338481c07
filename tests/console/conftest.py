"""Console fixtures: operators, a pending reading with a real WAV recording, logged-in clients."""
from __future__ import annotations

import pytest

from .browser import browser  # noqa: F401 (the headless Chromium fixture)
from .helpers import login, make_operator, seed_pending


@pytest.fixture
def operator(db):
    op = make_operator(db)
    db.commit()
    return op


@pytest.fixture
def admin(db):
    op = make_operator(db, username="ada", role="admin")
    db.commit()
    return op


@pytest.fixture
def nocsrf(app):
    """For tests where CSRF is not the subject."""
    app.config["WTF_CSRF_ENABLED"] = False
    return app


@pytest.fixture
def oc(nocsrf, client, operator):
    """A client logged in as an operator, CSRF off."""
    response = login(client)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


@pytest.fixture
def pending(db, config):
    return seed_pending(db, config)
