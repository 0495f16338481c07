"""The Flask app factory."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from flask import Flask, Response, g, request, url_for
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import sessionmaker
from werkzeug.middleware.proxy_fix import ProxyFix

from readings_store import regions
from readings_store.db import make_engine, make_session_factory

from ivr.api import bp as api_bp
from ivr.api.problems import problem_response
from ivr.console import bp as console_bp
from ivr.ops import health, logs, metrics
from ivr.ops import queue_wait
from ivr.sms.webhook import bp as sms_bp
from ivr.twilio_webhooks import NO_AUTH_TOKEN, SIGNATURES_OFF
from ivr.config import Config, load_config
from ivr.prompts import Prompts
from ivr.voice.speech_steps import SpeechSteps
from ivr.voice import webhooks as voice
from ivr.voice.webhooks import bp as voice_bp

log = logging.getLogger(__name__)


class IvrFlask(Flask):
    """Flask, serving a request again, once, on a new connection when its database connection
    turned out to be dead (the server restarted, a proxy dropped it) before it committed anything.
    The pool does not ping a connection before each use (a round trip per request): a dead one is
    found by the first statement that fails on it, and SQLAlchemy then invalidates the pool."""

    def dispatch_request(self):
        try:
            return super().dispatch_request()
        except DBAPIError as exc:
            db = g.get("db")
            if not exc.connection_invalidated or db is None or db.info.get(COMMITTED):
                raise
            log.warning("database connection lost (%s): the request is served again on a new connection",
                        exc.orig.__class__.__name__ if exc.orig is not None else exc.__class__.__name__)
            db.close()
            g.db = self.extensions["ivr"].sessions()
            return super().dispatch_request()


# Session.info key: the request's session has committed (serving the request again would repeat it).
COMMITTED = "ivr.committed"


def _note_commit(session) -> None:
    session.info[COMMITTED] = True


@dataclass
class Services:
    """What every request needs, created once per process."""

    config: Config
    engine: Engine
    sessions: sessionmaker
    prompts: Prompts
    speech: SpeechSteps
    rest: object = None  # twilio.rest.Client, made on first use (tests set their own)

    def twilio_rest(self):
        """Twilio's REST client (moving a live call), or None without the account's credentials."""
        if self.rest is None and self.config.twilio_account_sid and self.config.twilio_auth_token:
            from twilio.rest import Client

            self.rest = Client(self.config.twilio_account_sid, self.config.twilio_auth_token)
        return self.rest


def create_app(config: Config | None = None, engine: Engine | None = None, speech: SpeechSteps | None = None,
               *, preload_models: bool = False) -> Flask:
    """The WSGI app. ``preload_models`` loads the Vosk model of every language set to ``vosk``
    now rather than on first use: gunicorn.conf.py asks for it with ``preload_app``, so that the
    models are loaded once in the master and shared by the forked workers (copy-on-write)."""
    config = config or load_config()
    if not config.validate_signatures:
        log.warning(SIGNATURES_OFF)
    elif not config.twilio_auth_token:
        log.error(NO_AUTH_TOKEN)
    app = IvrFlask(__name__)
    app.config.update(SECRET_KEY=config.secret_key, MAX_CONTENT_LENGTH=16 * 1024 * 1024)
    if config.trust_proxy:
        # Behind a load balancer: take scheme and host from X-Forwarded-* so signatures validate.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_port=1)
    engine = engine or make_engine(config.database_url)
    speech = speech or SpeechSteps(config)
    speech.check_models()  # warns, naming grammar words an installed model cannot recognise
    if preload_models:
        _preload_models(config, speech)
        regions.load_geocoder()
        # Connections must not cross a fork: a worker starts with an empty pool of its own.
        os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))
    sessions = make_session_factory(engine)
    event.listen(sessions, "after_commit", _note_commit)
    app.extensions["ivr"] = Services(config, engine, sessions, Prompts(config.prompts_dir), speech)

    # First: every log line of the request, from here on, carries the call's CallSid.
    app.before_request(logs.remember_call_sid)
    metrics.init_app(app)
    app.before_request(refuse_nul)

    @app.before_request
    def answer_late_webhook():
        """A Twilio webhook that waited for a worker thread longer than IVR_QUEUE_WAIT (the workers
        are saturated) is answered now, with the fallback's words, before it costs anything more:
        served late, its answer would come after Twilio gave up (15 s)."""
        waited = queue_wait.waited()
        if waited is None or waited <= config.queue_wait or request.endpoint not in voice.ANSWERED_WHEN_LATE:
            return None
        return voice.answer_late(waited)

    @app.before_request
    def open_session():
        g.db = app.extensions["ivr"].sessions()

    @app.teardown_request
    def close_session(exc):
        db = g.pop("db", None)
        if db is not None:
            if exc is not None:
                db.rollback()
            db.close()

    app.register_blueprint(voice_bp)
    app.register_blueprint(sms_bp)
    app.register_blueprint(console_bp)
    app.register_blueprint(api_bp)

    @app.get("/")
    def front_page():
        """Where a person who opens the server's address finds the console and the API."""
        page = FRONT_PAGE.format(console=url_for("console.index"), openapi=url_for("api.openapi_document"),
                                 health=url_for("healthz"))
        return Response(page, mimetype="text/html")

    @app.get("/healthz")
    def healthz():
        """For load balancers and monitoring (``ivr.ops.health``): 503 when the database cannot be
        read or written (no call can be served); 200 otherwise, ``degraded`` when the recordings
        folder is full or the media server does not answer (calls go on without them). With
        ``strict=1``, 503 unless everything is ``ok``: for monitors that look at the status only."""
        body, status = health.report(config, engine)
        strict = request.args.get("strict") == "1"
        failed = status == "error" or (strict and status != "ok")
        return body, 503 if failed else 200, {"Cache-Control": "no-store"}

    logging.getLogger("ivr").setLevel(logging.INFO)
    return app


def _strings(value):
    """Every key and string inside a parsed JSON document."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def refuse_nul():
    """A NUL byte is in no Twilio parameter, no console form and no API field, and PostgreSQL cannot
    store one: such a request gets 400 before any view runs, so nothing is written."""
    values = [request.path, *request.args.keys(), *request.args.values()]
    if request.method in ("POST", "PUT", "PATCH"):
        request.get_data(cache=True)  # first, so the view can still read the raw body after the form
        values += [*request.form.keys(), *request.form.values()]
        if request.is_json:
            values += list(_strings(request.get_json(silent=True)))
    if not any("\x00" in v for v in values):
        return None
    detail = "a parameter contains a NUL byte"
    if request.path.startswith("/api/"):
        return problem_response(400, "bad-request", "Bad request", detail)
    return Response(detail + "\n", status=400, mimetype="text/plain")


FRONT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Meter-reading line</title></head>
<body>
<h1>Meter-reading line</h1>
<p>This server answers the telephone line that takes meter readings.</p>
<ul>
<li><a href="{console}">Operator console</a>: review readings, regions, accounts</li>
<li><a href="{openapi}">Billing API documentation</a> (OpenAPI 3)</li>
<li><a href="{health}">Health check</a></li>
</ul>
</body></html>
"""

def _preload_models(config: Config, speech: SpeechSteps) -> None:
    for lang, engine in sorted(config.speech_engines.items()):
        if engine == "vosk" and lang in speech.pool.available():  # not installed: keypad only, warned
            speech.pool.get(lang)
            log.info("Vosk model %r loaded before the workers start", lang)
