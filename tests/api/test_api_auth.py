"""Tokens, scopes and problem documents for every error class."""
from __future__ import annotations

import hashlib
import logging

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from ivr.cli import cli
from readings_store.models import ApiClient

READ_OPS = [("GET", "/api/v1/readings"), ("GET", "/api/v1/exports"), ("GET", "/api/v1/exports/1"),
            ("GET", "/api/v1/missing?period=2025-01")]
WRITE_OPS = [("POST", "/api/v1/exports"), ("POST", "/api/v1/exports/1/ack"), ("PUT", "/api/v1/accounts/100001"),
             ("POST", "/api/v1/accounts:import")]


def _problem(resp, status):
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/problem+json"
    body = resp.get_json()
    assert set(body) >= {"type", "title", "status", "detail"} and body["status"] == status
    return body


@pytest.mark.parametrize("method, path", READ_OPS + WRITE_OPS)
def test_missing_token_is_401(client, store, method, path):
    resp = client.open(path, method=method)
    _problem(resp, 401)
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc", "Bearer ivr_nope",
                                    "Bearer " + "x" * 500])
def test_bad_tokens_are_401(client, store, header):
    body = _problem(client.get("/api/v1/readings", headers={"Authorization": header}), 401)
    assert "token" in body["detail"] or "Bearer" in body["detail"]


def test_revoked_token_is_401(client, store, make_token, db):
    headers = make_token("read", "billing-old")
    assert client.get("/api/v1/readings", headers=headers).status_code == 200
    client_row = db.scalars(select(ApiClient).where(ApiClient.name == "billing-old")).one()
    from ivr.api import tokens

    tokens.revoke(db, "billing-old")
    db.commit()
    body = _problem(client.get("/api/v1/readings", headers=headers), 401)
    assert "revoked" in body["detail"]
    assert client_row.id


@pytest.mark.parametrize("method, path", WRITE_OPS)
def test_read_scope_cannot_write(client, store, read_headers, method, path):
    body = _problem(client.open(path, method=method, headers=read_headers, json={}), 403)
    assert "write" in body["detail"]


@pytest.mark.parametrize("method, path", READ_OPS)
def test_write_scope_implies_read(client, store, write_headers, method, path):
    assert client.open(path, method=method, headers=write_headers).status_code in (200, 404)


def test_wrong_method_and_unknown_path(client, store, read_headers):
    resp = client.delete("/api/v1/readings", headers=read_headers)
    _problem(resp, 405)
    assert "GET" in resp.headers["Allow"]
    resp = client.get("/api/v1/exports/1/ack", headers=read_headers)
    _problem(resp, 405)
    assert "POST" in resp.headers["Allow"]
    _problem(client.post("/api/v1/accounts/1", headers=read_headers), 405)
    _problem(client.get("/api/v1/nothing-here"), 404)
    _problem(client.get("/api/v1/"), 404)


def test_errors_outside_the_api_are_not_problems(client):
    resp = client.get("/definitely-not-here")
    assert resp.status_code == 404 and resp.mimetype != "application/problem+json"


def test_tokens_stored_hashed_and_last_use_recorded(client, store, make_token, db):
    headers = make_token("read", "billing")
    token = headers["Authorization"].split(" ", 1)[1]
    row = db.scalars(select(ApiClient).where(ApiClient.name == "billing")).one()
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token.startswith(row.token_prefix) and len(row.token_prefix) <= 16 and len(token) > 40
    assert row.last_used_at is None
    client.get("/api/v1/readings", headers=headers)
    db.expire_all()
    assert db.get(ApiClient, row.id).last_used_at is not None


def test_tokens_never_logged(client, store, make_token, caplog, monkeypatch):
    headers = make_token("write", "billing")
    token = headers["Authorization"].split(" ", 1)[1]
    caplog.set_level(logging.DEBUG)
    client.get("/api/v1/readings", headers=headers)
    client.get("/api/v1/readings", headers={"Authorization": f"Bearer {token}x"})
    from ivr.api import views

    monkeypatch.setattr(views.export, "list_readings", lambda *a, **k: 1 / 0)
    _problem(client.get("/api/v1/readings", headers=headers), 500)
    assert token not in caplog.text and token[4:] not in caplog.text
    assert "billing API request failed" in caplog.text


def test_cli_tokens_create_list_revoke(config, store, monkeypatch, client):
    monkeypatch.setenv("IVR_DATABASE_URL", config.database_url)
    runner = CliRunner()
    result = runner.invoke(cli, ["api-tokens", "create", "billing", "--scope", "write"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert token.startswith("ivr_") and " " not in token
    assert result.stdout.strip() == token  # stdout holds the token alone; the notes go to stderr
    assert client.post("/api/v1/exports", headers={"Authorization": f"Bearer {token}"}).status_code == 204
    # An active name is unique; names made of digits are refused (they name ids).
    assert runner.invoke(cli, ["api-tokens", "create", "billing"]).exit_code != 0
    assert runner.invoke(cli, ["api-tokens", "create", "123"]).exit_code != 0
    assert runner.invoke(cli, ["api-tokens", "create", "x", "--scope", "admin"]).exit_code != 0
    reader = runner.invoke(cli, ["api-tokens", "create", "reporting"]).output.strip().splitlines()[-1]
    listing = runner.invoke(cli, ["api-tokens", "list"])
    assert listing.exit_code == 0 and "billing" in listing.output and "reporting" in listing.output
    assert token not in listing.output and reader not in listing.output and token[:12] in listing.output
    result = runner.invoke(cli, ["api-tokens", "revoke", "billing"])
    assert result.exit_code == 0 and "revoked" in result.output
    assert client.get("/api/v1/readings", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    # By id, and again (already revoked), and unknown.
    reporting_id = [ln for ln in listing.output.splitlines() if "reporting" in ln][0].split()[0]
    assert runner.invoke(cli, ["api-tokens", "revoke", reporting_id]).exit_code == 0
    assert "already" in runner.invoke(cli, ["api-tokens", "revoke", reporting_id]).output
    assert runner.invoke(cli, ["api-tokens", "revoke", "nobody"]).exit_code != 0
    # The name is free again once revoked.
    assert runner.invoke(cli, ["api-tokens", "create", "billing"]).exit_code == 0


def test_api_is_exempt_from_csrf(app, store, write_headers):
    """If the app ever enables Flask-WTF's CSRFProtect app-wide, the token API still works."""
    from flask_wtf.csrf import CSRFProtect

    CSRFProtect(app)  # set up after the API blueprint was registered
    client = app.test_client()
    assert client.post("/api/v1/exports", headers=write_headers).status_code == 204


def test_api_is_exempt_from_csrf_set_up_first(config, engine, store, write_headers):
    from flask import Flask
    from flask_wtf.csrf import CSRFProtect

    import ivr.app as app_module

    real_flask = app_module.Flask

    class EarlyCsrfFlask(Flask):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            self.config["SECRET_KEY"] = "x"
            CSRFProtect(self)

    app_module.Flask = EarlyCsrfFlask
    try:
        app = app_module.create_app(config, engine=engine)
    finally:
        app_module.Flask = real_flask
    assert app.test_client().post("/api/v1/exports", headers=write_headers).status_code == 204
