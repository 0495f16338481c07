"""The import contracts in .importlinter hold: a pure dialog engine, a turn service and a media
server without Flask, and layers that never import back. import-linter follows every import, also
those inside functions and through other modules, which a search of the source cannot."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _lint(config: Path) -> subprocess.CompletedProcess:
    tool = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if tool is None:
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    return subprocess.run([tool, "--config", str(config), "--no-cache"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_the_import_contracts_hold():
    run = _lint(ROOT / ".importlinter")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "0 broken" in run.stdout


def test_a_broken_contract_is_reported(tmp_path):
    """The check can fail: a contract the code does break (the turn service uses SQLAlchemy)."""
    config = tmp_path / "broken.ini"
    config.write_text("[importlinter]\nroot_packages =\n    ivr\ninclude_external_packages = True\n\n"
                      "[importlinter:contract:calls-without-sqlalchemy]\nname = no SQLAlchemy in ivr.calls\n"
                      "type = forbidden\nsource_modules =\n    ivr.calls\nforbidden_modules =\n    sqlalchemy\n")
    run = _lint(config)
    assert run.returncode == 1 and "BROKEN" in run.stdout
