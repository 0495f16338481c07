"""Operators' log-in: Flask-Login sessions, throttling kept in the database, roles, CSRF, expiry.

* Passwords are werkzeug hashes (``Operator.password_hash``); accounts come from ``ivr operators``.
* Throttling lives in the database (``login_attempts``) so every worker on every host sees it,
  and it is kept per user name *and* source address: ``MAX_FAILURES`` failed log-ins for one name
  from one address within ``LOCK_MINUTES`` pause that name for that address only (a stranger's
  guesses cannot lock an administrator out everywhere), and ``MAX_FAILURES_PER_ADDRESS`` failures
  from one address, whatever the names, pause that address. Above both, ``MAX_FAILURES_PER_NAME``
  failures for one name from all addresses together pause that name everywhere: one IPv6 host has
  2^64 addresses, so per-address counts alone would not bound the guesses at a password. Each
  attempt is written and committed *before* its password is checked and then counted, so N
  parallel guesses see counts 1..N and at most ``MAX_FAILURES`` of them ever reach the password
  check. Unknown names are counted and
  answered exactly like known ones. The source address is ``request.remote_addr``, which is the
  proxy's ``X-Forwarded-For`` only when ``IVR_TRUST_PROXY`` is set (ProxyFix in ``ivr.app``).
* Sessions live on the server (``console_sessions``): the cookie carries a random token naming a
  row, and logging out or idling ``config.session_minutes`` ends the row, so a copy of an old
  cookie is refused. Idle expiry is exact: every request's time goes into the signed cookie
  (``SEEN_KEY``), and into the row at most once a minute (one UPDATE a minute, not one per
  request); a session is idle since the later of the two. The cookie itself is permanent for ``PERMANENT_SESSION_LIFETIME``, HttpOnly, SameSite=Lax, and
  ``Secure`` whenever the request came over https (also via a trusted proxy's
  ``X-Forwarded-Proto``) or ``IVR_PUBLIC_URL`` is https.
* The user id in the session carries a fingerprint of the password hash: changing the password or
  disabling the operator ends all of their sessions.
* CSRF: every non-GET request to this blueprint must carry a valid Flask-WTF token (form field
  ``csrf_token`` or header ``X-CSRFToken``); only this blueprint is checked.
"""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
import secrets
from urllib.parse import urlsplit

from flask import abort, current_app, flash, g, has_request_context, redirect, render_template, request, session, \
    url_for
from flask.sessions import SecureCookieSessionInterface
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError, generate_csrf, validate_csrf
from sqlalchemy import delete, func, select, update
from werkzeug.security import check_password_hash, generate_password_hash
from wtforms import ValidationError

from readings_store import service
from readings_store.models import ConsoleSession, LoginAttempt, Operator, utcnow

from ..logsafe import safe_logger
from ..twilio_routes import SMS_PREFIX, VOICE_PREFIX

from .blueprint import bp
from .forms import LoginForm, LogoutForm

log = safe_logger(__name__)

MAX_FAILURES = 5  # per user name and source address
MAX_FAILURES_PER_ADDRESS = 20  # per source address, whatever the names
MAX_FAILURES_PER_NAME = 50  # per user name, from every address together
LOCK_MINUTES = 15
# Twilio's requests: no cookie session (``RequestAwareSessionInterface``).
TWILIO_PREFIXES = (VOICE_PREFIX + "/", SMS_PREFIX + "/")
# The server-side session's last activity is written at most this often (one UPDATE a minute, not
# one per request); the exact time of the last request travels in the signed cookie.
SEEN_EVERY_SECONDS = 60
SEEN_KEY = "console_seen"
SESSION_KEY = "console_sid"
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


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _server_session(operator_id: int) -> ConsoleSession | None:
    """The live server-side session this cookie names, if it belongs to *operator_id*."""
    token = session.get(SESSION_KEY)
    if not isinstance(token, str) or not token:
        return None
    row = g.db.scalars(select(ConsoleSession).where(ConsoleSession.token_hash == _token_hash(token))).first()
    if row is None or row.ended_at is not None or row.operator_id != operator_id:
        return None
    return row


