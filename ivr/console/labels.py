"""Words for the codes the phone line and the review service record, as operators read them.

One mapping for the whole console: review reasons, refusal rules, call steps and their events,
call outcomes, reading statuses and channels, audit actions, languages, utilities, registers,
review resolutions and kinds. A code that is not listed is still shown readably
(underscores become spaces) rather than raw.
"""
from __future__ import annotations

from grammars.plural import english

STEPS = {
    "start": "call start",
    "incoming": "call received",
    "reminder": "reminder call: give the readings now?",
    "language": "language",
    "region": "region",
    "account": "account number",
    "confirm_account": "account number read back",
    "offer_account": "account offered from the phone number",
    "meter": "meter",
    "meter_serial": "meter by its serial's last digits",
    "org_name": "organisation's name (recorded)",
    "register": "register (day/night)",
    "value": "meter value",
    "confirm": "read-back and confirm",
    "more": "another meter?",
    "ended": "end of call",
    "transferred": "transfer to an operator",
    "hangup": "hang-up",
    "say": "message",
}

REASONS = {
    # rules that refuse a value or an identification
    "not_a_number": "not a meter value",
    "account_not_found": "no such account in the region",
    "account_inactive": "account closed",
    "meter_not_on_account": "meter is not on the account",
    "meter_inactive": "meter out of service",
    "too_many_decimals": "too many decimals for the meter",
    "too_many_digits": "too many digits for the meter",
    "below_previous": "lower than the previous reading",
    "implausible_consumption": "consumption above the plausible limit",
    "not_confirmed": "read back, caller did not confirm",
    "outside_window": "outside the submission window",
    # why an item is in the review queue
    "low_confidence": "speech recognised with low confidence",
    "repeated_refusals": "many values refused for the account (possible probing)",
    "unsure": "robot unsure",
    "operator_override": "operator override",
    "identification_failed": "caller could not be identified",
    "replaces_other_caller": "replaces another caller's reading",
    "replaces_exported": "replaces a reading billing already received",
    # retries and give-ups on a step
    "no_input": "no answer",
    "invalid_choice": "invalid choice",
    "not_understood": "not understood",
    "max_tries": "too many tries",
    "asked_operator": "caller asked for an operator",
    "too_many_turns": "call went on too long",
    "confirm_declined": "caller declined the read-back",
    "no_meters": "account has no meters",
    "no_regions": "no regions configured",
    "after_hours": "after working hours",
}

OUTCOMES = {
    None: "in progress",
    "completed": "completed",
    "no_reading": "ended without a reading",
    "transferred": "transferred to an operator",
    "gave_up": "gave up after retries",
    "hung_up": "caller hung up",
    "service_not_ready": "service not ready",
}

STATUSES = {
    "accepted": "accepted",
    "pending_review": "waiting for review",
    "rejected": "rejected",
    "superseded": "replaced by a later reading",
    "open": "open",
    "done": "handled",
}

CHANNELS = {
    "phone_speech": "phone, speech",
    "phone_keypad": "phone, keys",
    "operator": "operator",
    "voice": "speech",
    "speech": "speech",
    "vosk": "speech",
    "twilio": "speech",
    "record": "recording",
    "dtmf": "keypad",
    "keypad": "keypad",
    "digits": "keypad",
    "console": "operator",
    "api": "billing system",
    "import": "import",
    "sms": "text message",
}

EVENTS = {
    "digits": "keys",
    "speech": "speech",
    "silence": "silence",
    "no_input": "no answer",
    "hangup": "hang-up",
    "hang_up": "hang-up",
}

DECISIONS = {
    "accept": "sure, taken",
    "confirm": "unsure, read back",
    "retry": "not sure enough, asked again",
    "accepted": "accepted",
    "confirmed": "confirmed",
    "rejected": "rejected",
    "review": "sent to review",
    "reask": "asked again",
    "read_back": "read back",
}

# The phone line's languages, by their names in English (the console's language).
LANGUAGES = {
    None: "not chosen",
    "en": "English",
    "ro": "Romanian",
    "ru": "Russian",
    "uk": "Ukrainian",
}

