"""GET /api/v1/readings: fields, filters, ordering, cursor pagination, CSV."""
from __future__ import annotations

import base64
import csv
import io
import json

import pytest

from .conftest import add_reading


def _get(client, headers, **params):
    return client.get("/api/v1/readings", query_string=params, headers=headers)


def test_item_fields_and_exact_decimal(client, store, db, read_headers):
    old = store.reading(store.el1, "1200.5", period="2024-12")
    r = store.reading(store.el1, "1250.5", supersedes=old)
    store.reading(store.wa1, "12.345")
    db.commit()
    resp = _get(client, read_headers)
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    body = resp.get_json()
    assert body["next_cursor"] is None and body["limit"] == 500
    item = next(i for i in body["items"] if i["id"] == r.id)
    assert item == {
        "id": r.id, "account_number": "100001", "region_code": "CHI", "meter_serial": "EL0001",
        "utility": "electricity", "register": "total", "value": "1250.5", "period": "2025-01",
        "taken_at": "2025-01-20T10:30:00Z", "received_at": "2025-01-20T10:30:05Z", "channel": "phone_keypad",
        "status": "accepted", "supersedes": old.id, "export_batch": None,
    }
    assert [i["value"] for i in body["items"]] == ["1200.5", "1250.5", "12.345"]
    # The value is a JSON string, never a number.
    assert '"value":"12.345"' in resp.get_data(as_text=True)


def test_default_is_accepted_and_status_filter(client, store, db, read_headers):
    acc = store.reading(store.el1, 100)
    pend = store.reading(store.el1, 101, status="pending_review")
    rej = store.reading(store.el1, 102, status="rejected")
    sup = store.reading(store.el1, 99, status="superseded")
    db.commit()
    ids = lambda resp: [i["id"] for i in resp.get_json()["items"]]  # noqa: E731
    assert ids(_get(client, read_headers)) == [acc.id]
    assert ids(_get(client, read_headers, status="pending_review")) == [pend.id]
    assert ids(_get(client, read_headers, status="rejected")) == [rej.id]
    assert ids(_get(client, read_headers, status="superseded")) == [sup.id]
    assert ids(_get(client, read_headers, status="superseded,accepted")) == [acc.id, sup.id]
    assert ids(_get(client, read_headers, status="accepted,pending_review,rejected,superseded")) == [
        acc.id, pend.id, rej.id, sup.id]


def test_filters_region_utility_period(client, store, db, read_headers):
    a = store.reading(store.el1, 100, period="2025-01")
    b = store.reading(store.wa1, 5, period="2025-01")
    c = store.reading(store.el2, 300, period="2025-02", register="day")
    d = store.reading(store.gas3, 7, period="2025-02")
    db.commit()
    ids = lambda **p: [i["id"] for i in _get(client, read_headers, **p).get_json()["items"]]  # noqa: E731
    assert ids(region="CHI") == [a.id, b.id, c.id]
    assert ids(region="BAL") == [d.id]
    assert ids(region="NOPE") == []
    assert ids(utility="electricity") == [a.id, c.id]
    assert ids(period="2025-02") == [c.id, d.id]
    assert ids(region="CHI", utility="electricity", period="2025-02") == [c.id]


@pytest.mark.parametrize("params, fragment", [
    ({"region": "bad code!"}, "region"),
    ({"region": ""}, "region"),
    ({"utility": "water"}, "utility"),
    ({"period": "2025-13"}, "period"),
    ({"period": "2025-1"}, "period"),
    ({"status": "accepted,bogus"}, "status"),
    ({"status": ""}, "status"),
    ({"limit": "0"}, "limit"),
    ({"limit": "5001"}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"limit": "-1"}, "limit"),
    ({"regoin": "CHI"}, "unknown query parameter"),
])
def test_bad_filters_are_400_problems(client, store, read_headers, params, fragment):
    resp = _get(client, read_headers, **params)
    assert resp.status_code == 400
    assert resp.mimetype == "application/problem+json"
    body = resp.get_json()
    assert body["status"] == 400 and body["title"] and body["type"].startswith("urn:meter-ivr:problem:")
    assert fragment in body["detail"]


def test_repeated_parameter_is_400(client, store, read_headers):
    resp = client.get("/api/v1/readings?region=CHI&region=BAL", headers=read_headers)
    assert resp.status_code == 400 and "more than once" in resp.get_json()["detail"]


