"""All configuration, read from ``IVR_*`` environment variables in this one place.

Every setting has an embedded default so ``ivr serve`` works on a fresh machine; production
overrides them in the environment. Secrets (Twilio auth token, secret key) have no usable
default outside development and are never logged.
"""
from __future__ import annotations

import ipaddress
import json
import logging
import math
import os
import re
import secrets
from dataclasses import dataclass, field, fields
from decimal import Decimal, InvalidOperation
from pathlib import Path
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

PREFIX = "IVR_"
LANGUAGES = ("ro", "ru", "uk", "en")

DEFAULT_VOICES = {"ro": "Polly.Carmen", "ru": "Polly.Tatyana", "uk": "Google.uk-UA-Standard-A", "en": "Polly.Joanna"}
DEFAULT_SAY_LANGUAGES = {"ro": "ro-RO", "ru": "ru-RU", "uk": "uk-UA", "en": "en-US"}
# Country calling code -> default call language (first match wins; "*" is the fallback).
DEFAULT_COUNTRY_LANGUAGES = {"373": "ro", "380": "uk", "7": "ru", "*": "en"}
# Which recognizer serves speech steps per language: "vosk" (offline), "twilio" (<Gather input=speech>)
# or "off" (keypad only). Vosk has no Romanian model, so Romanian uses Twilio's recognizer.
DEFAULT_SPEECH_ENGINES = {"ro": "twilio", "ru": "vosk", "uk": "vosk", "en": "vosk"}
SPEECH_ENGINES = ("vosk", "twilio", "off")
# Highest plausible consumption per day, per utility (kWh, m³, m³, m³, Gcal).
DEFAULT_DAILY_LIMITS = {
    "electricity": "200",
    "cold_water": "5",
    "hot_water": "3",
    "gas": "30",
    "heat": "5",
}


# Every name read through _env, so that an IVR_ variable nobody reads (a typo) can be named.
_READ: set[str] = set()
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


def _env(name: str, default: str | None = None) -> str | None:
    _READ.add(PREFIX + name)
    return os.environ.get(PREFIX + name, default)


def _env_json(name: str, default: dict, *, keys=None, check=None) -> dict:
    """A JSON object merged over *default*. ``keys``: the names allowed (anything else is a typo
    that would be silently ignored); ``check(value)``: an error message for a bad value, or None."""
    raw = _env(name)
    if not raw:
        return dict(default)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{PREFIX}{name} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ConfigError(f"{PREFIX}{name} must be a JSON object")
    for key, item in value.items():
        if keys is not None and not (keys(key) if callable(keys) else key in keys):
            allowed = "a country calling code or '*'" if callable(keys) else ", ".join(sorted(keys))
            raise ConfigError(f"{PREFIX}{name}: unknown key {key!r}; allowed: {allowed}")
        problem = check(item) if check else None
        if problem:
            raise ConfigError(f"{PREFIX}{name}: {key}: {problem}, got {item!r}")
    merged = dict(default)
    merged.update(value)
    return merged


def _env_number(name: str, default, kind=int, *, low=None, high=None):
    """An int (or, with kind=float, a finite number) in [low, high]; anything else is a clear error."""
    raw = _env(name)
    if raw is None or raw == "":
        return default
    what = "an integer" if kind is int else "a number"
    try:
        value = kind(raw)
    except ValueError as exc:
        raise ConfigError(f"{PREFIX}{name} must be {what}, got {raw!r}") from exc
    # float("nan") parses, and every comparison with it is false: a threshold that never applies.
    if (kind is float and not math.isfinite(value)) or (low is not None and value < low) \
            or (high is not None and value > high):
        bounds = f"from {low}" + (f" to {high}" if high is not None else "")
        raise ConfigError(f"{PREFIX}{name} must be {what} {bounds}, got {raw!r}")
    return value


def _env_bool(name: str, default: bool) -> bool:
    """A yes/no setting. Anything but the listed words stops start-up: reading an unknown word as
    "no" would, for IVR_VALIDATE_SIGNATURES=enabled, silently turn the signature check off."""
    raw = _env(name)
    if raw is None or raw.strip() == "":
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigError(f"{PREFIX}{name} must be one of {', '.join(TRUE_WORDS)} (on) or {', '.join(FALSE_WORDS)} "
                      f"(off), got {raw!r}")


