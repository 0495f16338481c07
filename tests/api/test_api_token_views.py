"""Many suppliers on one line: API tokens limited to regions and utilities (their view).

Every list, read, export and acknowledgement is filtered by the token's view; an export batch
belongs to one view, and each view receives each of its readings exactly once, also when two
suppliers export at the same time.
"""
from __future__ import annotations

import threading

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import func, inspect, select

from ivr.api import tokens
from ivr.cli import cli
from readings_store import regions as region_store
from readings_store import token_views
from readings_store.db import alembic_config, make_engine, upgrade
from readings_store.models import ApiClient, AuditEvent, Base, ExportBatch, Reading
from tests import factories as f

from .conftest import add_reading


def _token(sessions, name, scope="read", regions=None, utilities=None) -> dict:
    session = sessions()
    try:
        view = token_views.parse(session, regions, utilities)
        _, token = tokens.create(session, name, scope, view)
        session.commit()
    finally:
        session.close()
    return {"Authorization": f"Bearer {token}"}


def _ids(items) -> list[int]:
    return [i["id"] for i in items]


@pytest.fixture
def runner(config, monkeypatch):
    monkeypatch.setenv("IVR_DATABASE_URL", config.database_url)
    return CliRunner()


# ------------------------------------------------------------------------------------------------
# creating limited tokens


def test_cli_creates_a_limited_token_and_lists_what_it_sees(runner, store, db, client):
    result = runner.invoke(cli, ["api-tokens", "create", "apa-bal", "--scope", "read", "--regions", "BAL",
                                 "--utilities", "cold_water,gas"])
    assert result.exit_code == 0, result.output
    assert "sees regions BAL; utilities cold_water, gas" in result.stderr
    token = result.stdout.strip()
    # Repeated options and comma-separated lists are the same thing.
    result = runner.invoke(cli, ["api-tokens", "create", "energ", "--scope", "write", "--regions", "CHI",
                                 "--regions", "BAL", "--utilities", "electricity"])
    assert result.exit_code == 0, result.output
    listing = runner.invoke(cli, ["api-tokens", "list"]).output
    assert "regions BAL; utilities cold_water, gas" in listing
    assert "regions BAL, CHI; utilities electricity" in listing
    created = db.scalars(select(AuditEvent).where(AuditEvent.action == "api_token.create")
                         .order_by(AuditEvent.id)).all()
    assert [e.after["view"] for e in created] == ["regions BAL; utilities cold_water, gas",
                                                  "regions BAL, CHI; utilities electricity"]
    gas = store.reading(store.gas3, 7)
    store.reading(store.el1, 100)
    db.commit()
    page = client.get("/api/v1/readings", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert _ids(page["items"]) == [gas.id]


@pytest.mark.parametrize("args, message", [
    (["--regions", "CHI,NOPE"], "Error: unknown region 'NOPE'; regions are BAL, CHI"),
    (["--utilities", "gas,water"], "Error: unknown utility 'water'; utilities are electricity, cold_water, "
                                   "hot_water, gas, heat"),
    (["--regions", " , "], "Error: --regions names no region (leave it out for every region)"),
    (["--utilities", ""], "Error: --utilities names no utility (leave it out for every utility)"),
])
def test_unknown_region_or_utility_is_one_clear_line_and_creates_nothing(runner, store, db, args, message):
    result = runner.invoke(cli, ["api-tokens", "create", "supplier", "--scope", "read", *args])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [message] and result.stdout == ""
    assert db.scalar(select(func.count()).select_from(ApiClient)) == 0
    assert db.scalar(select(func.count()).select_from(AuditEvent)) == 0


def test_write_tokens_views_are_the_same_or_apart(runner, store, db):
    ok = ["api-tokens", "create"]
    assert runner.invoke(cli, [*ok, "apa", "--scope", "write", "--utilities", "cold_water,gas"]).exit_code == 0
    # Gas of BAL is already exported by "apa": a second exporter would take some of its readings.
    result = runner.invoke(cli, [*ok, "gaz-bal", "--scope", "write", "--regions", "BAL", "--utilities", "gas"])
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: token 'apa' exports every region; utilities cold_water, gas, which shares readings with regions "
        "BAL; utilities gas; a reading is exported once, so the views of write tokens must be the same or apart")
    # The same view (a second system of the same supplier, or a replacement token), a view apart,
    # and a read-only token over anything are all fine.
    assert runner.invoke(cli, [*ok, "apa-2", "--scope", "write", "--utilities", "gas,cold_water"]).exit_code == 0
    assert runner.invoke(cli, [*ok, "energ", "--scope", "write", "--utilities", "electricity"]).exit_code == 0
    assert runner.invoke(cli, [*ok, "audit", "--regions", "BAL", "--utilities", "gas"]).exit_code == 0
    # Once "apa" and "apa-2" are revoked, its readings may go to someone else.
    assert runner.invoke(cli, ["api-tokens", "revoke", "apa"]).exit_code == 0
    assert runner.invoke(cli, ["api-tokens", "revoke", "apa-2"]).exit_code == 0
    assert runner.invoke(cli, [*ok, "gaz-bal", "--scope", "write", "--regions", "BAL",
                               "--utilities", "gas"]).exit_code == 0


