"""What ``GET /healthz`` (and ``/metrics``) report about the parts a call needs: the database
(reachable, migrated, able to write), the recordings folder (room for a recording, writable) and
the media server (answering, its speech models loaded, its streams).

A database that cannot be read or written stops calls: the health check fails (503). A full
recordings folder or a dead media server does not (answers are taken without their audio, calls
are heard with ``<Record>``), so it leaves the server ``degraded``: still in the load balancer,
but visible to monitoring (``/healthz?strict=1`` fails then too).
"""
from __future__ import annotations

import errno
import os
import secrets
import shutil
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from ivr.calls import streams
from ivr.config import Config
from ivr.logsafe import safe_logger
from ivr.twilio_routes import MEDIA_HEALTH_PATH

log = safe_logger(__name__)

MEDIA_PROBE_SECONDS = 1.0  # the media server answers its health check from its event loop at once
FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def database(engine: Engine) -> tuple[str, str | None]:
    """(state, schema revision): ``ok``, ``unreachable``, ``not migrated`` or ``read-only`` (the
    database answers but refuses to write: a read-only replica or transaction, a full disk). The
    write is real (the one-row ``alembic_version`` rewritten with its own value and committed):
    a write rolled back might never reach the disk."""
    try:
        conn = engine.connect()
    except SQLAlchemyError as exc:
        log.error("health check: database unreachable: %s", exc.__class__.__name__)
        return "unreachable", None
    with conn:
        try:
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except SQLAlchemyError:
            revision = None
        conn.rollback()
        if revision is None:
            return "not migrated", None
        try:
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    # A migration holding the row must not hold the health check for long.
                    conn.execute(text("SET LOCAL lock_timeout = '2s'"))
                conn.execute(text("UPDATE alembic_version SET version_num = version_num"))
        except SQLAlchemyError as exc:
            if getattr(getattr(exc, "orig", None), "sqlstate", None) == "55P03":  # lock_not_available
                return "ok", revision  # busy writing, not unable to
            log.error("health check: the database cannot write: %s", str(exc.orig if hasattr(exc, "orig") else exc)
                      .splitlines()[0][:200])
            return "read-only", revision
    return "ok", revision


def recordings(config: Config) -> str:
    """``ok``, ``full`` (less room than the largest recording, ``IVR_RECORDING_MAX_BYTES``, or a
    write fails for lack of space) or ``not writable``. Writes and removes a small file, as
    ``calls.store_audio`` would."""
    folder = Path(config.recordings_dir)
    probe = folder / f".healthz-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # as the first answer would
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"\0" * 4096)
        finally:
            os.close(fd)
        if shutil.disk_usage(folder).free < config.recording_max_bytes:
            return "full"
    except OSError as exc:
        return "full" if exc.errno in FULL_ERRNOS else "not writable"
    finally:
        try:
            probe.unlink(missing_ok=True)
        except OSError:
            pass
    return "ok"


def media_address(config: Config) -> str:
    """Where this host's ``ivr media-server`` answers plain HTTP (``IVR_MEDIA_HOST:IVR_MEDIA_PORT``;
    a wildcard address is reached on loopback)."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(config.media_host, config.media_host)
    return f"http://[{host}]:{config.media_port}" if ":" in host else f"http://{host}:{config.media_port}"


def media_server(config: Config, timeout: float = MEDIA_PROBE_SECONDS) -> dict | None:
    """The media server's own health report (``state`` ``ok``, ``loading`` or ``error``, with its
    stream counts), ``{"state": "unreachable"}`` when it does not answer, or None when calls are
    not streamed (``IVR_SPEECH_TRANSPORT=record``)."""
    import requests

    if not streams(config):
        return None

    try:
        response = requests.get(media_address(config) + MEDIA_HEALTH_PATH, timeout=timeout)
        report = response.json()
    except (requests.RequestException, ValueError) as exc:
        log.warning("health check: the media server at %s does not answer: %s", media_address(config),
                    exc.__class__.__name__)
        return {"state": "unreachable"}
    if not isinstance(report, dict):
        return {"state": "unreachable"}
    state = report.get("status") if report.get("status") in ("ok", "loading", "error") else "error"
    return {"state": state, **{k: report[k] for k in ("streams", "max_streams", "error") if k in report}}


def report(config: Config, engine: Engine) -> tuple[dict, str]:
    """(the health report, its status: ``ok``, ``degraded`` or ``error``)."""
    db, revision = database(engine)
    body: dict = {"database": db}
    if revision is not None:
        body["schema"] = revision
    body["recordings"] = recordings(config)
    media = media_server(config)
    body["media_server"] = "not used" if media is None else media["state"]
    if media is not None and "streams" in media:
        body["streams"] = media["streams"]
    if db != "ok":
        status = "error"
    elif body["recordings"] != "ok" or body["media_server"] not in ("ok", "not used"):
        status = "degraded"
    else:
        status = "ok"
    return {"status": status, **body}, status
