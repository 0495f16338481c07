"""Calls whose end Twilio never reported (the status callback hit a dying worker) are ended by a
periodic sweep (``ivr calls sweep``, run every minute by deploy/ivr-sms.timer) after
``IVR_CALL_IDLE_MINUTES`` without a turn: outcome, end time and SMS receipt, as a hang-up has."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from ivr import calls
from ivr.cli import cli
from ivr.config import ConfigError, load_config
from readings_store.models import Call, SmsOutbox, utcnow
from tests.integration.test_voice_calls import records  # noqa: F401 - a fixture

MOBILE = "+37369000001"
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
IDLE = dt.timedelta(minutes=60)


def row(db, call) -> Call:
    db.expire_all()
    return db.scalars(select(Call).where(Call.call_sid == call.call_sid)).one()


def receipts(db) -> list[SmsOutbox]:
    db.expire_all()
    return list(db.scalars(select(SmsOutbox).where(SmsOutbox.kind == "receipt")))


def saved_then_lost(phone):
    """A call that saved a reading and was still at the next question when its status callback
    was lost."""
    call = phone(caller=MOBILE)
    call.start()
    call.press("")
    call.press("1")
    call.press("100001#")
    call.press("1100*5#")
    call.press("1")  # saved; "another meter?" comes next, and then nothing more
    return call


def test_an_idle_call_without_a_reported_end_is_ended_as_at_a_hang_up(db, records, phone):  # noqa: F811
    call = saved_then_lost(phone)
    quiet_since = row(db, call).last_activity_at
    assert quiet_since is not None and row(db, call).ended_at is None and receipts(db) == []
    assert calls.sweep_idle_calls(db, IDLE, now=quiet_since + IDLE - dt.timedelta(seconds=1)) == []  # not yet
    assert calls.sweep_idle_calls(db, IDLE, now=quiet_since + IDLE + dt.timedelta(seconds=1)) == [call.call_sid]
    ended = row(db, call)
    assert ended.ended_at == quiet_since  # when it was last heard
    assert (ended.outcome, ended.end_reason) == ("hung_up", "next:no_status")
    assert ended.state["outcome"] == "hung_up"
    # The steps the call's row held are written as rows when the sweep ends it.
    assert ended.steps == [] and [s.step for s in ended.logged_steps] == [
        "incoming", "language", "region", "account", "value", "confirm"]
    [receipt] = receipts(db)
    assert (receipt.to_number, receipt.status) == (MOBILE, "pending")
    # Again, or Twilio's report arriving after all: nothing twice.
    assert calls.sweep_idle_calls(db, IDLE, now=quiet_since + 2 * IDLE) == []
    calls.end_call(db, call_sid=call.call_sid, status="completed", duration="95")
    assert row(db, call).ended_at == quiet_since and row(db, call).duration_seconds == 95
    assert len(receipts(db)) == 1


def test_a_finished_dialog_keeps_its_outcome(db, records, phone):  # noqa: F811
    call = saved_then_lost(phone)
    call.press("3")  # finish: goodbye, outcome completed; the status callback is lost
    assert row(db, call).outcome == "completed"
    calls.sweep_idle_calls(db, IDLE, now=utcnow() + IDLE + dt.timedelta(minutes=1))
    assert (row(db, call).outcome, row(db, call).ended_at is not None) == ("completed", True)
    assert len(receipts(db)) == 1


def test_live_and_ended_calls_are_left_alone(db, records, phone):  # noqa: F811
    live = phone(caller=MOBILE)
    live.start()
    ended = saved_then_lost(phone)
    assert ended.hang_up() == 204
    before = row(db, ended).ended_at
    assert calls.sweep_idle_calls(db, IDLE, now=utcnow() + dt.timedelta(minutes=59)) == []
    assert row(db, live).ended_at is None and row(db, ended).ended_at == before


def test_the_sweep_command(db, records, phone, monkeypatch, config):  # noqa: F811
    call = saved_then_lost(phone)
    monkeypatch.setenv("IVR_DATABASE_URL", config.database_url)
    monkeypatch.setenv("IVR_CALL_IDLE_MINUTES", "5")
    db.execute(Call.__table__.update().values(last_activity_at=utcnow() - dt.timedelta(minutes=6)))
    db.commit()
    result = CliRunner().invoke(cli, ["calls", "sweep"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ended=1 ")
    assert row(db, call).outcome == "hung_up" and len(receipts(db)) == 1


def test_the_timer_runs_the_sweep_before_sending():
    unit = (DEPLOY / "ivr-sms.service").read_text()
    starts = [line.split("=", 1)[1] for line in unit.splitlines() if line.startswith("ExecStart=")]
    assert starts[0] == "-/opt/ivr/venv/bin/ivr calls sweep" and starts[-1] == "/opt/ivr/venv/bin/ivr sms send-pending"
    assert "OnUnitActiveSec=1min" in (DEPLOY / "ivr-sms.timer").read_text()


@pytest.mark.parametrize("raw", ["4", "1441", "soon", "1.5"])
def test_the_idle_setting_is_checked(monkeypatch, tmp_path, raw):
    monkeypatch.setenv("IVR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("IVR_CALL_IDLE_MINUTES", raw)
    with pytest.raises(ConfigError, match="IVR_CALL_IDLE_MINUTES"):
        load_config()


def test_the_idle_setting_is_documented():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "`IVR_CALL_IDLE_MINUTES`" in readme and "IVR_CALL_IDLE_MINUTES=" in (DEPLOY / "ivr.env.example").read_text()


@pytest.mark.db
def test_migration_0014_adds_the_stream_and_activity_columns_and_goes_back(empty_database_url):
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import inspect, text

    from readings_store.db import alembic_config, make_engine, upgrade
    from readings_store.models import Base

    url = empty_database_url
    upgrade(url, "0013")
    engine = make_engine(url)
    with engine.begin() as conn:
        for sid in ("CA" + "a" * 32, "CA" + "b" * 32):
            conn.execute(text("INSERT INTO calls (call_sid, state, steps, seq, started_at) "
                              "VALUES (:sid, '{}', '[]', 1, '2026-01-01 00:00:00+00')"), {"sid": sid})
        conn.execute(text("INSERT INTO call_steps (call_id, seq, at, step, next) SELECT id, 0, "
                          "'2026-01-01 00:05:00+00', 'incoming', 'language' FROM calls WHERE call_sid = :sid"),
                     {"sid": "CA" + "b" * 32})
    upgrade(url, "0014")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT last_activity_at = started_at, stream_token_hash, stream_opened_at "
                                 "FROM calls ORDER BY call_sid")).all()
    upgrade(url)  # the models are the newest revision's
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    # An old call's last activity: its last logged step, else its start.
    assert [(bool(r[0]), r[1], r[2]) for r in rows] == [(True, None, None), (False, None, None)]
    assert [d for d in diffs if "calls" in repr(d) and "call_steps" not in repr(d)] == []
    command.downgrade(alembic_config(url), "0013")
    columns = {c["name"] for c in inspect(engine).get_columns("calls")}
    assert not columns & {"last_activity_at", "stream_token_hash", "stream_opened_at"}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM calls")).scalar_one() == 2
    engine.dispose()
