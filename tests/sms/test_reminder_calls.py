"""Reminder calls (``ivr remind --call``): queued in the outbox like text reminders but tracked apart
from them, placed by the real ``twilio.rest.Client`` through ``FakeTwilioRest`` (a local fake of
Twilio's Calls API that records what would be placed), and answered by driving the Flask app
exactly as Twilio would: signed form posts to the URL the fake recorded, TwiML parsed and followed
(``SimulatedCall``)."""
from __future__ import annotations

import datetime as dt
import secrets
import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from twilio.request_validator import RequestValidator

from ivr.cli import cli
from ivr.voice.simulator import SimulatedCall, flask_transport
from ivr.sms.outbox import place_pending_calls
from readings_store import sms as sms_store
from readings_store.models import Call, Reading, SmsOptOut, SmsOutbox
from readings_store.sms import plan_reminders
from tests import factories as f
from tests.conftest import AUTH_TOKEN
from tests.twilio_fake import ACCOUNT_SID, FakeTwilioRest

pytestmark = pytest.mark.db

LANGS = {"373": "ro", "380": "uk", "7": "ru", "*": "en"}
# 12:00 in Chișinău and Kyiv (UTC+2 in November), inside the 20-25 window of the 2026-11 period.
NOON = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.timezone.utc)
PERIOD = "2026-11"
PUBLIC = "https://ivr.example.org"
LINE = "+37322555000"
DUE = "+37369000001"
KYIV = "+380671234567"


@pytest.fixture
def town(db):
    chi = f.region(db, code="CHI", menu_key=1, window=(20, 25))
    kyiv = f.region(db, code="KYI", name="Kyiv", menu_key=2, timezone="Europe/Kyiv", window=(20, 25))
    accounts = {
        "due": f.account(db, chi, number="1000001", holder="Ion Popescu", phones=[DUE]),
        "no_phone": f.account(db, chi, number="1000003"),
        "has_reading": f.account(db, chi, number="1000004", phones=["+37369000004"]),
        "opted_out": f.account(db, chi, number="1000005", phones=["+37369000005"]),
        "kyiv": f.account(db, kyiv, number="2000001", phones=[KYIV]),
    }
    meters = {name: f.meter(db, a, serial=f"EL{a.number}") for name, a in accounts.items()}
    db.add(Reading(meter_id=meters["has_reading"].id, register="total", value=Decimal(5), period=PERIOD,
                   taken_at=NOON, received_at=NOON, channel="sms", status="accepted"))
    db.add(SmsOptOut(phone="+37369000005", keyword="STOP"))
    db.commit()
    return accounts


@pytest.fixture
def twilio():
    fake = FakeTwilioRest()
    yield fake
    fake.close()


@pytest.fixture
def calling(config):
    config.public_url, config.call_from, config.call_rate_per_second = PUBLIC, LINE, 4
    config.twilio_account_sid = ACCOUNT_SID
    return config


@pytest.fixture
def place(calling, sessions, twilio):
    pauses = []

    def run(now=NOON):
        return place_pending_calls(sessions, calling, twilio.client(), now=now, sleep=pauses.append)
    run.pauses = pauses
    return run


def queue(db, now=NOON, **kwargs):
    plan = plan_reminders(db, PERIOD, country_languages=LANGS, now=now, kind="call", **kwargs)
    db.commit()
    return plan


def rows(db, kind="call"):
    db.expire_all()
    return list(db.scalars(select(SmsOutbox).where(SmsOutbox.kind == kind).order_by(SmsOutbox.id)))


def placed_to(twilio, number) -> tuple[dict, str]:
    """The form of the call placed to ``number`` and the CallSid Twilio gave it."""
    index = next(i for i, form in enumerate(twilio.calls) if form["To"] == number)
    return twilio.calls[index], twilio.placed[index]


def callee(client, form: dict, sid: str) -> SimulatedCall:
    """Twilio's side of a call it placed: From is our line, To the customer."""
    return SimulatedCall(PUBLIC, AUTH_TOKEN, flask_transport(client), caller=form["From"], called=form["To"],
                         call_sid=sid, direction="outbound-api")


def count(db, model) -> int:
    return db.scalar(select(func.count()).select_from(model))


def test_placed_through_the_calls_api_with_an_opaque_url(db, town, place, twilio):
    plan = queue(db)
    assert plan.counts == {"CHI": 1, "KYI": 1}
    assert place() == {"placed": 2, "retry": 0, "failed": 0, "cancelled": 0, "deferred": 0}
    assert {form["To"] for form in twilio.calls} == {DUE, KYIV}
    form, sid = placed_to(twilio, DUE)
    assert form["From"] == LINE and form["MachineDetection"] == "Enable" and form["Method"] == "POST"
    assert form["StatusCallback"] == f"{PUBLIC}/voice/status" and form["FallbackUrl"] == f"{PUBLIC}/voice/fallback"
    row = next(r for r in rows(db) if r.to_number == DUE)
    assert form["Url"] == f"{PUBLIC}/voice/reminder/{row.token}"
    # Nothing about the customer in the URL Twilio keeps in its logs: neither number nor account.
    assert "1000001" not in form["Url"] and "69000001" not in form["Url"] and len(row.token) == 43
    assert (row.status, row.message_sid, row.attempts) == ("placed", sid, 0)
    assert place()["placed"] == 0 and len(twilio.calls) == 2  # never placed twice