def _env_url(name: str, *, prefix: bool = False) -> str | None:
    """An absolute http(s) URL with a host and no query or fragment. With ``prefix`` (a URL others
    must start with) it must also end with "/": "https://api.twilio.com" would match
    "https://api.twilio.com.example.net/"."""
    raw = _env(name)
    if raw is None or raw.strip() == "":
        return None
    problem = _url_problem(raw.strip(), prefix=prefix)
    if problem:
        raise ConfigError(f"{PREFIX}{name}: {problem}, got {raw!r}")
    return raw.strip()


def _media_url() -> str | None:
    """``IVR_MEDIA_URL``: the public ``wss://`` URL of the media endpoint, or None."""
    raw = (_env("MEDIA_URL") or "").strip()
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme != "wss" or not parts.hostname or parts.query or parts.fragment or parts.username:
        raise ConfigError(f"{PREFIX}MEDIA_URL must be a wss:// URL with a host and no query, got {raw!r}")
    return raw


# How a Vosk language hears a spoken answer: over a Twilio Media Stream while it is spoken, or
# recorded with <Record> and recognised afterwards. A call whose stream the media endpoint refused
# is heard with the record transport from then on (``Call.speech_transport``).
STREAM_TRANSPORT, RECORD_TRANSPORT = "stream", "record"


def _speech_transport(media_url: str | None) -> str:
    """``IVR_SPEECH_TRANSPORT``: stream (the default with a media URL) or record (without one)."""
    raw = (_env("SPEECH_TRANSPORT") or "").strip().lower()
    if not raw:
        return STREAM_TRANSPORT if media_url else RECORD_TRANSPORT
    if raw not in (STREAM_TRANSPORT, RECORD_TRANSPORT):
        raise ConfigError(f"{PREFIX}SPEECH_TRANSPORT must be stream or record, got {raw!r}")
    if raw == "stream" and not media_url:
        raise ConfigError(f"{PREFIX}SPEECH_TRANSPORT=stream needs {PREFIX}MEDIA_URL (wss://<host>/voice/stream)")
    return raw


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def _url_problem(url: str, *, prefix: bool) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an absolute http:// or https:// URL with a host"
    if parts.query or parts.fragment or parts.username or parts.password:
        return "must not carry a query, fragment or credentials"
    if prefix:
        if not parts.path.endswith("/"):
            return "must end with '/' (a prefix without it matches other hosts)"
        if parts.scheme != "https" and parts.hostname not in LOOPBACK_HOSTS:
            # The Twilio credentials go with every recording fetch: never in clear text.
            return "must be https (plain http only for a local test server)"
    return None


def _positive_decimal(value) -> str | None:
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return "must be a number"
    return None if number.is_finite() and number > 0 else "must be a positive number"


def _text(value) -> str | None:
    return None if isinstance(value, str) and value.strip() else "must be a non-empty text"


def _language(value) -> str | None:
    return None if value in LANGUAGES else f"must be one of {', '.join(LANGUAGES)}"


def _engine(value) -> str | None:
    return None if value in SPEECH_ENGINES else f"unknown engine {value!r}; allowed: {', '.join(SPEECH_ENGINES)}"


def _country_key(key: str) -> bool:
    return key == "*" or bool(re.fullmatch(r"[1-9][0-9]{0,2}", key))


LOG_FORMATS = ("json", "text")
DEFAULT_METRICS_ALLOW = ("127.0.0.0/8", "::1/128")


def log_format() -> str | None:
    """IVR_LOG_FORMAT: "json", "text", or None when unset (each server picks its default).
    Read on its own too, by gunicorn.conf.py, before the app (and its configuration) is loaded."""
    raw = (_env("LOG_FORMAT") or "").strip().lower()
    if not raw:
        return None
    if raw not in LOG_FORMATS:
        raise ConfigError(f"{PREFIX}LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, got {raw!r}")
    return raw


def access_log() -> bool:
    """IVR_ACCESS_LOG: whether gunicorn logs a line per request (default yes). Read on its own,
    by gunicorn.conf.py, before the app is loaded."""
    return _env_bool("ACCESS_LOG", True)