UTILITIES = {
    "electricity": "electricity",
    "cold_water": "cold water",
    "hot_water": "hot water",
    "gas": "gas",
    "heat": "heating",
    "all": "every utility",  # a region's window for utilities without their own
}

REGISTERS = {
    "total": "single tariff",
    "day": "day",
    "night": "night",
}

# What an operator's decision on a review item was (``ReviewTask.resolution``).
RESOLUTIONS = {
    "accepted": "accepted",
    "corrected": "corrected",
    "rejected": "rejected",
    "linked": "linked to an account",
    "closed": "closed",
    "superseded": "replaced by a later reading",
}

# Review item kinds and account kinds.
KINDS = {
    "reading": "reading",
    "identification": "identification",
    "person": "person",
    "company": "company",
}

# Audit trail actions (``AuditEvent.action``), as "who did what" reads in the console.
ACTIONS = {
    "reading.accept": "accepted the reading",
    "reading.correct": "corrected the reading",
    "reading.reject": "rejected the reading",
    "identification.link": "linked the call to an account",
    "identification.close": "closed the identification item",
    "region.add": "added a region",
    "region.update": "changed a region",
    "region.remove": "removed a region",
    "operator.add": "added an operator",
    "operator.disable": "disabled an operator",
    "operator.enable": "enabled an operator",
    "operator.password": "changed an operator's password",
    "operator.own_password": "changed their own password",
    "operator.unlock": "unlocked an operator",
    "operator.locked": "locked an operator after failed log-ins",
    "account.put": "created or replaced an account (API)",
    "accounts.import": "imported accounts (API)",
    "export.create": "exported readings to billing",
    "export.ack": "billing confirmed an export",
    "api_token.create": "created an API token",
    "api_token.revoke": "revoked an API token",
    "recordings.purge": "deleted recordings kept long enough",
    "privacy.erase": "erased a caller's phone number",
}

_TABLES = {"step": STEPS, "reason": REASONS, "outcome": OUTCOMES, "status": STATUSES,
           "channel": CHANNELS, "event": EVENTS, "decision": DECISIONS, "action": ACTIONS,
           "language": LANGUAGES, "utility": UTILITIES, "register": REGISTERS, "resolution": RESOLUTIONS,
           "kind": KINDS}


def readable(code: str) -> str:
    return code.replace("_", " ").replace(".", " ").strip()


def label(code, kind: str = "reason") -> str:
    """The words for ``code`` of the given kind (step, reason, outcome, status, channel, event,
    decision, action, language, utility, register, resolution, kind). Reasons may carry the step
    they happened at as a prefix (``account_max_tries``): those read "account number: too many
    tries"."""
    table = _TABLES[kind]
    if code in table:
        return table[code]
    if code is None or code == "":
        return "-"
    code = str(code)
    if kind in ("reason", "outcome"):
        for step in sorted(STEPS, key=len, reverse=True):
            if code.startswith(step + "_"):
                rest = code[len(step) + 1:]
                if rest in REASONS or rest in OUTCOMES:
                    return f"{STEPS[step]}: {REASONS.get(rest) or OUTCOMES.get(rest)}"
                return f"{STEPS[step]}: {readable(rest)}"
        if kind == "outcome" and code in REASONS:
            return REASONS[code]
    return readable(code)


def step_event(event) -> str:
    """A call step's event in words. The line records what kind of answer came (keys, speech,
    silence, hang-up), how many keys were pressed (never which) and the speech decision:
    "7 keys pressed", "speech (read back)", "caller ID withheld"."""
    if not isinstance(event, dict):
        return "" if event in (None, "") else readable(str(event))
    if "from" in event and "kind" not in event:
        return "caller ID " + ("known" if event["from"] == "known" else "withheld")
    kind = event.get("kind")
    keys = event.get("keys")
    if kind == "digits" and isinstance(keys, int):
        text = f"{keys} {english(keys, 'key', 'keys')} pressed"
    else:
        text = EVENTS.get(kind, readable(str(kind))) if kind else ""
    parts = [text] if text else []
    for name in ("speech", "text", "transcript"):
        if event.get(name):
            parts.append(f"“{event[name]}”")
            break
    if event.get("decision"):
        parts.append(f"({label(event['decision'], 'decision')})")
    return " ".join(parts)
