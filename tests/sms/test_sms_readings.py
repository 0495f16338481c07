"""The SMS line: signed Twilio messaging webhooks in, readings stored by the phone line's rules,
TwiML <Message> replies in the sender's language."""
from __future__ import annotations

import datetime as dt
import uuid
import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from readings_store.models import Reading, SmsMessage, SmsOptOut, ValueRefusal, utcnow
from tests import factories
from tests.conftest import AUTH_TOKEN

pytestmark = pytest.mark.db

TWILIO_NUMBER = "+37322555000"
ACCOUNT_SID = "AC" + "0" * 32


def sms_params(body: str, sender: str = "+37369123456", sid: str | None = None) -> dict:
    """The form Twilio posts for an incoming text (the parameters the line reads, and some more)."""
    return {"ToCountry": "MD", "SmsMessageSid": sid, "NumMedia": "0", "FromCountry": "MD", "SmsSid": sid,
            "MessageSid": sid or "SM" + uuid.uuid4().hex, "AccountSid": ACCOUNT_SID, "From": sender,
            "To": TWILIO_NUMBER, "Body": body, "NumSegments": "1", "SmsStatus": "received", "ApiVersion": "2010-04-01"}


def post_sms(client, body: str, sender: str = "+37369123456", sid: str | None = None, *, sign: bool = True):
    params = sms_params(body, sender, sid)
    params["SmsMessageSid"] = params["SmsSid"] = params["MessageSid"]
    headers = {}
    if sign:
        headers["X-Twilio-Signature"] = RequestValidator(AUTH_TOKEN).compute_signature(
            "http://localhost/sms/incoming", params)
    return client.post("/sms/incoming", data=params, headers=headers)


def message_text(response) -> str | None:
    assert response.status_code == 200, response.data
    assert response.mimetype == "application/xml"
    root = ET.fromstring(response.data)
    assert root.tag == "Response"
    messages = root.findall("Message")
    assert len(messages) <= 1
    return messages[0].text if messages else None


@pytest.fixture
def home(db):
    region = factories.region(db)
    account = factories.account(db, region, number="1000003")
    power = factories.meter(db, account, serial="EL0001", utility="electricity", registers=2, previous=1000)
    gas = factories.meter(db, account, serial="GS0001", utility="gas", registers=1, decimals=3, previous=500)
    db.commit()
    return account, power, gas


def readings(db, meter, channel="sms"):
    db.expire_all()
    return list(db.scalars(select(Reading).where(Reading.meter_id == meter.id, Reading.channel == channel)
                           .order_by(Reading.id)))


def test_values_in_menu_order_are_stored(client, db, home):
    account, power, gas = home
    text = message_text(post_sms(client, "1000003 1010,5 1005 510.25"))
    day, night = readings(db, power)
    assert (day.register, day.value, day.status) == ("day", Decimal("1010.5"), "accepted")
    assert (night.register, night.value, night.status) == ("night", Decimal("1005"), "accepted")
    (g,) = readings(db, gas)
    assert (g.value, g.status) == (Decimal("510.25"), "accepted")
    # Moldovan number: the reply is in Romanian, one line per value.
    assert text.splitlines() == ["Contul care se termină cu 0003.", "energie electrică, zi: 1010.5. Acceptat.",
                                 "energie electrică, noapte: 1005. Acceptat.", "gaze: 510.25. Acceptat."]


def test_fewer_values_than_registers(client, db, home):
    account, power, gas = home
    text = message_text(post_sms(client, "1000003 1001", sender="+380671234567"))
    assert [r.register for r in readings(db, power)] == ["day"]
    assert readings(db, gas) == []
    assert "Прийнято." in text and "0003" in text  # Ukrainian number, Ukrainian reply


def test_refused_value_gives_the_reason_and_counts(client, db, home):
    account, power, gas = home
    text = message_text(post_sms(client, "1000003 900 1002", sender="+79161234567"))
    lines = text.splitlines()
    assert lines[1].endswith("Показание меньше предыдущего.") or "меньше" in lines[1]
    assert lines[2].endswith("Принято.")
    assert [r.register for r in readings(db, power)] == ["night"]
    (refusal,) = db.scalars(select(ValueRefusal)).all()
    assert (refusal.code, refusal.value, refusal.caller, refusal.call_id) == ("below_previous", "900", "+79161234567", None)


def test_too_many_digits_is_refused_and_not_stored(client, db, home):
    text = message_text(post_sms(client, "1000003 12345678", sender="+447700900123"))
    assert "more digits than the meter shows" in text
    assert db.scalar(select(func.count()).select_from(Reading).where(Reading.channel == "sms")) == 0


def test_past_the_refusal_limit_every_value_goes_to_review(client, db, home, app):
    account, power, gas = home
    app.extensions["ivr"].config.probe_limit = 2
    for _ in range(2):
        assert "lower than the previous" in message_text(post_sms(client, "1000003 10", sender="+447700900123"))
    text = message_text(post_sms(client, "1000003 10", sender="+447700900123"))
    assert "We will check it." in text and "lower" not in text
    (r,) = readings(db, power)
    assert (r.status, r.status_reason) == ("pending_review", "repeated_refusals")


def test_replacing_another_numbers_reading_goes_to_review(client, db, home):
    account, power, gas = home
    message_text(post_sms(client, "1000003 1001", sender="+447700900123"))
    text = message_text(post_sms(client, "1000003 1002", sender="+447700900999"))
    first, second = readings(db, power)
    assert first.status == "accepted"  # kept until an operator decides
    assert (second.status, second.status_reason) == ("pending_review", "replaces_other_caller")
    assert "We will check it." in text


