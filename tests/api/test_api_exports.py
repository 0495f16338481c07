"""Export batches: exactly-once delivery, re-reading, acknowledgement, concurrency, CSV, CLI."""
from __future__ import annotations

import csv
import io
import threading
from collections import Counter

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text

from ivr.cli import cli
from readings_store import export
from readings_store.models import AuditEvent, ExportBatch, Reading
from readings_store.service import store_reading

from tests.conftest import PG_URL

from .conftest import add_reading


def _export(client, headers, body=None, **kw):
    if body is None:
        return client.post("/api/v1/exports", headers=headers, **kw)
    return client.post("/api/v1/exports", headers=headers, json=body, **kw)


def test_export_takes_accepted_unexported_readings_once(client, store, db, write_headers):
    a = store.reading(store.el1, 100)
    b = store.reading(store.wa1, "5.25")
    store.reading(store.el1, 101, status="pending_review")
    store.reading(store.el1, 99, status="rejected")
    store.reading(store.el1, 98, status="superseded")
    db.commit()
    resp = _export(client, write_headers)
    assert resp.status_code == 201
    body = resp.get_json()
    assert body["count"] == 2 and [r["id"] for r in body["readings"]] == [a.id, b.id]
    assert body["acknowledged_at"] is None and body["region_code"] is None and body["period"] is None
    assert resp.headers["Location"] == f"/api/v1/exports/{body['id']}"
    assert resp.headers["X-Export-Count"] == "2"
    assert {r["export_batch"] for r in body["readings"]} == {body["id"]}
    assert body["readings"][1]["value"] == "5.25"
    # Nothing new: 204, no body, no batch.
    again = _export(client, write_headers)
    assert again.status_code == 204 and again.data == b""
    assert db.scalar(select(ExportBatch.id).where(ExportBatch.id != body["id"])) is None
    # A new reading goes into the next batch only.
    c = store.reading(store.gas3, 7)
    db.commit()
    third = _export(client, write_headers).get_json()
    assert [r["id"] for r in third["readings"]] == [c.id]
    # The readings list shows where each was delivered.
    listed = client.get("/api/v1/readings", headers=write_headers).get_json()["items"]
    assert {i["id"]: i["export_batch"] for i in listed} == {a.id: body["id"], b.id: body["id"], c.id: third["id"]}


def test_batch_ids_have_no_gaps(client, store, db, sessions, write_headers):
    """Batches are numbered 1, 2, 3 ... on SQLite and PostgreSQL alike: an export that finds nothing
    (204), or whose transaction is rolled back, leaves its number to the next batch."""
    store.reading(store.el1, 100)
    db.commit()
    assert _export(client, write_headers).get_json()["id"] == 1
    assert _export(client, write_headers).status_code == 204
    assert _export(client, write_headers, {"region": "BAL"}).status_code == 204
    store.reading(store.gas3, 7)
    db.commit()
    failed = sessions()
    try:
        assert export.create_batch(failed).id == 2
        failed.rollback()  # the export's transaction failed: batch 2 never existed
    finally:
        failed.close()
    second = _export(client, write_headers).get_json()
    assert second["id"] == 2
    store.reading(store.el1, 101)
    db.commit()
    assert _export(client, write_headers).get_json()["id"] == 3
    # Walking the batches in order misses none.
    listed = client.get("/api/v1/exports", headers=write_headers).get_json()["items"]
    assert [b["id"] for b in listed] == [1, 2, 3]
    assert client.get("/api/v1/exports/2", headers=write_headers).status_code == 200


def test_export_filters_and_limit(client, store, db, write_headers):
    a = store.reading(store.el1, 100, period="2025-01")
    b = store.reading(store.gas3, 7, period="2025-01")
    c = store.reading(store.el1, 110, period="2025-02")
    d = store.reading(store.wa1, 3, period="2025-02")
    db.commit()
    body = _export(client, write_headers, {"region": "BAL"}).get_json()
    assert [r["id"] for r in body["readings"]] == [b.id] and body["region_code"] == "BAL"
    body = _export(client, write_headers, {"period": "2025-02", "limit": 1}).get_json()
    assert [r["id"] for r in body["readings"]] == [c.id] and body["period"] == "2025-02"
    body = _export(client, write_headers, {"region": "CHI"}).get_json()
    assert [r["id"] for r in body["readings"]] == [a.id, d.id]
    assert _export(client, write_headers, {"region": "CHI", "period": "2025-01"}).status_code == 204


