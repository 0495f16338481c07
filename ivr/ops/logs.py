"""Log set-up for the servers: one JSON object per line, or plain text, with the call's CallSid.

``IVR_LOG_FORMAT=json`` writes each record as one line::

    {"time": "2026-11-22T07:30:01.123Z", "level": "INFO", "logger": "ivr.voice.webhooks", "message": "...",
     "call_sid": "CA...", "path": "/voice/step/account", "method": "POST"}

``call_sid`` is present on every line logged while a ``/voice/...`` webhook is answered (taken from
the request's CallSid, form or query, when it is well formed), ``path``/``method`` on every line of
a request, ``exception`` when a traceback goes with the record. ``text`` is the same information
on a readable line. gunicorn.conf.py uses JSON by default (for log collectors), ``ivr serve`` text.

One record is always one line: JSON escapes line breaks, and the characters JSON leaves as they
are but other tools take as line ends (C1 controls, U+2028, U+2029) are escaped too; the text
format escapes control characters in the message as :mod:`ivr.logsafe` does.
"""
from __future__ import annotations

import json
import logging
import re
import sys
from datetime import datetime, timezone

from gunicorn import glogging

from ivr.logsafe import escape

CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")
_JSON_UNSAFE = re.compile(r"[\x7f-\x9f\u2028\u2029]")
# Terminal colours (werkzeug colours its access lines by status): nothing a log line needs, and
# escaped they would read as "\x1b[33m".
_COLOURS = re.compile(r"\x1b\[[0-9;]*m")
HANDLER_NAME = "ivr"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(context)s: %(message)s"


def request_context() -> dict:
    """``call_sid``, ``path`` and ``method`` of the request being answered, if any."""
    try:
        from flask import g, has_request_context, request
    except ImportError:  # pragma: no cover - Flask is a dependency
        return {}
    if not has_request_context():
        return {}
    context = {"path": request.path, "method": request.method}
    sid = g.get("log_call_sid")
    if sid is None and request.path.startswith("/voice/"):
        raw = request.args.get("CallSid") or (request.form.get("CallSid") if request.mimetype ==
                                              "application/x-www-form-urlencoded" else None)
        sid = raw if raw and CALL_SID.fullmatch(raw) else ""
        g.log_call_sid = sid
    if sid:
        context["call_sid"] = sid
    return context


def remember_call_sid() -> None:
    """Before a request: read the CallSid once, so every line of the request can carry it."""
    request_context()


class RequestContextFilter(logging.Filter):
    """Adds ``call_sid``, ``path`` and ``method`` (when in a request) to every record it passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = request_context()
        for key in ("call_sid", "path", "method"):
            if not hasattr(record, key) and key in context:
                setattr(record, key, context[key])
        return True


def _utc(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(record.msecs):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": _utc(record), "level": record.levelname, "logger": record.name,
                 "message": _COLOURS.sub("", record.getMessage())}
        for key in ("call_sid", "path", "method"):
            value = getattr(record, key, None)
            if value:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        line = json.dumps(entry, ensure_ascii=False, default=str)
        return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", line)


class TextFormatter(logging.Formatter):
    """A readable line: time, level, logger, [call and path], message (control characters escaped)."""

    def __init__(self):
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        parts = [p for p in (getattr(record, "call_sid", None), getattr(record, "path", None)) if p]
        record.context = f" [{' '.join(escape(p) for p in parts)}]" if parts else ""
        record.message = escape(_COLOURS.sub("", record.message))
        return super().formatMessage(record)


def formatter(fmt: str) -> logging.Formatter:
    if fmt == "json":
        return JsonFormatter()
    if fmt == "text":
        return TextFormatter()
    raise ValueError(f"unknown log format {fmt!r}")


def configure(fmt: str, *, level: int = logging.INFO, stream=None) -> logging.Handler:
    """Send every logger's records (through the root logger) to *stream* (stderr) in *fmt*.
    Calling it again replaces the handler it added before, never adds a second one."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(formatter(fmt))
    handler.addFilter(RequestContextFilter())
    root.addHandler(handler)
    root.setLevel(level)
    return handler


class GunicornLogger(glogging.Logger):
    """gunicorn's logger, with its access line only when ``accesslog`` is set: given a
    ``logconfig_dict``, gunicorn builds and logs that line for every request whatever ``accesslog``
    says (gunicorn.conf.py sets it from ``IVR_ACCESS_LOG``)."""

    def access(self, resp, req, environ, request_time):
        if self.cfg.accesslog:
            super().access(resp, req, environ, request_time)


def gunicorn_logconfig(fmt: str) -> dict:
    """gunicorn's ``logconfig_dict``: its own error and access logs and the app's loggers, all
    through one handler on stderr in *fmt*."""
    formatter(fmt)  # an unknown format stops here, before gunicorn starts
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request": {"()": RequestContextFilter}},
        "formatters": {"ivr": {"()": JsonFormatter} if fmt == "json" else {"()": TextFormatter}},
        "handlers": {HANDLER_NAME: {"class": "logging.StreamHandler", "formatter": "ivr", "filters": ["request"],
                                    "stream": "ext://sys.stderr"}},
        "root": {"level": "INFO", "handlers": [HANDLER_NAME]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": True},
            "alembic": {"level": "WARNING"},  # its start-up chatter, when the app checks the schema
        },
    }
