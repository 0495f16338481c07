"""`ivr call` against a server that is not there, or that has another auth token: one clear line."""
from click.testing import CliRunner

from ivr.cli import cli
from tests.servers import refused_port


def test_no_server_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("IVR_DATA_DIR", str(tmp_path))
    with refused_port() as port:
        url = f"http://127.0.0.1:{port}"
        result = CliRunner().invoke(cli, ["call", "--url", url, "--keys", "1"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"Error: no server answers at {url}/voice/incoming: "
                                                  "is `ivr serve` running there?"]


def test_token_mismatch_is_one_clear_line(live_server, monkeypatch):
    monkeypatch.setenv("IVR_TWILIO_AUTH_TOKEN", "not-the-servers-token")
    result = CliRunner().invoke(cli, ["call", "--url", live_server, "--keys", "1"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "HTTP 403" in lines[0] and "IVR_TWILIO_AUTH_TOKEN" in lines[0]
    assert "<" not in lines[0]  # no HTML page
