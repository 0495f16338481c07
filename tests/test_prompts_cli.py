"""``ivr prompts render``: every prompt filled in, for native speakers to review."""
from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from ivr.cli import cli
from ivr.config import LANGUAGES
from ivr.prompts import PACKAGE_DIR
from readings_store.models import UTILITIES


@pytest.fixture(autouse=True)
def env(monkeypatch, tmp_path):
    monkeypatch.delenv("IVR_PROMPTS_DIR", raising=False)
    monkeypatch.setenv("IVR_DATA_DIR", str(tmp_path / "data"))


def run(*args):
    return CliRunner().invoke(cli, ["prompts", "render", *args])


def section(output: str, key: str) -> list[str]:
    lines = output.splitlines()
    start = lines.index(f"== {key}") + 1
    end = next(i for i in range(start, len(lines)) if not lines[i])
    return lines[start:end]


def test_one_language_every_utility_and_register():
    r = run("--lang", "ru")
    assert r.exit_code == 0, r.output
    lines = section(r.output, "ask_value_register")
    assert len(lines) == len(UTILITIES) * 2 and all(line.startswith("ru  [") for line in lines)
    assert ("ru  [utility=electricity register=day] Введите показания счётчика электроэнергии по дневному "
            "тарифу и нажмите решётку. Вместо запятой нажмите звёздочку.") in lines
    assert "ru  [utility=gas] Введите показания счётчика газа и нажмите решётку. Вместо запятой нажмите звёздочку." \
        in section(r.output, "ask_value")
    assert "ru  utility_gas: газ; gen: газа" in r.output
    assert "{" not in r.output and not any(line.startswith(("en ", "ro ", "uk ")) for line in r.output.splitlines())


def test_all_languages_grouped_by_prompt():
    r = run()
    assert r.exit_code == 0, r.output
    lines = section(r.output, "read_back")
    assert [line.split()[0] for line in lines] == [lang for lang in LANGUAGES for _ in range(2)]
    assert "en  [value=1234.5] You entered 1 2 3 4 point 5." in lines
    assert "uk  [value=1234.5] Ви ввели 1 2 3 4 кома 5." in lines
    assert section(r.output, "goodbye")[0] == "ro  Vă mulțumim pentru apel. La revedere."


def test_out_writes_the_same_text_to_a_file(tmp_path):
    out = tmp_path / "review-ro.txt"
    r = run("--lang", "ro", "--out", str(out))
    assert r.exit_code == 0, r.output
    assert r.output.startswith("wrote ") and str(out) in r.output
    assert out.read_text(encoding="utf-8") == run("--lang", "ro").output


def test_unknown_language_is_refused():
    r = run("--lang", "de")
    assert r.exit_code == 2 and "Invalid value for '--lang'" in r.output


def test_missing_form_is_marked_and_fails(tmp_path, monkeypatch):
    base = tmp_path / "prompts"
    shutil.copytree(PACKAGE_DIR, base, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    path = base / "ru" / "prompts.json"
    texts = json.loads(path.read_text(encoding="utf-8"))
    del texts["utility_gas.gen"]
    path.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setenv("IVR_PROMPTS_DIR", str(base))
    out = tmp_path / "review.txt"
    r = run("--lang", "ru", "--out", str(out))
    assert r.exit_code == 1
    assert "prompts could not be rendered" in r.output and "'utility_gas.gen' missing for language 'ru'" in r.output
    review = out.read_text(encoding="utf-8")
    assert "ru  [utility=gas] !! prompt 'utility_gas.gen' missing for language 'ru'" in review
    assert "счётчика электроэнергии" in review  # the rest is still there to review


def test_missing_prompt_folder_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("IVR_PROMPTS_DIR", str(tmp_path / "nowhere"))
    r = run("--lang", "en")
    assert r.exit_code == 1 and "cannot read the prompts in" in r.output
