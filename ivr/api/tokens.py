"""API bearer tokens: created once, shown once, stored as a SHA-256 hash with a short prefix.

A token is ``ivr_`` + 43 characters of ``secrets.token_urlsafe(32)`` (256 bits), so a plain
SHA-256 is a safe store (no salt or slow hash needed for a random secret of that size). Neither
the token nor its hash is ever logged.
"""
from __future__ import annotations

import hashlib
import re
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from readings_store import token_views
from readings_store.models import ApiClient, ApiClientRegion, utcnow
from readings_store.service import audit

TOKEN_PREFIX = "ivr_"
SCOPES = ("read", "write")
PREFIX_LENGTH = 12  # "ivr_" and the first 8 random characters: enough to tell tokens apart
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$")
MAX_TOKEN_LENGTH = 200


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def scope_allows(have: str, need: str) -> bool:
    """``write`` implies ``read``."""
    return have == need or (have == "write" and need == "read")


def check_name(name: str) -> str:
    name = (name or "").strip()
    if not _NAME.match(name) or name.isdigit():
        raise ValueError("token name must be 1-100 letters, digits, space . _ - (starting with a letter or digit), "
                         "and not only digits (those name ids)")
    return name


def create(session: Session, name: str, scope: str, view: token_views.View = token_views.EVERYTHING
           ) -> tuple[ApiClient, str]:
    """A new client and its token (the only time the token exists in clear), seeing ``view``
    (``token_views.parse``). The caller commits."""
    name = check_name(name)
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
    if session.scalars(select(ApiClient).where(ApiClient.name == name, ApiClient.revoked_at.is_(None))).first():
        raise ValueError(f"an active token named {name!r} exists; revoke it first or pick another name")
    if scope == "write" and (other := token_views.overlapping_exporter(session, view)) is not None:
        raise ValueError(f"token {other.name!r} exports {token_views.describe(session, token_views.of_client(other))}, "
                         f"which shares readings with {token_views.describe(session, view)}; a reading is exported "
                         "once, so the views of write tokens must be the same or apart")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    client = ApiClient(name=name, token_hash=hash_token(token), token_prefix=token[:PREFIX_LENGTH], scope=scope,
                       utilities=sorted(view.utilities) if view.utilities is not None else None,
                       regions=[ApiClientRegion(region_id=i) for i in sorted(view.regions or ())])
    session.add(client)
    session.flush()
    audit(session, actor_kind="system", action="api_token.create", entity="api_client", entity_id=client.id,
          after={"name": name, "scope": scope, "prefix": client.token_prefix,
                 "view": token_views.describe(session, view)})
    return client, token


def find(session: Session, token: str) -> ApiClient | None:
    """The client a presented token belongs to (revoked ones included; the caller checks)."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    return session.scalars(select(ApiClient).where(ApiClient.token_hash == hash_token(token))).first()


def resolve(session: Session, name_or_id: str) -> ApiClient:
    """An active token by name, else any token by id."""
    key = (name_or_id or "").strip()
    client = session.scalars(
        select(ApiClient).where(ApiClient.name == key, ApiClient.revoked_at.is_(None))
    ).first()
    if client is None and key.isdigit() and int(key) < 2**31:
        client = session.get(ApiClient, int(key))
    if client is None:
        raise LookupError(f"no active token named {key!r} and no token with that id")
    return client


def revoke(session: Session, name_or_id: str) -> tuple[ApiClient, bool]:
    """Revoke a token; returns it and whether it was active until now. The caller commits."""
    client = resolve(session, name_or_id)
    if client.revoked_at is not None:
        return client, False
    client.revoked_at = utcnow()
    audit(session, actor_kind="system", action="api_token.revoke", entity="api_client", entity_id=client.id,
          before={"name": client.name, "scope": client.scope, "prefix": client.token_prefix})
    session.flush()
    return client, True


def all_clients(session: Session) -> list[ApiClient]:
    return list(session.scalars(select(ApiClient).order_by(ApiClient.id)))
