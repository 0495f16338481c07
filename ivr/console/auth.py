"""Operators' log-in: Flask-Login sessions, throttling kept in the database, roles, CSRF, expiry.

* Passwords are werkzeug hashes (``Operator.password_hash``); accounts come from ``ivr operators``.
* Throttling lives in the ``operators`` row (``failed_logins``, ``locked_until``) so every worker
  on every host sees it: ``MAX_FAILURES`` wrong passwords in a row lock the account for
  ``LOCK_MINUTES``. The counter is bumped with an atomic UPDATE, so parallel guesses all count.
* Sessions are permanent cookies living ``config.session_minutes`` (``PERMANENT_SESSION_LIFETIME``,
  refreshed on each request) and, independently of the cookie's own age, an idle check against
  ``session["seen"]`` so an idle console logs out even if a browser keeps the cookie.
* The user id in the session carries a fingerprint of the password hash: changing the password or
  disabling the operator ends all of their sessions.
* CSRF: every non-GET request to this blueprint must carry a valid Flask-WTF token (form field
  ``csrf_token`` or header ``X-CSRFToken``); only this blueprint is checked.
"""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
from urllib.parse import urlsplit

from flask import abort, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError, generate_csrf, validate_csrf
from sqlalchemy import select, update
from werkzeug.security import check_password_hash, generate_password_hash
from wtforms import ValidationError

from readings_store import service
from readings_store.models import Operator, utcnow

from . import bp
from .forms import LoginForm, LogoutForm

MAX_FAILURES = 5
LOCK_MINUTES = 15
ROLES = ("operator", "admin")
MIN_PASSWORD = 8
# Endpoints reachable without a session: the login page and the stylesheet/script it uses.
PUBLIC_ENDPOINTS = {"console.login", "console.static"}
# A hash to check against when the name is unknown, so both cases take as long.
_DUMMY_HASH = generate_password_hash("not-a-real-password-0")


def now() -> dt.datetime:
    """The console's clock (a function so tests can move it)."""
    return utcnow()


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def password_problem(password: str) -> str | None:
    if not password:
        return "the password is empty"
    if len(password) < MIN_PASSWORD:
        return f"the password is too short (at least {MIN_PASSWORD} characters)"
    return None


class ConsoleUser(UserMixin):
    """The logged-in operator, detached from any database session."""

    def __init__(self, operator: Operator):
        self.operator_id = operator.id
        self.username = operator.username
        self.role = operator.role
        self._fingerprint = _fingerprint(operator)

    def get_id(self) -> str:
        return f"{self.operator_id}:{self._fingerprint}"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _fingerprint(operator: Operator) -> str:
    return hashlib.sha256(operator.password_hash.encode()).hexdigest()[:16]


def _load_user(user_id: str) -> ConsoleUser | None:
    try:
        raw_id, fingerprint = user_id.split(":", 1)
        operator = g.db.get(Operator, int(raw_id))
    except (ValueError, AttributeError):
        return None
    if operator is None or not operator.active or _fingerprint(operator) != fingerprint:
        return None
    return ConsoleUser(operator)


@bp.record_once
def _setup(state) -> None:
    app = state.app
    config = app.extensions["ivr"].config
    # Flask ships defaults for these keys, so set them (unless someone chose otherwise already).
    app.config["PERMANENT_SESSION_LIFETIME"] = dt.timedelta(minutes=config.session_minutes)
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    if not app.config.get("SESSION_COOKIE_SAMESITE"):
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    if (config.public_url or "").startswith("https://"):
        app.config["SESSION_COOKIE_SECURE"] = True
    if not hasattr(app, "login_manager"):
        manager = LoginManager()
        manager.init_app(app)
        manager.session_protection = "basic"
    app.login_manager.user_loader(_load_user)
    app.login_manager.login_view = "console.login"


def ivr():
    return current_app.extensions["ivr"]


def session_minutes() -> int:
    return ivr().config.session_minutes


