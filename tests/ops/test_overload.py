"""Overload is answered, not queued: with both gunicorn workers busy, a webhook that waited for a
thread longer than IVR_QUEUE_WAIT is answered at once with the fallback's words, instead of being
served after Twilio has given up."""
from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import text
from twilio.request_validator import RequestValidator

from readings_store.db import make_engine
from tests.conftest import AUTH_TOKEN
from tests.servers import gunicorn_server, log_tail

QUEUE_WAIT = 1.0
HOLD, GAP = 2.0, 0.2  # every turn waits for the database up to HOLD: each takes about as long


@pytest.fixture
def saturated_gunicorn(database_url, tmp_path):
    """The repository's gunicorn.conf.py with two workers of one thread each."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    env.update(IVR_DATABASE_URL=database_url, IVR_DATA_DIR=str(tmp_path / "data"),
               IVR_TWILIO_AUTH_TOKEN=AUTH_TOKEN, IVR_SECRET_KEY="overload-test-secret",
               IVR_OPERATOR_NUMBER="+37322999999", IVR_QUEUE_WAIT=str(QUEUE_WAIT),
               IVR_SPEECH_ENGINES='{"ro": "off", "ru": "off", "uk": "off", "en": "off"}')
    log_path = tmp_path / "gunicorn.log"
    with gunicorn_server(env, log_path, "--workers", "2", "--threads", "1") as (base, _):
        yield base, log_path


def _slow_database(database_url: str, stop: threading.Event) -> None:
    """Hold the lock a turn's claim needs for HOLD seconds at a time, letting go for GAP."""
    engine = make_engine(database_url)
    sqlite = engine.dialect.name == "sqlite"
    try:
        while not stop.is_set():
            with engine.connect() as conn:
                if sqlite:
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                else:
                    conn.execute(text("LOCK TABLE calls IN EXCLUSIVE MODE"))
                stop.wait(HOLD)
                conn.exec_driver_sql("COMMIT") if sqlite else conn.commit()
            time.sleep(GAP)
    finally:
        engine.dispose()


def _press(base: str, n: int) -> tuple[float, str]:
    url = f"{base}/voice/step/language?seq=1"
    params = {"CallSid": f"CA{n:032x}", "Digits": "1", "From": "+37360000000"}
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, params)
    started = time.monotonic()
    r = requests.post(url, data=params, headers={"X-Twilio-Signature": signature}, timeout=60)
    assert r.status_code == 200, r.text
    return time.monotonic() - started, r.text


def test_no_webhook_waits_for_a_saturated_worker_past_the_queue_wait(saturated_gunicorn, database_url):
    base, log_path = saturated_gunicorn
    stop = threading.Event()
    holder = threading.Thread(target=_slow_database, args=(database_url, stop), daemon=True)
    holder.start()
    try:
        time.sleep(0.5)
        # 14 turns at once on 2 threads, each turn about HOLD + GAP long: served in turn, the last
        # would wait some 15 s, as long as Twilio waits.
        with ThreadPoolExecutor(14) as pool:
            results = list(pool.map(lambda n: _press(base, n), range(14)))
    finally:
        stop.set()
        holder.join(10)
    late = [body for _, body in results if "problemă tehnică" in body]  # the fallback's words, +373: Romanian
    slowest = max(seconds for seconds, _ in results)
    # A request waits at most QUEUE_WAIT for a thread, then the turn in progress (HOLD + GAP) to
    # end; the rest is slack for a loaded machine.
    assert slowest < QUEUE_WAIT + HOLD + GAP + 4.0, (slowest, log_tail(log_path))
    assert late, log_tail(log_path)
    assert "for a worker (over IVR_QUEUE_WAIT)" in log_path.read_text()
