"""Receipts: a call that saved readings ends, one SMS goes to a mobile caller through the outbox,
sent by the real ``twilio.rest.Client`` to ``FakeTwilioRest``; Twilio's status callback is kept."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from ivr.prompts import Prompts
from ivr.sms.outbox import send_pending
from readings_store import sms as sms_store
from readings_store.models import SmsOptOut, SmsOutbox, utcnow
from tests.conftest import AUTH_TOKEN
from tests.integration.test_voice_calls import records  # noqa: F401 - a fixture
from tests.twilio_fake import FakeTwilioRest

pytestmark = pytest.mark.db

MOBILE_MD = "+37369000001"
LANDLINE_UK = "+442079460000"
STATUS_URL = "https://ivr.example.org/sms/status"


@pytest.fixture
def twilio():
    fake = FakeTwilioRest()
    yield fake
    fake.close()


@pytest.fixture
def sending(config, sessions, twilio):
    config.sms_from = "+37322555000"

    def send(now=None):
        return send_pending(sessions, config, Prompts(config.prompts_dir), twilio.client(),
                            status_callback=STATUS_URL, now=now)
    return send


def call_and_save(phone, caller: str, *, save: bool = True):
    call = phone(caller=caller)
    call.start()
    call.press("")  # the language of the caller ID
    call.press("1")  # region North
    call.press("100001#")
    if save:
        call.press("1100*5#")
        call.press("1")  # confirmed: saved
        call.press("3")  # finish
    call.hang_up()  # without saving: the caller hangs up at the value question
    return call


def outbox(db):
    db.expire_all()
    return list(db.scalars(select(SmsOutbox).order_by(SmsOutbox.id)))


def test_receipt_after_a_call_that_saved_a_reading(db, records, phone, client, sending, twilio):
    call = call_and_save(phone, MOBILE_MD)
    call.hang_up()  # Twilio may repeat the final callback: still one receipt
    (row,) = outbox(db)
    assert (row.kind, row.to_number, row.language, row.status) == ("receipt", MOBILE_MD, "ro", "pending")
    assert sending() == {"sent": 1, "retry": 0, "failed": 0, "cancelled": 0, "deferred": 0}
    (sent,) = twilio.messages
    assert (sent["To"], sent["From"], sent["StatusCallback"]) == (MOBILE_MD, "+37322555000", STATUS_URL)
    assert sent["Body"].splitlines() == ["Indicii transmiși în timpul apelului.", "Contul care se termină cu 0001.",
                                         "energie electrică: 1100.5. Acceptat."]
    (row,) = outbox(db)
    assert row.status == "sent" and row.message_sid.startswith("SM") and row.body == sent["Body"]
    assert sending() == {"sent": 0, "retry": 0, "failed": 0, "cancelled": 0, "deferred": 0}  # never twice
    # Twilio reports delivery, signed.
    params = {"MessageSid": row.message_sid, "MessageStatus": "delivered", "AccountSid": "AC" + "0" * 32,
              "From": "+37322555000", "To": MOBILE_MD}
    sig = RequestValidator(AUTH_TOKEN).compute_signature("http://localhost/sms/status", params)
    assert client.post("/sms/status", data=params, headers={"X-Twilio-Signature": sig}).status_code == 204
    assert outbox(db)[0].status == "delivered"
    params["MessageStatus"] = "sent"  # a late callback for an earlier state changes nothing
    sig = RequestValidator(AUTH_TOKEN).compute_signature("http://localhost/sms/status", params)
    assert client.post("/sms/status", data=params, headers={"X-Twilio-Signature": sig}).status_code == 204
    assert outbox(db)[0].status == "delivered"
    params["MessageStatus"] = "failed"
    assert client.post("/sms/status", data=params).status_code == 403  # unsigned: ignored
    assert outbox(db)[0].status == "delivered"


def test_no_receipt_for_a_landline_an_opted_out_number_or_a_call_without_readings(db, records, phone):
    call_and_save(phone, LANDLINE_UK)
    call_and_save(phone, "+37369000002", save=False)
    db.add(SmsOptOut(phone="+37369000003", keyword="STOP"))
    db.commit()
    call_and_save(phone, "+37369000003")
    assert outbox(db) == []


def test_failed_sends_are_retried_later_and_never_affect_the_call(db, records, phone, sending, twilio):
    call = call_and_save(phone, MOBILE_MD)
    assert call.last.ended == "hangup"
    twilio.fail_messages = 1
    assert sending()["retry"] == 1
    (row,) = outbox(db)
    assert (row.status, row.attempts) == ("pending", 1) and row.error.startswith("TwilioRestException")
    assert row.next_attempt_at > utcnow()
    assert sending()["sent"] == 0  # not due yet
    assert sending(now=utcnow() + dt.timedelta(minutes=2))["sent"] == 1
    assert len(twilio.messages) == 1


def test_gives_up_after_the_last_attempt(db, records, phone, sending, twilio):
    call_and_save(phone, MOBILE_MD)
    twilio.fail_messages = sms_store.MAX_ATTEMPTS
    now = utcnow()
    for _ in range(sms_store.MAX_ATTEMPTS):
        now += dt.timedelta(hours=7)
        sending(now=now)
    (row,) = outbox(db)
    assert (row.status, row.attempts) == ("failed", sms_store.MAX_ATTEMPTS)
    assert twilio.messages == []


def test_opted_out_after_the_call_is_not_sent(db, records, phone, sending, twilio):
    call_and_save(phone, MOBILE_MD)
    db.add(SmsOptOut(phone=MOBILE_MD, keyword="STOP"))
    db.commit()
    assert sending()["cancelled"] == 1
    assert twilio.messages == [] and outbox(db)[0].status == "cancelled"


def test_send_pending_needs_a_sender_number(config, sessions, twilio):
    config.sms_from = None
    with pytest.raises(ValueError, match="IVR_SMS_FROM"):
        send_pending(sessions, config, Prompts(), twilio.client(), status_callback=None)
    assert db_count_is_zero(sessions)


def db_count_is_zero(sessions) -> bool:
    with sessions() as db:
        return db.scalar(select(func.count()).select_from(SmsOutbox)) == 0


@pytest.mark.parametrize("value", ["37322555000", "+0123", "MG123", "hello"])
def test_a_bad_sender_setting_is_a_clear_error(monkeypatch, tmp_path, value):
    from ivr.config import ConfigError, load_config

    monkeypatch.setenv("IVR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("IVR_SMS_FROM", value)
    with pytest.raises(ConfigError, match="IVR_SMS_FROM must be a phone number in E.164 form"):
        load_config()


# --- what a receipt says: the call's readings as they stand when it is sent ----------------------------

def test_a_reading_replaced_before_the_receipt_goes_is_reported_as_replaced(db, records, phone, sending, twilio):
    """The caller's reading was replaced (here by a later reading from billing) before the receipt
    was sent: the receipt still reports it, as replaced, instead of going out empty."""
    from decimal import Decimal

    from readings_store import service
    from readings_store.models import Meter

    call_and_save(phone, MOBILE_MD)
    meter = db.scalars(select(Meter).where(Meter.serial == "EL000123")).one()
    service.store_reading(db, meter, "total", Decimal("1101"), channel="api")
    db.commit()
    assert sending()["sent"] == 1
    assert twilio.messages[0]["Body"].splitlines() == [
        "Indicii transmiși în timpul apelului.", "Contul care se termină cu 0001.",
        "energie electrică: 1100.5. Înlocuit cu un indice transmis ulterior."]


def _call_with_readings(db, caller: str, language: str):
    """A finished call on account 200-02 in which the caller gave: day 5100 then, correcting
    it in the same call, 5101; night 6000, left for review; cold water 12.5, accepted, then
    corrected by an operator; and a reading of the same account made later by the API."""
    from decimal import Decimal

    from readings_store import service
    from readings_store.models import Call, Meter

    day_night = db.scalars(select(Meter).where(Meter.serial == "EL000777")).one()
    water = db.scalars(select(Meter).where(Meter.serial == "CW000888")).one()
    call = Call(call_sid="CA" + "7" * 32, from_number=caller, language=language, account_id=day_night.account_id,
                outcome="completed", steps=[])
    db.add(call)
    db.flush()
    given = [(day_night, "day", "5100", "accepted", "phone_keypad"), (day_night, "day", "5101", "accepted", "phone_keypad"),
             (day_night, "night", "6000", "pending_review", "phone_speech"),
             (water, "total", "12.5", "accepted", "phone_speech")]
    for meter, register, value, status, channel in given:
        service.store_reading(db, meter, register, Decimal(value), channel=channel, status=status,
                              reason="low_confidence" if status != "accepted" else None, call_id=call.id)
    # An operator's correction is stored with the call too, but it is not what the caller gave.
    service.store_reading(db, water, "total", Decimal("12.75"), channel="operator", call_id=call.id)
    call.ended_at = utcnow()
    sms_store.queue_receipt(db, call, language)
    db.commit()
    return call


def test_a_receipt_lists_each_reading_the_caller_gave_as_it_stands(db, records, sending, twilio):
    _call_with_readings(db, "+447911123456", "en")
    assert sending()["sent"] == 1
    assert twilio.messages[0]["Body"].splitlines() == [
        "Readings received in your call.",
        "Account ending 0002.",
        "electricity, day: 5101. Accepted.",
        "electricity, night: 6000. We will check it.",
        "cold water: 12.5. Replaced by a later reading.",
    ]


def test_nothing_to_report_sends_nothing(db, records, sending, twilio):
    """A receipt whose call has no reading of the caller's left to report is not sent at all."""
    from readings_store.models import Call, Reading

    call = _call_with_readings(db, "+447911123456", "en")
    for reading in db.scalars(select(Reading).where(Reading.call_id == call.id, Reading.channel.like("phone%"))):
        reading.call_id = None  # as if the call's readings were moved off it
    db.commit()
    assert sending() == {"sent": 0, "retry": 0, "failed": 0, "cancelled": 1, "deferred": 0}
    assert twilio.messages == []
    (row,) = outbox(db)
    assert (row.status, row.error, row.body) == ("cancelled", "nothing to report", None)
    assert db.get(Call, call.id) is not None
