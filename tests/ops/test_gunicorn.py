"""The repository's gunicorn.conf.py serving real signed webhooks with two workers."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from ivr.voice.simulator import SimulatedCall, Transport, http_transport
from readings_store.models import Call, Reading
from tests import factories as f
from tests.conftest import AUTH_TOKEN
from tests.servers import gunicorn_server, log_tail


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def server_env(database_url: str, tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    env.update(IVR_DATABASE_URL=database_url, IVR_DATA_DIR=str(tmp_path / "data"),
               IVR_TWILIO_AUTH_TOKEN=AUTH_TOKEN, IVR_SECRET_KEY="gunicorn-test-secret",
               IVR_OPERATOR_NUMBER="+37322999999",
               IVR_SPEECH_ENGINES='{"ro": "off", "ru": "off", "uk": "off", "en": "off"}')
    return env


@pytest.fixture
def gunicorn(database_url, tmp_path):
    log_path = tmp_path / "gunicorn.log"
    with gunicorn_server(server_env(database_url, tmp_path), log_path, "--workers", "2",
                         ready=lambda proc: len(children(proc.pid)) == 2) as server:
        yield server


def test_gunicorn_serves_signed_webhooks_and_health(gunicorn, db):
    base, proc = gunicorn
    region = f.region(db)
    f.meter(db, f.account(db, region, number="100001"), previous=1000)
    db.commit()
    health = requests.get(base + "/healthz", timeout=5)
    assert health.status_code == 200 and health.json()["database"] == "ok"

    call = SimulatedCall(base, AUTH_TOKEN, http_transport(), caller="+442079460000")
    call.start()
    for keys in ("4", "100001#", "1500#"):
        call.press(keys)
    assert "Reading saved." in call.press("1").texts
    assert call.hang_up() == 204
    # Unsigned requests are refused by every worker.
    assert requests.post(base + "/voice/incoming", data={"CallSid": "CA" + "d" * 32}, timeout=5).status_code == 403
    # The fallback answers too.
    status, body = call.post(base + "/voice/fallback", {"ErrorCode": "11200", "ErrorUrl": base + "/voice/incoming"})
    assert status == 200 and "<Response>" in body

    db.expire_all()
    assert [str(r.value) for r in db.scalars(select(Reading).where(Reading.call_id.is_not(None)))] == ["1500"]
    assert db.scalars(select(Call)).one().twilio_status == "completed"
    assert len(children(proc.pid)) == 2


def connection_per_request() -> Transport:
    """Twilio's way: each webhook on a connection of its own (a kept-alive one would be closed
    under the client by a worker that is being replaced)."""
    def post(url: str, params: dict, headers: dict) -> tuple[int, str]:
        response = requests.post(url, data=params, headers=headers, timeout=30, allow_redirects=False)
        return response.status_code, response.text

    return Transport(post)


def test_workers_replaced_every_two_requests_serve_whole_calls(database_url, tmp_path, db):
    """gunicorn replaces each worker after ``max_requests``, so a worker's first request after
    its fork may be any turn of a call, before the worker has run anything else. Here every worker
    is replaced after two requests: every webhook is answered and every call saves its reading."""
    region = f.region(db)
    numbers = [f"10000{n}" for n in range(1, 5)]
    for number in numbers:
        f.meter(db, f.account(db, region, number=number), previous=1000)
    db.commit()
    with gunicorn_server(server_env(database_url, tmp_path), tmp_path / "gunicorn.log", "--workers", "2",
                         "--max-requests", "2", "--max-requests-jitter", "0",
                         ready=lambda proc: len(children(proc.pid)) == 2) as (base, proc):
        first_workers = set(children(proc.pid))
        for n, number in enumerate(numbers):
            call = SimulatedCall(base, AUTH_TOKEN, connection_per_request(), caller=f"+4420794600{n:02d}")
            call.start()
            for keys in ("4", f"{number}#", "1500#"):
                call.press(keys)
            assert "Reading saved." in call.press("1").texts, log_tail(tmp_path / "gunicorn.log")
            assert call.hang_up() == 204
        assert first_workers - set(children(proc.pid)), "no worker was replaced"
    db.expire_all()
    assert sorted(str(r.value) for r in db.scalars(select(Reading).where(Reading.call_id.is_not(None)))) == ["1500"] * 4


def test_no_access_lines_with_ivr_access_log_off(database_url, tmp_path, db):
    """IVR_ACCESS_LOG=no: gunicorn writes no line per request (by default it does,
    ``tests/ops/test_metrics_gunicorn.py``); its own lines and the app's are still written."""
    region = f.region(db)
    f.meter(db, f.account(db, region, number="100001"), previous=1000)
    db.commit()
    log_path = tmp_path / "gunicorn.log"
    env = server_env(database_url, tmp_path) | {"IVR_ACCESS_LOG": "no"}
    with gunicorn_server(env, log_path, "--workers", "1", ready=lambda proc: len(children(proc.pid)) == 1) as (base, _):
        call = SimulatedCall(base, AUTH_TOKEN, connection_per_request(), caller="+442079460000")
        call.start()
        assert call.press("4").gather is not None
        assert requests.post(base + "/voice/incoming", data={"CallSid": "CA" + "d" * 32}, timeout=5).status_code == 403
        assert call.hang_up() == 204
    records = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    loggers = {r["logger"] for r in records}
    assert "gunicorn.error" in loggers and "ivr.twilio_webhooks" in loggers  # the refused webhook
    assert "gunicorn.access" not in loggers
