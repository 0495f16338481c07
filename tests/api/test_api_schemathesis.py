"""Property-based test of the running API against its own OpenAPI document (schemathesis 3.x).

Every operation gets up to 30 generated requests (derandomised, so CI runs are repeatable) with a
valid write token; responses must not be server errors and must match the documented schemas.
"""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance


@pytest.fixture
def api_schema(app, store, db):
    # Something to read: readings of every status, one exported batch, meters with gaps.
    store.reading(store.el1, "1250.5", period="2025-01")
    store.reading(store.wa1, "12.345", period="2025-01", status="pending_review")
    store.reading(store.el2, 300, period="2024-12", register="day")
    store.reading(store.gas3, 7, period="2025-02", status="rejected")
    db.commit()
    return schemathesis.from_wsgi("/api/v1/openapi.json", app, validate_schema=True)


schema = schemathesis.from_pytest_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=30, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_openapi(case, write_headers):
    case.call_and_validate(headers=write_headers, checks=(not_a_server_error, response_schema_conformance))
