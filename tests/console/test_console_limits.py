"""Console log-in: a ceiling on failures per name from every address together (one IPv6 host has
2^64 addresses); idle expiry exact to the request, never early."""
from __future__ import annotations

import datetime as dt

from ivr.console import auth

from .helpers import login


def _from(client, ip: str):
    client.environ_base["REMOTE_ADDR"] = ip
    return client


def test_guesses_at_one_name_from_many_addresses_hit_a_ceiling(app, operator, monkeypatch):
    monkeypatch.setattr(auth, "MAX_FAILURES_PER_NAME", 12)  # the rule, with a ceiling quick to reach
    for host in range(4):  # 3 guesses each from 4 addresses of one /64: under every per-address limit
        attacker = _from(app.test_client(), f"2001:db8:0:1::{host + 1:x}")
        for _ in range(3):
            assert login(attacker, password="wrong-password").status_code in (401, 429)
    fresh = login(_from(app.test_client(), "2001:db8:0:1::ff"), password="wrong-password")
    assert fresh.status_code == 429  # the 13th guess, from an address never seen, is not checked
    assert login(_from(app.test_client(), "2001:db8:0:1::fe")).status_code == 429  # not even the right one
    other = login(_from(app.test_client(), "198.51.100.7"), username="ada", password="wrong-password")
    assert other.status_code == 401  # other names are not affected


def test_an_administrator_unlock_lifts_the_ceiling(app, operator, monkeypatch, db):
    from click.testing import CliRunner

    from ivr.cli import cli

    monkeypatch.setattr(auth, "MAX_FAILURES_PER_NAME", 6)
    for host in range(2):
        attacker = _from(app.test_client(), f"2001:db8::{host + 1}")
        for _ in range(3):
            login(attacker, password="wrong-password")
    assert login(_from(app.test_client(), "198.51.100.7")).status_code == 429
    monkeypatch.setenv("IVR_DATABASE_URL", app.extensions["ivr"].config.database_url)
    result = CliRunner().invoke(cli, ["operators", "unlock", operator.username])
    assert result.exit_code == 0, result.output
    assert login(_from(app.test_client(), "198.51.100.7")).status_code == 302


def test_idle_expiry_is_exact(app, oc, monkeypatch):
    start = auth.now()

    def at(seconds: float):
        monkeypatch.setattr(auth, "now", lambda: start + dt.timedelta(seconds=seconds))

    limit = 30 * 60
    at(59)
    assert oc.get("/console/queue").status_code == 200  # busy 59 s after logging in
    at(59 + limit - 1)
    assert oc.get("/console/queue").status_code == 200  # idle 29:59 since that request: still in
    at(59 + limit - 1 + limit)
    assert oc.get("/console/queue").status_code == 302  # idle 30:00: out
