"""``ivr operators``: add (password from standard input), list, disable/enable, unlock, password."""
from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from werkzeug.security import check_password_hash

from ivr.cli import cli
from readings_store.models import Operator, utcnow

from .helpers import login


@pytest.fixture
def run(config, monkeypatch):
    monkeypatch.setenv("IVR_DATABASE_URL", config.database_url)
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(cli, ["operators", *args], input=input, catch_exceptions=False)

    return invoke


def _operator(db, name):
    db.expire_all()
    return db.scalars(select(Operator).where(Operator.username == name)).first()


def test_add_reads_the_password_from_stdin(run, db, client):
    result = run("add", "ann", "--role", "admin", input="s3cret-passw0rd\n")
    assert result.exit_code == 0, result.output
    assert "operator ann added (admin)" in result.output
    ann = _operator(db, "ann")
    assert ann.role == "admin" and ann.active
    assert ann.password_hash != "s3cret-passw0rd" and check_password_hash(ann.password_hash, "s3cret-passw0rd")
    assert login(client, username="ann", password="s3cret-passw0rd").status_code == 302


@pytest.mark.parametrize("password, message", [("", "the password is empty"), ("short\n", "too short")])
def test_add_refuses_empty_or_short_passwords(run, db, password, message):
    result = run("add", "bob", input=password)
    assert result.exit_code != 0 and message in result.output
    assert _operator(db, "bob") is None


def test_add_refuses_duplicates_and_bad_names(run, db):
    assert run("add", "ann", input="long-enough-1\n").exit_code == 0
    again = run("add", "ann", input="long-enough-2\n")
    assert again.exit_code != 0 and "already exists" in again.output
    bad = run("add", "<ann>", input="long-enough-2\n")
    assert bad.exit_code != 0 and "name may use" in bad.output
    role = run("add", "zed", "--role", "root", input="long-enough-2\n")
    assert role.exit_code != 0


def test_list_disable_enable_unlock_password(run, db, client, nocsrf):
    run("add", "ann", "--role", "admin", input="long-enough-1\n")
    run("add", "bob", input="long-enough-2\n")
    listed = run("list").output
    assert "ann" in listed and "admin" in listed and "bob" in listed and "never" in listed
    assert run("disable", "bob").exit_code == 0
    assert "disabled" in run("list").output
    assert login(client, username="bob", password="long-enough-2").status_code == 401
    assert run("enable", "bob").exit_code == 0
    bob = _operator(db, "bob")
    bob.locked_until = utcnow() + dt.timedelta(minutes=10)
    db.commit()
    assert "locked until" in run("list").output
    assert run("unlock", "bob").exit_code == 0
    assert _operator(db, "bob").locked_until is None
    assert login(client, username="bob", password="long-enough-2").status_code == 302
    assert client.get("/console/queue").status_code == 200
    assert run("password", "bob", input="another-long-one\n").exit_code == 0
    assert client.get("/console/queue").status_code == 302  # the old session ended
    assert login(client, username="bob", password="another-long-one").status_code == 302
    missing = run("disable", "nobody")
    assert missing.exit_code != 0 and "no operator named" in missing.output
