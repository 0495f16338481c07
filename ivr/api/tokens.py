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

from readings_store.models import ApiClient, utcnow
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


def create(session: Session, name: str, scope: str) -> tuple[ApiClient, str]:
    """A new client and its token (the only time the token exists in clear). The caller commits."""
    name = check_name(name)
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
    if session.scalars(select(ApiClient).where(ApiClient.name == name, ApiClient.revoked_at.is_(None))).first():
        raise ValueError(f"an active token named {name!r} exists; revoke it first or pick another name")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    client = ApiClient(name=name, token_hash=hash_token(token), token_prefix=token[:PREFIX_LENGTH], scope=scope)
    session.add(client)
    session.flush()
    audit(session, actor_kind="system", action="api_token.create", entity="api_client", entity_id=client.id,
          after={"name": name, "scope": scope, "prefix": client.token_prefix})
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