@pytest.mark.parametrize("body, status, pointer", [
    ({"region": "NOPE"}, 422, "/region"),
    ({"region": "bad code"}, 422, "/region"),
    ({"period": "2025-00"}, 422, "/period"),
    ({"limit": 0}, 422, "/limit"),
    ({"limit": "5"}, 422, "/limit"),
    ({"limit": True}, 422, "/limit"),
    ({"regoin": "CHI"}, 422, "/regoin"),
    ([1, 2], 400, None),
    ("CHI", 400, None),
])
def test_export_bad_bodies(client, store, db, write_headers, body, status, pointer):
    store.reading(store.el1, 100)
    db.commit()
    resp = _export(client, write_headers, body)
    assert resp.status_code == status and resp.mimetype == "application/problem+json"
    if pointer:
        assert pointer in [e["pointer"] for e in resp.get_json()["errors"]]
    assert db.scalar(select(Reading.export_batch_id)) is None  # nothing exported


def test_export_malformed_json_and_media_type(client, store, write_headers):
    resp = client.post("/api/v1/exports", headers=write_headers, data="{nope", content_type="application/json")
    assert resp.status_code == 400 and resp.get_json()["type"].endswith("malformed-body")
    resp = client.post("/api/v1/exports", headers=write_headers, data="region=CHI",
                       content_type="application/x-www-form-urlencoded")
    assert resp.status_code == 415


def test_rereading_a_batch_gives_the_same_content_after_corrections(client, store, db, write_headers, config):
    a = store.reading(store.el1, 100, period="2025-01")
    db.commit()
    created = _export(client, write_headers)
    first = created.get_json()
    batch_id = first["id"]
    # An operator corrects the exported reading: a new accepted reading superseding it.
    meter = db.merge(store.el1)
    db.refresh(meter)
    from readings_store.models import Reading as R

    correction = R(meter_id=meter.id, register="total", value=105, period="2025-01", taken_at=a.taken_at,
                   received_at=a.received_at, channel="operator", status="accepted", supersedes_id=a.id)
    db.add(correction)
    db.get(R, a.id).status = "superseded"
    db.commit()
    again = client.get(f"/api/v1/exports/{batch_id}", headers=write_headers)
    assert again.status_code == 200
    assert again.data == created.data  # byte for byte
    # The correction arrives in the next batch, saying what it supersedes.
    nxt = _export(client, write_headers).get_json()
    assert [(r["id"], r["supersedes"], r["value"], r["channel"]) for r in nxt["readings"]] == [
        (correction.id, a.id, "105", "operator")]
    # The current state is visible in the readings list.
    sup = client.get("/api/v1/readings?status=superseded", headers=write_headers).get_json()["items"]
    assert [i["id"] for i in sup] == [a.id]


def test_store_reading_correction_flows_into_a_later_batch(client, store, db, write_headers):
    """With the service's own supersede rule (a new accepted reading in the same period)."""
    meter = store.el1
    meter.account.region  # noqa: B018 - load
    first = store_reading(db, meter, "total", 150, channel="phone_keypad")
    db.commit()
    b1 = _export(client, write_headers).get_json()
    assert [r["id"] for r in b1["readings"]] == [first.id]
    second = store_reading(db, meter, "total", 151, channel="operator")
    db.commit()
    b2 = _export(client, write_headers).get_json()
    assert [(r["id"], r["supersedes"]) for r in b2["readings"]] == [(second.id, first.id)]
    assert client.get(f"/api/v1/exports/{b1['id']}", headers=write_headers).get_json() == b1


def test_superseded_before_export_is_never_exported(client, store, db, write_headers):
    old = store.reading(store.el1, 100)
    db.commit()
    new = store.reading(store.el1, 101, supersedes=old, channel="operator")
    db.get(Reading, old.id).status = "superseded"
    db.commit()
    body = _export(client, write_headers).get_json()
    assert [r["id"] for r in body["readings"]] == [new.id]


