"""GET /metrics: who may read it, what it counts (per route template, from the database, from the
speech steps), and the front page."""
from __future__ import annotations

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker
from prometheus_client.parser import text_string_to_metric_families

from ivr.ops import metrics
from ivr.api import tokens
from ivr.app import create_app
from ivr.config import ConfigError, load_config
from ivr.voice.recording_fetch import RecordingUnavailable
from ivr.voice.speech_steps import SpeechSteps
from speech.recognizer import Recognition, Word
from tests import factories as f

TOKEN = "scrape-token-0123456789"


def samples(text: str) -> dict:
    """{(name, frozenset(labels)): value} of an exposition."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(text: str, name: str, **labels) -> float:
    return samples(text).get((name, frozenset(labels.items())), 0.0)


def scrape(client, **kwargs) -> str:
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return response.text


def app_with(config, engine, **settings):
    for key, item in settings.items():
        setattr(config, key, item)
    app = create_app(config, engine=engine)
    app.config.update(TESTING=True)
    return app.test_client()


# --- access -------------------------------------------------------------------------------------

def test_loopback_may_scrape_by_default(client):
    scrape(client)  # the test client's address is 127.0.0.1


def test_other_addresses_are_refused_without_a_token(client):
    response = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.7"})
    assert response.status_code == 403
    assert "ivr_" not in response.text


def test_proxied_request_is_not_let_in_by_the_proxys_address(client):
    # The peer is the local proxy; the real client is elsewhere and IVR_TRUST_PROXY is off.
    response = client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.7"})
    assert response.status_code == 403


def test_token_lets_any_address_in_and_a_wrong_one_is_401(config, engine):
    client = app_with(config, engine, metrics_token=TOKEN, metrics_allow=())
    assert client.get("/metrics").status_code == 401  # loopback no longer allowed by address
    wrong = client.get("/metrics", headers={"Authorization": "Bearer not-the-token-at-all"})
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    scrape(client, headers={"Authorization": f"Bearer {TOKEN}"}, environ_base={"REMOTE_ADDR": "198.51.100.1"})


def test_allow_list_of_networks(config, engine):
    client = app_with(config, engine, metrics_allow=("10.0.0.0/8",))
    assert client.get("/metrics").status_code == 403
    scrape(client, environ_base={"REMOTE_ADDR": "10.20.30.40"})
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "11.0.0.1"}).status_code == 403


@pytest.mark.parametrize("raw, expected", [
    ("", ("127.0.0.0/8", "::1/128")),
    ("10.0.0.0/8, 192.168.1.5", ("10.0.0.0/8", "192.168.1.5/32")),
    ("fd00::/8", ("fd00::/8",)),
    ("none", ()),
])
def test_allow_setting(monkeypatch, tmp_path, raw, expected):
    monkeypatch.setenv("IVR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("IVR_METRICS_ALLOW", raw)
    assert load_config(secret_key="x").metrics_allow == expected


@pytest.mark.parametrize("name, raw", [
    ("IVR_METRICS_ALLOW", "10.0.0.0/33"),
    ("IVR_METRICS_ALLOW", "everyone"),
    ("IVR_METRICS_TOKEN", "short"),
    ("IVR_LOG_FORMAT", "xml"),
    ("IVR_ACCESS_LOG", "maybe"),
])
def test_bad_settings_stop_start_up(monkeypatch, tmp_path, name, raw):
    monkeypatch.setenv("IVR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv(name, raw)
    with pytest.raises(ConfigError, match=name):
        load_config(secret_key="x")


def test_token_is_redacted(monkeypatch, tmp_path):
    monkeypatch.setenv("IVR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("IVR_METRICS_TOKEN", TOKEN)
    assert load_config(secret_key="x").redacted()["metrics_token"] == "<set>"


# --- what is measured ---------------------------------------------------------------------------

def test_latency_per_route_template_not_per_path(client, phone, db):
    region = f.region(db)
    f.meter(db, f.account(db, region, number="100001"), previous=1000)
    db.commit()
    before = scrape(client)
    call = phone()
    call.start()
    call.press("4")
    call.press("100001#")
    call.hang_up()
    client.get("/voice/no-such-page-1")
    client.get("/voice/no-such-page-2")
    client.open("/voice/incoming", method="MADEUP")
    after = scrape(client)

    def count(route, method="POST"):
        key = "ivr_http_request_duration_seconds_count"
        return value(after, key, route=route, method=method) - value(before, key, route=route, method=method)

    assert count("/voice/incoming") == 1
    assert count("/voice/status") == 1
    assert count("/voice/step/<step>") == 2
    assert count("(unmatched)", "GET") == 2
    assert count("(unmatched)", "other") == 1 and "MADEUP" not in after  # 405: no route matched
    assert not any("no-such-page" in line or "/voice/step/language" in line for line in after.splitlines())
    status = value(after, "ivr_http_responses_total", route="/voice/status", method="POST", status="204") \
        - value(before, "ivr_http_responses_total", route="/voice/status", method="POST", status="204")
    assert status == 1
    # Only the scrape itself is in flight.
    assert value(after, "ivr_http_requests_in_flight", route="/voice/incoming") == 0
    assert value(after, "ivr_http_requests_in_flight", route="/metrics") == 1


def test_records_are_counted_in_the_database(client, phone, db):
    region = f.region(db)
    f.meter(db, f.account(db, region, number="100001"), previous=1000)
    db.commit()
    call = phone()
    call.start()
    for keys in ("4", "100001#", "1500#", "1"):
        call.press(keys)
    call.hang_up()
    text = scrape(client)
    assert value(text, "ivr_records_up") == 1
    assert value(text, "ivr_calls", outcome="hung_up") == 1
    assert value(text, "ivr_readings", status="accepted", channel="phone_keypad") == 1
    assert value(text, "ivr_readings", status="accepted", channel="import") == 1  # the previous reading
    assert value(text, "ivr_export_batches", state="created") == 0

    _, api_token = tokens.create(db, "billing", "write")
    db.commit()
    headers = {"Authorization": f"Bearer {api_token}"}
    created = client.post("/api/v1/exports", headers=headers)
    assert created.status_code == 201, created.text
    batch = created.headers["X-Export-Batch-Id"]
    assert client.post(f"/api/v1/exports/{batch}/ack", headers=headers).status_code == 200
    text = scrape(client)
    assert value(text, "ivr_export_batches", state="created") == 1
    assert value(text, "ivr_export_batches", state="acknowledged") == 1


def test_database_unreachable_is_reported_not_hidden(app, caplog):
    services = app.extensions["ivr"]
    services.sessions = sessionmaker(create_engine("sqlite:////nonexistent-folder/ivr.sqlite3"))
    text = scrape(app.test_client())
    assert value(text, "ivr_records_up") == 0
    assert "ivr_readings{" not in text and "ivr_http_request_duration_seconds" in text
    assert "database counts unavailable: OperationalError" in caplog.text


class FakeFetcher:
    """A stand-in for Twilio's recording URL: the audio, or RecordingUnavailable."""

    def __init__(self, fail: bool):
        self.fail = fail

    def __call__(self, url):
        if self.fail:
            raise RecordingUnavailable("not yet available")
        return b"RIFF-fake-audio"


