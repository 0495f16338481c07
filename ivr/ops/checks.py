"""``ivr check``: what a deployer verifies before sending calls to an installation.

Each check returns one ``Result`` (a line with ✓ or ✗ and what was found). Nothing here changes
anything: the database is only read, models are not loaded (their word list is read from disk),
and the recordings folder is only probed with a temporary file that is removed at once.
"""
from __future__ import annotations

import shutil
import stat
from dataclasses import dataclass
from urllib.parse import urlsplit

import grammars

from ivr.ops import health
from ivr.config import PREFIX, Config


@dataclass
class Result:
    ok: bool
    name: str
    detail: str

    def line(self) -> str:
        return f"{'✓' if self.ok else '✗'} {self.name}: {self.detail}"


# What deploy/ivr.env.example puts where a real value must go.
PLACEHOLDER = "CHANGE-ME"


def grammar_vocabulary(lang: str) -> set[str]:
    """Every word the speech grammars of *lang* use (a model must know them all)."""
    return grammars.vocabulary(lang)


def region_name_words(engine, lang: str) -> set[str]:
    """The words of the region names a call in *lang* listens for (a model must know them too);
    none when the database cannot be read (the regions check says so)."""
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.orm import Session

    from readings_store.models import Region

    if engine is None:
        return set()
    try:
        with Session(engine) as session:
            names = [(r.names or {}).get(lang) for r in session.scalars(select(Region).where(Region.menu_key.is_not(None)))]
    except SQLAlchemyError:
        return set()
    return grammars.phrase_words(lang, [name for name in names if name])


def database(config: Config, engine) -> Result:
    """Reachable, and migrated to the newest schema (Alembic head)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy.exc import SQLAlchemyError

    from readings_store.db import alembic_config

    heads = set(ScriptDirectory.from_config(alembic_config(config.database_url)).get_heads())
    try:
        with engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:200]
        return Result(False, "database", f"cannot connect to {_safe_url(config.database_url)}: {reason}")
    where = _safe_url(config.database_url)
    if not current:
        return Result(False, "database", f"{where} has no schema: run `ivr db upgrade`")
    if current != heads:
        return Result(False, "database", f"{where} is at revision {', '.join(sorted(current))}, the newest is "
                                         f"{', '.join(sorted(heads))}: run `ivr db upgrade`")
    return Result(True, "database", f"{where} reachable, schema at the newest revision {', '.join(sorted(heads))}")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def secrets(config: Config) -> Result:
    """The Twilio auth token and the secret key come from the environment, not generated files."""
    problems = []
    if not config.twilio_auth_token:
        problems.append(f"{PREFIX}TWILIO_AUTH_TOKEN is not set (Twilio's requests are refused)")
    elif "twilio_auth_token" in config.generated_secrets:
        problems.append(f"{PREFIX}TWILIO_AUTH_TOKEN is not set (a local development token is used, "
                        "so Twilio's requests are refused)")
    for name, value in (("TWILIO_AUTH_TOKEN", config.twilio_auth_token), ("SECRET_KEY", config.secret_key)):
        if value and PLACEHOLDER in value:
            problems.append(f"{PREFIX}{name} is still the example's placeholder")
    if "secret_key" in config.generated_secrets:
        problems.append(f"{PREFIX}SECRET_KEY is not set (a key generated in {config.data_dir} is used; "
                        "other hosts would not share it)")
    if not config.validate_signatures:
        problems.append(f"{PREFIX}VALIDATE_SIGNATURES is off: anyone can post to the voice webhooks")
    if problems:
        return Result(False, "secrets", "; ".join(problems))
    return Result(True, "secrets", f"{PREFIX}TWILIO_AUTH_TOKEN and {PREFIX}SECRET_KEY are set")


def public_url(config: Config) -> Result:
    url = config.public_url
    if not url:
        return Result(False, "public URL", f"{PREFIX}PUBLIC_URL is not set (the https address Twilio calls)")
    if urlsplit(url).scheme != "https":
        return Result(False, "public URL", f"{url} is not https: Twilio's requests and the callers' data "
                                           "would cross the internet in clear text")
    return Result(True, "public URL", f"{url}")


def speech_transport(config: Config) -> Result:
    """Real-time speech moves live calls with Twilio's REST API: it needs the account's credentials
    and the public URL the calls are moved to (``ivr media-server`` refuses to start without them)."""
    if config.speech_transport != "stream":
        return Result(True, "speech transport", f"record (<Record>, recognised afterwards); set {PREFIX}MEDIA_URL "
                                                "for real-time speech")
    missing = [f"{PREFIX}{name}" for name, value in (("TWILIO_ACCOUNT_SID", config.twilio_account_sid),
                                                     ("TWILIO_AUTH_TOKEN", config.twilio_auth_token),
                                                     ("PUBLIC_URL", config.public_url)) if not value]
    if missing:
        return Result(False, "speech transport", f"stream needs {', '.join(missing)} to move live calls on")
    limit = config.media_max_streams
    limit_text = ("no stream limit" if limit == 0 else f"at most {limit} streams per media server" if limit
                  else "at most 25 streams per core per media server")
    return Result(True, "speech transport", f"stream via {config.media_url} ({limit_text}; run `ivr media-server` "
                                            "behind that URL)")


def outbound(config: Config) -> Result:
    """Receipts, text reminders and reminder calls go out through Twilio's REST API."""
    senders = [f"texts from {config.sms_from}"] if config.sms_from else []
    senders += [f"reminder calls from {config.call_from}"] if config.call_from else []
    if not senders:
        return Result(True, "texts and calls", f"off ({PREFIX}SMS_FROM and {PREFIX}CALL_FROM not set: no receipts "
                                               "or reminders)")
    missing = [f"{PREFIX}{name}" for name, value in (("TWILIO_ACCOUNT_SID", config.twilio_account_sid),
                                                     ("TWILIO_AUTH_TOKEN", config.twilio_auth_token)) if not value]
    if config.call_from and not config.public_url:
        missing.append(f"{PREFIX}PUBLIC_URL (where an answered reminder call is answered)")
    if missing:
        return Result(False, "texts and calls", f"{' and '.join(senders)} need {', '.join(missing)}")
    return Result(True, "texts and calls", f"{' and '.join(senders)}, sent by `ivr sms send-pending` "
                                           "(deploy/ivr-sms.timer)")


