"""Console sessions end on the server; log-in throttling per name and source address, atomic under
parallel guesses; the session cookie is Secure over https."""
from __future__ import annotations

import threading

import pytest
import requests
from sqlalchemy import func, select
from werkzeug.serving import make_server

from ivr.app import create_app
from ivr.console import auth
from readings_store.models import ConsoleSession, LoginAttempt

from .helpers import PASSWORD, csrf_from, login

COOKIE = "session"


def _from(client, ip: str):
    client.environ_base["REMOTE_ADDR"] = ip
    return client


def _error(response) -> str:
    """The error paragraph of the log-in page."""
    html = response.get_data(as_text=True)
    start = html.index('role="alert">') + len('role="alert">')
    return html[start:html.index("</p>", start)]


# --- log-out ends the session on the server -------------------------------------------------------

def test_saved_cookie_is_refused_after_logout(client, operator, db):
    assert login(client).status_code == 302
    saved = client.get_cookie(COOKIE).value
    page = client.get("/console/queue")
    assert page.status_code == 200
    assert client.post("/console/logout", data={"csrf_token": csrf_from(page.get_data(as_text=True))}).status_code == 302
    # Replay the cookie saved while logged in: the server has ended that session.
    client.set_cookie(COOKIE, saved)
    replay = client.get("/console/queue")
    assert replay.status_code == 302 and replay.headers["Location"].startswith("/console/login")
    db.expire_all()
    row = db.scalars(select(ConsoleSession)).one()
    assert row.ended_at is not None


def test_saved_cookie_is_refused_after_idle_expiry(app, client, operator, monkeypatch):
    assert login(client).status_code == 302
    saved = client.get_cookie(COOKIE).value
    start = auth.now()
    monkeypatch.setattr(auth, "now", lambda: start + auth.dt.timedelta(minutes=31))
    assert client.get("/console/queue").status_code == 302  # expired, ended on the server
    monkeypatch.setattr(auth, "now", lambda: start)
    client.set_cookie(COOKIE, saved)
    assert client.get("/console/queue").status_code == 302


def test_a_session_is_only_as_good_as_its_server_row(client, operator, db):
    assert login(client).status_code == 302
    db.execute(ConsoleSession.__table__.delete())
    db.commit()
    assert client.get("/console/queue").status_code == 302


# --- throttling per name and address --------------------------------------------------------------

def test_failures_from_one_address_do_not_lock_the_name_for_everyone(app, operator):
    attacker = _from(app.test_client(), "203.0.113.9")
    for _ in range(auth.MAX_FAILURES):
        login(attacker, password="wrong-password")
    paused = login(attacker)
    assert paused.status_code == 429  # paused for that address, even with the right password
    assert paused.headers["Retry-After"] == "900" and "Try again in 15 minute(s)" in _error(paused)
    owner = _from(app.test_client(), "198.51.100.7")
    assert login(owner).status_code == 302  # the operator, from elsewhere, gets in
    assert owner.get("/console/queue").status_code == 200


def test_unknown_name_gets_the_same_lock_answer_as_a_known_one(app, operator):
    known, unknown = _from(app.test_client(), "203.0.113.1"), _from(app.test_client(), "203.0.113.2")
    answers = []
    for client, name in ((known, "olga"), (unknown, "nobody-here")):
        for _ in range(auth.MAX_FAILURES - 1):
            r = login(client, username=name, password="wrong-password")
            assert r.status_code == 401 and _error(r) == "Wrong name or password."
        fifth = login(client, username=name, password="wrong-password")
        sixth = login(client, username=name, password="wrong-password")
        answers.append([(r.status_code, _error(r), r.headers.get("Retry-After")) for r in (fifth, sixth)])
    assert answers[0] == answers[1]
    assert answers[0][0][0] == 429 and "Too many failed log-ins" in answers[0][0][1]


def test_one_address_guessing_many_names_is_paused(app, operator):
    sprayer = _from(app.test_client(), "203.0.113.50")
    for i in range(auth.MAX_FAILURES_PER_ADDRESS):
        login(sprayer, username=f"name{i % 10}", password="wrong-password")
    assert login(sprayer).status_code == 429  # even a name it never tried, with the right password
    assert login(_from(app.test_client(), "203.0.113.51")).status_code == 302


