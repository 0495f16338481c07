"""All configuration, read from ``IVR_*`` environment variables in this one place.

Every setting has an embedded default so ``ivr serve`` works on a fresh machine; production
overrides them in the environment. Secrets (Twilio auth token, secret key) have no usable
default outside development and are never logged.
"""
from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field, fields
from decimal import Decimal
from pathlib import Path

PREFIX = "IVR_"
LANGUAGES = ("ro", "ru", "uk", "en")

DEFAULT_VOICES = {"ro": "Polly.Carmen", "ru": "Polly.Tatyana", "uk": "Google.uk-UA-Standard-A", "en": "Polly.Joanna"}
DEFAULT_SAY_LANGUAGES = {"ro": "ro-RO", "ru": "ru-RU", "uk": "uk-UA", "en": "en-US"}
# Country calling code -> default call language (first match wins; "*" is the fallback).
DEFAULT_COUNTRY_LANGUAGES = {"373": "ro", "380": "uk", "7": "ru", "*": "en"}
# Which recognizer serves speech steps per language: "vosk" (offline), "twilio" (<Gather input=speech>)
# or "off" (keypad only). Vosk has no Romanian model, so Romanian uses Twilio's recognizer.
DEFAULT_SPEECH_ENGINES = {"ro": "twilio", "ru": "vosk", "uk": "vosk", "en": "vosk"}
# Highest plausible consumption per day, per utility (kWh, m³, m³, m³, Gcal).
DEFAULT_DAILY_LIMITS = {
    "electricity": "200",
    "cold_water": "5",
    "hot_water": "3",
    "gas": "30",
    "heat": "5",
}


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(PREFIX + name, default)


def _env_json(name: str, default: dict) -> dict:
    raw = _env(name)
    if not raw:
        return dict(default)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{PREFIX}{name} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ConfigError(f"{PREFIX}{name} must be a JSON object")
    merged = dict(default)
    merged.update(value)
    return merged


def _env_number(name: str, default, kind=int):
    """An int (or, with kind=float, a number) setting; a malformed value is a clear error."""
    raw = _env(name)
    if raw is None or raw == "":
        return default
    try:
        return kind(raw)
    except ValueError as exc:
        what = "an integer" if kind is int else "a number"
        raise ConfigError(f"{PREFIX}{name} must be {what}, got {raw!r}") from exc