def _metrics_allow() -> tuple:
    """IVR_METRICS_ALLOW: comma-separated networks (CIDR, or single addresses) that may read
    /metrics without the token; "none" for nobody (token only). Default: this host (loopback)."""
    raw = _env("METRICS_ALLOW")
    if raw is None or raw.strip() == "":
        return DEFAULT_METRICS_ALLOW
    if raw.strip().lower() == "none":
        return ()
    networks = []
    for item in (part.strip() for part in raw.split(",")):
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError as exc:
            raise ConfigError(f"{PREFIX}METRICS_ALLOW: {item!r} is not a network such as 10.0.0.0/8 or an "
                              f"address ({exc})") from exc
    return tuple(networks)


def _metrics_token() -> str | None:
    token = (_env("METRICS_TOKEN") or "").strip() or None
    if token is not None and (len(token) < 16 or not token.isascii() or not token.isprintable()):
        raise ConfigError(f"{PREFIX}METRICS_TOKEN must be at least 16 printable ASCII characters")
    return token


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
    # Seconds a Twilio webhook may wait for a free web worker thread (under gunicorn): one that
    # waited longer is answered at once with the fallback's words instead of being served late.
    queue_wait: float = 4.0
    # Recordings are fetched only from URLs under these prefixes (Twilio's API), never elsewhere.
    recording_url_prefixes: tuple = ("https://api.twilio.com/",)
    recording_max_bytes: int = 5 * 1024 * 1024  # a 20 s <Record> is about 320 KB
    # Callers' recordings are deleted this many days after their review item is decided or, for a
    # call without one, after the call (`ivr recordings purge`, run by deploy/ivr-sms.timer).
    recordings_keep_days: int = 90
    session_minutes: int = 30
    # Country (ISO 3166) for phone numbers typed without a country code in the operator console.
    console_phone_region: str = "MD"
    # Secrets not given in the environment but generated and kept in the data folder
    # ("secret_key", "twilio_auth_token"): fine on one machine, not a production set-up.
    generated_secrets: tuple = ()
    # Values refused as below the previous reading or implausible, per account and billing period,
    # after which the line stops saying why and keeps every value for an operator (anti-probing).
    probe_limit: int = 5
    sms_per_hour: int = 10  # texts a number may send to the SMS line in an hour; more get no reply
    sms_rate_per_second: float = 1.0  # `ivr sms send-pending` sends at most this many messages a second
    sms_from: str | None = None  # the number (E.164) or Messaging Service SID (MG...) receipts are sent from
    call_from: str | None = None  # the number (E.164) reminder calls come from (`ivr remind --call`)
    call_rate_per_second: float = 0.2  # `ivr sms send-pending` places at most this many reminder calls a second
    stream_trailing_silence_ms: int = 600  # media endpoint: silence after the last word that ends an answer
    stream_alternatives: int = 3  # media endpoint: n-best list per answer (0 halves recognition CPU)
    # media endpoint: of a silence after a word, how much Vosk decodes at once (the rest only if
    # the caller speaks again), so the silence that ends an answer costs little
    stream_decoded_silence_ms: int = 200
    media_host: str = "127.0.0.1"  # `ivr media-server` listens here...
    media_port: int = 8765  # ...on this port (wss://<public host>/voice/stream behind the proxy)
    media_handlers: str = "ivr.voice.stream_line:handlers"  # module:factory returning ivr.voice.media_server.Handlers
    # Streams one media server recognises at once, more are moved to the record transport;
    # None: 25 per CPU core (media_server.STREAMS_PER_CORE), 0: no limit.
    media_max_streams: int | None = None
    # A stream whose audio waits this long for recognition is moved to the record transport
    # (and new streams refused meanwhile); 0: never.
    media_shed_after_ms: int = 1000
    # GET /metrics: a bearer token, and/or the networks that may scrape without one.
    metrics_token: str | None = None
    metrics_allow: tuple = DEFAULT_METRICS_ALLOW
    # "json" or "text"; None: the server's own default (json under gunicorn, text for `ivr serve`).
    log_format: str | None = None
    # gunicorn's line per request (nginx in front logs the same requests).
    access_log: bool = True
    # Public wss:// URL of the media endpoint (…/voice/stream) Twilio streams the caller's audio to.
    media_url: str | None = None
    # How Vosk languages hear a spoken answer: "stream" (Media Streams, recognised while spoken)
    # or "record" (<Record>, fetched and recognised after the caller stops).
    speech_transport: str = "record"
    # A call without a turn for this long, and never reported ended by Twilio (its status callback
    # was lost), is ended by `ivr calls sweep`: outcome, end time and SMS receipt as at a hang-up.
    call_idle_minutes: int = 60

    def may_record(self, lang: str | None = None) -> bool:
        """Whether a caller's spoken answers may be recorded (kept for operators): in ``lang``, or, with
        None, in any language a caller may choose. Only Vosk keeps the audio it hears."""
        engines = [self.speech_engines.get(lang)] if lang is not None else list(self.speech_engines.values())
        return "vosk" in engines

    def daily_limit(self, utility: str) -> Decimal:
        return Decimal(str(self.daily_limits[utility]))

    def redacted(self) -> dict:
        """Configuration safe to print: secrets shown only as set/unset."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("twilio_auth_token", "secret_key", "metrics_token"):
                value = "<set>" if value else "<unset>"
            out[f.name] = str(value) if isinstance(value, Path) else value
        return out


DEV_TOKEN_FILE = "dev-twilio-auth-token"
SECRET_KEY_FILE = "secret-key"


def _stored_secret(path: Path, nbytes: int) -> str:
    """A random secret kept in *path* (mode 0600), created on first use. Every process that reads
    the same data folder gets the same value: each gunicorn worker making up its own key would
    reject the others' session cookies, CSRF tokens and API cursors. Creation is atomic (a complete
    file is hard-linked into place), so workers starting at once still agree."""
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(nbytes))
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # another process won the race: use its secret
        finally:
            tmp.unlink()
    value = path.read_text().strip()
    if not value:
        raise ConfigError(f"{path} is empty: delete it to have a new secret generated")
    return value


def ensure_dev_auth_token(data_dir: Path) -> str:
    """A random local stand-in for the Twilio auth token, so ``ivr serve`` and ``ivr call`` work on
    a fresh machine. Real Twilio requests fail its check until IVR_TWILIO_AUTH_TOKEN is set."""
    return _stored_secret(data_dir / DEV_TOKEN_FILE, 16)


def _secret_key(data_dir: Path) -> tuple[str, bool]:
    """(key, generated): IVR_SECRET_KEY, else the key kept in the data folder."""
    key = _env("SECRET_KEY")
    if key:
        return key, False
    try:
        return _stored_secret(data_dir / SECRET_KEY_FILE, 32), True
    except OSError as exc:
        raise ConfigError(f"{PREFIX}SECRET_KEY is not set and no key could be kept in {data_dir} ({exc}): "
                          f"set {PREFIX}SECRET_KEY") from exc


def _operator_number(raw: str | None) -> str | None:
    if not raw:
        return None
    from readings_store.phones import e164

    number = e164(raw)
    if number is None:
        raise ConfigError(f"{PREFIX}OPERATOR_NUMBER must be an international number (+...) of a possible length, "
                          f"got {raw!r}")
    return number


def _database_url(default: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    url = _env("DATABASE_URL") or default
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"{PREFIX}DATABASE_URL is not a database URL (e.g. postgresql://user:pass@host/db)") from exc
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(f"{PREFIX}DATABASE_URL: use sqlite:/// or postgresql://, got {parsed.drivername}://")
    return url


def _console_phone_region() -> str:
    import phonenumbers

    region = (_env("CONSOLE_PHONE_REGION") or "MD").strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigError(f"{PREFIX}CONSOLE_PHONE_REGION must be a two-letter country code such as MD, got {region!r}")
    return region


def _prompts_dir() -> Path | None:
    raw = _env("PROMPTS_DIR")
    if not raw:
        return None
    path = Path(raw)
    if not path.is_dir():
        raise ConfigError(f"{PREFIX}PROMPTS_DIR: no such folder {raw!r}")
    return path


def _recording_url_prefixes() -> tuple:
    raw = _env("RECORDING_URL_PREFIXES") or "https://api.twilio.com/"
    prefixes = tuple(p.strip() for p in raw.split(",") if p.strip())
    if not prefixes:
        raise ConfigError(f"{PREFIX}RECORDING_URL_PREFIXES lists no URL")
    for prefix in prefixes:
        problem = _url_problem(prefix, prefix=True)
        if problem:
            raise ConfigError(f"{PREFIX}RECORDING_URL_PREFIXES: {prefix!r} {problem}")
    return prefixes


def _account_sid() -> str | None:
    sid = _env("TWILIO_ACCOUNT_SID") or None
    if sid and not re.fullmatch(r"AC[0-9a-fA-F]{32}", sid):
        raise ConfigError(f"{PREFIX}TWILIO_ACCOUNT_SID must be AC followed by 32 hexadecimal digits")
    return sid


def _warn_unread_variables() -> None:
    """An IVR_ variable nothing reads is most likely a misspelt setting that is being ignored."""
    unread = sorted(k for k in os.environ if k.startswith(PREFIX) and k not in _READ
                    and not k.startswith(PREFIX + "TEST_"))
    if unread:
        log.warning("ignoring unknown setting(s) %s: check the spelling (see README, Configuration)",
                    ", ".join(unread))


def data_folder() -> Path:
    """IVR_DATA_DIR (default ./var), absolute."""
    return Path(_env("DATA_DIR") or "var").resolve()


def _media_shed_after_ms() -> int:
    """``IVR_MEDIA_SHED_AFTER_MS``: 0 (never shed) or 100..60000; less would shed a healthy server
    (a batch of audio takes a few milliseconds to decode, a busy moment a few tens)."""
    value = _env_number("MEDIA_SHED_AFTER_MS", 1000, low=0, high=60_000)
    if 0 < value < 100:
        raise ConfigError(f"{PREFIX}MEDIA_SHED_AFTER_MS must be 0 (never) or from 100 to 60000, got {value}")
    return value


def _sms_from() -> str | None:
    value = _env("SMS_FROM") or None
    if value is not None and not re.fullmatch(r"\+[1-9][0-9]{6,14}|MG[0-9a-fA-F]{32}", value):
        raise ConfigError(f"{PREFIX}SMS_FROM must be a phone number in E.164 form (+37322555000) or a "
                          f"Messaging Service SID (MG and 32 hexadecimal digits), got {value!r}")
    return value


def _call_from() -> str | None:
    value = _env("CALL_FROM") or None
    if value is not None and not re.fullmatch(r"\+[1-9][0-9]{6,14}", value):
        raise ConfigError(f"{PREFIX}CALL_FROM must be a phone number of your Twilio account in E.164 form "
                          f"(+37322555000), got {value!r}")
    return value


def load_config(**overrides) -> Config:
    data_dir = data_folder()
    dev_token = data_dir / DEV_TOKEN_FILE
    auth_token = _env("TWILIO_AUTH_TOKEN") or None
    generated = []
    if not auth_token and dev_token.exists():
        auth_token = dev_token.read_text().strip()
        generated.append("twilio_auth_token")
    _READ.add(PREFIX + "SECRET_KEY")  # a known setting even when an override stands in for it
    secret_key, key_generated = (overrides["secret_key"], False) if overrides.get("secret_key") \
        else _secret_key(data_dir)
    if key_generated:
        generated.append("secret_key")
    cfg = Config(
        database_url=_database_url(f"sqlite:///{data_dir / 'ivr.sqlite3'}"),
        data_dir=data_dir,
        public_url=_env_url("PUBLIC_URL"),
        twilio_account_sid=_account_sid(),
        twilio_auth_token=auth_token,
        validate_signatures=_env_bool("VALIDATE_SIGNATURES", True),
        secret_key=secret_key,
        operator_number=_operator_number(_env("OPERATOR_NUMBER")),
        voices=_env_json("VOICES", DEFAULT_VOICES, keys=LANGUAGES, check=_text),
        say_languages=_env_json("SAY_LANGUAGES", DEFAULT_SAY_LANGUAGES, keys=LANGUAGES, check=_text),
        country_languages=_env_json("COUNTRY_LANGUAGES", DEFAULT_COUNTRY_LANGUAGES, keys=_country_key,
                                    check=_language),
        speech_engines=_env_json("SPEECH_ENGINES", DEFAULT_SPEECH_ENGINES, keys=LANGUAGES, check=_engine),
        daily_limits=_env_json("DAILY_LIMITS", DEFAULT_DAILY_LIMITS, keys=tuple(DEFAULT_DAILY_LIMITS),
                               check=_positive_decimal),
        max_tries=_env_number("MAX_TRIES", 3, low=1, high=10),
        models_dir=Path(_env("MODELS_DIR") or str(data_dir / "models")),
        recordings_dir=Path(_env("RECORDINGS_DIR") or str(data_dir / "recordings")),
        prompts_dir=_prompts_dir(),
        trust_proxy=_env_bool("TRUST_PROXY", False),
        confidence_accept=_env_number("CONFIDENCE_ACCEPT", 0.85, float, low=0.0, high=1.0),
        confidence_review=_env_number("CONFIDENCE_REVIEW", 0.5, float, low=0.0, high=1.0),
        # Twilio waits 15 s for an answer; the fetch must leave time to recognise and reply.
        recording_fetch_budget=_env_number("RECORDING_FETCH_BUDGET", 8.0, float, low=0.5, high=12.0),
        recording_url_prefixes=_recording_url_prefixes(),
        # Twilio gives up after 15 s: a webhook queued longer than this is answered, not served late.
        queue_wait=_env_number("QUEUE_WAIT", 4.0, float, low=0.5, high=12.0),
        session_minutes=_env_number("SESSION_MINUTES", 30, low=1, high=24 * 60),
        console_phone_region=_console_phone_region(),
        generated_secrets=tuple(generated),
        recording_max_bytes=_env_number("RECORDING_MAX_BYTES", 5 * 1024 * 1024, low=1),
        recordings_keep_days=_env_number("RECORDINGS_KEEP_DAYS", 90, low=1, high=3650),
        probe_limit=_env_number("PROBE_LIMIT", 5),
        sms_per_hour=_env_number("SMS_PER_HOUR", 10, low=1, high=10000),
        sms_from=_sms_from(),
        sms_rate_per_second=_env_number("SMS_RATE_PER_SECOND", 1.0, float, low=0.01, high=100.0),
        call_from=_call_from(),
        call_rate_per_second=_env_number("CALL_RATE_PER_SECOND", 0.2, float, low=0.01, high=10.0),
        stream_trailing_silence_ms=_env_number("STREAM_TRAILING_SILENCE_MS", 600, low=100, high=5000),
        stream_alternatives=_env_number("STREAM_ALTERNATIVES", 3, low=0, high=10),
        stream_decoded_silence_ms=_env_number("STREAM_DECODED_SILENCE_MS", 200, low=0, high=5000),
        media_host=_env("MEDIA_HOST") or "127.0.0.1",
        media_port=_env_number("MEDIA_PORT", 8765, low=0, high=65535),
        media_handlers=_env("MEDIA_HANDLERS") or "ivr.voice.stream_line:handlers",
        media_max_streams=_env_number("MEDIA_MAX_STREAMS", None, low=0, high=100_000),
        media_shed_after_ms=_media_shed_after_ms(),
        metrics_token=_metrics_token(),
        metrics_allow=_metrics_allow(),
        log_format=log_format(),
        access_log=access_log(),
        media_url=(media_url := _media_url()),
        speech_transport=_speech_transport(media_url),
        call_idle_minutes=_env_number("CALL_IDLE_MINUTES", 60, low=5, high=24 * 60),
    )
    for key, value in overrides.items():
        if not hasattr(cfg, key):
            raise ConfigError(f"unknown setting {key}")
        setattr(cfg, key, value)
        if key in cfg.generated_secrets:
            cfg.generated_secrets = tuple(name for name in cfg.generated_secrets if name != key)
    if not isinstance(cfg.probe_limit, int) or cfg.probe_limit < 1:
        raise ConfigError(f"{PREFIX}PROBE_LIMIT must be a whole number of at least 1, got {cfg.probe_limit!r}")
    for lang, engine in cfg.speech_engines.items():
        if engine not in SPEECH_ENGINES:
            raise ConfigError(f"{PREFIX}SPEECH_ENGINES: {lang} has unknown engine {engine!r}")
    if cfg.confidence_review > cfg.confidence_accept:
        raise ConfigError(f"{PREFIX}CONFIDENCE_REVIEW ({cfg.confidence_review}) must not be above "
                          f"{PREFIX}CONFIDENCE_ACCEPT ({cfg.confidence_accept})")
    _warn_unread_variables()
    return cfg
