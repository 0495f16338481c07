"""The Flask app factory."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Flask, g
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker
from werkzeug.middleware.proxy_fix import ProxyFix

from readings_store.db import make_engine, make_session_factory

from .config import Config, load_config
from .prompts import Prompts
from .speech_steps import SpeechSteps


@dataclass
class Services:
    """What every request needs, created once per process."""

    config: Config
    engine: Engine
    sessions: sessionmaker
    prompts: Prompts
    speech: SpeechSteps


def create_app(config: Config | None = None, engine: Engine | None = None, speech: SpeechSteps | None = None) -> Flask:
    config = config or load_config()
    app = Flask(__name__)
    app.config.update(SECRET_KEY=config.secret_key, MAX_CONTENT_LENGTH=16 * 1024 * 1024)
    if config.trust_proxy:
        # Behind a load balancer: take scheme and host from X-Forwarded-* so signatures validate.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_port=1)
    engine = engine or make_engine(config.database_url)
    speech = speech or SpeechSteps(config)
    speech.check_models()  # warns, naming grammar words an installed model cannot recognise
    app.extensions["ivr"] = Services(config, engine, make_session_factory(engine), Prompts(config.prompts_dir), speech)

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

    from .api import bp as api_bp
    from .console import bp as console_bp
    from .voice import bp as voice_bp

    app.register_blueprint(voice_bp)
    app.register_blueprint(console_bp)
    app.register_blueprint(api_bp)

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    logging.getLogger("ivr").setLevel(logging.INFO)
    return app
