"""The OpenAPI 3.0 document of the billing API, served at ``GET /api/v1/openapi.json``.

Hand-written to match ``views.py`` and ``accounts.py``; ``tests/api/test_api_schemathesis.py``
checks the running API against it.
"""
from __future__ import annotations

import copy

from readings_store.export import AVERAGE_PERIODS, PERIOD_PATTERN, REGION_PATTERN
from readings_store.importer import COLUMNS, MAX_REGION_NAME
from readings_store.models import ACCOUNT_KINDS, CHANNELS, READING_STATUSES, UTILITIES

PERIOD = PERIOD_PATTERN
REGION = REGION_PATTERN
ACCOUNT_NUMBER = r"^[0-9]+([-/.* ][0-9]+)*$"
SERIAL = r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,63}$"


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict) -> dict:
    return {**schema, "nullable": True}


def _problem(description: str) -> dict:
    return {"description": description, "content": {"application/problem+json": {"schema": _ref("Problem")}}}


def _param(name: str, schema: dict, description: str, required: bool = False, **extra) -> dict:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description, **extra}


ERRORS = {
    "400": _problem("Bad query parameter, cursor or malformed body"),
    "401": _problem("Missing, unknown or revoked token (with a WWW-Authenticate: Bearer header)"),
    "403": _problem("The token's scope does not allow this operation, or the request names a region or utility "
                    "outside the token's view (problem type outside-view)"),
    "405": _problem("Method not allowed on this path"),
    "406": _problem("The Accept header asks for a media type this resource does not offer"),
    "500": _problem("Unexpected server error; nothing was changed"),
}


def _errors(*codes: str) -> dict:
    return {code: ERRORS[code] for code in codes}


CURSOR = _param("cursor", {"type": "string", "maxLength": 300},
                "Opaque cursor from `next_cursor` of the previous page; only valid with the same filters "
                "(a changed, tampered or foreign cursor is a 400).")
NEXT_HEADERS = {
    "X-Next-Cursor": {"description": "The next page's cursor (when there is one)", "schema": {"type": "string"}},
    "Link": {"description": "`<url>; rel=\"next\"` for the next page (when there is one)", "schema": {"type": "string"}},
}
BATCH_HEADERS = {
    "X-Export-Batch-Id": {"schema": {"type": "integer"}, "description": "The batch id"},
    "X-Export-Count": {"schema": {"type": "integer"}, "description": "How many readings it holds"},
}