def regions(config: Config, engine) -> Result:
    """Every region has a menu key, a name and an operator to transfer to; the menu is not empty."""
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.orm import Session

    from readings_store.models import Region

    try:
        with Session(engine) as session:
            rows = session.scalars(select(Region)).all()
    except SQLAlchemyError:
        return Result(False, "regions", "not checked: the database cannot be read")
    rows.sort(key=lambda r: (r.menu_key is None, r.menu_key or 0, r.code))
    problems = []
    no_key = [r.code for r in rows if r.menu_key is None]
    if no_key:
        problems.append(f"without a menu key (callers cannot choose them): {', '.join(no_key)}")
    no_name = [r.code for r in rows if not (r.name or "").strip()]
    if no_name:
        problems.append(f"without a name: {', '.join(no_name)}")
    # A call listens for a region's name in its own language only: without one, speech callers
    # hear the name in another language and can choose the region by key only.
    heard = [lang for lang, engine in sorted(config.speech_engines.items()) if engine != "off"]
    for lang in heard:
        unnamed = [r.code for r in rows if r.menu_key is not None and not (r.names or {}).get(lang)]
        if unnamed:
            problems.append(f"without a name in {lang} (speech is on: callers can choose them by key only): "
                            f"{', '.join(unnamed)}; set one with `ivr regions set CODE --name-{lang} NAME`")
    if not config.operator_number:
        no_operator = [r.code for r in rows if not r.operator_number]
        if no_operator:
            problems.append(f"without an operator number, and {PREFIX}OPERATOR_NUMBER is not set: "
                            f"{', '.join(no_operator)}")
    offered = [r for r in rows if r.menu_key is not None]
    if not offered:
        problems.insert(0, "no region has a menu key: callers would hear an empty menu"
                        + ("" if rows else " (there are no regions; `ivr import` creates them)"))
    if problems:
        return Result(False, "regions", "; ".join(problems))
    named = f", named in {', '.join(heard)}" if heard else ""
    return Result(True, "regions", f"{len(offered)} in the menu, each with a name{named} and an operator number")


