"""Structured logs: one JSON object per line, the CallSid on every line of a call's webhook."""
from __future__ import annotations

import io
import json
import logging
import logging.config

import pytest

from ivr.ops import logs
from tests import factories as f


@pytest.fixture
def captured():
    """The servers' log handler, writing to a buffer; removed afterwards."""
    stream = io.StringIO()
    handler = logs.configure("json", stream=stream)
    level = logging.getLogger().level
    yield stream
    logging.getLogger().removeHandler(handler)
    logging.getLogger().setLevel(level)


def lines(stream) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_every_line_of_a_calls_webhook_carries_its_call_sid(captured, phone, db, app):
    region = f.region(db)
    f.meter(db, f.account(db, region, number="100001"), previous=1000)
    db.commit()

    @app.before_request
    def chatty():  # a line from a logger outside ivr too
        logging.getLogger("test.extra").info("request begins")

    first, second = phone(), phone(caller="+37360000001")
    first.start()
    second.start()
    first.press("4")
    second.press("4")
    first.press("999999#")  # unknown account: the engine logs the step
    first.hang_up()
    records = lines(captured)
    voice = [r for r in records if r.get("path", "").startswith("/voice/")]
    assert len(voice) >= 6
    assert {r["call_sid"] for r in voice} == {first.call_sid, second.call_sid}
    for record in voice:
        assert set(record) >= {"time", "level", "logger", "message", "call_sid", "path", "method"}
        assert record["time"].endswith("Z")
    by_call = {sid: [r for r in voice if r["call_sid"] == sid] for sid in (first.call_sid, second.call_sid)}
    assert any(r["path"] == "/voice/status" for r in by_call[first.call_sid])
    assert all(r["path"] != "/voice/status" for r in by_call[second.call_sid])
    assert any(r["logger"] == "test.extra" for r in by_call[second.call_sid])


def test_lines_outside_a_call_have_no_call_sid(captured, client):
    client.get("/metrics")
    logging.getLogger("ivr.test").warning("outside any request")
    records = lines(captured)
    assert records[-1] == {k: records[-1][k] for k in ("time", "level", "logger", "message")}
    assert records[-1]["level"] == "WARNING" and records[-1]["message"] == "outside any request"


def test_a_forged_call_sid_is_not_logged(captured, client):
    client.post("/voice/incoming", data={"CallSid": "CA\nFORGED line"})
    records = lines(captured)  # every line is one JSON object
    assert records and not any("call_sid" in r for r in records)


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_one_record_is_one_line(fmt):
    stream = io.StringIO()
    handler = logs.configure(fmt, stream=stream)
    try:
        logging.getLogger("ivr.test").warning("path %s", "/x\nFORGED\r\x85\u2028end")
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("ivr.test").exception("failed")
    finally:
        logging.getLogger().removeHandler(handler)
    out = stream.getvalue()
    if fmt == "json":
        assert len(out.split("\n")) == 3 and len(out.splitlines()) == 2  # Python's splitlines knows U+2028 too
        first, second = (json.loads(line) for line in out.splitlines())
        assert first["message"] == "path /x\nFORGED\r\x85\u2028end"
        assert "ValueError: boom" in second["exception"]
    else:
        first = out.splitlines()[0]
        assert first.endswith("WARNING ivr.test: path /x\\x0aFORGED\\x0d\\x85\\u2028end")


def test_configure_twice_keeps_one_handler():
    root = logging.getLogger()
    before = len(root.handlers)
    first = logs.configure("text", stream=io.StringIO())
    second = logs.configure("json", stream=io.StringIO())
    try:
        assert first not in root.handlers and len(root.handlers) == before + 1
    finally:
        root.removeHandler(second)