SCHEMAS = {
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string", "description": "urn:meter-ivr:problem:<slug>, e.g. invalid-cursor"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "errors": {
                "type": "array",
                "description": "Per-item validation errors (422): `pointer` (JSON pointer into the body), "
                               "`index` (item of a JSON import) or `line` (line of a CSV import), and `detail`.",
                "items": {
                    "type": "object",
                    "required": ["detail"],
                    "properties": {
                        "pointer": {"type": "string"},
                        "index": {"type": "integer"},
                        "line": _nullable({"type": "integer"}),
                        "detail": {"type": "string"},
                    },
                },
            },
        },
    },
    "Reading": {
        "type": "object",
        "required": ["id", "account_number", "region_code", "meter_serial", "utility", "register", "value",
                     "period", "taken_at", "received_at", "channel", "status", "supersedes", "export_batch"],
        "properties": {
            "id": {"type": "integer", "description": "Stable id; lists are ordered by it"},
            "account_number": {"type": "string"},
            "region_code": {"type": "string"},
            "meter_serial": {"type": "string"},
            "utility": {"type": "string", "enum": list(UTILITIES)},
            "register": {"type": "string", "description": "total, or day/night on two-tariff meters"},
            "value": {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$",
                      "description": "Exact decimal as text (never a float)", "example": "1250.5"},
            "period": {"type": "string", "pattern": PERIOD, "description": "Billing period YYYY-MM"},
            "taken_at": {"type": "string", "format": "date-time", "description": "UTC, ISO 8601"},
            "received_at": {"type": "string", "format": "date-time", "description": "UTC, ISO 8601"},
            "channel": {"type": "string", "enum": list(CHANNELS)},
            "status": {"type": "string", "enum": list(READING_STATUSES),
                       "description": "In an export batch: the status it was exported with (accepted)"},
            "supersedes": _nullable({"type": "integer", "description": (
                "Id of the reading this one replaces, for billing to follow the chain: the last reading of the "
                "same meter, register and period that billing has received in an export batch (has "
                "`export_batch`), whatever its status now. Null when billing has received none: a reading "
                "replaced before it was exported is never exported and never named, nor is one that was pending "
                "review or rejected. Set only on accepted readings.")}),
            "export_batch": _nullable({"type": "integer", "description": "The batch that delivered it"}),
        },
    },
    "ReadingPage": {
        "type": "object",
        "required": ["items", "next_cursor", "limit"],
        "properties": {
            "items": {"type": "array", "items": _ref("Reading")},
            "next_cursor": _nullable({"type": "string", "description": "null on the last page"}),
            "limit": {"type": "integer"},
        },
    },
    "BatchSummary": {
        "type": "object",
        "required": ["id", "created_at", "count", "region_code", "period", "acknowledged_at"],
        "properties": {
            "id": {"type": "integer"},
            "created_at": {"type": "string", "format": "date-time"},
            "count": {"type": "integer", "minimum": 1},
            "region_code": _nullable({"type": "string"}),
            "period": _nullable({"type": "string"}),
            "acknowledged_at": _nullable({"type": "string", "format": "date-time"}),
        },
    },
    "Batch": {
        "type": "object",
        "description": "A batch and its readings in id order. Re-reading it gives the same content every time.",
        "required": ["id", "created_at", "count", "region_code", "period", "acknowledged_at", "readings"],
        "properties": {
            "id": {"type": "integer"},
            "created_at": {"type": "string", "format": "date-time"},
            "count": {"type": "integer", "minimum": 1},
            "region_code": _nullable({"type": "string"}),
            "period": _nullable({"type": "string"}),
            "acknowledged_at": _nullable({"type": "string", "format": "date-time"}),
            "readings": {"type": "array", "items": _ref("Reading")},
        },
    },
    "BatchList": {
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {
            "items": {"type": "array", "items": _ref("BatchSummary")},
            "next_cursor": _nullable({"type": "string"}),
        },
    },
    "ExportRequest": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "region": {"type": "string", "pattern": REGION, "description": "Only readings of this region"},
            "period": {"type": "string", "pattern": PERIOD, "description": "Only readings of this period"},
            "limit": {"type": "integer", "minimum": 1, "maximum": 1_000_000,
                      "description": "At most this many readings (lowest ids first); repeat until 204"},
        },
    },
    "MissingMeter": {
        "type": "object",
        "required": ["meter_id", "account_number", "region_code", "meter_serial", "utility", "period",
                     "last_reading_period", "periods_without", "billing_basis"],
        "properties": {
            "meter_id": {"type": "integer"},
            "account_number": {"type": "string"},
            "region_code": {"type": "string"},
            "meter_serial": {"type": "string"},
            "utility": {"type": "string", "enum": list(UTILITIES)},
            "period": {"type": "string", "pattern": PERIOD},
            "last_reading_period": _nullable({"type": "string", "pattern": PERIOD}),
            "periods_without": {"type": "integer", "minimum": 1,
                                "description": "Consecutive periods up to and including `period` without an "
                                               "accepted or pending reading (counted from installation if never read)"},
            "billing_basis": {"type": "string", "enum": ["average", "norm"],
                              "description": f"norm when periods_without > {AVERAGE_PERIODS}"},
        },
    },
    "MissingPage": {
        "type": "object",
        "required": ["period", "items", "next_cursor", "limit"],
        "properties": {
            "period": {"type": "string"},
            "items": {"type": "array", "items": _ref("MissingMeter")},
            "next_cursor": _nullable({"type": "string"}),
            "limit": {"type": "integer"},
        },
    },
    "MeterInput": {
        "type": "object",
        "additionalProperties": False,
        "required": ["serial", "utility", "registers", "digits", "decimals"],
        "properties": {
            "serial": {"type": "string", "pattern": SERIAL},
            "utility": {"type": "string", "enum": list(UTILITIES)},
            "registers": {"type": "integer", "minimum": 1, "maximum": 2,
                          "description": "2 (day/night) for electricity only"},
            "digits": {"type": "integer", "minimum": 1, "maximum": 12},
            "decimals": {"type": "integer", "minimum": 0, "maximum": 4},
        },
    },
    "AccountInput": {
        "type": "object",
        "additionalProperties": False,
        "required": ["region_code", "holder_name", "kind", "meters"],
        "properties": {
            "region_code": {"type": "string", "pattern": REGION,
                            "description": "The account is identified by region_code and number; an unknown "
                                           "region is created with default settings (see warnings)"},
            "holder_name": {"type": "string", "minLength": 1, "maxLength": 300},
            "kind": {"type": "string", "enum": list(ACCOUNT_KINDS)},
            "active": {"type": "boolean", "default": True},
            "phones": {"type": "array", "maxItems": 100, "items": {"type": "string", "example": "+37322123456"},
                       "description": "E.164; replaces the account's phones"},
            "meters": {"type": "array", "minItems": 1, "maxItems": 100, "items": _ref("MeterInput"),
                       "description": "Replaces the meter list: meters not listed are deactivated (kept for history)"},
        },
    },
    "Account": {
        "type": "object",
        "required": ["number", "region_code", "holder_name", "kind", "active", "phones", "meters"],
        "properties": {
            "number": {"type": "string"},
            "region_code": {"type": "string"},
            "holder_name": {"type": "string"},
            "kind": {"type": "string", "enum": list(ACCOUNT_KINDS)},
            "active": {"type": "boolean"},
            "phones": {"type": "array", "items": {"type": "string"}},
            "meters": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["serial", "utility", "registers", "digits", "decimals", "active"],
                    "properties": {
                        "serial": {"type": "string"},
                        "utility": {"type": "string"},
                        "registers": {"type": "integer"},
                        "digits": {"type": "integer"},
                        "decimals": {"type": "integer"},
                        "active": {"type": "boolean"},
                    },
                },
            },
            "created": {"type": "boolean"},
            "warnings": {"type": "array", "items": {"type": "string"}},
        },
    },
    "ImportRow": {
        "type": "object",
        "description": "One meter of an account: the columns of the CSV import (`ivr import`)",
        "additionalProperties": False,
        "required": [c for c in COLUMNS if c != "phone"],
        "properties": {
            **{c: {"type": "string"} for c in COLUMNS},
            "region_code": {"type": "string", "pattern": REGION},
            "account_number": {"type": "string", "pattern": ACCOUNT_NUMBER, "maxLength": 64},
            "holder_name": {"type": "string", "minLength": 1, "maxLength": 300},
            "kind": {"type": "string", "enum": list(ACCOUNT_KINDS)},
            "phone": _nullable({"type": "string"}),
            "region_name": _nullable({"type": "string", "maxLength": MAX_REGION_NAME,
                                      "description": "The name said to callers for a region this import creates "
                                                     "(an existing region keeps its name)"}),
            "meter_serial": {"type": "string", "pattern": SERIAL},
            "utility": {"type": "string", "enum": list(UTILITIES)},
            "registers": {"oneOf": [{"type": "integer", "minimum": 1, "maximum": 2}, {"type": "string"}]},
            "digits": {"oneOf": [{"type": "integer", "minimum": 1, "maximum": 12}, {"type": "string"}]},
            "decimals": {"oneOf": [{"type": "integer", "minimum": 0, "maximum": 4}, {"type": "string"}]},
        },
    },
    "ImportReport": {
        "type": "object",
        "required": ["rows", "applied", "accounts_created", "accounts_updated", "meters_created", "meters_updated",
                     "regions_created", "warnings"],
        "properties": {
            "rows": {"type": "integer"},
            "applied": {"type": "integer"},
            "accounts_created": {"type": "integer"},
            "accounts_updated": {"type": "integer"},
            "meters_created": {"type": "integer"},
            "meters_updated": {"type": "integer"},
            "regions_created": {"type": "array", "items": {"type": "string"}},
            "warnings": {"type": "array", "items": {"type": "string"}},
        },
    },
}