def test_the_same_number_may_correct_its_own_text(client, db, home):
    account, power, gas = home
    message_text(post_sms(client, "1000003 1001", sender="+447700900123"))
    text = message_text(post_sms(client, "1000003 1002", sender="+447700900123"))
    first, second = readings(db, power)
    # The first was never exported: billing never sees it, so nothing is named.
    assert (first.status, second.status, second.supersedes_id) == ("superseded", "accepted", None)
    assert "Accepted." in text


def test_repeated_webhook_stores_once_and_replies_the_same(client, db, home):
    account, power, gas = home
    sid = "SM" + "a" * 32
    first = message_text(post_sms(client, "1000003 1001", sid=sid))
    again = message_text(post_sms(client, "1000003 1001", sid=sid))
    assert first == again
    assert len(readings(db, power)) == 1
    assert db.scalar(select(func.count()).select_from(SmsMessage)) == 1


@pytest.mark.parametrize("body", ["hello", "1000003", "1000003 12a45", "1000003 1,2,3", ""])
def test_unknown_format_gets_help_and_stores_nothing(client, db, home, body):
    text = message_text(post_sms(client, body, sender="+447700900123"))
    assert text.startswith("To send meter readings, text your account number")
    assert db.scalar(select(func.count()).select_from(Reading).where(Reading.channel == "sms")) == 0


def test_unknown_account(client, db, home):
    text = message_text(post_sms(client, "999999 1001", sender="+447700900123"))
    assert text == "We could not find this account number. Please check it and send it again."


def test_more_values_than_registers(client, db, home):
    text = message_text(post_sms(client, "1000003 1 2 3 4", sender="+447700900123"))
    assert text == "Your account has 3 readings to give; your message has more values."
    assert db.scalar(select(func.count()).select_from(Reading).where(Reading.channel == "sms")) == 0


def test_unsigned_or_badly_signed_is_refused(client, db, home):
    assert post_sms(client, "1000003 1001", sign=False).status_code == 403
    params = sms_params("1000003 1001")
    params["SmsMessageSid"] = params["SmsSid"] = params["MessageSid"]
    sig = RequestValidator(AUTH_TOKEN).compute_signature("http://localhost/sms/incoming", params)
    params["Body"] = "1000003 9999"  # changed after signing
    assert client.post("/sms/incoming", data=params, headers={"X-Twilio-Signature": sig}).status_code == 403
    assert db.scalar(select(func.count()).select_from(SmsMessage)) == 0


def test_malformed_sid_or_sender_is_a_clear_400(client, db, home):
    assert post_sms(client, "1000003 1001", sid="nonsense").status_code == 400
    assert post_sms(client, "1000003 1001", sender="anonymous").status_code == 400
    assert db.scalar(select(func.count()).select_from(SmsMessage)) == 0


@pytest.mark.parametrize("stop,start,sender,said", [
    ("STOP", "START", "+447700900123", "no more messages"),
    ("стоп", "Старт", "+79161234567", "больше не будете"),
    ("СТОП", "СТАРТ", "+380671234567", "більше не отримуватимете"),
    ("Stop", "start", "+37369123456", "Nu veți mai primi"),
])
def test_stop_and_start_per_number(client, db, home, stop, start, sender, said):
    assert said in message_text(post_sms(client, stop, sender=sender))
    assert db.scalars(select(SmsOptOut.phone)).all() == [sender]
    message_text(post_sms(client, stop, sender=sender))  # twice: still one row
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(SmsOptOut)) == 1
    message_text(post_sms(client, start, sender=sender))
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(SmsOptOut)) == 0


@pytest.mark.parametrize("word,sender,start", [
    ("HELP", "+447700900123", "To send meter readings"), ("AJUTOR", "+37369123456", "Pentru a transmite"),
    ("помощь", "+79161234567", "Чтобы передать"), ("ДОПОМОГА", "+380671234567", "Щоб передати")])
def test_help_keywords(client, home, word, sender, start):
    assert message_text(post_sms(client, word, sender=sender)).startswith(start)


def test_throttled_after_the_hourly_limit(client, db, home, app):
    app.extensions["ivr"].config.sms_per_hour = 3
    for _ in range(3):
        assert message_text(post_sms(client, "hello", sender="+447700900123"))
    assert message_text(post_sms(client, "1000003 1001", sender="+447700900123")) is None
    assert db.scalar(select(func.count()).select_from(Reading).where(Reading.channel == "sms")) == 0
    # Another number is not affected; STOP and START are honoured even when throttled, unanswered.
    assert message_text(post_sms(client, "1000003 1001", sender="+447700900999"))
    assert message_text(post_sms(client, "STOP", sender="+447700900123")) is None
    db.expire_all()
    assert db.scalars(select(SmsOptOut.phone)).all() == ["+447700900123"]
    assert message_text(post_sms(client, "START", sender="+447700900123")) is None
    db.expire_all()
    assert db.scalars(select(SmsOptOut.phone)).all() == []
    # An hour later the number may text again.
    db.expire_all()
    for row in db.scalars(select(SmsMessage).where(SmsMessage.from_number == "+447700900123")):
        row.received_at = utcnow() - dt.timedelta(hours=1, minutes=1)
    db.commit()
    assert message_text(post_sms(client, "1000003 1002", sender="+447700900123"))
