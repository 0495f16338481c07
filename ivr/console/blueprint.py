"""The console's blueprint, apart from the package so that its pages import it without a cycle."""
from flask import Blueprint

bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates", static_folder="static")
