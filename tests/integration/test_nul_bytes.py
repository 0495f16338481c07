"""A NUL byte anywhere in a request (path, query, form, JSON) gets 400 before any view runs and
writes nothing, on every surface: console forms, the billing API, the voice and SMS webhooks.
PostgreSQL cannot store NUL in text, so without this a NUL became a 500 there (and SQLite
stored it)."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from readings_store.models import (Account, AuditEvent, Call, ConsoleSession, LoginAttempt, Operator, Reading,
                                   Region, SmsMessage)
from ivr.api import tokens
from tests import factories as f
from tests.console.helpers import login, make_operator

TABLES = (Account, AuditEvent, Call, ConsoleSession, LoginAttempt, Operator, Reading, Region, SmsMessage)


def _counts(db) -> dict:
    db.expire_all()
    return {t.__tablename__: db.scalar(select(func.count()).select_from(t)) for t in TABLES}


@pytest.fixture
def admin_client(app, client, db):
    app.config["WTF_CSRF_ENABLED"] = False
    make_operator(db, username="ada", role="admin")
    db.commit()
    assert login(client, username="ada").status_code == 302
    return client


CONSOLE_FORMS = [
    ("/console/admin/regions/new", {"code": "NE\x00W", "name": "Nord", "menu_key": "7", "timezone": "Europe/Chisinau"}),
    ("/console/admin/regions/new", {"code": "NEW", "name": "No\x00rd", "menu_key": "7", "timezone": "Europe/Chisinau"}),
    ("/console/profile", {"timezone": "Europe/Chisinau\x00", "language": "ro"}),
    ("/console/tasks/1/correct", {"value": "12\x0034", "note": "typo"}),
    ("/console/tasks/1/reject", {"reason": "bad", "note": "x\x00"}),
    ("/console/login?next=/console/\x00", {"username": "ada", "password": "x"}),
]


@pytest.mark.parametrize(("path", "form"), CONSOLE_FORMS, ids=[f"{p}:{i}" for i, (p, _f) in enumerate(CONSOLE_FORMS)])
def test_console_form_with_nul_is_refused(admin_client, db, path, form):
    before = _counts(db)
    response = admin_client.post(path, data=form)
    assert response.status_code == 400
    assert "NUL" in response.get_data(as_text=True)
    assert _counts(db) == before


def test_login_with_nul_in_the_name_is_refused_before_counting(client, db):
    make_operator(db)
    db.commit()
    before = _counts(db)
    response = login(client, username="olga\x00")
    assert response.status_code == 400
    assert _counts(db) == before


def test_api_json_with_nul_is_a_problem_document(client, db):
    _, token = tokens.create(db, "billing", "write")
    db.commit()
    headers = {"Authorization": f"Bearer {token}"}
    f.region(db, code="CHI", name="Chișinău", menu_key=1)
    db.commit()
    meter = {"serial": "EL9001", "utility": "electricity", "registers": 1, "digits": 6, "decimals": 1}
    valid = {"region_code": "CHI", "holder_name": "Ion", "kind": "person", "phones": [], "meters": [meter]}
    before = _counts(db)
    for body in ({**valid, "holder_name": "Ion\x00"}, {**valid, "meters": [{**meter, "serial": "EL\x009001"}]},
                 {**valid, "no\x00te": 1}):
        response = client.put("/api/v1/accounts/500-001", json=body, headers=headers)
        assert response.status_code == 400, response.get_data(as_text=True)
        assert response.mimetype == "application/problem+json"
        assert "NUL" in response.get_json()["detail"]
    response = client.get("/api/v1/readings?period=2025-01\x00", headers=headers)
    assert response.status_code == 400
    assert _counts(db) == before


def test_webhooks_with_nul_are_refused(client, db):
    before = _counts(db)
    for path, form in (("/voice/incoming", {"CallSid": "CA" + "1" * 32, "From": "+37369\x00123456"}),
                       ("/sms/incoming", {"MessageSid": "SM" + "1" * 32, "From": "+37369123456",
                                          "Body": "100001 12\x0034"})):
        response = client.post(path, data=form)
        assert response.status_code == 400
    assert _counts(db) == before
