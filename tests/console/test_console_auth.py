"""Log-in, throttling, session expiry, roles, CSRF and login-required on every console URL."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from ivr.console import auth
from readings_store.models import AuditEvent, LoginAttempt, Operator, Reading, ReviewTask

from .helpers import PASSWORD, csrf_from, login, make_operator


def _console_rules(app):
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/console") and rule.endpoint not in ("console.login", "console.static"):
            yield rule


def test_every_console_url_needs_login(nocsrf, client, pending):
    rules = list(_console_rules(nocsrf))
    assert len(rules) >= 15
    for rule in rules:
        url = rule.rule.replace("<int:task_id>", str(pending["task"].id)) \
            .replace("<int:utterance_id>", str(pending["utterance"].id)) \
            .replace("<int:account_id>", str(pending["account"].id)) \
            .replace("<int:region_id>", str(pending["region"].id))
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(url, method=method)
            assert response.status_code == 302, (method, url)
            assert response.headers["Location"].startswith("/console/login"), (method, url)
    assert pending["reading"].status == "pending_review"


def test_login_page_and_successful_login(client, operator, db):
    page = client.get("/console/login")
    assert page.status_code == 200 and 'name="password"' in page.get_data(as_text=True)
    response = login(client)
    assert response.status_code == 302 and response.headers["Location"] == "/console/queue"
    assert client.get("/console/queue").status_code == 200
    db.expire_all()
    assert db.get(Operator, operator.id).last_login_at is not None


def test_login_redirects_back_but_never_off_site(client, operator):
    first = client.get("/console/dashboard")
    assert first.headers["Location"].startswith("/console/login?next=/console/dashboard")
    page = client.get("/console/login?next=/console/dashboard")
    token = csrf_from(page.get_data(as_text=True))
    response = client.post("/console/login", data={"username": "olga", "password": PASSWORD, "csrf_token": token,
                                                   "next": "/console/dashboard"})
    assert response.headers["Location"] == "/console/dashboard"
    client.post("/console/logout", data={"csrf_token": csrf_from(client.get("/console/queue").get_data(as_text=True))})
    page = client.get("/console/login")
    token = csrf_from(page.get_data(as_text=True))
    response = client.post("/console/login", data={"username": "olga", "password": PASSWORD, "csrf_token": token,
                                                   "next": "https://evil.example/console/"})
    assert response.headers["Location"] == "/console/queue"


def test_wrong_password_and_unknown_name_get_the_same_answer(client, operator):
    wrong = login(client, password="nope-nope-nope")
    unknown = login(client, username="nobody", password="nope-nope-nope")
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong name or password." in wrong.get_data(as_text=True)
    assert "Wrong name or password." in unknown.get_data(as_text=True)
    assert client.get("/console/queue").status_code == 302


def test_five_failures_lock_the_name_for_that_address_in_the_database(client, operator, db, monkeypatch):
    for _ in range(auth.MAX_FAILURES - 1):
        assert login(client, password="wrong-password").status_code == 401
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(LoginAttempt)
                     .where(LoginAttempt.username == "olga", LoginAttempt.ip == "127.0.0.1")) == auth.MAX_FAILURES - 1
    locked = login(client, password="wrong-password")
    assert locked.status_code == 429 and locked.headers["Retry-After"] == "900"
    assert "Try again in 15 minute(s)" in locked.get_data(as_text=True)
    # Even the right password is refused while paused, with a clear message.
    right = login(client)
    assert right.status_code == 429 and "Too many failed log-ins from your address" in right.get_data(as_text=True)
    assert client.get("/console/queue").status_code == 302
    assert db.scalars(select(AuditEvent).where(AuditEvent.action == "operator.locked")).first() is not None
    # After the pause, the right password works again and clears this name's failures.
    later = auth.now() + dt.timedelta(minutes=16)
    monkeypatch.setattr(auth, "now", lambda: later)
    assert login(client).status_code == 302
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(LoginAttempt)) == 0


def test_lock_is_shared_by_every_worker(app, client, operator, db):
    """The failures live in the database: a second app (another worker) sees them."""
    for _ in range(auth.MAX_FAILURES):
        login(client, password="wrong-password")
    from ivr.app import create_app

    other = create_app(app.extensions["ivr"].config, engine=app.extensions["ivr"].engine)
    other.config.update(TESTING=True)
    response = login(other.test_client())
    assert response.status_code == 429 and "Too many failed log-ins" in response.get_data(as_text=True)


def test_session_expires_after_idle_minutes(app, oc, monkeypatch):
    assert app.config["PERMANENT_SESSION_LIFETIME"] == dt.timedelta(minutes=30)
    assert oc.get("/console/queue").status_code == 200
    start = auth.now()
    monkeypatch.setattr(auth, "now", lambda: start + dt.timedelta(minutes=29))
    assert oc.get("/console/queue").status_code == 200  # activity keeps it alive
    monkeypatch.setattr(auth, "now", lambda: start + dt.timedelta(minutes=29 + 31))
    response = oc.get("/console/queue")
    assert response.status_code == 302 and response.headers["Location"].startswith("/console/login")
    page = oc.get(response.headers["Location"]).get_data(as_text=True)
    assert "session expired" in page
    monkeypatch.setattr(auth, "now", lambda: start)
    assert oc.get("/console/queue").status_code == 302  # logged out for good


def test_session_cookie_is_permanent_with_the_configured_lifetime(client, operator):
    response = login(client)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Expires=" in cookie


def test_disabled_operator_is_logged_out(oc, db, operator):
    assert oc.get("/console/queue").status_code == 200
    db.get(Operator, operator.id).active = False
    db.commit()
    assert oc.get("/console/queue").status_code == 302
    assert login(oc).status_code == 401


def test_logout(oc):
    response = oc.post("/console/logout")
    assert response.status_code == 302
    assert oc.get("/console/queue").status_code == 302
    assert oc.get("/console/logout").status_code == 405


def test_admin_only_page(client, operator, admin, db):
    login(client)
    assert client.get("/console/admin/operators").status_code == 403
    dashboard = client.get("/console/dashboard").get_data(as_text=True)
    assert "Per operator" not in dashboard
    client.post("/console/logout", data={"csrf_token": csrf_from(client.get("/console/queue").get_data(as_text=True))})
    login(client, username="ada")
    page = client.get("/console/admin/operators")
    assert page.status_code == 200
    assert "olga" in page.get_data(as_text=True) and "ada" in page.get_data(as_text=True)
    assert "Per operator" in client.get("/console/dashboard").get_data(as_text=True)


# --- CSRF -------------------------------------------------------------------------------------------

def _state(db, pending):
    db.expire_all()
    return db.get(Reading, pending["reading"].id).status, db.get(ReviewTask, pending["task"].id).status


def test_post_without_or_with_a_wrong_csrf_token_changes_nothing(client, operator, pending, db):
    assert login(client).status_code == 302
    url = f"/console/tasks/{pending['task'].id}/accept"
    missing = client.post(url, data={})
    assert missing.status_code == 400 and "security token" in missing.get_data(as_text=True)
    wrong = client.post(url, data={"csrf_token": "forged"})
    assert wrong.status_code == 400
    assert _state(db, pending) == ("pending_review", "open")
    page = client.get(f"/console/tasks/{pending['task'].id}").get_data(as_text=True)
    good = client.post(url, data={"csrf_token": csrf_from(page)})
    assert good.status_code == 302
    assert _state(db, pending) == ("accepted", "done")


def test_login_form_needs_csrf_too(client, operator):
    response = client.post("/console/login", data={"username": "olga", "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/console/queue").status_code == 302


def test_voice_webhooks_and_api_stay_csrf_exempt(app, phone, db):
    """CSRF is on (the default) and a whole phone call still goes through."""
    from tests import factories as f

    assert app.config.get("WTF_CSRF_ENABLED", True)
    r = f.region(db)
    a = f.account(db, r, number="100001")
    f.meter(db, a, previous=1000)
    db.commit()
    call = phone(caller="+447700900123")
    call.start()
    call.press("4")
    call.press("100001#")
    call.press("1250*5#")
    p = call.press("1")
    assert "Reading saved." in p.texts
    # The API blueprint is never asked for a console token (whatever it answers, it is not a CSRF 400).
    response = app.test_client().post("/api/v1/readings", json={})
    assert b"security token" not in response.data


@pytest.mark.parametrize("password", ["", "short"])
def test_short_passwords_refused(password):
    assert auth.password_problem(password)


def test_make_operator_helper_is_usable(db):
    make_operator(db, username="x1")
    db.commit()
    assert db.scalars(select(Operator).where(Operator.username == "x1")).one().role == "operator"
