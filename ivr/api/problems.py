"""Errors of the billing API as RFC 9457 ``application/problem+json`` documents.

The handlers are registered on the API blueprint only; the fallback route in ``views`` turns
unknown paths and wrong methods under /api/v1/ into problems too (Flask would otherwise answer
those with the app-wide HTML pages).
"""
from __future__ import annotations

import json
import logging

from flask import Response
from werkzeug.exceptions import HTTPException

log = logging.getLogger("ivr.api")

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "urn:meter-ivr:problem:"


class Problem(Exception):
    """Raise anywhere in an API view to answer with a problem document."""

    def __init__(self, status: int, slug: str, title: str, detail: str, *, headers: dict | None = None, **extra):
        super().__init__(detail)
        self.status, self.slug, self.title, self.detail = status, slug, title, detail
        self.headers = headers or {}
        self.extra = extra


def problem_response(status: int, slug: str, title: str, detail: str, headers: dict | None = None,
                     **extra) -> Response:
    body = {"type": TYPE_BASE + slug, "title": title, "status": status, "detail": detail, **extra}
    response = Response(json.dumps(body, ensure_ascii=False), status=status, mimetype=PROBLEM_JSON)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def bad_request(detail: str, slug: str = "bad-request") -> Problem:
    return Problem(400, slug, "Bad request", detail)


def unprocessable(detail: str, errors: list | None = None) -> Problem:
    extra = {"errors": errors} if errors is not None else {}
    return Problem(422, "validation-failed", "Validation failed", detail, **extra)


def not_found(detail: str) -> Problem:
    return Problem(404, "not-found", "Not found", detail)


_SLUGS = {400: "bad-request", 401: "unauthorized", 403: "forbidden", 404: "not-found", 405: "method-not-allowed",
          406: "not-acceptable", 409: "conflict", 413: "payload-too-large", 415: "unsupported-media-type",
          422: "validation-failed", 429: "too-many-requests"}


def register(bp) -> None:
    @bp.errorhandler(Problem)
    def _problem(exc: Problem):
        return problem_response(exc.status, exc.slug, exc.title, exc.detail, exc.headers, **exc.extra)

    @bp.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        status = exc.code or 500
        headers = {}
        if status == 405 and getattr(exc, "valid_methods", None):
            headers["Allow"] = ", ".join(exc.valid_methods)
        return problem_response(status, _SLUGS.get(status, "http-error"), exc.name, exc.description or exc.name,
                                headers)

    @bp.errorhandler(Exception)
    def _unexpected(exc: Exception):
        # The message may quote SQL, never a token: tokens are only ever hashed before queries.
        log.exception("billing API request failed")
        return problem_response(500, "internal-error", "Internal server error",
                                "the request failed on the server; it changed nothing and may be retried")
