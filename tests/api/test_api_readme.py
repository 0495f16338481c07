"""The README's billing examples, pasted verbatim into a shell against a running server."""
import json
import re
import subprocess
import sys
from pathlib import Path

from readings_store import demo

README = Path(__file__).resolve().parents[2] / "README.md"


def _billing_block() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Billing API"):]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


def _json_documents(text: str) -> list:
    """curl prints bodies back to back without newlines."""
    decoder, docs, pos = json.JSONDecoder(), [], 0
    while pos < len(text.rstrip()):
        doc, pos = decoder.raw_decode(text, pos)
        docs.append(doc)
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return docs


def test_readme_billing_examples_work_verbatim(db, config, live_server, tmp_path):
    demo.load_demo(db, accounts_per_region=10)
    db.commit()
    block = _billing_block()
    # Only the server address and the virtualenv differ from the reader's machine.
    script = block.replace("http://127.0.0.1:5000", live_server).replace(".venv/bin/", f"{Path(sys.executable).parent}/")
    env = {"PATH": "/usr/bin:/bin", "IVR_DATABASE_URL": config.database_url, "IVR_DATA_DIR": str(config.data_dir),
           "IVR_SECRET_KEY": config.secret_key}
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    readings, batch, ack = _json_documents(result.stdout)
    assert len(readings["items"]) == 2
    assert batch["id"] == 1 and batch["count"] > 0
    assert ack["acknowledged_at"]
    assert "nothing to export" in result.stderr  # batch 1 already took every reading
