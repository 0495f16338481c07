"""Model download against a local HTTP server (no internet here), and the ``ivr models`` CLI."""
from __future__ import annotations

import hashlib
import io
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import speech.download as dl
from speech.download import DownloadError, ModelSpec, download_model, list_models


def model_zip(marker: str = "v1", top: str = "vosk-model-small-xx-0.1") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{top}/am/final.mdl", b"fake acoustic model " + marker.encode())
        zf.writestr(f"{top}/conf/model.conf", "--beam=10\n")
        zf.writestr(f"{top}/README", marker)
    return buf.getvalue()


class Server:
    """Serves ``routes[path] = (status, body, declared_length)``; a declared length above
    the body length simulates a connection cut mid-download."""

    def __init__(self):
        self.routes: dict[str, tuple[int, bytes, int | None]] = {}
        routes = self.routes

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                status, body, length = routes.get(self.path, (404, b"not found", None))
                self.send_response(status)
                self.send_header("Content-Length", str(length if length is not None else len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(monkeypatch):
    srv = Server()
    monkeypatch.setattr(dl, "MODELS", {"xx": ModelSpec("vosk-model-small-xx-0.1", srv.url + "/xx.zip")})
    yield srv
    srv.close()


def leftovers(models_dir):
    return sorted(p.name for p in models_dir.iterdir() if p.name.startswith("."))


def test_download_installs_and_replaces(server, tmp_path):
    body = model_zip("v1")
    server.routes["/xx.zip"] = (200, body, None)
    path = download_model("xx", tmp_path, progress=False, sha256=hashlib.sha256(body).hexdigest())
    assert path == tmp_path / "xx"
    assert (path / "README").read_text() == "v1"
    assert list_models(tmp_path)[0][:2] == ("xx", path)
    assert list_models(tmp_path)[0][2] > 0
    # A new version replaces the old one, checked against a .sha256 side file.
    body2 = model_zip("v2")
    server.routes["/xx.zip"] = (200, body2, None)
    server.routes["/xx.zip.sha256"] = (200, f"{hashlib.sha256(body2).hexdigest()}  xx.zip\n".encode(), None)
    download_model("xx", tmp_path, progress=True)
    assert (path / "README").read_text() == "v2"
    assert leftovers(tmp_path) == []


def test_unknown_checksum_warns_with_hash(server, tmp_path, caplog):
    body = model_zip()
    server.routes["/xx.zip"] = (200, body, None)
    download_model("xx", tmp_path, progress=False)
    assert hashlib.sha256(body).hexdigest() in caplog.text


def test_wrong_checksum_keeps_old_install(server, tmp_path):
    server.routes["/xx.zip"] = (200, model_zip("v1"), None)
    download_model("xx", tmp_path, progress=False)
    server.routes["/xx.zip"] = (200, model_zip("v2"), None)
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download_model("xx", tmp_path, progress=False, sha256="0" * 64)
    assert (tmp_path / "xx" / "README").read_text() == "v1"
    assert leftovers(tmp_path) == []


def test_truncated_download_leaves_nothing(server, tmp_path):
    body = model_zip()
    server.routes["/xx.zip"] = (200, body[: len(body) // 2], len(body))
    with pytest.raises(DownloadError, match="xx.zip"):
        download_model("xx", tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_http_error_and_not_a_zip_and_not_a_model(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_model("xx", tmp_path, progress=False)
    server.routes["/xx.zip"] = (200, b"<html>not a zip</html>", None)
    with pytest.raises(DownloadError, match="not a valid zip"):
        download_model("xx", tmp_path, progress=False)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("something/else.txt", "x")
    server.routes["/xx.zip"] = (200, buf.getvalue(), None)
    with pytest.raises(DownloadError, match="does not contain a Vosk model"):
        download_model("xx", tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_zip_slip_refused(server, tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../../evil.txt", "x")
    server.routes["/xx.zip"] = (200, buf.getvalue(), None)
    models = tmp_path / "models"
    with pytest.raises(DownloadError, match="outside"):
        download_model("xx", models, progress=False)
    assert not (tmp_path / "evil.txt").exists()
    assert list(models.iterdir()) == []


def test_unknown_language(tmp_path):
    with pytest.raises(DownloadError, match="known: en, ru, uk"):
        download_model("zz", tmp_path, progress=False)


def test_official_table():
    assert set(dl.MODELS) == {"ru", "uk", "en"}
    for spec in dl.MODELS.values():
        assert spec.url == dl.BASE_URL + spec.name + ".zip"
        assert spec.url.startswith("https://alphacephei.com/vosk/models/")


def test_cli_list_and_download(server, tmp_path, monkeypatch):
    from click.testing import CliRunner
    from ivr.cli import cli
    monkeypatch.setenv("IVR_MODELS_DIR", str(tmp_path))
    runner = CliRunner()
    res = runner.invoke(cli, ["models", "list"])
    assert res.exit_code == 0 and "no models installed" in res.output
    server.routes["/xx.zip"] = (200, model_zip(), None)
    res = runner.invoke(cli, ["models", "download", "xx", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "installed" in res.output
    res = runner.invoke(cli, ["models", "list"])
    assert res.exit_code == 0 and res.output.startswith("xx\t")
    res = runner.invoke(cli, ["models", "download", "zz"])
    assert res.exit_code != 0 and "no model for zz" in res.output
    server.routes["/xx.zip"] = (200, b"junk", None)
    res = runner.invoke(cli, ["models", "download", "xx", "--no-progress"])
    assert res.exit_code == 1 and "not a valid zip" in res.output


@pytest.mark.parametrize("base, why", [("http://models.invalid", "cannot find models.invalid"),
                                       ("http://127.0.0.1:1", "127.0.0.1 refused the connection")])
def test_cli_download_without_a_network_says_so_in_one_line(tmp_path, monkeypatch, base, why):
    """No network: one short line naming the language and why, nothing tried after it, nothing left."""
    from click.testing import CliRunner
    from ivr.cli import cli
    monkeypatch.setenv("IVR_MODELS_DIR", str(tmp_path))
    monkeypatch.setattr(dl, "MODELS", {lang: ModelSpec(f"vosk-model-small-{lang}", f"{base}/{lang}.zip")
                                       for lang in ("xx", "yy")})
    res = CliRunner().invoke(cli, ["models", "download", "xx", "yy"])
    assert res.exit_code == 1
    assert res.output.count("\n") == 1 and len(res.output) < 200, res.output
    assert res.output.startswith(f"Error: xx not installed: download of {base}/xx.zip failed: {why}")
    assert list(tmp_path.iterdir()) == []