def _json_or_csv(schema_name: str, description: str, headers: dict | None = None) -> dict:
    out = {
        "description": description,
        "content": {"application/json": {"schema": _ref(schema_name)}, "text/csv": {"schema": {"type": "string"}}},
    }
    if headers:
        out["headers"] = headers
    return out


BATCH_ID = {"name": "batch_id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}

PATHS = {
    "/readings": {
        "get": {
            "operationId": "listReadings",
            "summary": "Readings in id order, cursor-paginated",
            "description": "Accepted readings by default. JSON, or CSV with `Accept: text/csv` (the next cursor "
                           "then comes in the X-Next-Cursor and Link headers). Text cells starting with = + - @ "
                           "are prefixed with a quote. Unknown query parameters are a 400. Pages are keyset pages on the id: "
                           "rows stored while you page appear once, on a later page; for exactly-once delivery "
                           "use export batches. Only readings in the token's view.",
            "parameters": [
                _param("status", {"type": "array", "minItems": 1, "uniqueItems": True,
                                  "items": {"type": "string", "enum": list(READING_STATUSES)}},
                       "Comma-separated statuses (default accepted)", style="form", explode=False),
                _param("region", {"type": "string", "pattern": REGION}, "Region code"),
                _param("utility", {"type": "string", "enum": list(UTILITIES)}, "Utility"),
                _param("period", {"type": "string", "pattern": PERIOD}, "Billing period YYYY-MM"),
                _param("limit", {"type": "integer", "minimum": 1, "maximum": 5000, "default": 500}, "Page size"),
                CURSOR,
            ],
            "responses": {"200": _json_or_csv("ReadingPage", "A page of readings", NEXT_HEADERS),
                          **_errors("400", "401", "403", "406", "500")},
        },
    },
    "/exports": {
        "post": {
            "operationId": "createExport",
            "summary": "Take every accepted, not yet exported reading into a new batch",
            "description": "Only readings in the token's view; the batch belongs to that view. A token without "
                           "limits leaves out the readings of limited write tokens. "
                           "Atomic: a reading is in at most one batch, even with concurrent requests. Returns the "
                           "batch with its readings (201, JSON or CSV); **204 with no body and no batch when there "
                           "is nothing to export**; 409 with `Retry-After` when there are readings to export but "
                           "another transaction holds them all right now (retry after that many seconds). Deliver "
                           "it, then acknowledge it; after a crash, list unacknowledged batches and re-read them. "
                           "Batch ids are 1, 2, 3 ... with no gaps: an export that creates nothing uses no id.",
            "requestBody": {"required": False, "content": {"application/json": {"schema": _ref("ExportRequest")}}},
            "responses": {
                "201": {**_json_or_csv("Batch", "The new batch", {**BATCH_HEADERS, "Location": {
                    "schema": {"type": "string"}, "description": "URL of the batch"}})},
                "204": {"description": "Nothing to export; no batch was created"},
                "409": {**_problem("Readings to export exist but another transaction holds them all; nothing was "
                                   "created. Retry after Retry-After seconds"),
                        "headers": {"Retry-After": {"schema": {"type": "integer"},
                                                    "description": "Seconds to wait before retrying"}}},
                "415": _problem("The body is not application/json"),
                "422": _problem("Unknown field, bad region/period/limit, or an unknown region"),
                **_errors("400", "401", "403", "406", "500"),
            },
        },
        "get": {
            "operationId": "listExports",
            "summary": "Export batches in id order (acknowledged=false: the ones still to deliver)",
            "description": "Only the batches of the token's view. Batch ids have no gaps, so batch n+1 follows "
                           "batch n (a limited token's view holds some of them); to walk them, follow "
                           "`next_cursor` from the first page, or ask for `acknowledged=false` after a crash.",
            "parameters": [
                _param("acknowledged", {"type": "boolean"}, "Only acknowledged (true) or unacknowledged (false)"),
                _param("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}, "Page size"),
                CURSOR,
            ],
            "responses": {
                "200": {"description": "Batches (without their readings)", "headers": NEXT_HEADERS,
                        "content": {"application/json": {"schema": _ref("BatchList")}}},
                **_errors("400", "401", "403", "500"),
            },
        },
    },
    "/exports/{batch_id}": {
        "get": {
            "operationId": "getExport",
            "summary": "Re-read a batch: the same readings and values every time",
            "parameters": [BATCH_ID],
            "responses": {
                "200": _json_or_csv("Batch", "The batch", BATCH_HEADERS),
                "404": _problem("No such batch in the token's view"),
                **_errors("400", "401", "403", "406", "500"),
            },
        },
    },
    "/exports/{batch_id}/ack": {
        "post": {
            "operationId": "acknowledgeExport",
            "summary": "Mark a batch delivered (idempotent: acknowledging again keeps the first time)",
            "parameters": [BATCH_ID],
            "responses": {
                "200": {"description": "The batch", "content": {"application/json": {"schema": _ref("BatchSummary")}}},
                "404": _problem("No such batch in the token's view"),
                **_errors("400", "401", "403", "500"),
            },
        },
    },
    "/missing": {
        "get": {
            "operationId": "listMissing",
            "summary": "Active meters without an accepted or pending reading in a period",
            "description": "Meters of active accounts, installed before the period ended, in the token's view, "
                           "in meter id order. "
                           f"billing_basis is `average` for up to {AVERAGE_PERIODS} periods in a row without a "
                           "reading and `norm` after that.",
            "parameters": [
                _param("period", {"type": "string", "pattern": PERIOD}, "Billing period YYYY-MM", required=True),
                _param("region", {"type": "string", "pattern": REGION}, "Region code"),
                _param("utility", {"type": "string", "enum": list(UTILITIES)}, "Utility"),
                _param("limit", {"type": "integer", "minimum": 1, "maximum": 5000, "default": 500}, "Page size"),
                CURSOR,
            ],
            "responses": {"200": _json_or_csv("MissingPage", "A page of meters", NEXT_HEADERS),
                          **_errors("400", "401", "403", "406", "500")},
        },
    },
    "/accounts/{number}": {
        "put": {
            "operationId": "putAccount",
            "summary": "Create or replace an account with its phones and meters",
            "description": "Validated with the rules of the CSV import; nothing changes when anything is bad. "
                           "Needs a token without region or utility limits (403 otherwise).",
            "parameters": [{"name": "number", "in": "path", "required": True,
                            "schema": {"type": "string", "pattern": ACCOUNT_NUMBER, "maxLength": 64}}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("AccountInput")}}},
            "responses": {
                "200": {"description": "Updated", "content": {"application/json": {"schema": _ref("Account")}}},
                "201": {"description": "Created", "content": {"application/json": {"schema": _ref("Account")}}},
                "409": _problem("A concurrent request changed the same account; retry"),
                "415": _problem("The body is not application/json"),
                "422": _problem("Validation errors, each with a JSON pointer"),
                **_errors("400", "401", "403", "500"),
            },
        },
    },
    "/accounts:import": {
        "post": {
            "operationId": "importAccounts",
            "summary": "Bulk upsert of accounts and meters (the CSV import's columns)",
            "description": "A JSON array of rows or a text/csv body with the header "
                           f"`{','.join(COLUMNS)}`. One transaction: any bad row and nothing is applied; the "
                           "errors name each bad row by `index` (JSON) or `line` (CSV). Needs a token without "
                           "region or utility limits (403 otherwise).",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"type": "array", "maxItems": 500_000, "items": _ref("ImportRow")}},
                    "text/csv": {"schema": {"type": "string"}},
                },
            },
            "responses": {
                "200": {"description": "Applied", "content": {"application/json": {"schema": _ref("ImportReport")}}},
                "409": _problem("A concurrent request changed the same records; retry"),
                "413": _problem("The body is larger than 16 MiB"),
                "415": _problem("The body is neither application/json nor text/csv"),
                "422": _problem("Bad rows; nothing was imported"),
                **_errors("400", "401", "403", "500"),
            },
        },
    },
    "/openapi.json": {
        "get": {
            "operationId": "openapi",
            "summary": "This document",
            "security": [],
            "responses": {"200": {"description": "OpenAPI 3.0 document",
                                  "content": {"application/json": {"schema": {"type": "object"}}}}},
        },
    },
}

