"""GET /api/v1/missing: meters without a reading in a period, and how long they have gone without."""
from __future__ import annotations

import csv
import io

from readings_store.export import period_add, periods_between
from readings_store.models import utcnow
from tests import factories as f


def _missing(client, headers, **params):
    resp = client.get("/api/v1/missing", query_string=params, headers=headers)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()


def test_period_arithmetic():
    assert period_add("2025-01", -1) == "2024-12" and period_add("2024-12", 1) == "2025-01"
    assert period_add("2025-03", -15) == "2023-12"
    assert periods_between("2024-11", "2025-02") == 3 and periods_between("2025-02", "2025-02") == 0


def test_missing_meters_and_billing_basis(client, store, db, read_headers):
    # el1: read in 2025-03 -> not missing. wa1: last read 2024-12 -> 3 periods without (average).
    # el2: only a rejected reading in 2025-03 and an accepted one in 2024-11 -> 4 (norm).
    # gas3: pending in 2025-03 -> counts as read.
    store.reading(store.el1, 100, period="2025-03")
    store.reading(store.wa1, 5, period="2024-12")
    store.reading(store.el2, 300, period="2024-11", register="day")
    store.reading(store.el2, 310, period="2025-03", register="day", status="rejected")
    store.reading(store.gas3, 7, period="2025-03", status="pending_review")
    db.commit()
    body = _missing(client, read_headers, period="2025-03")
    assert body["period"] == "2025-03" and body["next_cursor"] is None
    assert body["items"] == [
        {"meter_id": store.wa1.id, "account_number": "100001", "region_code": "CHI", "meter_serial": "WA0001",
         "utility": "cold_water", "period": "2025-03", "last_reading_period": "2024-12", "periods_without": 3,
         "billing_basis": "average"},
        {"meter_id": store.el2.id, "account_number": "100-002", "region_code": "CHI", "meter_serial": "EL0002",
         "utility": "electricity", "period": "2025-03", "last_reading_period": "2024-11", "periods_without": 4,
         "billing_basis": "norm"},
    ]
    # Filters.
    assert [i["meter_serial"] for i in _missing(client, read_headers, period="2025-03", utility="electricity")["items"]] == ["EL0002"]
    assert _missing(client, read_headers, period="2025-03", region="BAL")["items"] == []


def test_never_read_counts_from_installation_and_inactive_are_left_out(client, store, db, read_headers):
    # All four meters were installed in 2024-01 and never read.
    body = _missing(client, read_headers, period="2024-02")
    assert {i["meter_serial"]: (i["periods_without"], i["billing_basis"], i["last_reading_period"])
            for i in body["items"]} == {s: (2, "average", None) for s in ("EL0001", "WA0001", "EL0002", "GA0003")}
    assert {i["periods_without"] for i in _missing(client, read_headers, period="2024-05")["items"]} == {5}
    # Not yet installed in 2023-12: not listed.
    assert _missing(client, read_headers, period="2023-12")["items"] == []
    # Inactive meters and meters of closed accounts are not billed: not listed.
    db.merge(store.wa1).active = False
    db.merge(store.a3).active = False
    db.commit()
    assert [i["meter_serial"] for i in _missing(client, read_headers, period="2024-02")["items"]] == ["EL0001", "EL0002"]


def test_missing_pagination_and_csv(client, store, db, read_headers):
    region = f.region(db, code="ORH", name="Orhei", menu_key=3)
    made = []
    for i in range(11):
        acc = f.account(db, region, number=f"3000{i:02d}", holder="=HYPERLINK(\"x\")")
        made.append(f.meter(db, acc, serial=f"OR{i:04d}", utility="heat").id)
    db.commit()
    seen, cursor = [], None
    while True:
        q = {"period": "2030-01", "region": "ORH", "limit": 4}
        if cursor:
            q["cursor"] = cursor
        body = _missing(client, read_headers, **q)
        seen += [i["meter_id"] for i in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
        # A new meter installed meanwhile shows up at the end, once.
        if len(seen) == 4:
            acc = f.account(db, region, number="399999", holder="Late")
            made.append(f.meter(db, acc, serial="ORLATE", utility="heat").id)
            db.commit()
    assert seen == made
    bad = client.get("/api/v1/missing", query_string={"period": "2030-02", "region": "ORH", "cursor": body.get("next_cursor") or cursor or "x"},
                     headers=read_headers)
    assert bad.status_code == 400
    resp = client.get("/api/v1/missing", query_string={"period": "2030-01", "region": "ORH", "limit": 2},
                      headers={**read_headers, "Accept": "text/csv"})
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True))))
    assert rows[0] == ["meter_id", "account_number", "region_code", "meter_serial", "utility", "period",
                       "last_reading_period", "periods_without", "billing_basis"]
    assert rows[1][3:] == ["OR0000", "heat", "2030-01", "", str(periods_between(
        f"{utcnow():%Y-%m}", "2030-01") + 1), "norm"]
    assert resp.headers["X-Next-Cursor"]


def test_missing_needs_a_valid_period(client, store, read_headers):
    for q in ({}, {"period": "2025"}, {"period": "2025-3"}, {"period": "2025-03", "utility": "steam"},
              {"period": "2025-03", "region": "a b"}):
        resp = client.get("/api/v1/missing", query_string=q, headers=read_headers)
        assert resp.status_code == 400 and resp.mimetype == "application/problem+json", q
