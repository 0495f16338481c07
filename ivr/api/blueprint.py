"""The API's blueprint, apart from the package so that its views import it without a cycle: no
cookies or sessions, so exempt from CSRF; errors as ``application/problem+json``."""
from flask import Blueprint, current_app, request

from . import problems

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


problems.register(bp)
