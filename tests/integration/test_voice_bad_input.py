"""Bad requests to the voice webhooks: each gets a clear answer and writes nothing."""
from __future__ import annotations

import logging

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
    assert "English — press 4." in p.texts
    c = db.scalars(select(Call)).one()
    assert c.from_number is None and c.language == "en"
    p = call.press("")
    assert any("account number" in t for t in p.texts)  # one region: asked straight away


@pytest.mark.parametrize("digits", ["abc", "1" * 500, "12;DROP", "١٢٣"])
def test_garbage_digits_are_asked_again(db, phone, north, digits):
    before = counts(db)[1:]
    call = phone(caller="+442079460000")
    call.start()
    call.press("4")
    p = call.press(digits + "#")
    assert "That is not a valid number." in p.texts
    assert any("account number" in t for t in p.texts)
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


# --- odd but signed input: 400 or ignored, the same on SQLite and PostgreSQL --------------------

def _started(phone, north):
    call = phone(caller="+442079460000")
    call.start()
    return call


@pytest.mark.parametrize("path,field", [
    ("/voice/incoming", "From"),
    ("/voice/step/language?seq=1", "Digits"),
    ("/voice/step/language?seq=1", "SpeechResult"),
    ("/voice/status", "CallStatus"),
    ("/voice/recording-status", "RecordingUrl"),
])
def test_nul_byte_in_a_field_is_refused(db, client, phone, north, path, field):
    call = _started(phone, north) if path != "/voice/incoming" else None
    sid = call.call_sid if call else SID
    params = {"CallSid": sid, "From": "+442079460000", "CallStatus": "completed", "RecordingSid": "RE" + "1" * 32,
              "RecordingStatus": "completed", "RecordingUrl": "https://api.twilio.com/x"}
    params[field] = "4\x00" if field in ("Digits", "SpeechResult") else params[field] + "\x00x"
    before = counts(db)
    r = signed(client, path, params)
    assert r.status_code == 400 and b"NUL" in r.data
    assert counts(db) == before
    if call:
        db.expire_all()
        c = db.scalars(select(Call)).one()
        assert c.seq == 1 and c.twilio_status is None and c.ended_at is None


def test_nul_byte_in_the_path_or_query_is_refused(db, client, phone, north):
    call = _started(phone, north)
    assert signed(client, "/voice/step/lang%00uage?seq=1", {"CallSid": call.call_sid, "Digits": "4"},
                  url="http://localhost/voice/step/lang%00uage?seq=1").status_code == 400
    assert signed(client, "/voice/step/language?seq=1&x=%00", {"CallSid": call.call_sid, "Digits": "4"},
                  url="http://localhost/voice/step/language?seq=1&x=%00").status_code == 400
    db.expire_all()
    assert db.scalars(select(Call)).one().seq == 1


@pytest.mark.parametrize("seq", [str(2**31), "99999999999999999999", "-1", "0", "+2", " 2", "²", "٢", "1_0"])
def test_seq_out_of_range_or_not_plain_digits_is_refused(db, client, phone, north, seq):
    call = _started(phone, north)
    path = f"/voice/step/language?seq={seq}"
    from urllib.parse import quote

    quoted = f"/voice/step/language?seq={quote(seq)}"
    with client.application.test_request_context(quoted, method="POST") as ctx:
        url = ctx.request.url  # signed as the app reconstructs the URL
    r = signed(client, quoted, {"CallSid": call.call_sid, "Digits": "4"}, url=url)
    assert r.status_code == 400 and b"seq" in r.data, path
    db.expire_all()
    assert db.scalars(select(Call)).one().seq == 1


@pytest.mark.parametrize("duration", ["²", "12345678901234567890", "-5", "1e3", "٣"])
def test_odd_call_duration_is_ignored(db, client, phone, north, duration):
    call = _started(phone, north)
    r = signed(client, "/voice/status", {"CallSid": call.call_sid, "CallStatus": "completed",
                                         "CallDuration": duration})
    assert r.status_code == 204
    db.expire_all()
    c = db.scalars(select(Call)).one()
    assert c.twilio_status == "completed" and c.ended_at is not None and c.duration_seconds is None


def test_plain_call_duration_is_kept(db, client, phone, north):
    call = _started(phone, north)
    assert call.hang_up(duration=42) == 204
    db.expire_all()
    assert db.scalars(select(Call)).one().duration_seconds == 42


def test_sids_with_a_trailing_newline_are_refused(db, client, phone, north):
    before = counts(db)
    r = signed(client, "/voice/incoming", {"CallSid": SID + "\n", "From": "+442079460000"})
    assert r.status_code == 400 and b"CallSid is malformed" in r.data
    assert counts(db) == before
    call = _started(phone, north)
    r = signed(client, "/voice/recording-status", {"CallSid": call.call_sid, "RecordingSid": "RE" + "1" * 32 + "\n",
                                                   "RecordingStatus": "completed",
                                                   "RecordingUrl": "https://api.twilio.com/x"})
    assert r.status_code == 400 and b"RecordingSid is malformed" in r.data
    from ivr.voice import webhooks as voice

    assert voice._SID.fullmatch(SID) and not voice._SID.fullmatch(SID + "\n")  # noqa: SLF001
    with client.application.test_request_context(method="POST", data={"RecordingSid": "RE" + "1" * 32 + "\n"}):
        assert voice._recording_sid() is None  # noqa: SLF001 - what the step would store


# --- log lines cannot be forged -----------------------------------------------------------------

def _one_line_each(caplog):
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("ivr")]
    assert messages
    for message in messages:
        assert "\n" not in message and "\r" not in message, message
    return messages


def test_newline_in_the_step_path_does_not_forge_a_log_line(db, client, caplog):
    with caplog.at_level(logging.INFO):
        r = client.post("/voice/step/x%0aFORGED%0d%0aALSO?seq=1", data={"CallSid": SID})
    assert r.status_code == 403
    messages = _one_line_each(caplog)
    assert any("x\\x0aFORGED\\x0d\\x0aALSO" in m for m in messages), messages
    assert not any(m.startswith(("FORGED", "ALSO")) for m in "\n".join(messages).splitlines()[1:])


def test_newline_in_signed_fields_does_not_forge_a_log_line(db, client, phone, north, caplog):
    with caplog.at_level(logging.INFO):
        signed(client, "/voice/fallback", {"CallSid": SID, "ErrorCode": "11200\nFORGED",
                                           "ErrorUrl": "https://x/\r\nFORGED"})
        signed(client, "/voice/step/x%0aFORGED?seq=1", {"CallSid": SID, "Digits": "1"},
               url="http://localhost/voice/step/x%0aFORGED?seq=1")
    _one_line_each(caplog)


def test_escape_helper():
    from ivr.logsafe import escape

    assert escape("a\nb\r\x00\x1b[31m\u2028é ы") == "a\\x0ab\\x0d\\x00\\x1b[31m\\u2028é ы"
    assert escape(12) == "12"
