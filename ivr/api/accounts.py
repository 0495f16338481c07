"""Accounts pushed in by billing: ``PUT /accounts/{number}`` (one account, full replacement of
its phones and meter list) and ``POST /accounts:import`` (rows with the CSV import's columns).

Both go through ``readings_store.importer`` so the rules are those of ``ivr import``; both run
in one transaction and change nothing when any item is bad.
"""
from __future__ import annotations

import csv

from flask import g, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from readings_store import importer
from readings_store.models import Account, Region
from readings_store.service import audit

from .blueprint import bp
from .auth import require, require_unlimited
from .common import json_body, json_response, query_params
from .problems import Problem, bad_request, unprocessable

ACCOUNT_FIELDS = {"region_code": str, "holder_name": str, "kind": str, "phones": list, "meters": list,
                  "active": bool}
REQUIRED_FIELDS = ("region_code", "holder_name", "kind", "meters")
METER_FIELDS = {"serial": str, "utility": str, "registers": int, "digits": int, "decimals": int}
MAX_METERS = MAX_PHONES = 100


def _type_ok(value, kind) -> bool:
    if kind is int:
        return type(value) is int
    return isinstance(value, kind)


def _type_name(kind) -> str:
    return {str: "a string", int: "a whole number", bool: "true or false", list: "an array"}[kind]


def _check_shape(body) -> list[dict]:
    """Structural errors of a PUT body, as JSON pointers."""
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object with region_code, holder_name, kind, phones, meters",
                          "malformed-body")
    errors = []
    for key in sorted(body):
        if key not in ACCOUNT_FIELDS:
            errors.append({"pointer": f"/{key}", "detail": "unknown field"})
    for key in REQUIRED_FIELDS:
        if key not in body:
            errors.append({"pointer": f"/{key}", "detail": "required"})
    for key, kind in ACCOUNT_FIELDS.items():
        if key in body and not _type_ok(body[key], kind):
            errors.append({"pointer": f"/{key}", "detail": f"must be {_type_name(kind)}"})
    if errors:
        return errors
    phones = body.get("phones", [])
    if len(phones) > MAX_PHONES:
        errors.append({"pointer": "/phones", "detail": f"at most {MAX_PHONES} phones"})
    for j, phone in enumerate(phones):
        if not isinstance(phone, str):
            errors.append({"pointer": f"/phones/{j}", "detail": "must be a string"})
    meters = body["meters"]
    if not 1 <= len(meters) <= MAX_METERS:
        errors.append({"pointer": "/meters", "detail": f"must list 1 to {MAX_METERS} meters"})
    serials = set()
    for i, meter in enumerate(meters):
        if not isinstance(meter, dict):
            errors.append({"pointer": f"/meters/{i}", "detail": "must be an object"})
            continue
        for key in sorted(meter):
            if key not in METER_FIELDS:
                errors.append({"pointer": f"/meters/{i}/{key}", "detail": "unknown field"})
        for key, kind in METER_FIELDS.items():
            if key not in meter:
                errors.append({"pointer": f"/meters/{i}/{key}", "detail": "required"})
            elif not _type_ok(meter[key], kind):
                errors.append({"pointer": f"/meters/{i}/{key}", "detail": f"must be {_type_name(kind)}"})
        serial = meter.get("serial")
        if isinstance(serial, str):
            if serial.strip() in serials:
                errors.append({"pointer": f"/meters/{i}/serial", "detail": f"meter {serial!r} is listed twice"})
            serials.add(serial.strip())
    return errors


def _row(number: str, body: dict, meter: dict, phone: str | None) -> dict:
    return {
        "region_code": body["region_code"], "account_number": number, "holder_name": body["holder_name"],
        "kind": body["kind"], "phone": phone or "", "meter_serial": meter["serial"], "utility": meter["utility"],
        "registers": meter["registers"], "digits": meter["digits"], "decimals": meter["decimals"],
    }


def account_document(account: Account) -> dict:
    return {
        "number": account.number,
        "region_code": account.region.code,
        "holder_name": account.holder_name,
        "kind": account.kind,
        "active": account.active,
        "phones": sorted(p.phone for p in account.phones),
        "meters": [{"serial": m.serial, "utility": m.utility, "registers": m.registers, "digits": m.digits,
                    "decimals": m.decimals, "active": m.active} for m in account.meters],
    }