def test_a_person_presses_1_and_gives_the_reading_for_that_account(db, town, place, twilio, client):
    queue(db)
    place()
    form, sid = placed_to(twilio, DUE)
    call = callee(client, form, sid)
    greeting = call.answer(form["Url"])
    text = " ".join(greeting.texts)
    assert text.startswith("Bună ziua, vă sună serviciul de transmitere a indicilor") and "0 0 0 1" in text
    # Whoever answers may not be the customer: no full account number, no name.
    assert "1000001" not in text and "Popescu" not in text
    # Twilio retries the answer URL: the same answer, one call.
    status, again = call.post(form["Url"], {"AnsweredBy": "human"})
    assert status == 200 and count(db, Call) == 1
    assert status == 200 and again == db.scalars(select(Call.last_twiml)).one()
    prompt = call.press("1")  # straight to the value: no region, account or meter question
    assert prompt.gather["action"] == f"{PUBLIC}/voice/step/value?seq=2"
    assert call.press("1234#").gather["action"].split("?")[0].endswith("/voice/step/confirm")
    assert "Indicii sunt salvați." in call.press("1").texts
    assert call.press("3").ended == "hangup"
    assert call.hang_up() == 204
    db.expire_all()
    readings = db.scalars(select(Reading).where(Reading.channel.like("phone%"))).all()
    assert [(r.meter.account_id, str(r.value), r.status, r.channel) for r in readings] == [
        (town["due"].id, "1234", "accepted", "phone_keypad")]
    stored = db.scalars(select(Call)).one()
    assert (stored.call_sid, stored.from_number, stored.account_id, stored.outcome, stored.language) == (
        sid, DUE, town["due"].id, "completed", "ro")
    assert readings[0].call_id == stored.id
    row = next(r for r in rows(db) if r.to_number == DUE)
    assert (row.status, row.message_sid) == ("answered", sid)
    # The end of the call as for an inbound one: a receipt by text to the mobile.
    assert [(r.to_number, r.call_id) for r in rows(db, "receipt")] == [(DUE, stored.id)]
    # Neither a second call nor a second reminder for the period.
    assert place()["placed"] == 0 and queue(db).total == 0


def test_yes_said_to_twilios_recogniser_counts_as_1(db, town, place, twilio, client):
    queue(db)
    place()
    form, sid = placed_to(twilio, DUE)
    call = callee(client, form, sid)
    gather = call.answer(form["Url"], answered_by="unknown").gather  # detection unsure: the robot speaks
    assert "speech" in gather["input"]  # Romanian: Twilio's recogniser listens for yes/no too
    prompt = call._follow(gather["action"], {"SpeechResult": "Da.", "Confidence": "0.9"})  # noqa: SLF001
    assert prompt.gather["action"] == f"{PUBLIC}/voice/step/value?seq=2"


def test_a_machine_answers_nothing_is_said_and_it_counts_as_placed(db, town, place, twilio, client):
    queue(db)
    place()
    form, sid = placed_to(twilio, DUE)
    call = callee(client, form, sid)
    prompt = call.answer(form["Url"], answered_by="machine_start")
    assert prompt.ended == "hangup" and prompt.texts == []
    assert call.answer(form["Url"], answered_by="machine_start").ended == "hangup"  # a retry: the same
    assert call.hang_up() == 204
    assert count(db, Call) == 0
    assert next(r for r in rows(db) if r.to_number == DUE).status == "machine"
    assert place(NOON + dt.timedelta(hours=3))["placed"] == 0 and len(twilio.calls) == 2


def test_a_callee_who_presses_nothing_is_let_go_politely(db, town, place, twilio, client):
    queue(db)
    place()
    form, sid = placed_to(twilio, KYIV)
    call = callee(client, form, sid)
    assert call.answer(form["Url"]).texts[0].startswith("Вітаємо, це служба прийому показань")
    end = call.press("")
    assert end.ended == "hangup" and end.texts == [
        "Дякуємо. Ви можете передати показання будь-коли, зателефонувавши нам або надіславши SMS. До побачення."]
    call.hang_up()
    db.expire_all()
    stored = db.scalars(select(Call)).one()
    assert (stored.outcome, stored.account_id) == ("no_reading", town["kyiv"].id)
    assert count(db, Reading) == 1  # only the fixture's
    assert rows(db, "receipt") == []


