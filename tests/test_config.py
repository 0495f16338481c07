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


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    import os

    for key in list(os.environ):
        if key.startswith("IVR_") and not key.startswith("IVR_TEST_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("IVR_DATA_DIR", str(tmp_path))
    return monkeypatch


@pytest.mark.parametrize("name", ["IVR_VALIDATE_SIGNATURES", "IVR_TRUST_PROXY"])
@pytest.mark.parametrize("value", ["enabled", "disabled", "ja", "2", "truee"])
def test_unknown_boolean_stops_start_up(clean_env, name, value):
    clean_env.setenv(name, value)
    with pytest.raises(ConfigError) as err:
        load_config()
    message = str(err.value)
    assert name in message and repr(value) in message
    assert "1, true, yes, on" in message and "0, false, no, off" in message


@pytest.mark.parametrize("value,expected", [("1", True), ("TRUE", True), (" yes ", True), ("on", True),
                                            ("0", False), ("False", False), ("no", False), ("OFF", False),
                                            ("", True)])
def test_boolean_words(clean_env, value, expected):
    clean_env.setenv("IVR_VALIDATE_SIGNATURES", value)
    assert load_config().validate_signatures is expected


@pytest.mark.parametrize("name,value,message", [
    # JSON maps: a misspelt key would be ignored, a bad value would fail mid-call.
    ("IVR_SPEECH_ENGINES", '{"rus": "off"}', "IVR_SPEECH_ENGINES: unknown key 'rus'"),
    ("IVR_SPEECH_ENGINES", '{"ru": "Vosk"}', "unknown engine 'Vosk'"),
    ("IVR_VOICES", '{"en": ""}', "IVR_VOICES: en: must be a non-empty text"),
    ("IVR_VOICES", '["Polly.Joanna"]', "IVR_VOICES must be a JSON object"),
    ("IVR_SAY_LANGUAGES", '{"de": "de-DE"}', "unknown key 'de'"),
    ("IVR_COUNTRY_LANGUAGES", '{"373": "md"}', "IVR_COUNTRY_LANGUAGES: 373: must be one of ro, ru, uk, en"),
    ("IVR_COUNTRY_LANGUAGES", '{"+373": "ro"}', "unknown key '\\+373'"),
    ("IVR_DAILY_LIMITS", '{"water": "5"}', "IVR_DAILY_LIMITS: unknown key 'water'"),
    ("IVR_DAILY_LIMITS", '{"gas": "lots"}', "gas: must be a number"),
    ("IVR_DAILY_LIMITS", '{"gas": -1}', "gas: must be a positive number"),
    # Numbers: out of range, or NaN (every comparison with it is false).
    ("IVR_CONFIDENCE_ACCEPT", "nan", "IVR_CONFIDENCE_ACCEPT must be a number from 0.0 to 1.0"),
    ("IVR_CONFIDENCE_ACCEPT", "85", "IVR_CONFIDENCE_ACCEPT must be a number from 0.0 to 1.0"),
    ("IVR_CONFIDENCE_REVIEW", "0.9", "IVR_CONFIDENCE_REVIEW \\(0.9\\) must not be above"),
    ("IVR_MAX_TRIES", "0", "IVR_MAX_TRIES must be an integer from 1"),
    ("IVR_RECORDING_FETCH_BUDGET", "20", "IVR_RECORDING_FETCH_BUDGET must be a number from 0.5 to 12.0"),
    ("IVR_SESSION_MINUTES", "-5", "IVR_SESSION_MINUTES must be an integer from 1"),
    ("IVR_RECORDINGS_KEEP_DAYS", "0", "IVR_RECORDINGS_KEEP_DAYS must be an integer from 1 to 3650, got '0'"),
    ("IVR_RECORDINGS_KEEP_DAYS", "90d", "IVR_RECORDINGS_KEEP_DAYS must be an integer, got '90d'"),
    ("IVR_RECORDINGS_KEEP_DAYS", "99999", "IVR_RECORDINGS_KEEP_DAYS must be an integer from 1 to 3650"),
    # URLs: a prefix that matches other hosts, plain http with credentials, not a URL at all.
    ("IVR_RECORDING_URL_PREFIXES", "https://api.twilio.com", "must end with '/'"),
    ("IVR_RECORDING_URL_PREFIXES", "https://", "must be an absolute http:// or https:// URL with a host"),
    ("IVR_RECORDING_URL_PREFIXES", "http://api.twilio.com/", "must be https"),
    ("IVR_RECORDING_URL_PREFIXES", " , ", "lists no URL"),
    ("IVR_PUBLIC_URL", "ivr.example.org", "IVR_PUBLIC_URL: must be an absolute http:// or https:// URL"),
    ("IVR_PUBLIC_URL", "https://ivr.example.org/?x=1", "must not carry a query"),
    ("IVR_DATABASE_URL", "postgres//nohost", "IVR_DATABASE_URL is not a database URL"),
    ("IVR_DATABASE_URL", "mysql://u@h/db", "use sqlite:/// or postgresql://"),
    # Others.
    ("IVR_OPERATOR_NUMBER", "022 999 999", "IVR_OPERATOR_NUMBER must be an international number"),
    ("IVR_OPERATOR_NUMBER", "+1", "IVR_OPERATOR_NUMBER must be an international number"),
    ("IVR_TWILIO_ACCOUNT_SID", "my-account", "IVR_TWILIO_ACCOUNT_SID must be AC followed by 32"),
    ("IVR_CONSOLE_PHONE_REGION", "Moldova", "IVR_CONSOLE_PHONE_REGION must be a two-letter country code"),
    ("IVR_PROMPTS_DIR", "/nonexistent/prompts", "IVR_PROMPTS_DIR: no such folder"),
])
def test_every_setting_fails_closed(clean_env, name, value, message):
    clean_env.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        load_config()


def test_good_values_are_accepted(clean_env):
    clean_env.setenv("IVR_PUBLIC_URL", "https://ivr.example.org")
    clean_env.setenv("IVR_RECORDING_URL_PREFIXES", "https://api.twilio.com/, http://127.0.0.1:8080/rec/")
    clean_env.setenv("IVR_OPERATOR_NUMBER", "+373 22 999 999")
    clean_env.setenv("IVR_COUNTRY_LANGUAGES", '{"40": "ro", "*": "ru"}')
    clean_env.setenv("IVR_DAILY_LIMITS", '{"gas": 12.5}')
    clean_env.setenv("IVR_CONSOLE_PHONE_REGION", "ua")
    clean_env.setenv("IVR_DATABASE_URL", "postgresql://ivr:secret@db.internal/ivr")
    cfg = load_config()
    assert cfg.recording_url_prefixes == ("https://api.twilio.com/", "http://127.0.0.1:8080/rec/")
    assert cfg.operator_number == "+37322999999"
    assert cfg.country_languages["40"] == "ro" and cfg.country_languages["*"] == "ru"
    assert cfg.daily_limit("gas") == 12.5 and cfg.console_phone_region == "UA"
    assert cfg.recordings_keep_days == 90
    clean_env.setenv("IVR_RECORDINGS_KEEP_DAYS", "30")
    assert load_config().recordings_keep_days == 30


def test_misspelt_variable_is_named_in_a_warning(clean_env, caplog):
    clean_env.setenv("IVR_VALIDATE_SIGNATURE", "0")
    clean_env.setenv("IVR_TEST_ANYTHING", "1")  # the test suite's own variables are not settings
    with caplog.at_level("WARNING", logger="ivr.config"):
        load_config()
    warning = " ".join(r.getMessage() for r in caplog.records)
    assert "IVR_VALIDATE_SIGNATURE" in warning and "IVR_TEST_ANYTHING" not in warning


def test_signatures_off_warns_at_start_up_and_on_every_request(clean_env, tmp_path, caplog):
    from ivr.app import create_app
    from readings_store.db import upgrade

    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    upgrade(url)
    clean_env.setenv("IVR_DATABASE_URL", url)
    clean_env.setenv("IVR_VALIDATE_SIGNATURES", "off")
    with caplog.at_level("WARNING"):
        app = create_app()
        assert sum("IVR_VALIDATE_SIGNATURES is off" in r.getMessage() for r in caplog.records) == 1
        client = app.test_client()
        for _ in range(2):
            assert client.post("/voice/status", data={"CallSid": "CA" + "a" * 32, "CallStatus": "ringing"}).status_code == 204
    warnings = [r for r in caplog.records if "IVR_VALIDATE_SIGNATURES is off" in r.getMessage()]
    assert len(warnings) == 3 and all(r.levelname == "WARNING" for r in warnings)
    assert "/voice/status" in warnings[-1].getMessage()


def test_a_missing_auth_token_is_an_error_at_start_up(clean_env, tmp_path, caplog):
    """Signatures on and no token: every Twilio request will get 403, which the log says once at
    start-up instead of only per refused request."""
    from ivr.app import create_app
    from readings_store.db import upgrade

    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    upgrade(url)
    clean_env.setenv("IVR_DATABASE_URL", url)
    with caplog.at_level("WARNING"):
        create_app()
    errors = [r for r in caplog.records if "IVR_TWILIO_AUTH_TOKEN is not set" in r.getMessage()]
    assert len(errors) == 1 and errors[0].levelname == "ERROR"
    caplog.clear()
    clean_env.setenv("IVR_TWILIO_AUTH_TOKEN", "a" * 32)
    with caplog.at_level("WARNING"):
        create_app()
    assert not [r for r in caplog.records if "IVR_TWILIO_AUTH_TOKEN" in r.getMessage()]