def test_a_region_a_token_sees_is_not_removed(sessions, store, db):
    empty = f.region(db, code="ORH", name="Orhei", menu_key=3)
    db.commit()
    _token(sessions, "orh", regions=["ORH"])
    with pytest.raises(region_store.RegionError, match=r"API token\(s\) orh see region ORH"):
        region_store.remove_region(db, empty)
    db.rollback()
    tokens.revoke(db, "orh")
    region_store.remove_region(db, empty)
    db.commit()
    client = db.scalars(select(ApiClient).where(ApiClient.name == "orh")).one()
    assert client.revoked_at is not None and client.regions == []


# ------------------------------------------------------------------------------------------------
# what a limited token sees


def test_lists_and_reports_are_filtered_by_the_view(client, sessions, store, db, write_headers):
    el1 = store.reading(store.el1, 100)
    wa1 = store.reading(store.wa1, 5)
    el2 = store.reading(store.el2, 7, register="day")
    gas = store.reading(store.gas3, 9, status="pending_review")
    db.commit()
    energ = _token(sessions, "energ", utilities=["electricity"])
    chi_water = _token(sessions, "apa-chi", regions=["CHI"], utilities=["cold_water"])
    bal = _token(sessions, "bal", regions=["BAL"])

    def readings(headers, query=""):
        resp = client.get(f"/api/v1/readings?{query}", headers=headers)
        assert resp.status_code == 200, resp.get_data(as_text=True)
        return _ids(resp.get_json()["items"])

    assert readings(energ) == [el1.id, el2.id]
    assert readings(energ, "region=CHI&limit=1") == [el1.id]
    assert readings(chi_water) == [wa1.id]
    assert readings(bal, "status=accepted,pending_review") == [gas.id]
    assert readings(write_headers) == [el1.id, wa1.id, el2.id]  # an unlimited token sees everything
    # A page's cursor walks on within the view.
    first = client.get("/api/v1/readings?limit=1", headers=energ).get_json()
    rest = client.get(f"/api/v1/readings?limit=1&cursor={first['next_cursor']}", headers=energ).get_json()
    assert _ids(rest["items"]) == [el2.id] and rest["next_cursor"] is None
    # Asking for a region or utility outside the view is refused, not answered with nothing.
    for headers, query, what in ((energ, "utility=gas", "utility 'gas'"), (chi_water, "region=BAL", "region 'BAL'"),
                                 (bal, "region=NOPE", "region 'NOPE'")):
        resp = client.get(f"/api/v1/readings?{query}", headers=headers)
        assert resp.status_code == 403 and resp.mimetype == "application/problem+json"
        assert resp.get_json()["detail"].startswith(f"{what} is outside what this token sees")
    # CSV pages too.
    csv_page = client.get("/api/v1/readings", headers={**chi_water, "Accept": "text/csv"}).get_data(as_text=True)
    assert "WA0001" in csv_page and "EL000" not in csv_page and "GA0003" not in csv_page
    # The missing-readings report.
    missing = client.get("/api/v1/missing?period=2025-02", headers=energ).get_json()["items"]
    assert [m["meter_serial"] for m in missing] == ["EL0001", "EL0002"]
    missing = client.get("/api/v1/missing?period=2025-02", headers=bal).get_json()["items"]
    assert [m["meter_serial"] for m in missing] == ["GA0003"]
    assert client.get("/api/v1/missing?period=2025-02&utility=gas", headers=chi_water).status_code == 403


