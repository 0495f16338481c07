"""Operator console under /console/ (see the operator-console issue)."""
from flask import Blueprint

bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates", static_folder="static")