@bp.before_request
def guard():
    """Log-in required everywhere but the log-in page; idle sessions end; CSRF on every POST."""
    if request.method not in ("GET", "HEAD", "OPTIONS") and current_app.config.get("WTF_CSRF_ENABLED", True):
        token = request.form.get("csrf_token") or request.headers.get("X-CSRFToken")
        try:
            validate_csrf(token)
        except ValidationError as exc:
            raise CSRFError(exc.args[0]) from None
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if current_user.is_authenticated:
        seen = session.get("seen")
        stamp = now().timestamp()
        if seen is None or stamp - float(seen) > session_minutes() * 60:
            logout_user()
            session.clear()
            flash("Your session expired. Please log in again.", "warning")
            return redirect(url_for("console.login", next=_safe_next(request.full_path)))
        session["seen"] = stamp
        return None
    return redirect(url_for("console.login", next=_safe_next(request.full_path)))


@bp.errorhandler(CSRFError)
def csrf_error(exc):
    return render_template("console/error.html", title="Form expired",
                           message="The form was missing its security token or it had expired. "
                                   "Nothing was changed; reload the page and try again."), 400


@bp.after_request
def headers(response):
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; media-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'",
    )
    if request.endpoint != "console.static":
        # Pages and recordings hold personal data: never in shared caches.
        response.headers["Cache-Control"] = "private, no-store" if request.endpoint != "console.recording" \
            else "private, max-age=0"
    return response


@bp.context_processor
def _console_globals():
    return {"csrf_token": generate_csrf, "logout_form": LogoutForm()}


def _safe_next(target: str | None) -> str | None:
    """Only a path inside the console: never an open redirect."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/console/") or "\\" in target:
        return None
    if parts.path.rstrip("/") in ("/console/login", "/console/logout"):
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def role_required(role: str):
    def decorator(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return redirect(url_for("console.login"))
            if role == "admin" and not current_user.is_admin:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


admin_required = role_required("admin")


def check_login(db, username: str, password: str) -> tuple[Operator | None, str | None]:
    """(operator, None) when the password is right; (None, message) otherwise. Commits counters."""
    operator = db.scalars(select(Operator).where(Operator.username == username)).first()
    moment = now()
    if operator is None or not operator.active:
        check_password_hash(_DUMMY_HASH, password)
        return None, "Wrong name or password."
    if operator.locked_until is not None and operator.locked_until > moment:
        minutes = max(1, int((operator.locked_until - moment).total_seconds() // 60) + 1)
        return None, (f"Too many failed log-ins: this account is locked for another {minutes} minute(s). "
                      "Ask an administrator if you need in sooner.")
    if not check_password_hash(operator.password_hash, password):
        # Atomic increment: parallel attempts on several workers all count.
        db.execute(update(Operator).where(Operator.id == operator.id)
                   .values(failed_logins=Operator.failed_logins + 1))
        db.refresh(operator)
        if operator.failed_logins >= MAX_FAILURES:
            operator.locked_until = moment + dt.timedelta(minutes=LOCK_MINUTES)
            operator.failed_logins = 0
            service.audit(db, actor_kind="system", action="operator.locked", entity="operator",
                          entity_id=operator.id, actor_name=None,
                          after={"locked_until": operator.locked_until.isoformat()},
                          reason=f"{MAX_FAILURES} failed log-ins from {request.remote_addr}")
            db.commit()
            return None, (f"Too many failed log-ins: this account is locked for {LOCK_MINUTES} minutes.")
        db.commit()
        return None, "Wrong name or password."
    operator.failed_logins = 0
    operator.locked_until = None
    operator.last_login_at = moment
    db.commit()
    return operator, None


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if request.method == "GET":
        form.next.data = _safe_next(request.args.get("next"))
        if current_user.is_authenticated:
            return redirect(form.next.data or url_for("console.queue"))
    error = None
    if form.validate_on_submit():
        operator, error = check_login(g.db, form.username.data.strip(), form.password.data)
        if operator is not None:
            session.clear()
            login_user(ConsoleUser(operator))
            session.permanent = True
            session["seen"] = now().timestamp()
            return redirect(_safe_next(form.next.data) or url_for("console.queue"))
    elif request.method == "POST":
        error = "Enter your name and password."
    return render_template("console/login.html", form=form, error=error), (401 if error else 200)


@bp.post("/logout")
def logout():
    LogoutForm()  # CSRF already checked by ``guard``
    logout_user()
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for("console.login"))