def test_ack_is_idempotent_and_unacked_listing(client, store, db, write_headers, read_headers):
    store.reading(store.el1, 100)
    db.commit()
    b1 = _export(client, write_headers).get_json()
    store.reading(store.el1, 101)
    db.commit()
    b2 = _export(client, write_headers).get_json()
    listed = client.get("/api/v1/exports?acknowledged=false", headers=read_headers).get_json()
    assert [b["id"] for b in listed["items"]] == [b1["id"], b2["id"]] and listed["next_cursor"] is None
    assert "readings" not in listed["items"][0]
    ack = client.post(f"/api/v1/exports/{b1['id']}/ack", headers=write_headers)
    assert ack.status_code == 200 and ack.get_json()["acknowledged_at"]
    ack2 = client.post(f"/api/v1/exports/{b1['id']}/ack", headers=write_headers)
    assert ack2.status_code == 200 and ack2.get_json()["acknowledged_at"] == ack.get_json()["acknowledged_at"]
    unacked = client.get("/api/v1/exports?acknowledged=false", headers=read_headers).get_json()["items"]
    assert [b["id"] for b in unacked] == [b2["id"]]
    acked = client.get("/api/v1/exports?acknowledged=true", headers=read_headers).get_json()["items"]
    assert [b["id"] for b in acked] == [b1["id"]]
    every = client.get("/api/v1/exports", headers=read_headers).get_json()["items"]
    assert [b["id"] for b in every] == [b1["id"], b2["id"]]
    # Acknowledging does not change the batch's content.
    reread = client.get(f"/api/v1/exports/{b1['id']}", headers=read_headers).get_json()
    assert reread["readings"] == b1["readings"] and reread["acknowledged_at"] == ack.get_json()["acknowledged_at"]
    actions = Counter(db.scalars(select(AuditEvent.action)))
    assert actions["export.create"] == 2 and actions["export.ack"] == 1
    assert client.get("/api/v1/exports?acknowledged=maybe", headers=read_headers).status_code == 400


