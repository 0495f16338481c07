"""The README's Layout table matches the tree: every path it names exists, and every module of
``ivr`` is named (itself, or its package), each module of the voice, SMS and operations rooms by
its file name in its room's row."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Rooms whose rows name each of their modules (the other packages are named as a whole).
ROOMS_BY_MODULE = ("ivr/voice/", "ivr/sms/", "ivr/ops/")


def _rows() -> dict[str, str]:
    """Each row of the table: its first cell's paths (joined) -> its second cell."""
    text = (ROOT / "README.md").read_text()
    table = text[text.index("## Layout"):].split("\n\n")[1]
    rows = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = cells[1]
    return rows


def _paths(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def test_every_path_the_layout_names_exists():
    rows = _rows()
    assert rows
    for first, second in rows.items():
        for path in _paths(first):
            assert (ROOT / path).exists(), f"README Layout names {path}, which does not exist"
        if first.strip("`") in ROOMS_BY_MODULE:
            for name in [n for n in _paths(second) if n.endswith(".py")]:
                assert (ROOT / first.strip("`") / name).is_file(), f"{first}: no {name}"


def test_every_ivr_module_is_in_the_layout():
    rows = _rows()
    named = {p.rstrip("/") for first in rows for p in _paths(first)}
    for module in sorted((ROOT / "ivr").rglob("*.py")):
        relative = module.relative_to(ROOT)
        if relative.name == "__init__.py" and relative.parent == Path("ivr"):
            continue
        assert any(str(relative) == n or str(relative).startswith(n + "/") for n in named), \
            f"{relative} is not in the README's Layout table"
    for room in ROOMS_BY_MODULE:
        listed = {name for name in _paths(rows[f"`{room}`"]) if name.endswith(".py")}
        actual = {p.name for p in (ROOT / room).glob("*.py") if p.name != "__init__.py"}
        assert listed == actual, f"{room}: the Layout names {sorted(listed)}, the folder holds {sorted(actual)}"