def _walk(client, headers, limit, between=None, **params):
    seen, cursor, pages = [], None, 0
    while True:
        query = dict(params, limit=limit)
        if cursor:
            query["cursor"] = cursor
        resp = _get(client, headers, **query)
        assert resp.status_code == 200, resp.get_data(as_text=True)
        body = resp.get_json()
        assert len(body["items"]) <= limit
        seen += [i["id"] for i in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return seen, pages
        if between:
            between(pages)


def test_pagination_visits_every_row_once(client, store, db, read_headers):
    made = [store.reading(store.el1, 100 + i).id for i in range(23)]
    db.commit()
    seen, pages = _walk(client, read_headers, 5)
    assert seen == made and pages == 5
    seen, pages = _walk(client, read_headers, 23)  # exactly one full page: no empty extra page
    assert seen == made and pages == 1


def test_pagination_survives_concurrent_inserts(client, store, sessions, db, read_headers):
    made = [store.reading(store.el1, 100 + i).id for i in range(10)]
    db.commit()

    def insert_more(page):
        # Another writer (its own session) stores readings while the client pages through:
        # matching and non-matching ones, and some that change status.
        other = sessions()
        try:
            m = other.merge(store.el1)
            g = other.merge(store.gas3)
            made.append(add_reading(other, m, 500 + page).id)
            add_reading(other, g, 7 + page, status="pending_review")
            other.commit()
        finally:
            other.close()

    seen, _ = _walk(client, read_headers, 3, between=insert_more, region="CHI")
    assert seen == sorted(made)  # nothing missed, nothing repeated
    assert len(set(seen)) == len(seen)


def test_next_page_link_header(client, store, db, read_headers):
    for i in range(3):
        store.reading(store.el1, 100 + i)
    db.commit()
    resp = _get(client, read_headers, limit=2, region="CHI")
    cursor = resp.get_json()["next_cursor"]
    assert resp.headers["X-Next-Cursor"] == cursor
    assert 'rel="next"' in resp.headers["Link"] and "region=CHI" in resp.headers["Link"]


def test_cursor_with_other_filters_or_tampered_is_400(client, store, db, read_headers):
    for i in range(4):
        store.reading(store.el1, 100 + i)
    db.commit()
    cursor = _get(client, read_headers, limit=2, region="CHI").get_json()["next_cursor"]
    assert _get(client, read_headers, limit=3, region="CHI", cursor=cursor).status_code == 200  # limit may change
    for params in ({"region": "BAL"}, {}, {"region": "CHI", "period": "2025-01"}, {"region": "CHI", "status": "rejected"}):
        resp = _get(client, read_headers, cursor=cursor, **params)
        assert resp.status_code == 400, params
        assert "filters" in resp.get_json()["detail"]
    body, sig = cursor.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["id"] = 0
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode() + "." + sig
    for bad in (forged, cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB"), "garbage", "a.b.c", "!!!.@@@"):
        resp = _get(client, read_headers, region="CHI", cursor=bad)
        assert resp.status_code == 400 and resp.get_json()["type"].endswith("invalid-cursor"), bad


def test_cursor_of_another_listing_is_400(client, store, db, read_headers):
    for i in range(3):
        store.reading(store.el1, 100 + i)
    db.commit()
    cursor = _get(client, read_headers, limit=1).get_json()["next_cursor"]
    resp = client.get("/api/v1/missing", query_string={"period": "2025-01", "cursor": cursor}, headers=read_headers)
    assert resp.status_code == 400


def test_csv_output_with_formula_neutralised(client, store, db, read_headers):
    store.reading(store.el1, "1250.5")
    # A region code may start with "-" (the import allows it): a spreadsheet would take it for a formula.
    store.chi.code = "-CHI"
    db.commit()
    resp = _get(client, {**read_headers, "Accept": "text/csv"}, limit=1)
    assert resp.status_code == 200
    assert resp.mimetype == "text/csv" and "charset=utf-8" in resp.headers["Content-Type"]
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True))))
    assert rows[0] == ["id", "account_number", "region_code", "meter_serial", "utility", "register", "value", "period",
                       "taken_at", "received_at", "channel", "status", "supersedes", "export_batch"]
    assert rows[1][1:8] == ["100001", "'-CHI", "EL0001", "electricity", "total", "1250.5", "2025-01"]
    assert rows[1][12:] == ["", ""]


def test_csv_safe_cells():
    from readings_store.export import csv_safe

    assert [csv_safe(v) for v in ("=1+1", "+1", "-2", "@SUM(A1)", "\tx", "ok", "", None, 5)] == [
        "'=1+1", "'+1", "'-2", "'@SUM(A1)", "'\tx", "ok", "", "", "5"]


def test_csv_pages_carry_the_cursor_in_headers(client, store, db, read_headers):
    for i in range(3):
        store.reading(store.el1, 100 + i)
    db.commit()
    resp = _get(client, {**read_headers, "Accept": "text/csv"}, limit=2)
    assert resp.headers["X-Next-Cursor"]
    resp2 = _get(client, {**read_headers, "Accept": "text/csv"}, limit=2, cursor=resp.headers["X-Next-Cursor"])
    rows = list(csv.reader(io.StringIO(resp2.get_data(as_text=True))))
    assert len(rows) == 2 and "X-Next-Cursor" not in resp2.headers


def test_accept_negotiation(client, store, read_headers):
    assert _get(client, {**read_headers, "Accept": "*/*"}).mimetype == "application/json"
    assert _get(client, {**read_headers, "Accept": "text/csv;q=0.5, application/json"}).mimetype == "application/json"
    resp = _get(client, {**read_headers, "Accept": "text/html"})
    assert resp.status_code == 406 and resp.mimetype == "application/problem+json"
