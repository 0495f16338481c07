"""Call state lives in the database: any worker serves any webhook, and racing duplicates of one
webhook store a reading once."""
from __future__ import annotations

import threading

from click.testing import CliRunner
from sqlalchemy import select

from ivr.app import create_app
from ivr.voice.simulator import SimulatedCall, flask_transport
from readings_store.db import make_engine
from readings_store.models import Reading
from tests import factories as f
from tests.conftest import AUTH_TOKEN


def _records(db):
    r = f.region(db)
    a = f.account(db, r, number="100001")
    f.meter(db, a, previous=1000)
    db.commit()


def test_alternating_workers_serve_one_call(db, config):
    _records(db)
    # Two "workers": separate apps with separate engines and connection pools.
    workers = [create_app(config, engine=make_engine(config.database_url)).test_client() for _ in range(2)]
    turn = iter(range(100))

    class RoundRobin:
        def post(self, *args, **kwargs):
            return workers[next(turn) % 2].post(*args, **kwargs)

    call = SimulatedCall("http://localhost", AUTH_TOKEN, flask_transport(RoundRobin()), caller="+442079460000")
    call.start()
    for keys in ("4", "100001#", "1500#"):
        call.press(keys)
    p = call.press("1")
    assert "Reading saved." in p.texts
    assert [str(r.value) for r in db.scalars(select(Reading).where(Reading.channel == "phone_keypad"))] == ["1500"]


def test_racing_duplicate_webhooks_store_once(db, config):
    _records(db)
    client = create_app(config).test_client()
    call = SimulatedCall("http://localhost", AUTH_TOKEN, flask_transport(client), caller="+442079460000")
    call.start()
    for keys in ("4", "100001#", "1500#"):
        call.press(keys)
    action = call.last.gather["action"]
    apps = [create_app(config, engine=make_engine(config.database_url)) for _ in range(4)]
    barrier = threading.Barrier(len(apps))
    results = []

    def fire(app):
        sim = SimulatedCall("http://localhost", AUTH_TOKEN, flask_transport(app.test_client()),
                            caller="+442079460000", call_sid=call.call_sid)
        barrier.wait()
        results.append(sim.post(action, {"Digits": "1"}))

    threads = [threading.Thread(target=fire, args=(a,)) for a in apps]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 4 and all(status == 200 for status, _ in results)
    assert len({body for _, body in results}) == 1  # everyone got the same answer
    db.expire_all()
    assert len(db.scalars(select(Reading).where(Reading.channel == "phone_keypad")).all()) == 1


def test_ivr_call_command_in_process(db, config, monkeypatch):
    _records(db)
    monkeypatch.setenv("IVR_DATABASE_URL", config.database_url)
    monkeypatch.setenv("IVR_TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    from ivr.cli import cli

    result = CliRunner().invoke(cli, ["call", "--from", "anonymous", "--keys", "4 100001# 1500# 1 3"])
    assert result.exit_code == 0, result.output
    assert "robot: That's 1 5 0 0." in result.output
    assert "robot: Saved: 1 reading." in result.output
    assert "[call ended: hangup]" in result.output
