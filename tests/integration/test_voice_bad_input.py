"""Bad requests to the voice webhooks: each gets a clear answer and writes nothing."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from readings_store.models import Call, Reading, ReviewTask
from tests import factories as f
from tests.conftest import AUTH_TOKEN

SID = "CA" + "b" * 32


def signed(client, path, params, token=AUTH_TOKEN, url=None):
    url = url or f"http://localhost{path}"
    sig = RequestValidator(token).compute_signature(url, params)
    return client.post(path, data=params, headers={"X-Twilio-Signature": sig})


def counts(db):
    db.expire_all()
    return tuple(db.scalar(select(func.count()).select_from(t)) for t in (Call, Reading, ReviewTask))


@pytest.fixture
def north(db):
    r = f.region(db, code="N", name="North", menu_key=1)
    a = f.account(db, r, number="100001")
    f.meter(db, a, previous=10)
    db.commit()
    return r


@pytest.mark.parametrize("path", ["/voice/incoming", "/voice/step/language?seq=1", "/voice/status", "/voice/fallback"])
def test_unsigned_request_is_refused(db, client, path):
    r = client.post(path, data={"CallSid": SID, "From": "+442079460000", "CallStatus": "completed"})
    assert r.status_code == 403
    assert counts(db) == (0, 0, 0)


def test_wrong_signature_and_wrong_token_refused(db, client):
    params = {"CallSid": SID, "From": "+442079460000"}
    r = client.post("/voice/incoming", data=params, headers={"X-Twilio-Signature": "bm90LWEtc2lnbmF0dXJl"})
    assert r.status_code == 403
    assert signed(client, "/voice/incoming", params, token="another-token").status_code == 403
    # signature made for other parameters than those sent
    sig = RequestValidator(AUTH_TOKEN).compute_signature("http://localhost/voice/incoming", {"CallSid": SID})
    r = client.post("/voice/incoming", data={**params, "Digits": "1"}, headers={"X-Twilio-Signature": sig})
    assert r.status_code == 403
    assert counts(db) == (0, 0, 0)


def test_no_auth_token_configured_refuses_everything(db, config, engine):
    from ivr.app import create_app

    config.twilio_auth_token = None
    client = create_app(config, engine=engine).test_client()
    assert signed(client, "/voice/incoming", {"CallSid": SID, "From": "+1"}).status_code == 403
    assert counts(db) == (0, 0, 0)


def test_missing_and_malformed_call_sid(db, client):
    r = signed(client, "/voice/incoming", {"From": "+442079460000"})
    assert r.status_code == 400 and b"missing parameter CallSid" in r.data
    r = signed(client, "/voice/incoming", {"CallSid": "'; DROP TABLE calls;--"})
    assert r.status_code == 400 and b"CallSid is malformed" in r.data
    assert counts(db) == (0, 0, 0)


def test_unknown_call_sid_gets_apology_and_nothing_written(db, client, north):
    before = counts(db)
    r = signed(client, "/voice/step/account?seq=3", {"CallSid": SID, "Digits": "100001"})
    assert r.status_code == 200 and b"<Hangup" in r.data
    assert signed(client, "/voice/status", {"CallSid": SID, "CallStatus": "completed"}).status_code == 204
    assert b"<Hangup" in signed(client, "/voice/fallback", {"CallSid": SID}).data
    assert counts(db) == before


def test_bad_seq_is_refused(db, client, phone, north):
    call = phone(caller="+442079460000")
    call.start()
    r = signed(client, "/voice/step/language?seq=abc", {"CallSid": call.call_sid, "Digits": "4"})
    assert r.status_code == 400 and b"seq" in r.data
    r = signed(client, "/voice/step/language", {"CallSid": call.call_sid, "Digits": "4"})
    assert r.status_code == 400


@pytest.mark.parametrize("caller", ["anonymous", "", "+266696687", "restricted", "not a number", "+1" + "9" * 40])
def test_withheld_or_invalid_caller_id_works(db, phone, north, caller):
    call = phone(caller=caller)
    p = call.start()
    assert "For English, press 4." in p.texts
    c = db.scalars(select(Call)).one()
    assert c.from_number is None and c.language == "en"
    p = call.press("")
    assert any("personal account" in t for t in p.texts)  # one region: asked straight away


@pytest.mark.parametrize("digits", ["abc", "1" * 500, "12;DROP", "١٢٣"])
def test_garbage_digits_are_asked_again(db, phone, north, digits):
    before = counts(db)[1:]
    call = phone(caller="+442079460000")
    call.start()
    call.press("4")
    p = call.press(digits + "#")
    assert "That is not a valid number." in p.texts
    assert any("personal account" in t for t in p.texts)
    assert counts(db)[1:] == before


def test_oversized_body_refused(db, client):
    r = client.post("/voice/incoming", data={"CallSid": SID, "Junk": "x" * (17 * 1024 * 1024)})
    assert r.status_code in (403, 413)
    assert counts(db) == (0, 0, 0)


def test_repeated_incoming_does_not_create_second_call(db, client, north):
    params = {"CallSid": SID, "From": "+442079460000"}
    first = signed(client, "/voice/incoming", params)
    second = signed(client, "/voice/incoming", params)
    assert first.data == second.data
    assert counts(db)[0] == 1


def test_proxy_headers_are_trusted_only_when_configured(db, config, engine):
    from ivr.app import create_app

    params = {"CallSid": SID, "From": "+442079460000"}
    public = "https://ivr.example.org/voice/incoming"
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "ivr.example.org",
               "X-Twilio-Signature": RequestValidator(AUTH_TOKEN).compute_signature(public, params)}
    plain = create_app(config, engine=engine).test_client()
    assert plain.post("/voice/incoming", data=params, headers=headers).status_code == 403
    config.trust_proxy = True
    proxied = create_app(config, engine=engine).test_client()
    assert proxied.post("/voice/incoming", data=params, headers=headers).status_code == 200
