"""Twilio's webhooks (calls and texts) open no cookie session: their answers never set a cookie,
whatever cookie the request carries, and an operator's console session sent along is left as it
was (reading and re-signing a session cookie on every webhook cost CPU for nothing: Twilio keeps
no cookies)."""
from __future__ import annotations

from urllib.parse import urlsplit

from ivr.voice.simulator import SimulatedCall, Transport
from tests import factories as f
from tests.conftest import AUTH_TOKEN
from tests.console.helpers import login, make_operator
from tests.sms.test_sms_readings import post_sms


def test_webhooks_set_no_cookie_and_leave_the_console_session_alone(client, db):
    make_operator(db)
    account = f.account(db, f.region(db), number="100001")
    f.meter(db, account, previous=1000)
    db.commit()
    signed_in = login(client)
    assert signed_in.status_code == 302 and "session=" in signed_in.headers.get("Set-Cookie", "")
    cookie = client.get_cookie("session").value
    answers = []

    def post(url: str, params: dict, headers: dict) -> tuple[int, str]:
        parts = urlsplit(url)
        response = client.post(parts.path + (f"?{parts.query}" if parts.query else ""), data=params, headers=headers)
        answers.append(response)
        return response.status_code, response.get_data(as_text=True)

    call = SimulatedCall("http://localhost", AUTH_TOKEN, Transport(post), caller="+447700900123")
    call.start()
    call.press("4")
    call.press("100001#")
    call.press("1250#")
    assert "Reading saved." in call.press("1").texts
    call.hang_up()

    assert len(answers) == 6
    assert [a.status_code for a in answers] == [200] * 5 + [204]
    assert not [a.headers["Set-Cookie"] for a in answers if "Set-Cookie" in a.headers]
    assert not [a.headers["Vary"] for a in answers if "Cookie" in a.headers.get("Vary", "")]
    # The console session the client sent along is the same, and still signs the operator in.
    assert client.get_cookie("session").value == cookie
    page = client.get("/console/", follow_redirects=True)
    assert page.status_code == 200 and page.request.path != "/console/login", page.request.path


def test_a_text_sets_no_cookie_either(client, db):
    make_operator(db)
    db.commit()
    assert login(client).status_code == 302
    cookie = client.get_cookie("session").value
    answer = post_sms(client, "HELP")
    assert answer.status_code == 200 and answer.mimetype == "application/xml", answer.data
    assert "Set-Cookie" not in answer.headers and "Cookie" not in answer.headers.get("Vary", "")
    assert client.get_cookie("session").value == cookie