def test_exports_and_account_pushes_outside_the_view_are_refused(client, sessions, store, db):
    store.reading(store.gas3, 9)
    db.commit()
    chi = _token(sessions, "chi-w", scope="write", regions=["CHI"])
    resp = client.post("/api/v1/exports", headers=chi, json={"region": "BAL"})
    assert resp.status_code == 403 and resp.get_json()["detail"].startswith("region 'BAL' is outside what this token")
    assert db.scalar(select(func.count()).select_from(ExportBatch)) == 0
    # Account pushes replace records of every utility: only for a token that sees everything.
    limited = _token(sessions, "energ-w", scope="write", regions=["BAL"], utilities=["electricity"])
    body = {"region_code": "CHI", "holder_name": "X", "kind": "person", "phones": [],
            "meters": [{"serial": "EL9", "utility": "electricity", "registers": 1, "digits": 6, "decimals": 0}]}
    resp = client.put("/api/v1/accounts/555001", headers=limited, json=body)
    assert resp.status_code == 403 and "outside what this token sees" in resp.get_json()["detail"]
    resp = client.post("/api/v1/accounts:import", headers=limited, json=[])
    assert resp.status_code == 403


# ------------------------------------------------------------------------------------------------
# export batches per view


def test_each_view_exports_its_own_readings_and_sees_only_its_own_batches(client, sessions, store, db):
    heat_meter = f.meter(db, db.merge(store.a3), serial="HE0003", utility="heat")
    el1 = store.reading(store.el1, 100)
    wa1 = store.reading(store.wa1, 5)
    gas = store.reading(store.gas3, 9)
    heat = add_reading(db, heat_meter, 12)
    db.commit()
    energ = _token(sessions, "energ", "write", utilities=["electricity"])
    apa = _token(sessions, "apa", "write", utilities=["cold_water", "gas"])
    centre = _token(sessions, "centre", "write")

    first = client.post("/api/v1/exports", headers=energ)
    assert first.status_code == 201
    energ_batch = first.get_json()
    assert _ids(energ_batch["readings"]) == [el1.id]
    # The centre's own pull takes what no supplier exports itself: here the heat reading.
    centre_batch = client.post("/api/v1/exports", headers=centre).get_json()
    assert _ids(centre_batch["readings"]) == [heat.id]
    assert client.post("/api/v1/exports", headers=energ, json={"region": "BAL"}).status_code == 204
    apa_batch = client.post("/api/v1/exports", headers=apa).get_json()
    assert _ids(apa_batch["readings"]) == [wa1.id, gas.id]
    for headers in (energ, apa, centre):
        assert client.post("/api/v1/exports", headers=headers).status_code == 204
    # Each token lists, reads and acknowledges only the batches of its own view.
    mine = {"energ": energ_batch["id"], "apa": apa_batch["id"], "centre": centre_batch["id"]}
    for name, headers in (("energ", energ), ("apa", apa), ("centre", centre)):
        listed = client.get("/api/v1/exports?acknowledged=false", headers=headers).get_json()["items"]
        assert _ids(listed) == [mine[name]]
        for other, batch_id in mine.items():
            if other == name:
                continue
            assert client.get(f"/api/v1/exports/{batch_id}", headers=headers).status_code == 404
            assert client.post(f"/api/v1/exports/{batch_id}/ack", headers=headers).status_code == 404
    assert db.scalar(select(func.count()).select_from(ExportBatch).where(ExportBatch.acknowledged_at.is_not(None))) == 0
    ack = client.post(f"/api/v1/exports/{apa_batch['id']}/ack", headers=apa)
    assert ack.status_code == 200 and ack.get_json()["acknowledged_at"] is not None
    # A replacement token with the same limits carries on with the same batches.
    tokens.revoke(db, "energ")
    db.commit()
    energ_2 = _token(sessions, "energ-2", "write", utilities=["electricity"])
    assert _ids(client.get("/api/v1/exports", headers=energ_2).get_json()["items"]) == [energ_batch["id"]]
    again = client.get(f"/api/v1/exports/{energ_batch['id']}", headers=energ_2).get_json()
    assert again["readings"] == energ_batch["readings"]