def test_forwarded_for_is_ignored_unless_the_proxy_is_trusted(config, engine, operator):
    plain = create_app(config, engine=engine).test_client()
    for i in range(auth.MAX_FAILURES):
        plain.environ_base["HTTP_X_FORWARDED_FOR"] = f"192.0.2.{i}"  # a client cannot pick its address
        login(plain, password="wrong-password")
    plain.environ_base["HTTP_X_FORWARDED_FOR"] = "192.0.2.200"
    assert login(plain).status_code == 429

    config.trust_proxy = True
    proxied = create_app(config, engine=engine).test_client()
    proxied.environ_base["HTTP_X_FORWARDED_FOR"] = "192.0.2.77"
    for _ in range(auth.MAX_FAILURES):
        login(proxied, password="wrong-password")
    assert login(proxied).status_code == 429
    proxied.environ_base["HTTP_X_FORWARDED_FOR"] = "192.0.2.78"  # another client behind the same proxy
    assert login(proxied).status_code == 302


def test_nul_in_the_name_is_refused_and_writes_nothing(client, operator, db):
    response = login(client, username="olga\x00")  # refused before the view (ivr.app.refuse_nul)
    assert response.status_code == 400
    assert db.scalar(select(func.count()).select_from(LoginAttempt)) == 0


def test_parallel_burst_gets_no_more_guesses_than_the_limit(config, engine, operator, monkeypatch):
    """20 simultaneous wrong passwords against a real threaded server: at most MAX_FAILURES of them
    reach the password check (counted on the operator's real hash)."""
    app = create_app(config, engine=engine)
    app.config["WTF_CSRF_ENABLED"] = False
    real_hash = operator.password_hash
    checked, lock = [], threading.Lock()
    original = auth.check_password_hash

    def counting(pwhash, password):
        if pwhash == real_hash:
            with lock:
                checked.append(password)
        return original(pwhash, password)

    monkeypatch.setattr(auth, "check_password_hash", counting)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/console/login"
    burst = 20
    barrier = threading.Barrier(burst)
    statuses = []

    def guess(i):
        barrier.wait()
        r = requests.post(url, data={"username": "olga", "password": f"guess-{i}"}, allow_redirects=False, timeout=60)
        with lock:
            statuses.append(r.status_code)

    try:
        workers = [threading.Thread(target=guess, args=(i,)) for i in range(burst)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    finally:
        server.shutdown()
        thread.join()
    assert len(statuses) == burst and set(statuses) <= {401, 429}
    assert len(checked) <= auth.MAX_FAILURES, f"{len(checked)} guesses were checked"
    assert statuses.count(429) >= burst - auth.MAX_FAILURES


# --- Secure cookie --------------------------------------------------------------------------------

def _login_cookie(client, base_url: str, headers: dict | None = None) -> str:
    page = client.get("/console/login", base_url=base_url, headers=headers or {})
    response = client.post("/console/login", base_url=base_url, headers=headers or {},
                           data={"username": "olga", "password": PASSWORD,
                                 "csrf_token": csrf_from(page.get_data(as_text=True))})
    assert response.status_code == 302
    return response.headers["Set-Cookie"]


def test_cookie_is_secure_over_https(client, operator):
    assert "Secure" in _login_cookie(client, "https://console.example")


def test_cookie_is_secure_behind_a_trusted_https_proxy(config, engine, operator):
    config.trust_proxy = True
    client = create_app(config, engine=engine).test_client()
    assert "Secure" in _login_cookie(client, "http://backend:5000", {"X-Forwarded-Proto": "https"})


@pytest.mark.parametrize("trust", [False, True])
def test_cookie_is_not_secure_over_plain_http(config, engine, operator, trust):
    config.trust_proxy = trust
    client = create_app(config, engine=engine).test_client()
    headers = {} if trust else {"X-Forwarded-Proto": "https"}  # untrusted header: ignored
    assert "Secure" not in _login_cookie(client, "http://localhost", headers)