def fake_recognizer(lang, words, audio):
    return Recognition(text="one two three", words=tuple(Word(w, 0.95, i * 0.4, i * 0.4 + 0.3) for i, w in
                                                          enumerate(("one", "two", "three"))),
                       alternatives=(), has_unk=False, audio_seconds=1.5)


def test_fetch_and_recognition_are_timed(config):
    before = metrics.REGISTRY.get_sample_value
    url = "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1"
    count = lambda name, **labels: before(name, labels) or 0.0  # noqa: E731
    fetched, failed, recognised = (count("ivr_recording_fetch_duration_seconds_count", outcome="ok"),
                                   count("ivr_recording_fetch_failures_total", reason="unavailable"),
                                   count("ivr_recognition_duration_seconds_count", language="en"))
    SpeechSteps(config, recognizer=fake_recognizer, fetcher=FakeFetcher(False)).from_recording("en", "digits", url, 1)
    heard = SpeechSteps(config, recognizer=fake_recognizer, fetcher=FakeFetcher(True)).from_recording(
        "en", "digits", url, 1)
    assert heard.speech.decision == "retry"
    assert count("ivr_recording_fetch_duration_seconds_count", outcome="ok") == fetched + 1
    assert count("ivr_recording_fetch_failures_total", reason="unavailable") == failed + 1
    assert count("ivr_recognition_duration_seconds_count", language="en") == recognised + 1


def test_multiprocess_dir_is_cleared(tmp_path):
    folder = tmp_path / "metrics"
    assert metrics.clear_multiprocess_dir(folder) == 0 and folder.is_dir()
    (folder / "counter_123.db").write_bytes(b"x")
    (folder / "README").write_text("kept")
    assert metrics.clear_multiprocess_dir(folder) == 1
    assert [p.name for p in folder.iterdir()] == ["README"]


# --- the front page -----------------------------------------------------------------------------

def test_front_page_links_console_and_api(client):
    response = client.get("/")
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert 'href="/console/"' in response.text
    assert 'href="/api/v1/openapi.json"' in response.text
    assert client.get("/console/", follow_redirects=False).status_code in (200, 302)
    assert client.get("/api/v1/openapi.json").status_code == 200
