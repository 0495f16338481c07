"""Bearer-token authentication and scopes for the API views."""
from __future__ import annotations

import datetime as dt
import logging
from functools import wraps

from flask import g, request
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from readings_store import token_views
from readings_store.models import Region, utcnow

from . import tokens
from .problems import Problem

log = logging.getLogger("ivr.api")
TOUCH_EVERY = dt.timedelta(minutes=1)  # last_used_at is written at most this often per token


def _unauthorized(detail: str, error: str | None = None) -> Problem:
    challenge = 'Bearer realm="ivr-api"' + (f', error="{error}"' if error else "")
    return Problem(401, "unauthorized", "Unauthorized", detail, headers={"WWW-Authenticate": challenge})


def authenticate():
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if not header:
        raise _unauthorized("send the API token as 'Authorization: Bearer <token>'")
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("the Authorization header must be 'Bearer <token>'", "invalid_request")
    client = tokens.find(g.db, token)
    if client is None:
        raise _unauthorized("the API token is not valid", "invalid_token")
    if client.revoked_at is not None:
        raise _unauthorized("the API token has been revoked", "invalid_token")
    now = utcnow()
    if client.last_used_at is None or now - client.last_used_at > TOUCH_EVERY:
        # Best effort: a busy database (a long export holding SQLite's write lock) must not fail reads.
        try:
            client.last_used_at = now
            g.db.commit()
        except OperationalError:
            g.db.rollback()
            log.warning("could not record the last use of API client id %s (database busy)", client.id)
    return client


def require(scope: str):
    """Decorator: the view needs a valid token with ``scope`` (write implies read)."""

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            client = authenticate()
            if not tokens.scope_allows(client.scope, scope):
                raise Problem(403, "forbidden", "Forbidden",
                              f"this token has scope {client.scope!r}; the operation needs {scope!r}")
            g.api_client_id, g.api_client_name = client.id, client.name
            g.api_view = token_views.of_client(client)  # what the token sees: every query is filtered by it
            return view(*args, **kwargs)

        wrapper.required_scope = scope
        return wrapper

    return decorate


def outside_view(what: str) -> Problem:
    return Problem(403, "outside-view", "Outside the token's view",
                   f"{what} is outside what this token sees ({token_views.describe(g.db, g.api_view)})")


def check_in_view(region: str | None = None, utility: str | None = None) -> None:
    """A region (code) or utility a request names must be in the token's view: 403 otherwise
    (filtering it to nothing would look like "no readings")."""
    view = g.api_view
    if utility is not None and not view.has(utility=utility):
        raise outside_view(f"utility {utility!r}")
    if region is not None and view.regions is not None:
        region_id = g.db.scalar(select(Region.id).where(Region.code == region))
        if region_id is None or not view.has(region_id=region_id):
            raise outside_view(f"region {region!r}")


def require_unlimited(what: str) -> None:
    """Account pushes replace records whatever their region or utility: only for a token that sees everything."""
    if g.api_view.limited:
        raise outside_view(what)
