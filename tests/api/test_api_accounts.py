"""PUT /api/v1/accounts/{number} and POST /api/v1/accounts:import."""
from __future__ import annotations

from sqlalchemy import func, select

from readings_store.models import Account, AccountPhone, AuditEvent, Meter, Region

BODY = {
    "region_code": "CHI",
    "holder_name": "Elena Ceban",
    "kind": "person",
    "phones": ["+37322123456", "+373 69 123 456"],
    "meters": [
        {"serial": "EL9001", "utility": "electricity", "registers": 2, "digits": 6, "decimals": 1},
        {"serial": "WA9001", "utility": "cold_water", "registers": 1, "digits": 5, "decimals": 3},
    ],
}


def _counts(db):
    return (db.scalar(select(func.count()).select_from(Account)), db.scalar(select(func.count()).select_from(Meter)),
            db.scalar(select(func.count()).select_from(AccountPhone)), db.scalar(select(func.count()).select_from(Region)))


def test_put_creates_then_replaces(client, store, db, write_headers):
    resp = client.put("/api/v1/accounts/500-001", json=BODY, headers=write_headers)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["created"] is True and body["number"] == "500-001" and body["region_code"] == "CHI"
    assert body["phones"] == ["+37322123456", "+37369123456"]
    assert [(m["serial"], m["registers"], m["active"]) for m in body["meters"]] == [("EL9001", 2, True),
                                                                                   ("WA9001", 1, True)]
    account = db.scalars(select(Account).where(Account.number == "500-001")).one()
    assert account.keypad_key == "500*001"
    # Same body again: 200, nothing changes.
    again = client.put("/api/v1/accounts/500-001", json=BODY, headers=write_headers)
    assert again.status_code == 200 and again.get_json()["created"] is False
    # Replace: new holder, one phone, the water meter dropped (deactivated), a gas meter added, closed.
    changed = {**BODY, "holder_name": "Elena Ceban-Rusu", "phones": ["+37322123456"], "active": False,
               "meters": [BODY["meters"][0] | {"digits": 7}, {"serial": "GA9001", "utility": "gas", "registers": 1,
                                                               "digits": 5, "decimals": 2}]}
    resp = client.put("/api/v1/accounts/500-001", json=changed, headers=write_headers)
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["holder_name"] == "Elena Ceban-Rusu" and body["active"] is False and body["phones"] == ["+37322123456"]
    assert {(m["serial"], m["digits"], m["active"]) for m in body["meters"]} == {
        ("EL9001", 7, True), ("WA9001", 5, False), ("GA9001", 5, True)}
    assert db.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "account.put")) == 3


def test_put_unknown_region_is_created_with_a_warning(client, store, write_headers):
    resp = client.put("/api/v1/accounts/1", json={**BODY, "region_code": "NEW"}, headers=write_headers)
    assert resp.status_code == 201 and resp.get_json()["warnings"]


def test_put_validation_errors_change_nothing(client, store, db, write_headers):
    before = _counts(db)
    cases = [
        ({**BODY, "kind": "alien"}, "/meters/0", "kind"),
        ({**BODY, "phones": ["+373 22 12", "+37322123456"]}, "/phones/0", "phone"),
        ({**BODY, "meters": [BODY["meters"][0], {**BODY["meters"][1], "registers": 2}]}, "/meters/1", "two registers"),
        ({**BODY, "meters": [{**BODY["meters"][0], "digits": 13}]}, "/meters/0", "digits"),
        ({**BODY, "meters": [{**BODY["meters"][0], "digits": "6"}]}, "/meters/0/digits", "whole number"),
        ({**BODY, "meters": [BODY["meters"][0], BODY["meters"][0]]}, "/meters/1/serial", "twice"),
        ({**BODY, "meters": []}, "/meters", "1 to"),
        ({**BODY, "colour": "red"}, "/colour", "unknown"),
        ({k: v for k, v in BODY.items() if k != "holder_name"}, "/holder_name", "required"),
        ({**BODY, "holder_name": "x" * 301}, "/meters/0", "holder_name"),
    ]
    for body, pointer, fragment in cases:
        resp = client.put("/api/v1/accounts/500-001", json=body, headers=write_headers)
        assert resp.status_code == 422, (pointer, resp.get_data(as_text=True))
        errors = resp.get_json()["errors"]
        assert any(e["pointer"] == pointer and fragment in e["detail"] for e in errors), (pointer, errors)
    bad_number = client.put("/api/v1/accounts/12ab", json=BODY, headers=write_headers)
    assert bad_number.status_code == 422 and "account_number" in bad_number.get_data(as_text=True)
    assert client.put("/api/v1/accounts/1", data="{", content_type="application/json",
                      headers=write_headers).status_code == 400
    assert client.put("/api/v1/accounts/1", json=[1], headers=write_headers).status_code == 400
    assert client.put("/api/v1/accounts/1", data="x", content_type="text/plain", headers=write_headers).status_code == 415
    assert _counts(db) == before


