"""Billing REST API under /api/v1/ (see the billing issue)."""
from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")
