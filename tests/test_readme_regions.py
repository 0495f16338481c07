"""The README's Regions block, pasted verbatim into a shell on the demo database `make run` loads."""
import re
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from readings_store import demo
from readings_store.models import Region

README = Path(__file__).resolve().parents[1] / "README.md"
LANGUAGES = ("ro", "ru", "uk", "en")


def _regions_block() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Regions"):]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


def test_readme_regions_block_works_verbatim_on_the_demo_database(db, config, tmp_path):
    demo.load_demo(db)
    db.commit()
    # Only the virtualenv differs from the reader's machine.
    script = _regions_block().replace(".venv/bin/", f"{Path(sys.executable).parent}/")
    env = {"PATH": "/usr/bin:/bin", "IVR_DATABASE_URL": config.database_url, "IVR_DATA_DIR": str(config.data_dir)}
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    # The list shows the demo regions, each named in every language of the line.
    listed = [line for line in lines if re.match(r"^[1-4] +[A-Z]{3} ", line)]
    assert [line.split()[1] for line in listed] == ["CHI", "BAL", "KYI", "NSK"]
    assert all(f"{lang}=" in line for line in listed for lang in LANGUAGES)
    assert "region ORH added with menu key 5" in lines
    assert lines[-2:] == ["region ORHEI updated", "region ORHEI removed"]
    db.expire_all()
    regions = db.scalars(select(Region).order_by(Region.menu_key)).all()
    assert [r.code for r in regions] == ["CHI", "BAL", "KYI", "NSK"]
    for region in regions:
        assert sorted(region.names) == sorted(LANGUAGES) and all(region.names.values())