def test_the_cli_export_leaves_the_suppliers_readings_to_them(runner, sessions, store, db, tmp_path):
    store.reading(store.el1, 100)
    wa1 = store.reading(store.wa1, 5)
    db.commit()
    _token(sessions, "energ", "write", utilities=["electricity"])
    out = tmp_path / "rest.csv"
    result = runner.invoke(cli, ["export", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert f"\n{wa1.id}," in out.read_text() and "EL0001" not in out.read_text()
    listing = runner.invoke(cli, ["export", "list"]).output
    assert "view: everything" in listing


def _export_in_parallel(app, suppliers: dict[str, dict], workers: int, rounds: int, writer) -> dict[str, list]:
    """Every supplier's billing system exports from ``workers`` threads at once while ``writer``
    stores new readings; then each drains what is left. Returns the batches each received."""
    barrier = threading.Barrier(len(suppliers) * workers + 1)
    received: dict[str, list] = {name: [] for name in suppliers}
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(name: str, headers: dict):
        client = app.test_client()  # each request opens its own session and connection
        try:
            barrier.wait()
            for _ in range(rounds):
                resp = client.post("/api/v1/exports", headers=headers)
                # 409: every reading left was held by another exporter at that moment.
                assert resp.status_code in (201, 204, 409), resp.get_data(as_text=True)
                if resp.status_code == 201:
                    with lock:
                        received[name].append(resp.get_json())
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(name, headers))
               for name, headers in suppliers.items() for _ in range(workers)]
    threads.append(threading.Thread(target=lambda: (barrier.wait(), writer())))
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    client = app.test_client()
    for name, headers in suppliers.items():
        while (resp := client.post("/api/v1/exports", headers=headers)).status_code in (201, 409):
            if resp.status_code == 201:
                received[name].append(resp.get_json())
    return received


def test_two_suppliers_exporting_in_parallel_each_get_their_own_readings_exactly_once(app, sessions, store, db):
    meters = {"energ": [store.el1, store.el2], "apa": [store.wa1, store.gas3]}
    for i in range(300):
        meter = [store.el1, store.wa1, store.el2, store.gas3][i % 4]
        add_reading(db, meter, i, register="day" if meter is store.el2 else "total")
    db.commit()
    suppliers = {"energ": _token(sessions, "energ", "write", utilities=["electricity"]),
                 "apa": _token(sessions, "apa", "write", utilities=["cold_water", "gas"])}

    def writer():
        # New readings of both suppliers keep arriving while they export.
        session = sessions()
        try:
            el1, gas3 = session.merge(store.el1), session.merge(store.gas3)
            for i in range(40):
                add_reading(session, el1 if i % 2 else gas3, 1000 + i)
                session.commit()
        finally:
            session.close()

    received = _export_in_parallel(app, suppliers, workers=3, rounds=4, writer=writer)
    check = sessions()
    try:
        for name, batches in received.items():
            delivered = [r["id"] for b in batches for r in b["readings"]]
            assert len(delivered) == len(set(delivered)), f"{name} received a reading twice"
            own = set(check.scalars(select(Reading.id).where(
                Reading.status == "accepted", Reading.meter_id.in_([m.id for m in meters[name]]))))
            assert set(delivered) == own, f"{name} did not receive exactly its own readings"
            view = check.scalar(select(ExportBatch.view).where(ExportBatch.id == batches[0]["id"]))
            for b in batches:
                stored = check.get(ExportBatch, b["id"])
                assert stored.view == view and stored.reading_count == len(b["readings"])
        assert len(received["energ"][0]["readings"]) > 0 and len(received["apa"][0]["readings"]) > 0
        everything = set(check.scalars(select(Reading.id).where(Reading.status == "accepted")))
        assert {r["id"] for bs in received.values() for b in bs for r in b["readings"]} == everything
    finally:
        check.close()


# ------------------------------------------------------------------------------------------------
# migration


def test_migration_0012_matches_the_models_and_goes_back(empty_database_url):
    url = empty_database_url
    upgrade(url, "0012")
    engine = make_engine(url)
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diffs if "api_client" in repr(d) or "export_batches" in repr(d)] == []
    command.downgrade(alembic_config(url), "0011")
    engine.dispose()
    engine = make_engine(url)
    assert "api_client_regions" not in inspect(engine).get_table_names()
    assert "view" not in {c["name"] for c in inspect(engine).get_columns("export_batches")}
    engine.dispose()