SPEC = {
    "openapi": "3.0.3",
    "info": {
        "title": "Meter-reading robot: billing API",
        "version": "1.0.0",
        "description": (
            "Pull collected readings exactly once (export batches), read them incrementally (cursor pages), "
            "report meters without readings, and push account records in.\n\n"
            "Authenticate with `Authorization: Bearer <token>`; tokens come from "
            "`ivr api-tokens create NAME --scope read|write` (write implies read). Errors are "
            "`application/problem+json`.\n\n"
            "A token may be limited to regions and utilities (`--regions CODE,… --utilities NAME,…`): its view. "
            "Every list, read, export and acknowledgement is filtered by it, and a region or utility outside it "
            "is a 403. An export batch belongs to the view it was created in, and each view receives each of its "
            "readings exactly once: the views of write tokens are the same or apart, and a token without limits "
            "exports only what no limited write token exports.\n\n"
            "Exactly-once recipe: `POST /exports` → store the readings → `POST /exports/{id}/ack`. After a crash, "
            "`GET /exports?acknowledged=false` and re-read each batch with `GET /exports/{id}` (same content), "
            "then acknowledge. A later correction (the customer's, or an operator's) is a new accepted reading "
            "whose `supersedes` names the last reading of that meter, register and period that billing received "
            "in a batch (null if none); it arrives in a later batch. A reading replaced before it was exported is "
            "never exported."
        ),
    },
    "servers": [{"url": "/api/v1"}],
    "security": [{"bearerAuth": []}],
    "paths": PATHS,
    "components": {
        "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                           "description": "Token from `ivr api-tokens create`"}},
        "schemas": SCHEMAS,
    },
}


def spec() -> dict:
    return copy.deepcopy(SPEC)
