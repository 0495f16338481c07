"""Billing REST API under /api/v1/ (``openapi.json``).

Bearer tokens (``ivr api-tokens create NAME --scope read|write``), JSON by default and CSV on
``Accept: text/csv``, errors as ``application/problem+json``. The blueprint uses no cookies or
sessions, so CSRF protection does not apply; it is exempted explicitly in case the app enables
Flask-WTF's CSRFProtect for every blueprint.
"""
from .blueprint import bp
from . import accounts, views  # noqa: E402,F401  (routes register on ``bp``)

__all__ = ["bp"]