def test_exports_list_is_paginated(client, store, db, write_headers):
    for i in range(5):
        store.reading(store.el1, 100 + i)
        db.commit()
        assert _export(client, write_headers).status_code == 201
    ids, cursor = [], None
    while True:
        q = {"limit": 2, "acknowledged": "false"}
        if cursor:
            q["cursor"] = cursor
        body = client.get("/api/v1/exports", query_string=q, headers=write_headers).get_json()
        ids += [b["id"] for b in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert len(ids) == 5 == len(set(ids))
    first = client.get("/api/v1/exports?limit=2&acknowledged=false", headers=write_headers).get_json()["next_cursor"]
    assert client.get(f"/api/v1/exports?limit=2&acknowledged=true&cursor={first}",
                      headers=write_headers).status_code == 400


def test_unknown_batches_are_404(client, store, write_headers):
    for path in ("/api/v1/exports/999", "/api/v1/exports/99999999999999999999"):
        resp = client.get(path, headers=write_headers)
        assert resp.status_code == 404 and resp.mimetype == "application/problem+json"
    assert client.post("/api/v1/exports/999/ack", headers=write_headers).status_code == 404
    assert client.get("/api/v1/exports/abc", headers=write_headers).status_code == 404


def test_crash_between_export_and_ack_loses_nothing(app, store, db, make_token):
    """The billing client creates a batch and dies before storing it. On restart it lists the
    unacknowledged batches, re-reads them (same content), stores them, acknowledges them."""
    headers = make_token("write", "billing")
    made = [store.reading(store.el1, 100 + i).id for i in range(7)]
    db.commit()
    crashed = app.test_client()
    lost = crashed.post("/api/v1/exports", headers=headers)
    assert lost.status_code == 201
    del crashed  # the response never reached the billing database
    more = [store.reading(store.gas3, 10 + i).id for i in range(3)]
    db.commit()

    billed: list[int] = []
    client = app.test_client()
    for batch in client.get("/api/v1/exports?acknowledged=false", headers=headers).get_json()["items"]:
        again = client.get(f"/api/v1/exports/{batch['id']}", headers=headers)
        assert again.data == lost.data
        billed += [r["id"] for r in again.get_json()["readings"]]
        assert client.post(f"/api/v1/exports/{batch['id']}/ack", headers=headers).status_code == 200
    while True:
        resp = client.post("/api/v1/exports", headers=headers)
        if resp.status_code == 204:
            break
        billed += [r["id"] for r in resp.get_json()["readings"]]
        client.post(f"/api/v1/exports/{resp.get_json()['id']}/ack", headers=headers)
    assert sorted(billed) == sorted(made + more) and len(set(billed)) == len(billed)
    assert client.get("/api/v1/exports?acknowledged=false", headers=headers).get_json()["items"] == []


def test_export_csv(client, store, db, write_headers):
    store.reading(store.el1, "1250.5")
    store.reading(store.el2, 300, register="night")
    db.commit()
    resp = _export(client, {**write_headers, "Accept": "text/csv"})
    assert resp.status_code == 201 and resp.mimetype == "text/csv"
    batch_id = int(resp.headers["X-Export-Batch-Id"])
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert [(r["meter_serial"], r["register"], r["value"], r["export_batch"]) for r in rows] == [
        ("EL0001", "total", "1250.5", str(batch_id)), ("EL0002", "night", "300", str(batch_id))]
    again = client.get(f"/api/v1/exports/{batch_id}", headers={**write_headers, "Accept": "text/csv"})
    assert again.data == resp.data
    assert "attachment" in again.headers["Content-Disposition"]


def test_large_batch_streams_in_chunks(client, store, db, write_headers):
    meter = store.el1
    for i in range(export.STREAM_CHUNK + 7):
        db.add(Reading(meter_id=meter.id, register="total", value=i, period="2025-01", taken_at=export.utcnow(),
                       received_at=export.utcnow(), channel="import", status="accepted"))
    db.commit()
    body = _export(client, write_headers).get_json()
    assert body["count"] == len(body["readings"]) == export.STREAM_CHUNK + 7
    ids = [r["id"] for r in body["readings"]]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


# ------------------------------------------------------------------------------------------------
# concurrency


def _concurrent_exports(app, headers, workers: int, rounds: int, writer=None) -> list[dict]:
    barrier = threading.Barrier(workers + (1 if writer else 0))
    results: list[dict] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker():
        client = app.test_client()  # each request opens its own session and connection
        try:
            barrier.wait()
            for _ in range(rounds):
                resp = client.post("/api/v1/exports", headers=headers)
                # 409: every reading left was held by another exporter at that moment.
                assert resp.status_code in (201, 204, 409), resp.get_data(as_text=True)
                if resp.status_code == 201:
                    with lock:
                        results.append(resp.get_json())
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    if writer:
        threads.append(threading.Thread(target=lambda: (barrier.wait(), writer())))
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    return results


def test_concurrent_exports_never_share_a_reading(app, store, db, sessions, make_token):
    headers = make_token("write")
    meters = [store.el1, store.wa1, store.el2, store.gas3]
    for i in range(400):
        m = meters[i % 4]
        add_reading(db, m, i, register="day" if m is store.el2 else "total")
    db.commit()
    inserted: list[int] = []

    def writer():
        # New readings keep arriving while the exports run.
        session = sessions()
        try:
            m = session.merge(store.gas3)
            for i in range(60):
                inserted.append(add_reading(session, m, 1000 + i).id)
                session.commit()
        finally:
            session.close()

    batches = _concurrent_exports(app, headers, workers=6, rounds=4, writer=writer)
    # Drain what arrived after the last concurrent export.
    client = app.test_client()
    while (resp := client.post("/api/v1/exports", headers=headers)).status_code == 201:
        batches.append(resp.get_json())
    delivered = [r["id"] for b in batches for r in b["readings"]]
    assert len(delivered) == len(set(delivered)), "a reading was put into two batches"
    check = sessions()
    try:
        accepted = set(check.scalars(select(Reading.id).where(Reading.status == "accepted")))
        assert set(delivered) == accepted  # nothing missed
        for b in batches:
            in_db = set(check.scalars(select(Reading.id).where(Reading.export_batch_id == b["id"])))
            assert in_db == {r["id"] for r in b["readings"]} and check.get(ExportBatch, b["id"]).reading_count == len(in_db)
    finally:
        check.close()


def test_concurrent_create_batch_in_separate_sessions(store, db, sessions):
    """The store function itself, many sessions racing on the same rows."""
    for i in range(300):
        add_reading(db, store.el1, i)
    db.commit()
    barrier = threading.Barrier(8)
    got: list[tuple[int, int]] = []
    errors = []

    def worker():
        session = sessions()
        try:
            barrier.wait()
            batch = export.create_batch(session, limit=50)
            session.commit()
            if batch is not None:
                got.append((batch.id, batch.reading_count))
        except export.ExportBusy:
            session.rollback()  # every reading left was held by another exporter: taken below
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            session.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    # Racing exporters skip rows another one holds (PostgreSQL) or wait their turn (SQLite);
    # whatever is left is taken by the next export.
    while (batch := export.create_batch(db, limit=50)) is not None:
        got.append((batch.id, batch.reading_count))
    db.commit()
    assert sum(n for _, n in got) == 300
    counts = Counter(db.scalars(select(Reading.export_batch_id)))
    assert all(counts[b] == n for b, n in got)
    assert sum(counts[b] for b, _ in got) == sum(n for _, n in got)


# ------------------------------------------------------------------------------------------------
# CLI


def test_cli_export_write_ack_show_list(store, db, config, tmp_path, monkeypatch):
    monkeypatch.setenv("IVR_DATABASE_URL", config.database_url)
    a = store.reading(store.el1, "1250.5")
    b = store.reading(store.gas3, 7)
    db.commit()
    runner = CliRunner()
    out = tmp_path / "batch.csv"
    result = runner.invoke(cli, ["export", "--format", "csv", "--output", str(out)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open(newline="")))
    assert [int(r["id"]) for r in rows] == [a.id, b.id]
    batch_id = int(rows[0]["export_batch"])
    result = runner.invoke(cli, ["export", "list"])
    assert result.exit_code == 0 and f"{batch_id:>6}" in result.output
    again = tmp_path / "again.csv"
    assert runner.invoke(cli, ["export", "show", str(batch_id), "--output", str(again)]).exit_code == 0
    assert again.read_bytes() == out.read_bytes()
    result = runner.invoke(cli, ["export", "ack", str(batch_id)])
    assert result.exit_code == 0 and "acknowledged" in result.output
    assert runner.invoke(cli, ["export", "ack", str(batch_id)]).exit_code == 0
    assert "no unacknowledged" in runner.invoke(cli, ["export", "list"]).output
    # Nothing left: no file, exit 0.
    empty = tmp_path / "empty.csv"
    result = runner.invoke(cli, ["export", "--output", str(empty)])
    assert result.exit_code == 0 and "nothing to export" in result.output and not empty.exists()
    # JSON to stdout, acknowledged at once, filtered.
    c = store.reading(store.el1, 1300, period="2025-02")
    store.reading(store.gas3, 8, period="2025-02")
    db.commit()
    result = runner.invoke(cli, ["export", "--format", "json", "--region", "CHI", "--ack"])
    assert result.exit_code == 0, result.output
    import json

    doc = json.loads(result.stdout)
    assert [r["id"] for r in doc["readings"]] == [c.id] and doc["region_code"] == "CHI"
    assert db.get(ExportBatch, doc["id"]).acknowledged_at is not None
    assert runner.invoke(cli, ["export", "--region", "NOPE"]).exit_code != 0
    assert runner.invoke(cli, ["export", "--period", "2025-13"]).exit_code != 0
    assert runner.invoke(cli, ["export", "ack", "999"]).exit_code != 0


# ------------------------------------------------------------------------------------------------
# readings locked by another transaction


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL only: SQLite has no row locks (one writer at a time)")
def test_export_says_so_when_the_readings_are_locked(client, store, db, engine, write_headers, config, monkeypatch):
    """Another transaction holds the only unexported reading (FOR UPDATE): the export must not
    claim there is nothing to export, and must write nothing."""
    reading = store.reading(store.el1, 100)
    db.commit()
    with engine.connect() as other:
        held = other.begin()
        other.execute(text("SELECT id FROM readings WHERE id = :id FOR UPDATE"), {"id": reading.id})
        response = _export(client, write_headers)
        assert response.status_code == 409, response.get_data(as_text=True)
        assert response.mimetype == "application/problem+json"
        assert response.headers["Retry-After"].isdigit()
        problem = response.get_json()
        assert problem["status"] == 409 and "locked by another transaction" in problem["detail"]
        # The CLI says the same, with a failing exit status.
        monkeypatch.setenv("IVR_DATABASE_URL", config.database_url)
        result = CliRunner().invoke(cli, ["export", "--output", "-"])
        assert result.exit_code != 0 and "locked by another transaction" in result.output
        held.rollback()
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(ExportBatch)) == 0
    assert db.scalars(select(AuditEvent).where(AuditEvent.action == "export.create")).first() is None
    # Released: the next try takes it.
    response = _export(client, write_headers)
    assert response.status_code == 201 and [r["id"] for r in response.get_json()["readings"]] == [reading.id]
    # And with nothing left at all, 204 as before.
    assert _export(client, write_headers).status_code == 204


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL only: SQLite has no row locks (one writer at a time)")
def test_export_takes_what_is_free_when_some_readings_are_locked(client, store, db, engine, write_headers):
    locked = store.reading(store.el1, 100)
    free = store.reading(store.gas3, 7)
    db.commit()
    with engine.connect() as other:
        held = other.begin()
        other.execute(text("SELECT id FROM readings WHERE id = :id FOR UPDATE"), {"id": locked.id})
        response = _export(client, write_headers)
        assert response.status_code == 201 and [r["id"] for r in response.get_json()["readings"]] == [free.id]
        held.rollback()
    response = _export(client, write_headers)
    assert response.status_code == 201 and [r["id"] for r in response.get_json()["readings"]] == [locked.id]
