"""What the voice and SMS webhooks share: Twilio's signature checked before anything else, the
public URL Twilio signed, the caller's number, the language its country code suggests, required
parameters, TwiML responses and the absolute URLs Twilio is given (``ivr.twilio_routes``)."""
from __future__ import annotations

from flask import Response, abort, current_app, request
from twilio.request_validator import RequestValidator

from readings_store import phones

from ivr.logsafe import safe_logger
from ivr.twilio_routes import TwilioRoutes

log = safe_logger(__name__)

TWIML = "application/xml"
# Twilio's placeholders for a withheld caller ID.
WITHHELD = {"", "anonymous", "restricted", "unknown", "private", "+266696687", "+86282452253", "+7378742833", "+2562533"}

NO_AUTH_TOKEN = ("IVR_TWILIO_AUTH_TOKEN is not set: every request from Twilio will be refused (403), so no call "
                 "and no text message can be answered. Set it to the auth token of the Twilio account.")
SIGNATURES_OFF = ("IVR_VALIDATE_SIGNATURES is off: the voice and SMS webhooks accept unsigned requests, so ANYONE "
                  "can post to them and store readings. Never run like this in production.")


def services():
    """The app's ``Services`` (``ivr.app``): configuration, sessions, prompts, speech."""
    return current_app.extensions["ivr"]


def check_signature():
    """Reject anything not signed by Twilio with our auth token, before it can touch the database
    (a blueprint's ``before_request``)."""
    config = services().config
    if not config.validate_signatures:
        log.warning("%s (unchecked request: %s)", SIGNATURES_OFF, request.path)
        return None
    token = config.twilio_auth_token
    if not token:
        log.error("IVR_TWILIO_AUTH_TOKEN is not set: rejecting Twilio request")
        abort(403)
    signature = request.headers.get("X-Twilio-Signature", "")
    params = request.form.to_dict(flat=True) if request.method == "POST" else {}
    if not signature or not RequestValidator(token).validate(public_url(), params, signature):
        log.warning("rejected request with a bad or missing Twilio signature: %s", request.path)
        abort(403)
    return None


def public_url() -> str:
    """The URL Twilio requested, as it signed it (the public URL, not the one behind the proxy)."""
    base = services().config.public_url
    query = request.query_string.decode()
    if base:
        return base.rstrip("/") + request.path + (f"?{query}" if query else "")
    return request.url


def routes() -> TwilioRoutes:
    """Our URLs as Twilio can reach them: under the configured public URL, else the one it called us on."""
    return TwilioRoutes(services().config.public_url or request.host_url)


def twiml(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype=TWIML)


def bad_request(detail: str) -> None:
    """Ends the request with 400 and ``detail``; nothing is written."""
    abort(Response(detail + "\n", status=400, mimetype="text/plain"))


def required(name: str) -> str:
    value = request.form.get(name, "")
    if not value:
        bad_request(f"missing parameter {name}")
    return value


def caller_number(raw: str | None) -> tuple[str | None, str | None]:
    """(E.164 number, ISO country) of a caller or sender, or (None, None) when withheld or invalid."""
    raw = (raw or "").strip()
    if raw.lower() in WITHHELD:
        return None, None
    number = phones.e164(raw)
    return (number, phones.country(number)) if number else (None, None)


def default_language(e164: str | None) -> str:
    """The language the number's country code is answered in (``IVR_COUNTRY_LANGUAGES``)."""
    table = services().config.country_languages
    code = phones.country_code(e164) if e164 else None
    if code is not None and str(code) in table:
        return table[str(code)]
    return table.get("*", "en")
