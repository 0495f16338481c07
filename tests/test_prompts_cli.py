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
    # keypad wording, then the wording said where the question also listens for speech
    assert len(lines) == len(UTILITIES) * 2 * 2 and all(line.startswith("ru  ") for line in lines)
    assert ("ru   5.6 s  [utility=electricity register=day] Введите показания счётчика электроэнергии по дневному "
            "тарифу и нажмите решётку. Вместо запятой нажмите звёздочку.") in lines
    assert ("ru   6.8 s  [speech utility=electricity register=day] Назовите или наберите показания счётчика "
            "электроэнергии по дневному тарифу и нажмите решётку. Запятая — звёздочка или слово «запятая».") in lines
    assert "ru   4.4 s  [utility=gas] Введите показания счётчика газа и нажмите решётку. Вместо запятой нажмите " \
        "звёздочку." in section(r.output, "ask_value")
    assert "ru  utility_gas: газ; gen: газа" in r.output
    assert "{" not in r.output and not any(line.startswith(("en ", "ro ", "uk ")) for line in r.output.splitlines())


def test_all_languages_grouped_by_prompt():
    r = run()
    assert r.exit_code == 0, r.output
    lines = section(r.output, "read_back")
    assert [line.split()[0] for line in lines] == [lang for lang in LANGUAGES for _ in range(2)]
    assert "en   2.8 s  [value=1234.5] That's 1 2 3 4 point 5." in lines
    assert "uk   2.8 s  [value=1234.5] Показання: 1 2 3 4 кома 5." in lines
    assert section(r.output, "goodbye")[0] == "ro   1.6 s  Vă mulțumim. La revedere."


def test_sample_keys_differ_from_the_keys_a_prompt_names_and_texts_show_numerals():
    r = run("--lang", "ru")
    assert section(r.output, "region_assumed") == [
        "ru   8.0 s  [name=Кишинёв key=9] Судя по вашему номеру, вы звоните из региона Кишинёв. Если это так, "
        "нажмите 1. Чтобы выбрать другой регион, нажмите 9."]
    assert "ru    text  [utility=gas value=1234.5] газ: 1234.5." in section(r.output, "sms_value")


def test_robot_speech_per_path_and_language():
    r = run()
    lines = r.output.splitlines()
    start = lines.index("-- first-time caller, one meter")
    totals = {line.split()[0]: float(line.split()[2]) for line in lines[start + 1:start + 5]}
    assert set(totals) == set(LANGUAGES) and all(0 < t <= 45 for t in totals.values()), totals
    assert "ask_account.speech" in lines[start + 1] and "-- reminder call answered, one meter" in lines


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
    r = run("--lang", "en")  # the configuration itself refuses a folder that is not there
    assert r.exit_code == 1 and "IVR_PROMPTS_DIR: no such folder" in str(r.exception)
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("IVR_PROMPTS_DIR", str(tmp_path / "empty"))
    r = run("--lang", "en")
    assert r.exit_code == 1 and "cannot read the prompts in" in r.output
