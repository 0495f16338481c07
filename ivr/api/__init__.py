"""Billing REST API under /api/v1/ (see the billing issue and ``openapi.json``).

Bearer tokens (``ivr api-tokens create NAME --scope read|write``), JSON by default and CSV on
``Accept: text/csv``, errors as ``application/problem+json``. The blueprint uses no cookies or
sessions, so CSRF protection does not apply; it is exempted explicitly in case the app enables
Flask-WTF's CSRFProtect for every blueprint.
"""
from flask import Blueprint, current_app, request

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.record_once
def _exempt_from_csrf(state) -> None:
    csrf = state.app.extensions.get("csrf")
    if csrf is not None:
        csrf.exempt(bp)


@bp.before_app_request
def _exempt_from_late_csrf() -> None:
    # CSRFProtect set up after this blueprint was registered: its hook runs after this one.
    if request.blueprint == bp.name:
        csrf = current_app.extensions.get("csrf")
        if csrf is not None and bp.name not in getattr(csrf, "_exempt_blueprints", {bp.name}):
            csrf.exempt(bp)


from . import problems  # noqa: E402

problems.register(bp)

from . import accounts, views  # noqa: E402,F401  (routes register on ``bp``)