def _env_bool(name: str, default: bool) -> bool:
    raw = _env(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in ("1", "true", "yes", "on")


class ConfigError(ValueError):
    """A configuration value is missing or malformed."""


@dataclass
class Config:
    database_url: str
    data_dir: Path
    public_url: str | None
    twilio_account_sid: str | None
    twilio_auth_token: str | None
    validate_signatures: bool
    secret_key: str
    operator_number: str | None
    voices: dict = field(default_factory=dict)
    say_languages: dict = field(default_factory=dict)
    country_languages: dict = field(default_factory=dict)
    speech_engines: dict = field(default_factory=dict)
    daily_limits: dict = field(default_factory=dict)
    max_tries: int = 3
    models_dir: Path = Path("models")
    recordings_dir: Path = Path("recordings")
    prompts_dir: Path | None = None
    trust_proxy: bool = False
    # Speech confidence thresholds (see speech/confidence.py for how they combine).
    confidence_accept: float = 0.85
    confidence_review: float = 0.5
    recording_fetch_budget: float = 8.0
    # Recordings are fetched only from URLs under these prefixes (Twilio's API), never elsewhere.
    recording_url_prefixes: tuple = ("https://api.twilio.com/",)
    session_minutes: int = 30
    # Country (ISO 3166) for phone numbers typed without a country code in the operator console.
    console_phone_region: str = "MD"
    # Values refused as below the previous reading or implausible, per account and billing period,
    # after which the line stops saying why and keeps every value for an operator (anti-probing).
    probe_limit: int = 5

    def daily_limit(self, utility: str) -> Decimal:
        return Decimal(str(self.daily_limits[utility]))

    def redacted(self) -> dict:
        """Configuration safe to print: secrets shown only as set/unset."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("twilio_auth_token", "secret_key"):
                value = "<set>" if value else "<unset>"
            out[f.name] = str(value) if isinstance(value, Path) else value
        return out


DEV_TOKEN_FILE = "dev-twilio-auth-token"


def ensure_dev_auth_token(data_dir: Path) -> str:
    """A random local stand-in for the Twilio auth token, so ``ivr serve`` and ``ivr call`` work on
    a fresh machine. Real Twilio requests fail its check until IVR_TWILIO_AUTH_TOKEN is set."""
    path = data_dir / DEV_TOKEN_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(16))
        path.chmod(0o600)
    return path.read_text().strip()


def load_config(**overrides) -> Config:
    data_dir = Path(_env("DATA_DIR", "var")).resolve()
    dev_token = data_dir / DEV_TOKEN_FILE
    default_db = f"sqlite:///{data_dir / 'ivr.sqlite3'}"
    secret_key = _env("SECRET_KEY")
    if not secret_key:
        # Development default: random per process start is unsafe with several workers
        # (sessions would not survive), so production must set IVR_SECRET_KEY.
        secret_key = secrets.token_hex(32)
    prompts_dir = _env("PROMPTS_DIR")
    cfg = Config(
        database_url=_env("DATABASE_URL", default_db),
        data_dir=data_dir,
        public_url=(_env("PUBLIC_URL") or None),
        twilio_account_sid=_env("TWILIO_ACCOUNT_SID"),
        twilio_auth_token=_env("TWILIO_AUTH_TOKEN") or (dev_token.read_text().strip() if dev_token.exists() else None),
        validate_signatures=_env_bool("VALIDATE_SIGNATURES", True),
        secret_key=secret_key,
        operator_number=_env("OPERATOR_NUMBER") or None,
        voices=_env_json("VOICES", DEFAULT_VOICES),
        say_languages=_env_json("SAY_LANGUAGES", DEFAULT_SAY_LANGUAGES),
        country_languages=_env_json("COUNTRY_LANGUAGES", DEFAULT_COUNTRY_LANGUAGES),
        speech_engines=_env_json("SPEECH_ENGINES", DEFAULT_SPEECH_ENGINES),
        daily_limits=_env_json("DAILY_LIMITS", DEFAULT_DAILY_LIMITS),
        max_tries=_env_number("MAX_TRIES", 3),
        models_dir=Path(_env("MODELS_DIR", str(data_dir / "models"))),
        recordings_dir=Path(_env("RECORDINGS_DIR", str(data_dir / "recordings"))),
        prompts_dir=Path(prompts_dir) if prompts_dir else None,
        trust_proxy=_env_bool("TRUST_PROXY", False),
        confidence_accept=_env_number("CONFIDENCE_ACCEPT", 0.85, float),
        confidence_review=_env_number("CONFIDENCE_REVIEW", 0.5, float),
        recording_fetch_budget=_env_number("RECORDING_FETCH_BUDGET", 8.0, float),
        recording_url_prefixes=tuple(
            p.strip() for p in (_env("RECORDING_URL_PREFIXES") or "https://api.twilio.com/").split(",") if p.strip()
        ),
        session_minutes=_env_number("SESSION_MINUTES", 30),
        console_phone_region=(_env("CONSOLE_PHONE_REGION") or "MD").upper(),
        probe_limit=_env_number("PROBE_LIMIT", 5),
    )
    for key, value in overrides.items():
        if not hasattr(cfg, key):
            raise ConfigError(f"unknown setting {key}")
        setattr(cfg, key, value)
    if not isinstance(cfg.probe_limit, int) or cfg.probe_limit < 1:
        raise ConfigError(f"{PREFIX}PROBE_LIMIT must be a whole number of at least 1, got {cfg.probe_limit!r}")
    for lang, engine in cfg.speech_engines.items():
        if engine not in ("vosk", "twilio", "off"):
            raise ConfigError(f"{PREFIX}SPEECH_ENGINES: {lang} has unknown engine {engine!r}")
    return cfg