def speech_models(config: Config, engine=None) -> list[Result]:
    """One line per language whose engine is ``vosk``: installed, and knows every grammar word and
    every word of the region names the language's calls listen for (read through ``engine``)."""
    from speech.models import ModelError, ModelPool, looks_like_model, missing_words

    pool = ModelPool(config.models_dir)
    langs = sorted(lang for lang, engine in config.speech_engines.items() if engine == "vosk")
    if not langs:
        return [Result(True, "speech models", "no language uses Vosk")]
    results = []
    for lang in langs:
        name = f"speech model {lang}"
        path = pool.path(lang)
        if not looks_like_model(path):
            results.append(Result(False, name, f"not installed in {path}: run `ivr models download {lang}` "
                                               f"(or set {lang} to twilio or off in {PREFIX}SPEECH_ENGINES)"))
            continue
        words = grammar_vocabulary(lang) | region_name_words(engine, lang)
        try:
            missing = missing_words(path, words)
        except ModelError as exc:
            results.append(Result(False, name, str(exc)))
            continue
        if missing:
            shown = ", ".join(sorted(missing)[:10]) + (", …" if len(missing) > 10 else "")
            results.append(Result(False, name, f"{path} lacks {len(missing)} of {len(words)} grammar words, "
                                               f"which could never be recognised: {shown}"))
        else:
            results.append(Result(True, name, f"{path} knows all {len(words)} grammar words"))
    return results


def ffmpeg() -> Result:
    path = shutil.which("ffmpeg")
    if path is None:
        return Result(False, "ffmpeg", "not found on PATH (needed to decode callers' recordings): "
                                       "install it, e.g. `apt-get install ffmpeg`")
    return Result(True, "ffmpeg", path)


def recordings(config: Config) -> Result:
    """Callers' audio is personal data: the folder must be writable by us and closed to others."""
    folder = config.recordings_dir
    name = "recordings folder"
    if not folder.is_dir():
        return Result(False, name, f"{folder} does not exist: create it (mode 0700 or 0750) for the service user")
    mode = stat.S_IMODE(folder.stat().st_mode)
    state = health.recordings(config)  # the same test as /healthz: room for a recording, and a write
    if state == "full":
        return Result(False, name, f"{folder} is full: less room than one recording (IVR_RECORDING_MAX_BYTES), "
                                   "answers would be kept without their audio")
    if state != "ok":
        return Result(False, name, f"{folder} is not writable by this user")
    if mode & (stat.S_IROTH | stat.S_IWOTH | stat.S_IXOTH):
        return Result(False, name, f"{folder} is open to every user on this machine (mode {mode:04o}): "
                                   f"`chmod o-rwx {folder}`")
    return Result(True, name, f"{folder} writable, closed to other users (mode {mode:04o})")


def _missing_sqlite_file(url: str) -> str | None:
    """The path of a SQLite database file that does not exist (connecting would create it)."""
    from pathlib import Path

    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:" \
            and not Path(parsed.database).exists():
        return parsed.database
    return None


def run_all(config: Config) -> list[Result]:
    from readings_store.db import make_engine

    rest = [secrets(config), public_url(config), speech_transport(config), outbound(config)]
    tail = [ffmpeg(), recordings(config)]
    missing = _missing_sqlite_file(config.database_url)
    if missing:
        return [Result(False, "database", f"{missing} does not exist: run `ivr db upgrade`"), *rest,
                Result(False, "regions", "not checked: no database"), *speech_models(config), *tail]
    engine = make_engine(config.database_url)
    try:
        db = database(config, engine)
        zones = regions(config, engine) if db.ok else Result(False, "regions", "not checked: no usable database")
        return [db, *rest, zones, *speech_models(config, engine if db.ok else None), *tail]
    finally:
        engine.dispose()

