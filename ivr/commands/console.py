"""Operator accounts for the console: ``ivr operators add|list|disable|enable|unlock|password``.

Passwords are read from standard input (``echo secret | ivr operators add ann --role admin``), or
prompted for twice without echo on a terminal; they are never command-line arguments (those show
up in ``ps`` and shell history). Only werkzeug hashes are stored.
"""
from __future__ import annotations

import re
import sys

import click

from . import migrated_transaction

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


def _read_password() -> str:
    from ..console.auth import password_problem

    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True, default="",
                                show_default=False)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    problem = password_problem(password)
    if problem:
        raise click.ClickException(f"{problem}; nothing was changed")
    return password


def _operator(session, name: str):
    from sqlalchemy import select

    from readings_store.models import Operator

    operator = session.scalars(select(Operator).where(Operator.username == name)).first()
    if operator is None:
        raise click.ClickException(f"no operator named {name!r}")
    return operator


def _audit(session, action: str, operator, **kw) -> None:
    from readings_store import service

    service.audit(session, actor_kind="system", actor_name="cli", action=action, entity="operator",
                  entity_id=operator.id, **kw)


@click.group("operators")
def operators() -> None:
    """Operator accounts of the web console."""


@operators.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["operator", "admin"]), default="operator", show_default=True)
def add(name: str, role: str) -> None:
    """Create an operator; the password is read from standard input."""
    from sqlalchemy import select

    from readings_store.models import Operator

    from ..console.auth import hash_password

    if not NAME.match(name):
        raise click.ClickException("the name may use letters, digits and . _ @ - (at most 64 characters)")
    password = _read_password()
    with migrated_transaction() as session:
        if session.scalars(select(Operator).where(Operator.username == name)).first():
            raise click.ClickException(f"an operator named {name!r} already exists")
        operator = Operator(username=name, password_hash=hash_password(password), role=role, active=True,
                            failed_logins=0)
        session.add(operator)
        session.flush()
        _audit(session, "operator.add", operator, after={"username": name, "role": role})
    click.echo(f"operator {name} added ({role})")


@operators.command("list")
def list_cmd() -> None:
    """List operators with their role and state."""
    from sqlalchemy import select

    from readings_store.models import Operator, utcnow

    with migrated_transaction() as session:
        rows = session.scalars(select(Operator).order_by(Operator.username)).all()
        now = utcnow()
        if not rows:
            click.echo("no operators yet: add one with `ivr operators add NAME --role admin`")
        for o in rows:
            state = "disabled" if not o.active else (
                f"locked until {o.locked_until:%Y-%m-%d %H:%M} UTC" if o.locked_until and o.locked_until > now
                else "active")
            last = f"{o.last_login_at:%Y-%m-%d %H:%M} UTC" if o.last_login_at else "never"
            click.echo(f"{o.username:<24} {o.role:<9} {state:<32} last log-in {last}")


def _set_active(name: str, active: bool) -> None:
    with migrated_transaction() as session:
        operator = _operator(session, name)
        operator.active = active
        _audit(session, "operator.enable" if active else "operator.disable", operator, after={"active": active})
    click.echo(f"operator {name} {'enabled' if active else 'disabled'}")


@operators.command("disable")
@click.argument("name")
def disable(name: str) -> None:
    """Disable an operator: they cannot log in and their open sessions end."""
    _set_active(name, False)


@operators.command("enable")
@click.argument("name")
def enable(name: str) -> None:
    """Enable a disabled operator again."""
    _set_active(name, True)


@operators.command("unlock")
@click.argument("name")
def unlock(name: str) -> None:
    """Lift a log-in lock after too many failed attempts."""
    from sqlalchemy import delete

    from readings_store.models import LoginAttempt

    with migrated_transaction() as session:
        operator = _operator(session, name)
        operator.locked_until = None
        operator.failed_logins = 0
        # Failed log-ins for this name, from every address, no longer count.
        session.execute(delete(LoginAttempt).where(LoginAttempt.username == operator.username))
        _audit(session, "operator.unlock", operator)
    click.echo(f"operator {name} unlocked")


@operators.command("password")
@click.argument("name")
def password(name: str) -> None:
    """Set a new password (read from standard input); ends the operator's sessions."""
    from ..console.auth import hash_password

    new = _read_password()
    with migrated_transaction() as session:
        operator = _operator(session, name)
        operator.password_hash = hash_password(new)
        operator.failed_logins = 0
        operator.locked_until = None
        _audit(session, "operator.password", operator)
    click.echo(f"password of {name} changed")


def register(cli):
    """Add this module's commands to the ``ivr`` group."""
    cli.add_command(operators)