def test_put_number_with_slash(client, store, write_headers):
    resp = client.put("/api/v1/accounts/12/345", json=BODY, headers=write_headers)
    assert resp.status_code == 201 and resp.get_json()["number"] == "12/345"


ROWS = [
    {"region_code": "CHI", "account_number": "700001", "holder_name": "A", "kind": "person", "phone": "+37322111111",
     "meter_serial": "M1", "utility": "electricity", "registers": "1", "digits": "6", "decimals": "1"},
    {"region_code": "CHI", "account_number": "700001", "holder_name": "A", "kind": "person", "phone": "",
     "meter_serial": "M2", "utility": "gas", "registers": 1, "digits": 5, "decimals": 2},
    {"region_code": "BAL", "account_number": "700002", "holder_name": "B SRL", "kind": "company",
     "meter_serial": "M3", "utility": "heat", "registers": 1, "digits": 6, "decimals": 3},
]


def test_import_json(client, store, db, write_headers):
    resp = client.post("/api/v1/accounts:import", json=ROWS, headers=write_headers)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json() | {"warnings": []} == {
        "rows": 3, "applied": 3, "accounts_created": 2, "accounts_updated": 0, "meters_created": 3,
        "meters_updated": 0, "regions_created": [], "warnings": []}
    again = client.post("/api/v1/accounts:import", json=ROWS, headers=write_headers).get_json()
    assert again["accounts_created"] == 0 and again["meters_created"] == 0
    assert client.post("/api/v1/accounts:import", json=[], headers=write_headers).get_json()["rows"] == 0


def test_import_json_names_the_regions_it_creates(client, store, db, write_headers):
    rows = [{**ROWS[0], "region_code": "ORH", "region_name": "Orhei"}]
    resp = client.post("/api/v1/accounts:import", json=rows, headers=write_headers)
    assert resp.status_code == 200 and resp.get_json()["regions_created"] == ["ORH"], resp.get_data(as_text=True)
    assert db.scalars(select(Region.name).where(Region.code == "ORH")).one() == "Orhei"
    bad = client.post("/api/v1/accounts:import", json=[{**rows[0], "region_name": "x" * 65}], headers=write_headers)
    assert bad.status_code == 422 and "region_name" in bad.get_json()["errors"][0]["detail"]


def test_import_json_errors_by_index_nothing_applied(client, store, db, write_headers):
    before = _counts(db)
    bad = ROWS + [
        {**ROWS[0], "utility": "steam"},
        {**ROWS[0], "extra": 1},
        "not an object",
        {**ROWS[0], "digits": 6.5},
        {k: v for k, v in ROWS[0].items() if k != "meter_serial"},
    ]
    resp = client.post("/api/v1/accounts:import", json=bad, headers=write_headers)
    assert resp.status_code == 422
    errors = resp.get_json()["errors"]
    assert [e["index"] for e in errors] == [3, 4, 5, 6, 7]
    assert "utility" in errors[0]["detail"] and "extra" in errors[1]["detail"] and "missing meter_serial" in errors[4]["detail"]
    assert _counts(db) == before
    assert client.post("/api/v1/accounts:import", json={"rows": ROWS}, headers=write_headers).status_code == 400


CSV_TEXT = (
    "region_code,account_number,holder_name,kind,phone,meter_serial,utility,registers,digits,decimals\r\n"
    "CHI,800001,Ana,person,+37322111112,C1,electricity,2,6,1\r\n"
    "CHI,800002,Dan,person,,C2,cold_water,1,5,3\r\n"
)


def test_import_csv(client, store, db, write_headers):
    resp = client.post("/api/v1/accounts:import", data=CSV_TEXT.encode(), content_type="text/csv",
                       headers=write_headers)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json()["accounts_created"] == 2


def test_import_csv_errors_by_line_nothing_applied(client, store, db, write_headers):
    before = _counts(db)
    text = CSV_TEXT + "CHI,800003,Eve,person,,C3,electricity,2,6,1,extra\r\nCHI,80 0004,Ion,person,,C4,gas,3,5,2\r\n"
    resp = client.post("/api/v1/accounts:import", data=text, content_type="text/csv; charset=utf-8",
                       headers=write_headers)
    assert resp.status_code == 422
    errors = resp.get_json()["errors"]
    assert [e["line"] for e in errors] == [4, 5]
    assert "more fields" in errors[0]["detail"] and "registers" in errors[1]["detail"]
    assert _counts(db) == before
    header = client.post("/api/v1/accounts:import", data="a,b\r\n1,2\r\n", content_type="text/csv", headers=write_headers)
    assert header.status_code == 422 and header.get_json()["errors"][0]["line"] == 1
    assert client.post("/api/v1/accounts:import", data=b"\xff\xfe", content_type="text/csv",
                       headers=write_headers).status_code == 400
    assert client.post("/api/v1/accounts:import", data="x", content_type="text/plain",
                       headers=write_headers).status_code == 415
    assert _counts(db) == before