def test_a_call_nobody_answers_keeps_twilios_status_and_is_not_placed_again(db, town, place, twilio, client):
    queue(db)
    place()
    form, sid = placed_to(twilio, DUE)
    assert callee(client, form, sid).hang_up(status="no-answer", duration=0) == 204
    assert next(r for r in rows(db) if r.to_number == DUE).status == "no-answer"
    assert count(db, Call) == 0 and place()["placed"] == 0


def snapshot(db):
    db.expire_all()
    return ([(r.id, r.status, r.message_sid, r.attempts) for r in rows(db)], count(db, Call), count(db, Reading))


@pytest.mark.parametrize("case", ["unknown", "malformed", "other_call", "other_number"])
def test_a_forged_or_unknown_reference_ends_politely_and_changes_nothing(db, town, place, twilio, client, case):
    queue(db)
    place()
    form, sid = placed_to(twilio, DUE)
    before = snapshot(db)
    url, caller = form["Url"], callee(client, form, sid)
    if case == "unknown":
        url = f"{PUBLIC}/voice/reminder/{secrets.token_urlsafe(32)}"
    elif case == "malformed":
        url = f"{PUBLIC}/voice/reminder/1000001"
    elif case == "other_call":
        caller.call_sid = "CA" + "f" * 32  # the right reference, from a call it was not given to
    else:
        caller.called = "+37369999999"  # the right reference and call, another number
    prompt = caller.answer(url)
    assert prompt.ended == "hangup" and prompt.texts == [
        "Vă mulțumim. Puteți transmite indicii oricând, sunându-ne sau printr-un mesaj SMS. La revedere."]
    assert snapshot(db) == before


def test_an_unsigned_answer_is_refused(db, town, place, twilio, client):
    queue(db)
    place()
    form, sid = placed_to(twilio, DUE)
    before = snapshot(db)
    params = {"CallSid": sid, "AccountSid": ACCOUNT_SID, "From": LINE, "To": DUE, "AnsweredBy": "human"}
    path = form["Url"].removeprefix(PUBLIC)
    assert client.post(path, data=params, base_url=PUBLIC).status_code == 403
    forged = RequestValidator("not-the-auth-token").compute_signature(form["Url"], params)
    assert client.post(path, data=params, base_url=PUBLIC,
                       headers={"X-Twilio-Signature": forged}).status_code == 403
    assert snapshot(db) == before


def test_never_twice_and_apart_from_text_reminders(db, town):
    assert queue(db).total == 2
    texts = plan_reminders(db, PERIOD, country_languages=LANGS, now=NOON)
    db.commit()
    assert texts.total == 2  # a reminder call does not count as a text reminder, nor the other way
    assert queue(db, now=NOON + dt.timedelta(hours=2)).total == 0
    assert len(rows(db)) == 2 and len(rows(db, "reminder")) == 2
    db.add(SmsOutbox(kind="call", to_number=DUE, language="ro", account_id=town["due"].id, period=PERIOD,
                     status="pending", attempts=0))
    with pytest.raises(IntegrityError):
        db.commit()
    db.rollback()


@pytest.mark.parametrize("hour_utc", [19, 6])  # 21:00 and 08:00 in both regions
def test_no_calls_in_quiet_hours(db, town, place, twilio, hour_utc):
    plan = queue(db, now=NOON.replace(hour=hour_utc), dry_run=True)
    assert plan.total == 0 and plan.skipped == {"CHI": "quiet hours", "KYI": "quiet hours"}
    queue(db)  # queued at noon, due at 22:00: placed the next morning
    counts = place(NOON.replace(hour=20))
    assert counts["deferred"] == 2 and twilio.calls == []
    assert {r.next_attempt_at for r in rows(db)} == {dt.datetime(2026, 11, 23, 7, 0, tzinfo=dt.timezone.utc)}
    assert place(dt.datetime(2026, 11, 23, 7, 30, tzinfo=dt.timezone.utc))["placed"] == 2


def test_placed_at_the_configured_rate(db, town, place, twilio):
    queue(db)
    db.add(SmsOutbox(kind="call", to_number="+37369000007", language="ro", account_id=town["no_phone"].id,
                     period=PERIOD, status="pending", attempts=0, next_attempt_at=NOON))
    db.commit()
    assert place()["placed"] == 3
    assert place.pauses == [0.25, 0.25]  # IVR_CALL_RATE_PER_SECOND=4: a quarter second between calls


