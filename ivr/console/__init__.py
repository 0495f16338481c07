"""Operator console under /console/.

Server-rendered pages for operators: log in, clear the review queue (readings the robot was unsure
of and failed identifications) while listening to the caller's audio, look accounts up, and see
the day's figures. Every page needs a logged-in operator; every POST needs a CSRF token (checked
for this blueprint only, so the Twilio webhooks and the billing API are unaffected).
"""
from .blueprint import bp
from . import auth, region_pages, views  # noqa: E402,F401  (routes and request hooks register on ``bp``)

__all__ = ["bp"]
