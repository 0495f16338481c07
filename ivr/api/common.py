"""Small request/response helpers shared by the API views."""
from __future__ import annotations

import json
import re

from flask import Response, current_app, request

from . import cursors
from .problems import Problem, bad_request

JSON = "application/json"
CSV = "text/csv"
_INT = re.compile(r"^[0-9]{1,9}$")


def services():
    return current_app.extensions["ivr"]


def json_text(data) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def json_response(data, status: int = 200, headers: dict | None = None, *, documents: str | None = None) -> Response:
    """``data`` as compact JSON. ``documents`` names the first key of ``data``, whose value is a
    list of JSON texts already (the database renders readings): they are joined, not encoded again."""
    if documents is None:
        body = json_text(data)
    else:
        assert next(iter(data)) == documents
        rest = {key: value for key, value in data.items() if key != documents}
        body = f"{{{json_text(documents)}:[{','.join(data[documents])}]" + ("," + json_text(rest)[1:] if rest else "}")
    response = Response(body, status=status, mimetype=JSON)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def query_params(allowed: set[str]) -> dict[str, str]:
    """The query string as single values; unknown or repeated parameters are a 400 (a misspelt
    filter must not silently widen a pull)."""
    unknown = sorted(set(request.args) - allowed)
    if unknown:
        raise bad_request(f"unknown query parameter(s): {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}",
                          "invalid-parameter")
    out = {}
    for key in request.args:
        values = request.args.getlist(key)
        if len(values) > 1:
            raise bad_request(f"query parameter {key} given more than once", "invalid-parameter")
        out[key] = values[0]
    return out


def parse_limit(raw: str | None, default: int, maximum: int) -> int:
    if raw is None:
        return default
    if not _INT.match(raw) or not 1 <= int(raw) <= maximum:
        raise bad_request(f"limit must be a whole number from 1 to {maximum}, got {raw!r}", "invalid-parameter")
    return int(raw)


def parse_filter(check, raw: str | None, name: str):
    if raw is None:
        return None
    try:
        return check(raw)
    except ValueError as exc:
        raise bad_request(f"{name}: {exc}", "invalid-parameter") from None


def cursor_after(kind: str, raw: str | None, filters: dict) -> int:
    if raw is None:
        return 0
    try:
        return cursors.decode(services().config.secret_key, kind, raw, filters)
    except cursors.CursorError as exc:
        raise bad_request(str(exc), "invalid-cursor") from None


def next_cursor(kind: str, more: bool, last_id: int | None, filters: dict) -> str | None:
    if not more or last_id is None:
        return None
    return cursors.encode(services().config.secret_key, kind, last_id, filters)


def negotiate(csv_ok: bool = True) -> str:
    """``json`` or ``csv`` from the Accept header (JSON when absent or */*); 406 otherwise."""
    if not request.headers.get("Accept", "").strip():
        return "json"
    offers = [JSON, CSV] if csv_ok else [JSON]
    best = request.accept_mimetypes.best_match(offers + ["application/problem+json"])
    if best in (JSON, "application/problem+json"):
        return "json"
    if best == CSV:
        return "csv"
    raise Problem(406, "not-acceptable", "Not acceptable",
                  f"this resource is available as {' or '.join(offers)}")


def json_body(*, optional: bool = False):
    """The request's JSON document (any type); 415 for another media type, 400 if malformed."""
    data = request.get_data(cache=True)
    if optional and not data.strip():
        return None
    if not request.is_json:
        raise Problem(415, "unsupported-media-type", "Unsupported media type",
                      "send the body as application/json")
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise bad_request(f"the body is not valid JSON: {str(exc)[:200]}", "malformed-body") from None
