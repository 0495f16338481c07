"""Readings, export batches, the missing-readings report, the OpenAPI document, and the fallback
that answers unknown paths and wrong methods under /api/v1/ with problem documents."""
from __future__ import annotations

from urllib.parse import urlencode

from flask import Response, current_app, g, request, url_for
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from readings_store import export, token_views
from readings_store.models import Region
from readings_store.service import audit

from .blueprint import bp
from .auth import check_in_view, require
from .common import (
    CSV,
    cursor_after,
    json_body,
    json_response,
    json_text,
    negotiate,
    next_cursor,
    parse_filter,
    parse_limit,
    query_params,
    services,
)
from .problems import Problem, bad_request, not_found, unprocessable

DEFAULT_LIMIT, MAX_LIMIT = 500, 5000
MAX_BATCH_LIMIT = 1_000_000
# Another transaction holding the readings (an exporter mid-commit) is done within a second or two.
EXPORT_RETRY_SECONDS = 2


def _csv_response(fields, rows, filename: str, status: int = 200, headers: dict | None = None) -> Response:
    """CSV of ``rows`` (values in the order of ``fields``)."""
    response = Response(export.csv_rows(fields, rows), status=status, mimetype=CSV)
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _page_headers(cursor: str | None) -> dict:
    if cursor is None:
        return {}
    args = request.args.to_dict()
    args["cursor"] = cursor
    return {"X-Next-Cursor": cursor, "Link": f'<{request.base_url}?{urlencode(args)}>; rel="next"'}


# ---------------------------------------------------------------------------------------------
# readings


@bp.get("/readings")
@require("read")
def list_readings():
    args = query_params({"status", "region", "utility", "period", "limit", "cursor"})
    fmt = negotiate()
    statuses = parse_filter(lambda s: export.check_statuses(s.split(",")), args.get("status"), "status")
    filters = export.ReadingFilter(
        statuses=statuses or ("accepted",),
        region=parse_filter(export.check_region, args.get("region"), "region"),
        utility=parse_filter(export.check_utility, args.get("utility"), "utility"),
        period=parse_filter(export.check_period, args.get("period"), "period"),
        view=g.api_view,
    )
    check_in_view(filters.region, filters.utility)
    limit = parse_limit(args.get("limit"), DEFAULT_LIMIT, MAX_LIMIT)
    after = cursor_after("readings", args.get("cursor"), filters.key())
    items, last_id, more = export.list_readings(g.db, filters, after_id=after, limit=limit, rows=fmt == "csv")
    cursor = next_cursor("readings", more, last_id, filters.key())
    if fmt == "csv":
        return _csv_response(export.READING_FIELDS, items, "readings.csv", headers=_page_headers(cursor))
    return json_response({"items": items, "next_cursor": cursor, "limit": limit}, headers=_page_headers(cursor),
                         documents="items")


# ---------------------------------------------------------------------------------------------
# export batches


def _batch_response(batch, fmt: str, status: int = 200) -> Response:
    """The batch with all its readings, streamed from a session of its own (a batch may hold
    hundreds of thousands of readings; the request's session is closed when the view returns)."""
    summary = export.batch_summary(batch)
    sessions = services().sessions
    headers = {"X-Export-Batch-Id": str(batch.id), "X-Export-Count": str(batch.reading_count)}
    if status == 201:
        headers["Location"] = url_for("api.get_export", batch_id=batch.id)

    def readings(rows: bool = False):
        session = sessions()
        try:
            yield from export.batch_documents(session, batch.id, rows=rows)
        finally:
            session.close()

    if fmt == "csv":
        return _csv_response(export.READING_FIELDS, readings(rows=True), f"export-{batch.id}.csv", status, headers)

    def document():
        head = json_text(summary)
        yield head[:-1] + ',"readings":['
        chunk, first = [], True
        for text in readings():
            chunk.append(text)
            if len(chunk) >= 1000:
                yield ("" if first else ",") + ",".join(chunk)
                chunk, first = [], False
        if chunk:
            yield ("" if first else ",") + ",".join(chunk)
        yield "]}"

    response = Response(document(), status=status, mimetype="application/json")
    for key, value in headers.items():
        response.headers[key] = value
    return response


@bp.post("/exports")
@require("write")
def create_export():
    query_params(set())
    body = json_body(optional=True)
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object like {\"region\": \"CHI\", \"period\": \"2025-01\"}",
                          "malformed-body")
    errors = [{"pointer": f"/{key}", "detail": "unknown field"} for key in sorted(body) if key not in
              ("region", "period", "limit")]
    region, period, limit = body.get("region"), body.get("period"), body.get("limit")
    for name, check, value in (("region", export.check_region, region), ("period", export.check_period, period)):
        if value is not None:
            try:
                check(value)
            except ValueError as exc:
                errors.append({"pointer": f"/{name}", "detail": str(exc)})
    if limit is not None and (type(limit) is not int or not 1 <= limit <= MAX_BATCH_LIMIT):
        errors.append({"pointer": "/limit", "detail": f"limit must be a whole number from 1 to {MAX_BATCH_LIMIT}"})
    if not errors and region is not None and g.db.query(Region.id).filter(Region.code == region).first() is None:
        errors.append({"pointer": "/region", "detail": f"no region with code {region!r}"})
    if errors:
        raise unprocessable("the export request is not valid", errors)
    check_in_view(region)
    fmt = negotiate()
    try:
        batch = export.create_batch(g.db, region=region, period=period, limit=limit, created_by=g.api_client_id,
                                    view=token_views.for_export(g.db, g.api_view))
    except export.ExportBusy as exc:
        g.db.rollback()
        raise Problem(409, "export-busy", "Readings are locked", str(exc),
                      headers={"Retry-After": str(EXPORT_RETRY_SECONDS)}) from None
    if batch is None:
        g.db.rollback()
        return Response(status=204)
    audit(g.db, actor_kind="api", actor_id=g.api_client_id, actor_name=g.api_client_name, action="export.create",
          entity="export_batch", entity_id=batch.id,
          after={"count": batch.reading_count, "region": region, "period": period, "view": batch.view})
    g.db.commit()
    return _batch_response(batch, fmt, status=201)