def _load_user(user_id: str) -> ConsoleUser | None:
    try:
        raw_id, fingerprint = user_id.split(":", 1)
        operator = g.db.get(Operator, int(raw_id))
    except (ValueError, AttributeError):
        return None
    if operator is None or not operator.active or _fingerprint(operator) != fingerprint:
        return None
    row = _server_session(operator.id)
    if row is None:
        return None  # logged out, expired or never issued here: the cookie alone is not enough
    g.console_session = row
    return ConsoleUser(operator)


def _start_server_session(operator: Operator, moment: dt.datetime) -> str:
    """A new server-side session for *operator*; returns the token for the cookie. Also sweeps
    the operator's ended and idle sessions."""
    # The row may lag the session's last request by up to SEEN_EVERY_SECONDS (its cookie knows).
    idle = moment - dt.timedelta(minutes=session_minutes(), seconds=SEEN_EVERY_SECONDS)
    g.db.execute(delete(ConsoleSession).where(
        ConsoleSession.operator_id == operator.id,
        (ConsoleSession.ended_at.is_not(None)) | (ConsoleSession.last_seen_at < idle)))
    token = secrets.token_urlsafe(32)
    g.db.add(ConsoleSession(token_hash=_token_hash(token), operator_id=operator.id, created_at=moment,
                            last_seen_at=moment))
    return token


def _end_server_session(moment: dt.datetime) -> None:
    token = session.get(SESSION_KEY)
    if isinstance(token, str) and token:
        g.db.execute(update(ConsoleSession).where(ConsoleSession.token_hash == _token_hash(token),
                                                  ConsoleSession.ended_at.is_(None)).values(ended_at=moment))
        g.db.commit()


class RequestAwareSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, marked ``Secure`` whenever the request itself came over
    https (with ``IVR_TRUST_PROXY``, ProxyFix has already applied ``X-Forwarded-Proto``); and
    none at all for Twilio's webhooks, which are signed, not logged in: reading and signing a
    cookie nobody sends cost every webhook CPU (a read-only null session, never a cookie)."""

    def get_cookie_secure(self, app) -> bool:
        return bool(super().get_cookie_secure(app) or (has_request_context() and request.is_secure))

    def open_session(self, app, request):
        if request.path.startswith(TWILIO_PREFIXES):
            return self.make_null_session(app)
        return super().open_session(app, request)


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
    if type(app.session_interface) is SecureCookieSessionInterface:
        app.session_interface = RequestAwareSessionInterface()
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
        row: ConsoleSession = g.console_session
        moment = now()
        if moment - _last_seen(row, moment) >= dt.timedelta(minutes=session_minutes()):
            _end_server_session(moment)
            logout_user()
            session.clear()
            flash("Your session expired. Please log in again.", "warning")
            return redirect(url_for("console.login", next=_safe_next(request.full_path)))
        session[SEEN_KEY] = moment.timestamp()
        idle = (moment - row.last_seen_at).total_seconds()
        if idle >= SEEN_EVERY_SECONDS or idle < 0:
            row.last_seen_at = moment
            g.db.commit()
        return None
    return redirect(url_for("console.login", next=_safe_next(request.full_path)))


def _last_seen(row: ConsoleSession, moment: dt.datetime) -> dt.datetime:
    """The session's last request: the row's time, or the later one its signed cookie carries
    (the row is written at most once a minute). A time after ``moment`` is not believed."""
    seen = session.get(SEEN_KEY)
    if isinstance(seen, (int, float)) and not isinstance(seen, bool):
        try:
            cookie = dt.datetime.fromtimestamp(seen, dt.timezone.utc)
        except (OverflowError, OSError, ValueError):
            return row.last_seen_at
        if row.last_seen_at < cookie <= moment:
            return cookie
    return row.last_seen_at


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


def client_address() -> str:
    """The caller's address: the socket peer, or the trusted proxy's X-Forwarded-For (ProxyFix)."""
    return (request.remote_addr or "unknown").replace("\x00", "")[:64]


THROTTLED = "Too many failed log-ins from your address. Try again in {minutes} minute(s), or ask an administrator."


def _throttle_minutes(db, username: str, ip: str, moment: dt.datetime) -> int:
    """Minutes until the oldest failure that keeps this name (or this address) paused ages out."""
    cutoff = moment - dt.timedelta(minutes=LOCK_MINUTES)
    recent = LoginAttempt.at >= cutoff
    pair = db.scalars(select(LoginAttempt.at).where(recent, LoginAttempt.username == username,
                                                    LoginAttempt.ip == ip)
                      .order_by(LoginAttempt.at.desc()).offset(MAX_FAILURES - 1).limit(1)).first()
    per_ip = db.scalars(select(LoginAttempt.at).where(recent, LoginAttempt.ip == ip)
                        .order_by(LoginAttempt.at.desc()).offset(MAX_FAILURES_PER_ADDRESS - 1).limit(1)).first()
    per_name = db.scalars(select(LoginAttempt.at).where(recent, LoginAttempt.username == username)
                          .order_by(LoginAttempt.at.desc()).offset(MAX_FAILURES_PER_NAME - 1).limit(1)).first()
    until = max([t + dt.timedelta(minutes=LOCK_MINUTES) for t in (pair, per_ip, per_name) if t is not None],
                default=moment)
    return max(1, int((until - moment).total_seconds() // 60) + 1)


def check_login(db, username: str, password: str, ip: str | None = None, *,
                logging_in: bool = True) -> tuple[Operator | None, str | None]:
    """(operator, None) when the password is right; (None, message) otherwise. Commits.
    ``logging_in=False`` checks a logged-in operator's password (before changing it) with the same
    throttling, without counting it as a log-in.

    The attempt is committed before the password is checked, then counted: of N parallel
    attempts the k-th to commit sees at least k, so no more than ``MAX_FAILURES`` are ever checked.
    Known and unknown names go through the same steps and get the same answers."""
    ip = ip if ip is not None else client_address()
    username = username[:64]
    moment = now()
    cutoff = moment - dt.timedelta(minutes=LOCK_MINUTES)
    db.execute(delete(LoginAttempt).where(LoginAttempt.at < cutoff))  # old attempts no longer count
    attempt = LoginAttempt(username=username, ip=ip, at=moment)
    db.add(attempt)
    db.commit()
    recent = LoginAttempt.at >= cutoff
    pair = db.scalar(select(func.count()).where(recent, LoginAttempt.username == username, LoginAttempt.ip == ip))
    per_ip = db.scalar(select(func.count()).where(recent, LoginAttempt.ip == ip))
    per_name = db.scalar(select(func.count()).where(recent, LoginAttempt.username == username))
    operator = db.scalars(select(Operator).where(Operator.username == username)).first()
    # An account an administrator locked by hand (``locked_until``) answers like a throttled one.
    held = operator is not None and operator.locked_until is not None and operator.locked_until > moment
    if pair > MAX_FAILURES or per_ip > MAX_FAILURES_PER_ADDRESS or per_name > MAX_FAILURES_PER_NAME or held:
        # Refused without looking at the password; this attempt is not counted again, so the
        # pause ends LOCK_MINUTES after the failure that started it.
        db.execute(delete(LoginAttempt).where(LoginAttempt.id == attempt.id))
        db.commit()
        minutes = _throttle_minutes(db, username, ip, moment)
        if held:
            minutes = max(minutes, int((operator.locked_until - moment).total_seconds() // 60) + 1)
        log.warning("console log-in refused (throttled): name %s from %s", username, ip)
        g.login_retry_minutes = minutes
        return None, THROTTLED.format(minutes=minutes)
    usable = operator is not None and operator.active
    if not check_password_hash(operator.password_hash if usable else _DUMMY_HASH, password) or not usable:
        if pair >= MAX_FAILURES or per_ip >= MAX_FAILURES_PER_ADDRESS or per_name >= MAX_FAILURES_PER_NAME:
            log.warning("console log-in paused for name %s from %s after %d failures (%d from all addresses)",
                        username, ip, pair, per_name)
            if usable:
                service.audit(db, actor_kind="system", action="operator.locked", entity="operator",
                              entity_id=operator.id, actor_name=None,
                              after={"address": ip, "minutes": LOCK_MINUTES},
                              reason=f"{pair} failed log-ins from {ip} (this name) / {per_ip} (all names) / "
                                     f"{per_name} (this name, all addresses)")
                db.commit()
            return None, THROTTLED.format(minutes=LOCK_MINUTES)
        return None, "Wrong name or password."
    # The right password: this name's failures from this address are forgiven.
    db.execute(delete(LoginAttempt).where(LoginAttempt.username == username, LoginAttempt.ip == ip))
    if logging_in:
        operator.failed_logins = 0
        operator.last_login_at = moment
    db.commit()
    return operator, None


def change_own_password(db, operator: Operator, current: str, new: str, repeated: str) -> tuple[int, str]:
    """The logged-in operator sets a new password: (200, message) when changed, else (status, why),
    with nothing changed. The current password is checked like a log-in (the same throttling, so a
    left-open session cannot be used to guess it). Every other session of the operator ends; this
    one goes on. Audited. Commits."""
    if _has_control(current, new, repeated):
        return 422, "Passwords have no control characters."
    problem = password_problem(new)
    if problem:
        return 422, f"Not changed: {problem}."
    if new != repeated:
        return 422, "Not changed: the new password and its repetition differ."
    checked, error = check_login(db, operator.username, current, logging_in=False)
    if checked is None:
        status = 429 if error.startswith("Too many") else 422
        return status, error if status == 429 else "Not changed: the current password is wrong."
    if check_password_hash(checked.password_hash, new):
        return 422, "Not changed: the new password is the one you have."
    moment = now()
    checked.password_hash = hash_password(new)
    checked.failed_logins = 0
    this = g.get("console_session")
    db.execute(update(ConsoleSession).where(ConsoleSession.operator_id == checked.id, ConsoleSession.ended_at.is_(None),
                                            ConsoleSession.id != (this.id if this is not None else -1))
               .values(ended_at=moment))
    service.audit(db, actor_kind="operator", actor_id=checked.id, actor_name=checked.username,
                  action="operator.own_password", entity="operator", entity_id=checked.id,
                  after={"other_sessions": "ended"})
    db.commit()
    # The session names the operator with a fingerprint of the password hash: renew it for this one.
    login_user(ConsoleUser(checked))
    return 200, "Your password was changed. Your other sessions have ended."


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if request.method == "GET":
        form.next.data = _safe_next(request.args.get("next"))
        if current_user.is_authenticated:
            return redirect(form.next.data or url_for("console.queue"))
    error, status = None, 200
    if form.validate_on_submit() and not _has_control(form.username.data, form.password.data):
        operator, error = check_login(g.db, form.username.data.strip(), form.password.data)
        if operator is not None:
            token = _start_server_session(operator, now())
            g.db.commit()
            session.clear()
            login_user(ConsoleUser(operator))
            session.permanent = True
            session[SESSION_KEY] = token
            return redirect(_safe_next(form.next.data) or url_for("console.queue"))
        status = 429 if error.startswith("Too many") else 401
    elif request.method == "POST":
        error, status = "Enter your name and password.", 401
    response = current_app.make_response((render_template("console/login.html", form=form, error=error), status))
    if status == 429:
        response.headers["Retry-After"] = str(g.get("login_retry_minutes", LOCK_MINUTES) * 60)
    return response


def _has_control(*values: str) -> bool:
    """NUL and other control characters are in no name or password (and PostgreSQL refuses NUL)."""
    return any(ch < " " or ch == "\x7f" for value in values for ch in (value or ""))


@bp.post("/logout")
def logout():
    LogoutForm()  # CSRF already checked by ``guard``
    _end_server_session(now())  # a saved copy of the cookie is refused from now on
    logout_user()
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for("console.login"))
