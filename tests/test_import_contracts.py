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


def test_the_rooms_contract_breaks_when_a_room_imports_upwards(tmp_path):
    """The rooms contract can fail: with the turn service placed above the voice edge, the voice
    edge's imports of it go upwards and are reported."""
    text = (ROOT / ".importlinter").read_text()
    rooms = text[text.index("[importlinter:contract:rooms]"):]
    swapped = rooms.replace("    sms | voice\n", "    calls\n").replace("    twilio_webhooks\n    calls\n",
                                                                      "    twilio_webhooks\n    sms | voice\n")
    assert swapped != rooms
    config = tmp_path / "swapped.ini"
    config.write_text("[importlinter]\nroot_packages =\n    ivr\n\n" + swapped)
    run = _lint(config)
    assert run.returncode == 1 and "BROKEN" in run.stdout
    assert "ivr.voice" in run.stdout and "ivr.calls" in run.stdout


def _cycles(graph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_module_of_ivr_is_part_of_an_import_cycle():
    """Not between rooms (the contract above) and not inside one either (a package whose
    ``__init__`` imports the modules that import it back), counting imports inside functions."""
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("ivr")
    assert _cycles(graph) == []
    graph.add_import(importer="ivr.calls", imported="ivr.voice.webhooks")  # the check can fail
    assert any("ivr.calls" in cycle and "ivr.voice.webhooks" in cycle for cycle in _cycles(graph))


def test_the_media_server_process_loads_no_flask():
    """What ``ivr media-server`` imports (the server and the phone line's handlers, the default
    IVR_MEDIA_HANDLERS) brings in no Flask, no Werkzeug: the process stays small."""
    code = ("import sys, ivr.voice.media_server, ivr.voice.stream_line; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'werkzeug', 'flask_login')))")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "[]"
    assert "ivr.voice.stream_line" in (ROOT / "ivr" / "config.py").read_text()  # it is the default handler
