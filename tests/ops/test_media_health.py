"""A dead media server is visible from the web app: /healthz says whether it answers and is ready
(``degraded``, not down: calls go on with <Record>), /metrics counts its streams: active, and
admitted, refused, shed and unbound since it started. Also: /metrics treats any proxy header as
proxied."""
from __future__ import annotations

import asyncio

import pytest

from ivr.app import create_app
from ivr.voice.media_server import MediaServer
from tests.conftest import AUTH_TOKEN
from tests.stream_harness import Recorder, ServerThread, Silent, play_stream, silence, until

from .test_metrics import app_with, scrape, value

MEDIA_URL = "wss://ivr.example.org/voice/stream"
GOOD = "the-calls-own-token"


def media_server(**kwargs) -> MediaServer:
    handlers = Recorder(None, models=lambda lang: None).handlers()
    handlers.authorize = lambda call_sid, parameters: None if parameters.get("token") == GOOD else "wrong token"
    return MediaServer(handlers, auth_token=AUTH_TOKEN, media_url=MEDIA_URL, listener_factory=Silent, **kwargs)


@pytest.fixture
def web(config, engine):
    """The web app of a line that streams, looking for its media server on ``port``."""
    def make(port: int):
        config.media_url, config.speech_transport, config.public_url = MEDIA_URL, "stream", "http://localhost"
        config.media_host, config.media_port = "127.0.0.1", port
        app = create_app(config, engine=engine)
        app.config.update(TESTING=True)
        return app.test_client()

    return make


def play(st: ServerThread, token: str, hold: asyncio.Event | None = None):
    return play_stream(st.url, AUTH_TOKEN, silence(200), realtime=False, signed_url=MEDIA_URL,
                       custom={"token": token}, hold=hold)


def test_metrics_count_the_media_servers_streams_and_see_it_die(web):
    st = ServerThread(media_server(max_streams=1))
    with st:
        client = web(st.port)
        hold = asyncio.Event()
        first = st.spawn(play(st, GOOD, hold))
        until(lambda: st.server.stats.active_streams == 1, "the first stream admitted")
        assert st.run(play(st, GOOD, asyncio.Event())).close_code == 1013  # full: refused
        assert st.run(play(st, "replayed", asyncio.Event())).close_code == 1008  # not the call's: unbound
        text = scrape(client)
        health = client.get("/healthz").get_json()
        st.call(hold.set)
        first.result(30)
    assert value(text, "ivr_media_server_up") == 1 and value(text, "ivr_media_server_ready") == 1
    assert value(text, "ivr_media_streams_active") == 1
    assert [value(text, "ivr_media_streams_total", outcome=o) for o in ("admitted", "refused", "shed", "unbound")] \
        == [1, 1, 0, 1]
    assert health["media_server"] == "ok" and health["status"] == "ok"
    assert health["streams"]["active"] == 1

    # The media server is gone (its port closed): the web app says so, and stays up.
    text = scrape(client)
    assert value(text, "ivr_media_server_up") == 0
    response = client.get("/healthz")
    assert response.status_code == 200
    assert (response.get_json()["status"], response.get_json()["media_server"]) == ("degraded", "unreachable")
    assert client.get("/healthz?strict=1").status_code == 503


def test_healthz_says_while_the_media_server_loads_its_models(web):
    import threading

    release = threading.Event()
    server = media_server(preload=("en",))
    server.handlers.models = lambda lang: release.wait(30)
    with ServerThread(server) as st:
        client = web(st.port)
        health = client.get("/healthz").get_json()
        text = scrape(client)
        release.set()
        until(lambda: st.server.ready, "the model loaded")
        after = client.get("/healthz").get_json()
    assert (health["status"], health["media_server"]) == ("degraded", "loading")
    assert value(text, "ivr_media_server_up") == 1 and value(text, "ivr_media_server_ready") == 0
    assert (after["status"], after["media_server"]) == ("ok", "ok")


def test_a_line_that_records_has_no_media_server_to_report(client):
    assert client.get("/healthz").get_json()["media_server"] == "not used"
    assert "ivr_media_server_up" not in scrape(client)


@pytest.mark.parametrize("header", [{"Forwarded": "for=203.0.113.7"}, {"X-Real-IP": "203.0.113.7"},
                                    {"X-Forwarded-For": "203.0.113.7"}])
def test_any_proxy_header_means_proxied(client, header):
    # The peer is the local proxy; the real client is elsewhere and IVR_TRUST_PROXY is off.
    assert client.get("/metrics", headers=header).status_code == 403


@pytest.mark.parametrize("header", [{"Forwarded": "for=127.0.0.1"}, {"X-Real-IP": "127.0.0.1"}])
def test_a_trusted_proxy_must_name_the_client_in_x_forwarded_for(config, engine, header):
    client = app_with(config, engine, trust_proxy=True)
    # ProxyFix reads only X-Forwarded-For: without it the peer (the proxy) would pass for the client.
    assert client.get("/metrics", headers=header).status_code == 403
    assert client.get("/metrics", headers={**header, "X-Forwarded-For": "127.0.0.1"}).status_code == 200
