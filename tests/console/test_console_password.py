"""An operator changes their own password on the preferences page: the current one is asked for
(and throttled like a log-in), the new one is checked, CSRF is required, the change is audited,
this session goes on and every other one ends."""
from __future__ import annotations

from sqlalchemy import select
from werkzeug.security import check_password_hash

from readings_store.models import AuditEvent, ConsoleSession, Operator

from .helpers import PASSWORD, csrf_from, login

NEW = "a-new-long-passphrase"


def _change(client, current=PASSWORD, new=NEW, repeated=None, token=True):
    data = {"password-current": current, "password-new": new, "password-repeated": new if repeated is None else repeated}
    if token:
        data["csrf_token"] = csrf_from(client.get("/console/profile").get_data(as_text=True))
    return client.post("/console/profile/password", data=data)


def _hash(db, operator) -> str:
    db.expire_all()
    return db.get(Operator, operator.id).password_hash


def test_an_operator_changes_their_own_password(app, client, operator, db):
    elsewhere = app.test_client()  # the same operator, logged in on another computer
    assert login(client).status_code == 302 and login(elsewhere).status_code == 302
    page = client.get("/console/profile").get_data(as_text=True)
    assert 'id="password-form"' in page and 'autocomplete="current-password"' in page
    before = _hash(db, operator)

    response = _change(client)
    assert response.status_code == 302 and response.headers["Location"] == "/console/profile"
    assert "Your password was changed" in client.get("/console/profile").get_data(as_text=True)
    assert check_password_hash(_hash(db, operator), NEW) and _hash(db, operator) != before
    # This session goes on; the other one has ended, on the server too.
    assert client.get("/console/queue").status_code == 200
    assert elsewhere.get("/console/queue").status_code == 302
    live = db.scalars(select(ConsoleSession).where(ConsoleSession.operator_id == operator.id,
                                                   ConsoleSession.ended_at.is_(None))).all()
    assert len(live) == 1
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "operator.own_password")).one()
    assert (event.actor_kind, event.actor_name, event.entity_id) == ("operator", "olga", operator.id)
    assert NEW not in str(event.after) and PASSWORD not in str(event.after)
    # The recent actions say it in words.
    assert "changed their own password" in client.get("/console/queue").get_data(as_text=True)
    # The old password no longer logs in; the new one does.
    third = app.test_client()
    assert login(third).status_code == 401
    assert login(third, password=NEW).status_code == 302


def test_a_wrong_current_password_or_a_bad_new_one_changes_nothing(client, operator, db):
    assert login(client).status_code == 302
    before = _hash(db, operator)
    cases = [
        (dict(current="not-my-password"), "the current password is wrong"),
        (dict(new="short", repeated="short"), "too short"),
        (dict(repeated=NEW + "x"), "its repetition differ"),
        (dict(new=PASSWORD, repeated=PASSWORD), "the one you have"),
        (dict(current=""), "Enter your current password"),
        (dict(new="line\nbreak-password", repeated="line\nbreak-password"), "no control characters"),
    ]
    for kwargs, why in cases:
        response = _change(client, **kwargs)
        page = response.get_data(as_text=True)
        assert response.status_code == 422 and why in page, (kwargs, page[page.find('id="password-error"'):][:200])
    assert _hash(db, operator) == before
    assert client.get("/console/queue").status_code == 200  # still logged in
    assert db.scalars(select(AuditEvent).where(AuditEvent.action == "operator.own_password")).first() is None


def test_guessing_the_current_password_is_throttled_like_a_log_in(client, operator, db):
    assert login(client).status_code == 302
    for _ in range(4):
        assert _change(client, current="guess-guess").status_code == 422
    assert _change(client, current="guess-guess").status_code == 429  # the fifth failure pauses the name
    response = _change(client)  # even the right one now waits
    assert response.status_code == 429 and "Too many failed log-ins" in response.get_data(as_text=True)
    assert response.headers["Retry-After"].isdigit()
    assert check_password_hash(_hash(db, operator), PASSWORD)


def test_without_the_csrf_token_nothing_changes(client, operator, db):
    assert login(client).status_code == 302
    before = _hash(db, operator)
    response = _change(client, token=False)
    assert response.status_code == 400 and "security token" in response.get_data(as_text=True)
    assert _hash(db, operator) == before