@bp.put("/accounts/<path:number>")
@require("write")
def put_account(number: str):
    query_params(set())
    require_unlimited("pushing accounts (it replaces an account's meters of every utility)")
    body = json_body()
    errors = _check_shape(body)
    if errors:
        raise unprocessable("the account is not valid", errors)
    meters, phones = body["meters"], list(dict.fromkeys(body.get("phones", [])))
    # The importer's rules, item by item, so each error points at the item it is about.
    valid_meters = []
    for i, meter in enumerate(meters):
        try:
            valid_meters.append(importer.validate_row(i, _row(number, body, meter, None)))
        except ValueError as exc:
            errors.append({"pointer": f"/meters/{i}", "detail": str(exc)})
    normalised_phones = []
    if not errors:
        for j, phone in enumerate(phones):
            try:
                normalised_phones.append(importer.validate_row(j, _row(number, body, meters[0], phone)).phone)
            except ValueError as exc:
                errors.append({"pointer": f"/phones/{j}", "detail": str(exc)})
    if errors:
        raise unprocessable("the account is not valid", errors)
    rows = [(i, _row(number, body, m, None)) for i, m in enumerate(meters)]
    rows += [(len(meters) + j, _row(number, body, meters[0], p)) for j, p in enumerate(normalised_phones)]
    try:
        report = importer.import_rows(g.db, rows)
        if report.errors:  # pragma: no cover - validated above
            raise unprocessable("the account is not valid",
                                [{"pointer": "", "detail": e.reason} for e in report.errors])
        region = g.db.scalars(select(Region).where(Region.code == valid_meters[0].region_code)).one()
        account = g.db.scalars(
            select(Account).where(Account.region_id == region.id, Account.number == valid_meters[0].account_number)
        ).one()
        g.db.refresh(account)
        keep_phones = set(normalised_phones)
        for phone in list(account.phones):
            if phone.phone not in keep_phones:
                account.phones.remove(phone)
        keep_meters = {m.meter_serial for m in valid_meters}
        for meter in account.meters:
            meter.active = meter.serial in keep_meters
        account.active = body.get("active", True)
        g.db.flush()
        document = account_document(account)
        audit(g.db, actor_kind="api", actor_id=g.api_client_id, actor_name=g.api_client_name, action="account.put",
              entity="account", entity_id=account.id, after=document)
        g.db.commit()
    except IntegrityError:
        g.db.rollback()
        raise Problem(409, "conflict", "Conflict", "the account was changed by another request at the same time; retry")
    created = report.accounts_created > 0
    return json_response({**document, "created": created, "warnings": report.warnings},
                         status=201 if created else 200)


def _json_rows(rows) -> tuple[list[tuple[int, dict]], list[dict]]:
    if not isinstance(rows, list):
        raise bad_request("the body must be a JSON array of rows (objects with the CSV import's columns)",
                          "malformed-body")
    good, errors = [], []
    for index, raw in enumerate(rows):
        if not isinstance(raw, dict):
            errors.append({"index": index, "detail": "must be an object with the import columns"})
            continue
        columns = importer.COLUMNS + importer.OPTIONAL_COLUMNS
        unknown = sorted(k for k in raw if k not in columns)
        wrong = sorted(k for k, v in raw.items() if k in columns and v is not None
                       and not (isinstance(v, str) or type(v) is int))
        if unknown:
            errors.append({"index": index, "detail": f"unknown column(s): {', '.join(unknown)}"})
        elif wrong:
            errors.append({"index": index, "detail": f"must be a string or whole number: {', '.join(wrong)}"})
        else:
            good.append((index, raw))
    return good, errors


@bp.post("/accounts:import")
@require("write")
def import_accounts():
    query_params(set())
    require_unlimited("importing accounts (rows of any region and utility)")
    mimetype = request.mimetype
    if mimetype == "text/csv":
        try:
            text = request.get_data().decode("utf-8")
        except UnicodeDecodeError:
            raise bad_request("the CSV body is not UTF-8 text", "malformed-body") from None
        where = "line"
        try:
            rows, errors = list(importer.read_csv(text)), []
        except ValueError as exc:
            raise unprocessable("the CSV header is not valid", [{"line": 1, "detail": str(exc).removeprefix("line 1: ")}])
        except csv.Error as exc:
            raise unprocessable("the CSV is malformed", [{"line": None, "detail": str(exc)}])
    else:
        where = "index"
        rows, errors = _json_rows(json_body())
    if errors:
        # Report every bad row, but apply nothing.
        for line, raw in rows:
            try:
                importer.validate_row(line, raw)
            except ValueError as exc:
                errors.append({where: line, "detail": str(exc)})
    else:
        try:
            report = importer.import_rows(g.db, rows)
        except IntegrityError:
            g.db.rollback()
            raise Problem(409, "conflict", "Conflict",
                          "records were changed by another request at the same time; retry") from None
        errors += [{where: e.line, "detail": e.reason} for e in report.errors]
    if errors:
        g.db.rollback()
        errors.sort(key=lambda e: (e[where] is None, e[where] or 0))
        raise unprocessable(f"{len(errors)} bad row(s); nothing was imported", errors)
    summary = {
        "rows": report.rows, "applied": report.applied,
        "accounts_created": report.accounts_created, "accounts_updated": report.accounts_updated,
        "meters_created": report.meters_created, "meters_updated": report.meters_updated,
        "regions_created": report.regions_created, "warnings": report.warnings,
    }
    audit(g.db, actor_kind="api", actor_id=g.api_client_id, actor_name=g.api_client_name, action="accounts.import",
          entity="account", entity_id=None, after={k: v for k, v in summary.items() if k != "warnings"})
    g.db.commit()
    return json_response(summary)
