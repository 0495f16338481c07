"""Configuration: defaults, overrides from IVR_* variables, and clear errors for bad values."""
import pytest

from ivr.config import ConfigError, load_config


def test_defaults_and_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("IVR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("IVR_MAX_TRIES", "4")
    monkeypatch.setenv("IVR_CONFIDENCE_ACCEPT", "0.9")
    monkeypatch.setenv("IVR_SPEECH_ENGINES", '{"en": "off"}')
    cfg = load_config()
    assert cfg.database_url == f"sqlite:///{tmp_path / 'ivr.sqlite3'}"
    assert (cfg.max_tries, cfg.confidence_accept) == (4, 0.9)
    assert cfg.speech_engines == {"ro": "twilio", "ru": "vosk", "uk": "vosk", "en": "off"}
    shown = cfg.redacted()
    assert (shown["secret_key"], shown["twilio_auth_token"]) == ("<set>", "<unset>")
    assert cfg.secret_key not in str(shown)


@pytest.mark.parametrize("name,value,message", [
    ("IVR_MAX_TRIES", "three", "IVR_MAX_TRIES must be an integer"),
    ("IVR_CONFIDENCE_REVIEW", "high", "IVR_CONFIDENCE_REVIEW must be a number"),
    ("IVR_VOICES", "{not json", "IVR_VOICES is not valid JSON"),
    ("IVR_SPEECH_ENGINES", '{"ru": "google"}', "unknown engine 'google'"),
])
def test_bad_values_are_clear_errors(monkeypatch, tmp_path, name, value, message):
    monkeypatch.setenv("IVR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        load_config()
