"""ModelPool and vocabulary checks against the real Korean Vosk model."""
from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from speech.models import (ModelError, ModelNotInstalled, ModelPool, missing_words, model_missing_words,
                           read_vocabulary, unk_token)

pytestmark = pytest.mark.speech


def test_get_returns_same_object(pool):
    assert pool.get("ko") is pool.get("ko")
    assert "ko" in pool.loaded()


def test_loaded_once_across_threads(ko_model_path, monkeypatch):
    """Eight threads asking at once for a cold model trigger exactly one load."""
    import vosk
    import speech.models as models_mod

    loads = []
    real = vosk.Model

    def counting_model(path):
        loads.append(path)
        return real(path)

    monkeypatch.setattr(models_mod.vosk, "Model", counting_model)
    fresh = ModelPool(Path("/nonexistent"), extra={"ko": ko_model_path})
    barrier = threading.Barrier(8)

    def get(_):
        barrier.wait()
        return fresh.get("ko")

    with ThreadPoolExecutor(8) as ex:
        got = list(ex.map(get, range(8)))
    assert len(loads) == 1
    assert all(m is got[0] for m in got)


def test_not_installed_message(tmp_path):
    p = ModelPool(tmp_path)
    with pytest.raises(ModelNotInstalled) as err:
        p.get("ru")
    msg = str(err.value)
    assert str(tmp_path / "ru") in msg and "ivr models download ru" in msg


def test_incomplete_model_folder_is_not_installed(tmp_path):
    (tmp_path / "en" / "am").mkdir(parents=True)
    with pytest.raises(ModelNotInstalled):
        ModelPool(tmp_path).get("en")
    assert ModelPool(tmp_path).available() == []


def test_corrupt_model_gives_model_error(tmp_path):
    (tmp_path / "en" / "am").mkdir(parents=True)
    (tmp_path / "en" / "conf").mkdir()
    (tmp_path / "en" / "am" / "final.mdl").write_bytes(b"garbage")
    (tmp_path / "en" / "conf" / "model.conf").write_text("")
    p = ModelPool(tmp_path)
    with pytest.raises(ModelError, match="ivr models download en"):
        p.get("en")
    with pytest.raises(ModelError):  # failures are not cached as models
        p.get("en")


def test_invalid_language_code(tmp_path):
    with pytest.raises(ValueError):
        ModelPool(tmp_path).get("../etc")


def test_available(tmp_path, ko_model_path):
    (tmp_path / "xx").mkdir()
    p = ModelPool(tmp_path, extra={"ko": ko_model_path})
    assert p.available() == ["ko"]


def test_missing_words_matches_vosk(ko_model, ko_model_path, ko_grammar):
    words = set(ko_grammar) | {"xyzzy", "hello", "하나", "[unk]"}
    assert missing_words(ko_model_path, words) == {"xyzzy", "hello"}
    assert model_missing_words(ko_model, words) == {"xyzzy", "hello"}
    # The vocabulary read from Gr.fst is exactly what Vosk looks words up in.
    vocab = read_vocabulary(ko_model_path)
    assert len(vocab) > 100_000
    sample = sorted(vocab)[::5000]
    assert all(ko_model.vosk_model_find_word(w) >= 0 for w in sample)


def test_missing_words_reads_words_txt(tmp_path):
    (tmp_path / "graph").mkdir()
    (tmp_path / "graph" / "words.txt").write_text("<eps> 0\none 1\ntwo 2\n[unk] 3\n", encoding="utf-8")
    assert missing_words(tmp_path, ["one two", "three", "[unk]"]) == {"three"}


def test_missing_words_without_vocabulary(tmp_path):
    with pytest.raises(ModelError):
        missing_words(tmp_path, ["one"])


def test_unk_token_of_korean_model(ko_model):
    # The Korean small model spells it "<UNK>"; the recognizer maps "[unk]" to it.
    assert unk_token(ko_model) == "<UNK>"


def test_check_vocabulary_logs_one_warning(pool, ko_grammar, caplog):
    with caplog.at_level(logging.WARNING, logger="speech.models"):
        missing = pool.check_vocabulary("ko", ko_grammar + ["xyzzy", "foo bar"])
    assert missing == {"xyzzy", "foo", "bar"}
    records = [r for r in caplog.records if r.name == "speech.models"]
    assert len(records) == 1 and "xyzzy" in records[0].getMessage()
    caplog.clear()
    assert pool.check_vocabulary("ko", ko_grammar) == set()
    assert not caplog.records


def test_deterministic_view(ko_model_path, tmp_path):
    from speech.models import deterministic_view
    view = deterministic_view(ko_model_path, tmp_path / "v")
    assert "--dither=0.0" in (view / "conf" / "mfcc.conf").read_text()
    assert (view / "am" / "final.mdl").resolve() == (ko_model_path / "am" / "final.mdl").resolve()
    assert "--dither" not in (ko_model_path / "conf" / "mfcc.conf").read_text()  # source untouched
    deterministic_view(ko_model_path, tmp_path / "v")  # idempotent


def test_deterministic_view_replaces_links_left_by_another_copy_of_the_model(ko_model_path, tmp_path):
    """A cached view whose links point at a model copy that is gone (another venv) is repaired."""
    from speech.models import deterministic_view
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "am").symlink_to(tmp_path / "gone" / "am")  # dangling
    (tmp_path / "v" / "graph").symlink_to(tmp_path)  # points elsewhere
    view = deterministic_view(ko_model_path, tmp_path / "v")
    assert (view / "am" / "final.mdl").resolve() == (ko_model_path / "am" / "final.mdl").resolve()
    assert (view / "graph").resolve() == (ko_model_path / "graph").resolve()
