"""Opaque page cursors: base64url of ``{"k": kind, "id": last id, "f": filters hash}`` and an HMAC.

The HMAC (keyed from the app's secret key) makes a tampered cursor fail; the filters hash makes a
cursor fail when it is replayed with other filters. Both are reported as 400 by the API. Keyset
pagination on the id means rows inserted between two page fetches never shift a page: nothing is
repeated or skipped (rows committed later with a *lower* id than the cursor are not seen by that
walk; exactly-once delivery is what export batches are for).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json


class CursorError(ValueError):
    pass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key(secret: str) -> bytes:
    return hashlib.sha256(b"ivr-api-cursor\x00" + secret.encode("utf-8")).digest()


def filters_hash(filters: dict) -> str:
    canonical = json.dumps(filters, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def encode(secret: str, kind: str, last_id: int, filters: dict) -> str:
    payload = json.dumps({"k": kind, "id": last_id, "f": filters_hash(filters)}, separators=(",", ":")).encode()
    signature = hmac.new(_key(secret), payload, hashlib.sha256).digest()[:16]
    return f"{_b64(payload)}.{_b64(signature)}"


def decode(secret: str, kind: str, cursor: str, filters: dict) -> int:
    """The last id of the previous page; raises CursorError for anything but a cursor we issued
    for this listing with these filters."""
    if not cursor or len(cursor) > 300 or cursor.count(".") != 1:
        raise CursorError("the cursor is malformed; use next_cursor from a previous page as is")
    body, sig = cursor.split(".")
    try:
        payload, signature = _unb64(body), _unb64(sig)
    except (ValueError, TypeError):
        raise CursorError("the cursor is malformed; use next_cursor from a previous page as is") from None
    expected = hmac.new(_key(secret), payload, hashlib.sha256).digest()[:16]
    if not hmac.compare_digest(signature, expected):
        raise CursorError("the cursor was altered or was issued by another server; start again without a cursor")
    data = json.loads(payload)
    if data.get("k") != kind:
        raise CursorError("the cursor belongs to another listing")
    if data.get("f") != filters_hash(filters):
        raise CursorError("the cursor was issued for other filters; repeat the same filters or start again")
    last_id = data.get("id")
    if not isinstance(last_id, int) or last_id < 0:
        raise CursorError("the cursor is malformed")
    return last_id
