"""`ivr privacy erase --phone E164`: the number leaves calls, texts and the outbox, its recordings
are deleted, its readings stay with the caller shown as erased; audited without the number; a bad
number changes nothing."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import inspect, select, text

from ivr.calls import store_audio
from ivr.cli import cli
from readings_store.db import alembic_config, make_engine, upgrade
from readings_store.models import (
    AuditEvent,
    Base,
    Call,
    Reading,
    ReviewTask,
    SmsMessage,
    SmsOptOut,
    SmsOutbox,
    Utterance,
    ValueRefusal,
    utcnow,
)
from tests import factories as f

NUMBER = "+37369123456"
OTHER = "+37369000777"


@pytest.fixture
def records(db):
    north = f.region(db, code="N", name="North", menu_key=1, work=f.NEVER_OPEN)
    account = f.account(db, north, number="100001", phones=[NUMBER])
    f.meter(db, account, serial="EL000123", previous=1000, decimals=1)
    neighbour = f.account(db, north, number="100002")
    f.meter(db, neighbour, serial="EL000456", previous=1000, decimals=1)
    db.commit()
    return {"north": north, "account": account}


def _call_and_save(phone, caller: str, keys: tuple[str, ...]) -> None:
    """A whole call through the app as Twilio makes it, ending with a saved reading and a hang-up."""
    call = phone(caller=caller)
    call.start()
    for typed in keys:
        p = call.press(typed)
    assert "Indicii sunt salvați." in p.texts, p.texts
    call.press("3")
    assert call.hang_up() < 300


@pytest.fixture
def history(db, records, phone, config):
    """Two calls from NUMBER (one with recordings and a failed identification), one from OTHER, texts,
    outbox rows, a refusal and an opt-out."""
    # Romanian from the caller ID; the account offered from the number on file, or region and account typed.
    _call_and_save(phone, NUMBER, ("", "1", "1100*5#", "1"))
    _call_and_save(phone, OTHER, ("", "1", "100002#", "1200#", "1"))
    db.expire_all()
    mine = db.scalars(select(Call).where(Call.from_number == NUMBER)).one()
    theirs = db.scalars(select(Call).where(Call.from_number == OTHER)).one()
    second = Call(call_sid="CA" + "e" * 32, from_number=NUMBER, caller_country="MD", language="ro",
                  state={"call_sid": "CA" + "e" * 32, "caller": NUMBER, "lang": "ro"}, steps=[],
                  started_at=utcnow() - dt.timedelta(days=3), ended_at=utcnow() - dt.timedelta(days=3))
    db.add(second)
    db.flush()
    root = Path(config.recordings_dir)
    for call in (second, theirs):
        for i in range(2):
            db.add(Utterance(call_id=call.id, step="account", engine="vosk",
                             audio_path=store_audio(root, call.call_sid, f"{i:03d}-account.wav", b"RIFF")))
    db.add(ReviewTask(kind="identification", reason="account_not_found", region_id=records["north"].id,
                      call_id=second.id, details={"attempts": ["1234"], "caller": NUMBER}))
    db.add(SmsMessage(message_sid="SM" + "1" * 32, from_number=NUMBER, body="100001 1300", outcome="readings",
                      reply="saved"))
    db.add(SmsMessage(message_sid="SM" + "2" * 32, from_number=OTHER, body="100001 1400", outcome="readings"))
    # Each call queued its receipt (pending); a reminder went out earlier.
    assert {(o.to_number, o.kind, o.status) for o in db.scalars(select(SmsOutbox))} == {
        (NUMBER, "receipt", "pending"), (OTHER, "receipt", "pending")}
    db.add(SmsOutbox(kind="reminder", to_number=NUMBER, language="ro", account_id=records["account"].id,
                     period="2031-01", status="delivered", body="Transmiteți indicii"))
    meter = records["account"].meters[0]
    db.add(ValueRefusal(account_id=records["account"].id, meter_id=meter.id, register="total", period="2031-01",
                        value="5", code="below_previous", call_id=second.id, caller=NUMBER))
    db.add(SmsOptOut(phone=NUMBER, keyword="STOP"))
    db.add(AuditEvent(actor_kind="operator", action="identification.link", entity="review_task", entity_id=1,
                      after={"account_id": records["account"].id, "phone_added": NUMBER}))
    db.commit()
    return {"mine": mine.id, "second": second.id, "theirs": theirs.id, "root": root}


@pytest.fixture
def console(app, client, db):
    """A client logged in to the console as an operator."""
    from tests.console.helpers import login, make_operator

    app.config["WTF_CSRF_ENABLED"] = False
    make_operator(db)
    db.commit()
    assert login(client).status_code == 302
    return client


@pytest.fixture
def runner(config, monkeypatch):
    monkeypatch.setenv("IVR_DATABASE_URL", config.database_url)
    monkeypatch.setenv("IVR_RECORDINGS_DIR", str(config.recordings_dir))
    return CliRunner()


def _dump(db) -> str:
    """Everything the records hold that could carry a phone number, as text."""
    rows = []
    for model in (Call, SmsMessage, SmsOutbox, ValueRefusal, ReviewTask, Utterance, AuditEvent):
        for row in db.scalars(select(model)):
            rows.append({c.key: getattr(row, c.key) for c in model.__table__.columns if c.key != "id"})
    return json.dumps(rows, default=str)


def test_erase_removes_the_number_and_its_recordings_and_keeps_the_readings(runner, db, history, records, client,
                                                                            console):
    readings_before = [(r.id, r.value, r.status, r.call_id) for r in db.scalars(select(Reading).order_by(Reading.id))]
    assert NUMBER in _dump(db)
    result = runner.invoke(cli, ["privacy", "erase", "--phone", "+373 69 123 456"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"erased {NUMBER} from 2 calls, 2 recordings, 1 text message, 2 outbox messages (1 not yet sent, "
        "cancelled), 1 refused value, 1 failed identification; kept on file for 1 account (billing's records: "
        "remove it there), on the text opt-out list (so that no text reaches it) and in 1 audit event (the "
        "trail is not rewritten)"]
    db.expire_all()
    # Only the opt-out list, the account's phones and the operator's audit event still hold it.
    dump = _dump(db).replace(NUMBER, "", 1)
    assert NUMBER not in dump and NUMBER[1:] not in dump
    assert db.scalar(select(SmsOptOut.phone)) == NUMBER
    for call_id in (history["mine"], history["second"]):
        call = db.get(Call, call_id)
        assert call.from_number is None and call.caller_country is None and call.caller_erased_at is not None
        assert call.state.get("caller") is None
    assert not (history["root"] / db.get(Call, history["second"]).call_sid).exists()
    erased = db.scalars(select(Utterance).where(Utterance.call_id == history["second"])).all()
    assert [u.audio_path for u in erased] == [None, None] and all(u.audio_deleted_at for u in erased)
    outbox = {(o.kind, o.to_number, o.status) for o in db.scalars(select(SmsOutbox))}
    assert outbox == {("reminder", None, "delivered"), ("receipt", None, "cancelled"), ("receipt", OTHER, "pending")}
    # The readings stay as they were; the caller is shown as erased.
    assert [(r.id, r.value, r.status, r.call_id) for r in db.scalars(select(Reading).order_by(Reading.id))] \
        == readings_before
    page = console.get(f"/console/accounts/{records['account'].id}").get_data(as_text=True)
    assert " — erased — Romanian — completed</li>" in page
    task = db.scalars(select(ReviewTask).where(ReviewTask.call_id == history["second"])).one()
    page = console.get(f"/console/tasks/{task.id}").get_data(as_text=True)
    assert "<dt>Phone</dt><dd>erased</dd>" in page and NUMBER not in page
    # The other caller's records are untouched.
    theirs = db.get(Call, history["theirs"])
    assert theirs.from_number == OTHER and theirs.caller_erased_at is None
    assert len(db.scalars(select(Utterance).where(Utterance.call_id == theirs.id,
                                                  Utterance.audio_path.is_not(None))).all()) == 2
    assert db.scalars(select(SmsMessage.from_number)).all() == [OTHER]
    # Audited, with counts and calls but not the number.
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "privacy.erase")).one()
    assert event.after["calls"] == 2 and event.after["call_ids"] == [history["mine"], history["second"]]
    # Erasing again finds nothing left but what is kept on purpose.
    again = runner.invoke(cli, ["privacy", "erase", "--phone", NUMBER])
    assert again.exit_code == 0 and again.output.startswith(f"erased {NUMBER} from 0 calls, 0 recordings")


@pytest.mark.parametrize("typed", ["069123456", "+1", "phone", "+373 69 12", ""])
def test_a_bad_number_is_a_clear_error_and_changes_nothing(runner, db, history, typed):
    before = _dump(db)
    result = runner.invoke(cli, ["privacy", "erase", "--phone", typed])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"Error: {typed!r} is not a phone number in international form such as +37369123456; nothing was erased"]
    db.expire_all()
    assert _dump(db) == before
    assert all((history["root"] / db.get(Call, history["second"]).call_sid / f"{i:03d}-account.wav").exists()
               for i in range(2))


def test_a_call_going_on_is_not_erased_under_its_feet(runner, db, history):
    db.add(Call(call_sid="CA" + "f" * 32, from_number=NUMBER, state={}, steps=[]))
    db.commit()
    before = _dump(db)
    result = runner.invoke(cli, ["privacy", "erase", "--phone", NUMBER])
    assert result.exit_code == 1 and "is going on" in result.stderr and "nothing was erased" in result.stderr
    db.expire_all()
    assert _dump(db) == before


def test_migration_0013_matches_the_models_and_goes_back(empty_database_url):
    url = empty_database_url
    upgrade(url)  # the models are the newest revision's
    engine = make_engine(url)
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diffs if any(t in repr(d) for t in ("utterances", "calls", "sms_outbox"))] == []
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO sms_outbox (kind, language, status, attempts, next_attempt_at, created_at) "
                          "VALUES ('reminder', 'ro', 'cancelled', 0, '2031-01-01 00:00:00+00', "
                          "'2031-01-01 00:00:00+00')"))
    command.downgrade(alembic_config(url), "0012")
    engine.dispose()
    engine = make_engine(url)
    assert "caller_erased_at" not in {c["name"] for c in inspect(engine).get_columns("calls")}
    assert "audio_deleted_at" not in {c["name"] for c in inspect(engine).get_columns("utterances")}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM sms_outbox")).scalar_one() == 0  # erased rows have no number
    engine.dispose()
