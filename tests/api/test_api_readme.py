"""The README's billing examples, pasted verbatim into a shell against a running server."""
import csv
import json
import re
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from readings_store import demo
from readings_store.models import ExportBatch, Reading

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
    """On the demo database `make run` loads (every account, their history): each command works,
    and what the first export prints is a page a person can read."""
    demo.load_demo(db)
    db.commit()
    accepted = db.scalar(select(func.count()).select_from(Reading).where(Reading.status == "accepted"))
    block = _billing_block()
    # Only the server address and the virtualenv differ from the reader's machine.
    script = block.replace("http://127.0.0.1:5000", live_server).replace(".venv/bin/", f"{Path(sys.executable).parent}/")
    env = {"PATH": "/usr/bin:/bin", "IVR_DATABASE_URL": config.database_url, "IVR_DATA_DIR": str(config.data_dir),
           "IVR_SECRET_KEY": config.secret_key}
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout) < 4000, f"the examples print {len(result.stdout)} characters"
    readings, batch, ack = _json_documents(result.stdout)
    assert len(readings["items"]) == 2
    assert batch["id"] == 1 and batch["count"] == 2 and len(batch["readings"]) == 2
    assert ack["id"] == 1 and ack["acknowledged_at"]
    # The CLI took every other reading into batch 2, wrote it to the file and acknowledged it.
    assert f"export batch 2: {accepted - 2} readings" in result.stderr
    rows = list(csv.DictReader((tmp_path / "batch.csv").open(encoding="utf-8", newline="")))
    assert len(rows) == accepted - 2 and {r["export_batch"] for r in rows} == {"2"}
    db.expire_all()
    assert db.get(ExportBatch, 2).acknowledged_at is not None