@bp.get("/exports")
@require("read")
def list_exports():
    args = query_params({"acknowledged", "limit", "cursor"})
    raw = args.get("acknowledged")
    if raw not in (None, "true", "false"):
        raise bad_request(f"acknowledged must be true or false, got {raw!r}", "invalid-parameter")
    acknowledged = None if raw is None else raw == "true"
    limit = parse_limit(args.get("limit"), 100, 1000)
    key = {"acknowledged": acknowledged}
    after = cursor_after("exports", args.get("cursor"), key)
    batches, more = export.list_batches(g.db, acknowledged=acknowledged, after_id=after, limit=limit,
                                        view=g.api_view)
    cursor = next_cursor("exports", more, batches[-1].id if batches else None, key)
    return json_response({"items": [export.batch_summary(b) for b in batches], "next_cursor": cursor},
                         headers=_page_headers(cursor))


@bp.get("/exports/<int:batch_id>")
@require("read")
def get_export(batch_id: int):
    query_params(set())
    fmt = negotiate()
    batch = export.get_batch(g.db, batch_id)
    if batch is None or not g.api_view.owns(batch):  # another view's batch is not there for this token
        raise not_found(f"no export batch {batch_id}")
    return _batch_response(batch, fmt)


@bp.post("/exports/<int:batch_id>/ack")
@require("write")
def ack_export(batch_id: int):
    query_params(set())
    before = export.get_batch(g.db, batch_id)
    if before is None or not g.api_view.owns(before):
        raise not_found(f"no export batch {batch_id}")
    first_time = before.acknowledged_at is None
    batch = export.acknowledge(g.db, batch_id)
    if first_time and batch.acknowledged_at is not None:
        audit(g.db, actor_kind="api", actor_id=g.api_client_id, actor_name=g.api_client_name, action="export.ack",
              entity="export_batch", entity_id=batch.id, after={"count": batch.reading_count})
    g.db.commit()
    return json_response(export.batch_summary(batch))


# ---------------------------------------------------------------------------------------------
# missing readings


@bp.get("/missing")
@require("read")
def missing():
    args = query_params({"period", "region", "utility", "limit", "cursor"})
    fmt = negotiate()
    if "period" not in args:
        raise bad_request("period (YYYY-MM) is required", "invalid-parameter")
    filters = export.MissingFilter(
        period=parse_filter(export.check_period, args["period"], "period"),
        region=parse_filter(export.check_region, args.get("region"), "region"),
        utility=parse_filter(export.check_utility, args.get("utility"), "utility"),
        view=g.api_view,
    )
    check_in_view(filters.region, filters.utility)
    limit = parse_limit(args.get("limit"), DEFAULT_LIMIT, MAX_LIMIT)
    after = cursor_after("missing", args.get("cursor"), filters.key())
    items, more = export.missing_meters(g.db, filters, after_id=after, limit=limit)
    cursor = next_cursor("missing", more, items[-1]["meter_id"] if items else None, filters.key())
    if fmt == "csv":
        rows = ([item[f] for f in export.MISSING_FIELDS] for item in items)
        return _csv_response(export.MISSING_FIELDS, rows, f"missing-{filters.period}.csv", headers=_page_headers(cursor))
    return json_response({"period": filters.period, "items": items, "next_cursor": cursor, "limit": limit},
                         headers=_page_headers(cursor))


# ---------------------------------------------------------------------------------------------
# the OpenAPI document and the fallback


@bp.get("/openapi.json")
def openapi_document():
    from .openapi import spec

    return json_response(spec())


_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@bp.route("/", defaults={"rest": ""}, methods=_METHODS)
@bp.route("/<path:rest>", methods=_METHODS)
def fallback(rest: str):
    """Every path under /api/v1/ that no view serves for this method: 405 if another method
    would be served, else 404 (as problem documents, not the app's HTML pages)."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    allowed = set()
    for method in _METHODS:
        try:
            endpoint, _ = adapter.match(method=method)
        except HTTPException:
            continue
        except Exception:  # RequestRedirect and the like  # pragma: no cover
            continue
        if endpoint != "api.fallback":
            allowed.add(method)
    if allowed:
        if "GET" in allowed:
            allowed.add("HEAD")
        raise MethodNotAllowed(valid_methods=sorted(allowed | {"OPTIONS"}),
                               description=f"{request.method} is not allowed here; use {', '.join(sorted(allowed))}")
    raise NotFound(description=f"no API resource at {request.path}")