def test_gunicorn_logconfig_sends_gunicorn_lines_as_json():
    config = logs.gunicorn_logconfig("json")
    stream = io.StringIO()
    config["handlers"]["ivr"]["stream"] = stream
    saved = logging.getLogger().handlers[:], logging.getLogger().level
    try:
        logging.config.dictConfig(config)
        logging.getLogger("gunicorn.error").info("Booting worker with pid: %s", 123)
    finally:
        root = logging.getLogger()
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        for name in ("gunicorn.error", "gunicorn.access"):
            logging.getLogger(name).handlers.clear()
    record = json.loads(stream.getvalue())
    assert record["logger"] == "gunicorn.error" and record["message"] == "Booting worker with pid: 123"
    with pytest.raises(ValueError):
        logs.gunicorn_logconfig("xml")


@pytest.mark.parametrize("setting, expected", [(None, logs.TextFormatter), ("json", logs.JsonFormatter)])
def test_serve_logs_text_unless_told(config, monkeypatch, setting, expected):
    """``ivr serve`` sets up its log before starting the server (here a fake that only records)."""
    from click.testing import CliRunner

    from ivr.cli import cli
    from ivr.commands import core

    monkeypatch.setenv("IVR_DATABASE_URL", config.database_url)
    monkeypatch.setenv("IVR_TWILIO_AUTH_TOKEN", "x" * 32)
    if setting:
        monkeypatch.setenv("IVR_LOG_FORMAT", setting)
    started = []
    # fake: no server is started
    monkeypatch.setattr(core, "run_development_server", lambda app, host, port: started.append((host, port)))
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        result = CliRunner().invoke(cli, ["serve", "--port", "5099"])
        assert result.exit_code == 0, result.output
        ours = [h for h in root.handlers if h.get_name() == logs.HANDLER_NAME]
        assert started and [type(h.formatter) for h in ours] == [expected]
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def test_terminal_colours_are_left_out_not_escaped():
    """werkzeug colours access lines by status; a log line has no use for the codes."""
    record = logging.LogRecord("werkzeug", logging.INFO, __file__, 1, '"%s" %s -',
                               ("\x1b[33mGET /nope HTTP/1.1\x1b[0m", "404"), None)
    assert logs.TextFormatter().format(record).endswith(' werkzeug: "GET /nope HTTP/1.1" 404 -')
    assert json.loads(logs.JsonFormatter().format(record))["message"] == '"GET /nope HTTP/1.1" 404 -'
    # Other control characters are still escaped.
    record.args = ("GET /a\x1b]0;title\x07 HTTP/1.1", "404")
    assert "\\x1b]0;title\\x07" in logs.TextFormatter().format(record)


def test_development_server_prints_plain_lines(config, tmp_path):
    """``ivr serve`` as a reader starts it from the checkout: the hint names ``.venv/bin/ivr`` (the
    virtualenv's ivr, relative to where it was started), the banner is one plain line, and a
    request's log line carries no escaped terminal codes."""
    import os
    import socket
    import subprocess
    import sys
    import urllib.error
    import urllib.request
    from pathlib import Path

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    venv_bin = Path(sys.executable).parent
    checkout = venv_bin.parent.parent  # the folder holding the virtualenv (.venv)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "IVR_DATABASE_URL": config.database_url,
           "IVR_DATA_DIR": str(tmp_path / "data"), "IVR_SECRET_KEY": "x" * 32, "IVR_TWILIO_AUTH_TOKEN": "t" * 32}
    server = subprocess.Popen([str(venv_bin / "ivr"), "serve", "--port", str(port)], cwd=checkout, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out = []
        for line in server.stdout:
            out.append(line.rstrip("\n"))
            if line.startswith("Serving on"):
                break
        hint = next(line for line in out if line.startswith("Try a call:"))
        assert hint.split()[-4:] == [f"{venv_bin.relative_to(checkout)}/ivr", "call", "--url",
                                     f"http://127.0.0.1:{port}"]
        assert out[-1].startswith(f"Serving on http://127.0.0.1:{port} ")
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/no-such-page", timeout=30)
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
    assert '"GET /no-such-page HTTP/1.1" 404' in err
    assert "\x1b" not in err and "\\x1b" not in err and "\\x0a" not in err, err
