"""Reminders: who is reminded for a period (set-based planning), quiet hours, never twice, the
dry run's counts, and sending at the configured rate through ``FakeTwilioRest``."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from ivr.cli import cli
from ivr.prompts import Prompts
from ivr.sms.outbox import send_pending
from readings_store.models import Reading, SmsOptOut, SmsOutbox
from readings_store.sms import plan_reminders
from tests import factories as f
from tests.twilio_fake import FakeTwilioRest

pytestmark = pytest.mark.db

LANGS = {"373": "ro", "380": "uk", "7": "ru", "*": "en"}
# 12:00 in Chișinău (UTC+2 in November), inside the 20-25 window of the 2026-11 period.
NOON = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.timezone.utc)
PERIOD = "2026-11"


@pytest.fixture
def town(db):
    chi = f.region(db, code="CHI", menu_key=1, window=(20, 25))
    kyiv = f.region(db, code="KYI", name="Kyiv", menu_key=2, timezone="Europe/Kyiv", window=(20, 25))
    accounts = {
        "due": f.account(db, chi, number="1000001", phones=["+37369000001"]),
        "two_phones": f.account(db, chi, number="1000002", phones=["+37369000009", "+37369000002"]),
        "no_phone": f.account(db, chi, number="1000003"),
        "has_reading": f.account(db, chi, number="1000004", phones=["+37369000004"]),
        "opted_out": f.account(db, chi, number="1000005", phones=["+37369000005"]),
        "closed": f.account(db, chi, number="1000006", phones=["+37369000006"], active=False),
        "kyiv": f.account(db, kyiv, number="2000001", phones=["+380671234567"]),
    }
    meters = {name: f.meter(db, a, serial=f"EL{a.number}") for name, a in accounts.items()}
    db.add(Reading(meter_id=meters["has_reading"].id, register="total", value=Decimal(5), period=PERIOD,
                   taken_at=NOON, received_at=NOON, channel="sms", status="accepted"))
    db.add(SmsOptOut(phone="+37369000005", keyword="STOP"))
    db.commit()
    return accounts


def queued(db):
    db.expire_all()
    return {(r.account_id, r.to_number, r.language) for r in db.scalars(select(SmsOutbox).where(
        SmsOutbox.kind == "reminder"))}


def test_who_is_reminded(db, town):
    plan = plan_reminders(db, PERIOD, country_languages=LANGS, now=NOON)
    db.commit()
    assert plan.counts == {"CHI": 2, "KYI": 1} and plan.skipped == {}
    assert queued(db) == {(town["due"].id, "+37369000001", "ro"), (town["two_phones"].id, "+37369000002", "ro"),
                          (town["kyiv"].id, "+380671234567", "uk")}


def test_never_twice_for_a_period(db, town):
    plan_reminders(db, PERIOD, country_languages=LANGS, now=NOON)
    db.commit()
    again = plan_reminders(db, PERIOD, country_languages=LANGS, now=NOON + dt.timedelta(hours=2))
    db.commit()
    assert again.total == 0 and len(queued(db)) == 3
    # The database refuses a second reminder for an account and period even written directly.
    db.add(SmsOutbox(kind="reminder", to_number="+37369000001", language="ro", account_id=town["due"].id,
                     period=PERIOD, status="pending", attempts=0))
    with pytest.raises(Exception):
        db.commit()
    db.rollback()


def test_dry_run_counts_and_writes_nothing(db, town):
    plan = plan_reminders(db, PERIOD, country_languages=LANGS, region_code="KYI", dry_run=True, now=NOON)
    db.commit()
    assert plan.counts == {"KYI": 1} and queued(db) == set()


@pytest.mark.parametrize("hour_utc,skipped", [(19, {"CHI": "quiet hours", "KYI": "quiet hours"}),  # 21:00 local
                                              (6, {"CHI": "quiet hours", "KYI": "quiet hours"}),  # 08:00 local
                                              (7, {})])  # 09:00 local
def test_quiet_hours(db, town, hour_utc, skipped):
    plan = plan_reminders(db, PERIOD, country_languages=LANGS, now=NOON.replace(hour=hour_utc), dry_run=True)
    assert plan.skipped == skipped


def test_closed_window_is_skipped(db, town):
    plan = plan_reminders(db, PERIOD, country_languages=LANGS, now=NOON.replace(day=10), dry_run=True)
    assert plan.total == 0 and plan.skipped == {"CHI": "window closed", "KYI": "window closed"}


def test_sent_at_the_configured_rate_and_not_in_quiet_hours(db, town, config, sessions):
    plan_reminders(db, PERIOD, country_languages=LANGS, now=NOON)
    db.commit()
    config.sms_from, config.sms_rate_per_second = "+37322555000", 4
    fake, pauses = FakeTwilioRest(), []
    try:
        late = NOON.replace(hour=20)  # 22:00 in both regions: waits for the morning
        counts = send_pending(sessions, config, Prompts(), fake.client(), status_callback=None, now=late,
                              sleep=pauses.append)
        assert counts["deferred"] == 3 and fake.messages == []
        db.expire_all()
        assert {r.next_attempt_at for r in db.scalars(select(SmsOutbox))} == {
            dt.datetime(2026, 11, 23, 7, 0, tzinfo=dt.timezone.utc)}
        morning = dt.datetime(2026, 11, 23, 7, 30, tzinfo=dt.timezone.utc)
        counts = send_pending(sessions, config, Prompts(), fake.client(), status_callback=None, now=morning,
                              sleep=pauses.append)
        assert counts["sent"] == 3 and pauses == [0.25, 0.25]
        bodies = {m["To"]: m["Body"] for m in fake.messages}
        assert bodies["+37369000001"].startswith("Vă rugăm să transmiteți indicii") and "0001" in bodies["+37369000001"]
        assert bodies["+380671234567"].startswith("Будь ласка, передайте показання")
    finally:
        fake.close()


def test_remind_command(db, town, config, monkeypatch):
    monkeypatch.setenv("IVR_DATABASE_URL", config.database_url)
    runner = CliRunner()
    result = runner.invoke(cli, ["remind", "--period", "2026-13"])
    assert result.exit_code == 2 and "is not a period" in result.output
    result = runner.invoke(cli, ["remind", "--period", PERIOD, "--region", "NOPE", "--dry-run"])
    assert result.exit_code == 1 and "no region with code 'NOPE'" in result.output
    result = runner.invoke(cli, ["remind", "--period", PERIOD, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert queued(db) == set()
    # The command runs now: inside or outside quiet hours and the window, its report says which.
    assert "reminders for 2026-11" in result.output