def test_a_failed_create_is_retried_later_and_placed_once(db, town, place, twilio):
    queue(db)
    twilio.fail_calls = 1
    assert place() == {"placed": 1, "retry": 1, "failed": 0, "cancelled": 0, "deferred": 0}
    failed = next(r for r in rows(db) if r.status == "pending")
    assert failed.attempts == 1 and failed.next_attempt_at == NOON + dt.timedelta(minutes=1)
    assert "TwilioRestException" in failed.error and failed.token  # the same URL on the next try
    token = failed.token
    assert place(NOON + dt.timedelta(seconds=30))["placed"] == 0  # not due yet
    assert place(NOON + dt.timedelta(minutes=2))["placed"] == 1
    assert len(twilio.calls) == 2 and {r.status for r in rows(db)} == {"placed"}
    assert next(r for r in rows(db) if r.id == failed.id).token == token


def test_a_number_that_opted_out_after_queueing_is_not_called(db, town, place, twilio):
    queue(db)
    db.add(SmsOptOut(phone=KYIV, keyword="STOP"))
    db.commit()
    assert place()["cancelled"] == 1 and [form["To"] for form in twilio.calls] == [DUE]


def test_placing_needs_its_settings(calling, sessions, twilio):
    calling.call_from = None
    with pytest.raises(ValueError, match="IVR_CALL_FROM is not set"):
        place_pending_calls(sessions, calling, twilio.client())
    calling.call_from, calling.public_url = LINE, None
    with pytest.raises(ValueError, match="IVR_PUBLIC_URL is not set"):
        place_pending_calls(sessions, calling, twilio.client())


def test_remind_call_command(db, town, config, monkeypatch):
    monkeypatch.setenv("IVR_DATABASE_URL", config.database_url)
    monkeypatch.setattr(sms_store, "utcnow", lambda: NOON)
    runner = CliRunner()
    result = runner.invoke(cli, ["remind", "--period", PERIOD, "--call"])
    assert result.exit_code == 1, result.output
    assert "reminder calls need IVR_CALL_FROM, IVR_TWILIO_ACCOUNT_SID, IVR_TWILIO_AUTH_TOKEN, IVR_PUBLIC_URL" \
        in result.output and rows(db) == []
    result = runner.invoke(cli, ["remind", "--period", PERIOD, "--call", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert result.output == "CHI\t1\nKYI\t1\nwould queue 2 reminder calls for 2026-11\n" and rows(db) == []
    for name, value in {"IVR_CALL_FROM": LINE, "IVR_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
                        "IVR_TWILIO_AUTH_TOKEN": AUTH_TOKEN, "IVR_PUBLIC_URL": PUBLIC}.items():
        monkeypatch.setenv(name, value)
    result = runner.invoke(cli, ["remind", "--period", PERIOD, "--call", "--region", "KYI"])
    assert result.exit_code == 0, result.output
    assert result.output == "KYI\t1\nqueued 1 reminder call for 2026-11\n"
    assert [(r.to_number, r.language, r.status) for r in rows(db)] == [(KYIV, "uk", "pending")]
    monkeypatch.delenv("IVR_PUBLIC_URL")
    result = runner.invoke(cli, ["sms", "send-pending"])
    assert result.exit_code == 1 and "IVR_CALL_FROM is set but IVR_PUBLIC_URL is not" in result.output


@pytest.mark.parametrize("value", ["37322555000", "+0123", "MG" + "0" * 32, "hello"])
def test_a_bad_call_from_setting_is_a_clear_error(monkeypatch, tmp_path, value):
    from ivr.config import ConfigError, load_config

    monkeypatch.setenv("IVR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("IVR_CALL_FROM", value)
    with pytest.raises(ConfigError, match="IVR_CALL_FROM must be a phone number"):
        load_config()


def test_the_callers_audio_is_streamed_to_a_person_not_to_a_machine(db, town, place, twilio, client, calling):
    calling.media_url, calling.speech_transport = "wss://ivr.example.org/voice/stream", "stream"
    queue(db)
    place()
    for number, answered_by, streamed in ((DUE, "human", True), (KYIV, "machine_start", False)):
        form, sid = placed_to(twilio, number)
        status, body = callee(client, form, sid).post(form["Url"], {"AnsweredBy": answered_by})
        stream = ET.fromstring(body).find("Start/Stream")
        assert status == 200 and (stream is not None and stream.get("url") == "wss://ivr.example.org/voice/stream"
                                  and stream.get("track") == "inbound_track") is streamed, body


def test_a_placed_call_to_a_number_erased_since_ends_politely(db, town, place, twilio, client, config):
    from ivr.ops.privacy import erase

    queue(db)
    place()
    form, sid = placed_to(twilio, DUE)
    erase(db, config.recordings_dir, DUE)
    db.commit()
    before = snapshot(db)
    prompt = callee(client, form, sid).answer(form["Url"])
    assert prompt.ended == "hangup" and prompt.texts == [
        "Vă mulțumim. Puteți transmite indicii oricând, sunându-ne sau printr-un mesaj SMS. La revedere."]
    assert snapshot(db) == before
