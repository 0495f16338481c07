"""With the database down, Twilio's fallback URL still answers (from the configuration alone) and
/healthz says so; a step whose answer fails twice in a row ends the call politely."""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import pytest
from sqlalchemy import event, select
from twilio.request_validator import RequestValidator

from ivr.app import create_app
from ivr.config import load_config
from ivr.prompts import Prompts
from readings_store.models import Call, Reading
from tests import factories as f
from tests.conftest import AUTH_TOKEN
from tests.servers import refused_port

SID = "CA" + "c" * 32


def signed(client, path, params):
    sig = RequestValidator(AUTH_TOKEN).compute_signature(f"http://localhost{path}", params)
    return client.post(path, data=params, headers={"X-Twilio-Signature": sig})


def verbs(body: str) -> list[tuple[str, str]]:
    root = ET.fromstring(body)
    assert root.tag == "Response"
    return [(v.tag, (v.text or "").strip()) for v in root]


@pytest.fixture
def down(tmp_path, monkeypatch):
    """An app whose database is a PostgreSQL port nothing listens on."""
    for key in list(os.environ):
        if key.startswith("IVR_") and not key.startswith("IVR_TEST_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("IVR_DATA_DIR", str(tmp_path))
    with refused_port() as port:
        yield lambda **kwargs: _app_on(f"postgresql://ivr@127.0.0.1:{port}/ivr", **kwargs)


def _app_on(database_url, operator_number="+37322999999"):
    config = load_config(database_url=database_url, twilio_auth_token=AUTH_TOKEN, secret_key="s",
                         operator_number=operator_number)
    app = create_app(config)
    app.config.update(PROPAGATE_EXCEPTIONS=False)
    return app.test_client()


def test_healthz_reports_a_reachable_migrated_database(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.is_json
    assert r.get_json()["status"] == "ok" and r.get_json()["database"] == "ok" and r.get_json()["schema"]


def test_healthz_is_503_when_the_database_is_down(down):
    r = down().get("/healthz")
    assert r.status_code == 503
    assert (r.get_json()["status"], r.get_json()["database"]) == ("error", "unreachable")


def test_healthz_is_503_on_an_empty_database(tmp_path, config):
    config.database_url = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    r = create_app(config).test_client().get("/healthz")
    assert r.status_code == 503 and r.get_json()["database"] == "not migrated"


def test_fallback_without_database_apologises_and_transfers(down):
    client = down()
    # The primary webhook fails (HTTP 500): this is what makes Twilio call the fallback URL.
    assert signed(client, "/voice/incoming", {"CallSid": SID, "From": "+37360000000"}).status_code == 500
    r = signed(client, "/voice/fallback", {"CallSid": SID, "From": "+37360000000", "ErrorCode": "11200",
                                           "ErrorUrl": "https://ivr.example.org/voice/incoming"})
    assert r.status_code == 200 and r.mimetype == "application/xml"
    said = verbs(r.get_data(as_text=True))
    # Romanian for a Moldovan caller ID, from the configuration: the call's row cannot be read.
    ro = Prompts().texts("ro")
    assert said == [("Say", ro["technical_problem"]), ("Say", ro["transfer"]),
                    ("Dial", "+37322999999"), ("Hangup", "")]


def test_fallback_without_database_or_operator_asks_to_call_back(down):
    r = signed(down(operator_number=None), "/voice/fallback",
               {"CallSid": SID, "From": "anonymous", "ErrorCode": "11205", "ErrorUrl": "x"})
    assert r.status_code == 200
    assert verbs(r.get_data(as_text=True)) == [
        ("Say", "Sorry, we have a technical problem and cannot take your reading right now."),
        ("Say", "Please call again later."), ("Say", "Thank you, goodbye."), ("Hangup", "")]


def test_fallback_still_checks_the_signature_with_the_database_down(down):
    r = down().post("/voice/fallback", data={"CallSid": SID, "From": "+37360000000"})
    assert r.status_code == 403


@pytest.fixture
def north(db):
    r = f.region(db, code="N", name="North", menu_key=1)
    a = f.account(db, r, number="100001")
    f.meter(db, a, previous=10)
    db.commit()
    return r


def test_step_failing_twice_ends_the_call_politely(db, north, app, engine, phone):
    app.config.update(PROPAGATE_EXCEPTIONS=False)
    call = phone(caller="+442079460000")
    call.start()
    call.press("4")  # English; the only region is chosen: the account question
    assert "Please key in your account number" in " ".join(call.last.texts)
    seq = db.scalars(select(Call)).one().seq

    @event.listens_for(engine, "before_cursor_execute")
    def disk_full(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith(("UPDATE", "INSERT")):
            raise OSError(28, "No space left on device")

    def answer(keys: str):
        """Post the caller's keys; on an error, do what Twilio does: post to the fallback URL."""
        url = call.last.gather["action"]
        status, _ = call.post(url, {"Digits": keys})
        assert status == 500
        return call._follow("http://localhost/voice/fallback", {"ErrorCode": "11200", "ErrorUrl": url})

    again = answer("100001")
    # First failure: the same question again, for the same turn, nothing changed.
    assert "Please key in your account number" in " ".join(again.texts)
    assert f"seq={seq}" in again.gather["action"] and "after_error=en" in again.gather["action"]
    # The answer to the question asked again fails too: an apology and the operator, not a loop.
    last = answer("100001")
    assert last.gather is None and last.ended == "dial:+37322999999"
    assert last.texts[0] == "Sorry, we have a technical problem and cannot take your reading right now."
    event.remove(engine, "before_cursor_execute", disk_full)
    db.expire_all()
    assert db.scalars(select(Call)).one().seq == seq and db.scalars(select(Reading).where(Reading.call_id.is_not(None))).all() == []


def test_step_recovering_after_one_failure_goes_on(db, north, app, engine, phone):
    app.config.update(PROPAGATE_EXCEPTIONS=False)
    call = phone(caller="+442079460000")
    call.start()
    call.press("4")
    failures = iter([True])

    @event.listens_for(engine, "before_cursor_execute")
    def fail_once(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("UPDATE") and next(failures, False):
            raise OSError(28, "No space left on device")

    url = call.last.gather["action"]
    assert call.post(url, {"Digits": "100001"})[0] == 500
    call._follow("http://localhost/voice/fallback", {"ErrorCode": "11200", "ErrorUrl": url})
    p = call.press("100001#")  # answered on the URL asked again: the call simply goes on
    assert "Please enter the electricity meter reading" in " ".join(p.texts)
    assert "after_error" not in p.gather["action"]
    event.remove(engine, "before_cursor_execute", fail_once)


@pytest.mark.skipif(not os.environ.get("IVR_TEST_DATABASE_URL"), reason="a dropped connection needs PostgreSQL")
def test_a_request_on_a_dropped_connection_is_served_again_on_a_new_one(db, north, app, engine, phone, caplog):
    """No ping before each request: the server closing the pooled connections (a restart) is
    found by the first statement, and that request is served again once, on a new connection."""
    from sqlalchemy import text

    from readings_store.db import make_engine

    call = phone()
    assert "English — press 4." in call.start().texts  # the pool now holds a connection
    db.close()
    other = make_engine(str(engine.url.render_as_string(hide_password=False)))  # not the app's pool
    try:
        with other.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    finally:
        other.dispose()
    prompt = call.press("4")  # the pool hands out a connection the server has closed
    assert prompt.gather is not None and any("account number" in t for t in prompt.texts)
    assert "database connection lost" in caplog.text
