"""The call flow: language → region → account → meter → register → value → confirm → next.

A reminder call we placed (``start_reminder``) starts instead at ``reminder``: the callee hears
whose readings it is about (the account's last digits only: whoever answers may not be the
customer) and presses 1 (or says yes) to go straight to that account's meters; anything else, or
silence, ends the call politely.

The region is skipped when the caller's account is on file or only one region is offered; when the
caller ID suggests one, it is said aloud and one key leads to the region menu instead. With no
region to offer, the call goes to an operator or is told that the service is not ready yet.

``start`` opens a call, ``handle`` takes one event for the step the caller was last asked and
returns a ``Turn``: the new state (a ``CallState``, stored by the transport between webhooks),
the actions to perform, always ending with an ``Ask``, a ``Transfer`` or a ``Hangup``, and the
writes that follow (``effects``). The engine only reads records; the transport writes the
effects in the same transaction as the turn.
Every step allows ``max_tries`` attempts; then the caller is put through to an operator in the
region's working hours, or told politely what was saved, and when operators answer, and the call
ends. Nothing confirmed is lost: a doubtful reading is stored as pending review rather than
dropped, and a value given on the last try is read back and kept for review.

At any question the caller may press 0 or say "operator": in working hours the call is put through
at once, otherwise the caller hears the operators' hours and the same question again (the welcome
says so once). A spoken account number is read back by its last digits and confirmed unless the
recogniser was sure of it; "2" at a value's read-back always asks for the value again. A call
takes at most ``MAX_TURNS`` turns (a round of all meters in turn adds some, up to
``MAX_EXTRA_TURNS``), so every call ends.

A meter whose submission window is closed is introduced by when the window a reading given now
counts in opens and closes. A caller on file for the account is told once, at a value question,
the key that says the register's last accepted reading (``LAST_READING_KEY``, or "last reading"
said where speech is on); for anyone else it is a value like any other. A company account, or one with more than ``MENU_METERS`` meters, picks a
meter by the last digits of its serial (``meter_serial``) or takes all meters still without a
reading this period in turn (``WALK_KEY``, or "all meters" said), with one summary at the end; a
company's caller may give a meter's serial number instead of the account number.

Where the region asks for it (``Records.asks_org_name``), a caller identified for a company account
is asked once to say the organisation's name after the tone (``org_name``): an ``Ask`` that
``expect``s a recording, which the transport keeps like a spoken answer (nothing is recognised or
decided on it; any answer, or none, goes on to the meters). A caller who has not heard that spoken
answers are recorded hears it first.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TypeVar

from .actions import RECORDS, Ask, Day, Digits, Hangup, Say, Term, Transfer
from .effects import NoteRefusal, ReportFailedIdentification, SaveReading
from .ports import AccountInfo, Records
from .state import AccountRef, CallState, Decision, MeterRef, Outcome, Step

LANGUAGE_KEYS = {"1": "ro", "2": "ru", "3": "uk", "4": "en"}
NUMBER_STEPS = ("account", "meter_serial", "value")
# The grammar each question listens with when the call's language has a speech engine; a
# transport learns it from the question asked (``Ask.speech``), through the turn service.
SPEECH_KINDS = {"reminder": "yes_no", "region": "menu", "offer_account": "yes_no", "account": "digits",
                "confirm_account": "yes_no", "meter": "menu", "meter_serial": "serial", "register": "menu",
                "value": "number", "confirm": "yes_no", "next": "menu"}
# The key that leaves a region assumed from the caller ID for the region menu (1 continues).
CHANGE_REGION_KEY = "9"
# The key that asks for a person, at any question (alone: a number step's "0#" too).
OPERATOR_KEY = "0"
# Turns a call may take; the next one ends it like a step out of tries. Far above any real call
# (nine two-tariff meters take about 70), it bounds callers who go round in circles.
MAX_TURNS = 150
# Steps that identify the caller: giving up at one of them leaves an identification item.
IDENTIFYING = frozenset({"account", "offer_account", "confirm_account"})
MAX_ACCOUNT_KEYS = 20
MAX_VALUE_KEYS = 16
MAX_SERIAL_KEYS = 30
# More active meters than a one-key menu names: the account's meters are picked by their serials.
MENU_METERS = 9
# At the value question, alone: a caller on file hears the meter's last accepted reading (offered once).
# Where speech is on, saying so ("last reading") does the same: the value question of a caller
# offered it listens with LAST_READING_KIND (a number, or that choice).
LAST_READING_KEY = "8"
LAST_READING = "last_reading"
LAST_READING_KIND = "number_last"
# At the serial question, alone: all meters in turn (or said: "all meters"); at a value question of
# that walk: skip the meter.
WALK_KEY = "*"
WALK = "all_meters"
# Turns a walk allows per register it asks for (value, read-back, and one more), beyond MAX_TURNS,
# up to MAX_EXTRA_TURNS in all: a caller starting walk after walk still meets an end.
WALK_TURNS_PER_REGISTER = 3
MAX_EXTRA_TURNS = 600
# What becomes of a value is the intake policy's verdict (``Records.judge_value``); the dialog
# chooses only how to go on. A value read back tells the caller it passed the rules: when the
# verdict says that reveals something, it is counted as "not_confirmed" until the value is saved.
NOT_CONFIRMED = "not_confirmed"
LOW_CONFIDENCE = "low_confidence"


@dataclass(frozen=True)
class SpeechInput:
    """What a speech step understood: already parsed and judged by the confidence policy."""

    text: str
    value: str | None = None  # digit string (may hold one ".")
    intent: str | None = None  # yes | no | repeat | operator
    utility: str | None = None  # a utility named in a menu answer ("gas")
    register: str | None = None  # day | night, named in a menu answer
    phrase: str | None = None  # one of the question's own phrases (a region's name), as offered
    choice: str | None = None  # a choice named at a number question: all_meters | last_reading
    decision: str = "accept"  # accept | confirm | retry | review
    utterance_id: int | None = None


@dataclass(frozen=True)
class Event:
    kind: str  # digits | speech | timeout | recording (a question that records: ``speech`` names its audio)
    digits: str = ""
    speech: SpeechInput | None = None


@dataclass
class Turn:
    """One turn's result: the new state, the actions to perform (ending with an ``Ask``, a
    ``Transfer`` or a ``Hangup``) and the writes that follow from it (``effects``), which the
    transport persists together with the state."""

    state: CallState
    actions: list = field(default_factory=list)
    effects: list = field(default_factory=list)


class _Context:
    """The records port during one turn: reads go through, writes are collected as effects."""

    def __init__(self, records: Records):
        self._records = records
        self.effects: list = []

    def __getattr__(self, name: str):
        return getattr(self._records, name)

    def write(self, effect) -> None:
        self.effects.append(effect)


T = TypeVar("T")


def _write(records: Records, effect) -> None:
    """Collect an effect of the turn (the handlers run with the turn's ``_Context`` as records)."""
    if not isinstance(records, _Context):
        raise TypeError("effects are collected by the turn's context")
    records.write(effect)


def _need(value: T | None, what: str) -> T:
    """A part of the call's state that the current step relies on; missing, it is a programming error."""
    if value is None:
        raise ValueError(f"the call's state has no {what} at this step")
    return value


def start(records: Records, *, call_sid: str, caller: str | None, language: str, max_tries: int = 3,
          may_record: bool = False) -> Turn:
    state = CallState(call_sid=call_sid, caller=caller, lang=language, max_tries=max_tries, notice_said=may_record)
    ask = _ask_language(records, state)
    if records.operator_hours(_operator_region(records, state)) is not None:
        # Said once, in the welcome: 0 reaches a person at any question.
        ask = replace(ask, prompts=(ask.prompts[0], Say("operator_hint"), *ask.prompts[1:]))
    return Turn(state, [_notice_recording(ask, may_record)])


def _notice_recording(ask: Ask, may_record: bool) -> Ask:
    """A caller whose spoken answers may be recorded hears so once, after the first prompt of the
    call (and the operator hint) and before anything they say is heard."""
    if not may_record:
        return ask
    first = 2 if len(ask.prompts) > 1 and ask.prompts[1] == Say("operator_hint") else 1
    return replace(ask, prompts=(*ask.prompts[:first], Say("recording_notice"), *ask.prompts[first:]))


def start_reminder(records: Records, *, call_sid: str, callee: str, language: str, account_id: int,
                   max_tries: int = 3, may_record: bool = False) -> Turn:
    """A reminder call answered by a person: the account is known, the question is whether to give
    its readings now. An account gone or closed since the call was queued ends the call politely."""
    state = CallState(call_sid=call_sid, caller=callee, lang=language, max_tries=max_tries, step=Step.REMINDER,
                      notice_said=may_record)
    account = records.account(account_id)
    if account is None or not account.active:
        state.step, state.outcome = Step.ENDED, Outcome.NO_READING
        return Turn(state, [Say("reminder_call_end"), Hangup()])
    state.region_id = account.region_id
    state.account = _account_ref(account)
    return Turn(state, [_notice_recording(_ask_reminder(records, state), may_record)])


def handle(records: Records, state: CallState, event: Event) -> Turn:
    """The next turn of a call from ``state`` (left unchanged) and the caller's ``event``."""
    context = _Context(records)
    # A copy through the stored form: all a state is, at a third of ``copy.deepcopy``'s cost.
    state = CallState.from_json(state.to_json())
    state.seq += 1
    state.choice_to_confirm = None  # the answer to a confirmation is the answer to its question
    if event.kind == "digits" and state.step in NUMBER_STEPS:
        # A caller who types a number gets the keypad's patient timeouts from now on, without
        # recording (a speech step's Gather waits only a second between keys before <Record>).
        state.keypad_only = True
    if state.over:
        turn = _ended(context, state, event)
    elif state.seq > MAX_TURNS + state.extra_turns:
        turn = _give_up(context, state, reason="too_many_turns")
    elif _asks_for_operator(event):
        turn = _operator(context, state)
    else:
        turn = _HANDLERS[state.step.value](context, state, event)
    if turn.state.keypad_only:
        turn.actions = [replace(a, speech=None) if isinstance(a, Ask) else a for a in turn.actions]
    turn.effects = context.effects
    return turn


# --- helpers -----------------------------------------------------------------------------------

def _key(state: CallState) -> str:
    """Idempotency key for a write made in this turn."""
    return f"{state.call_sid}:{state.seq}"


def _goto(state: CallState, step: str) -> CallState:
    state.step = Step(step)
    state.tries = 0
    return state


def _choice(event: Event) -> str | None:
    """A single menu key, pressed or said (a spoken digit or yes=1 / no=2)."""
    if event.kind == "digits":
        return event.digits.rstrip("#") or None
    if event.kind == "speech" and event.speech:
        if event.speech.intent == "yes":
            return "1"
        if event.speech.intent == "no":
            return "2"
        return event.speech.value
    return None


def _asks_for_operator(event: Event) -> bool:
    """0 pressed alone (at a number step, "0#" too), or "operator" said in the call's language."""
    if event.kind == "digits":
        return event.digits.rstrip("#") == OPERATOR_KEY
    return bool(event.speech and event.speech.intent == "operator")


def _understood(speech: SpeechInput) -> bool:
    """Whether a speech answer gave anything at all: a number, a word the step knows, a name, or a
    reply heard surely that names nothing the question offers ("yes" at a menu: accepted, empty)."""
    return speech.decision != "retry" and (speech.decision == "accept" or any(
        (speech.value, speech.intent, speech.utility, speech.register, speech.phrase)))


def _why(event: Event, otherwise: str) -> str:
    """The reason an answer is asked again, as true for what came: nothing (``no_input``), speech
    that gave nothing (``not_understood``), else ``otherwise`` (keys, or words that were heard but
    are no answer to the question)."""
    if event.kind == "timeout":
        return "no_input"
    if event.kind == "speech" and (event.speech is None or not _understood(event.speech)):
        return "not_understood"
    return otherwise


def _unsure(state: CallState, event: Event, key: str | None) -> Turn | None:
    """A menu choice the recogniser heard below its accept threshold is not acted on: the caller
    confirms it by pressing its key (or presses another). Acting on it could store a reading the
    caller rejected ("два" heard as "да") or pick another meter."""
    if event.kind == "speech" and event.speech and event.speech.decision in ("confirm", "review"):
        state.choice_to_confirm = key
        return Turn(state, [_ask_choice_confirmation(None, state)])
    return None


def _ask_choice_confirmation(records: Records | None, state: CallState) -> Ask:
    return Ask(state.step.value, (Say("confirm_choice", {"key": state.choice_to_confirm}),), expect="choice")


def _retry(records: Records, state: CallState, ask, reason: str) -> Turn:
    """Count a failed try: explain and ask again, or give up after the last one."""
    state.tries += 1
    if state.tries >= state.max_tries:
        return _give_up(records, state, reason=reason)
    return Turn(state, [Say(f"reason_{reason}"), ask(records, state)])


def _end(records: Records, state: CallState, reason: str, *, region_id: int | None,
         number: str | None = None) -> str | None:
    """Mark the call over after the step the caller was at, for ``reason``: transferred when an
    operator is on duty (returns the number; ``number``: one already found on duty), else ended
    (``outcome`` left for the caller)."""
    state.end_reason = f"{state.step.value}:{reason}"
    number = number or records.operator_number(region_id)
    if number:
        state.step, state.outcome = Step.TRANSFERRED, Outcome.TRANSFERRED
        return number
    state.step = Step.ENDED
    return None


def _give_up(records: Records, state: CallState, *, reason: str, number: str | None = None) -> Turn:
    """End the call at the step the caller was at: put through to an operator on duty (``number``,
    when already found), else told politely what was saved and when operators answer."""
    if state.step.value in IDENTIFYING and (state.attempts or state.account_utterances):
        # Numbers not found, not understood or not confirmed: an operator can still listen to them.
        _write(records, ReportFailedIdentification(state.region_id, tuple(state.attempts), state.utterance_id,
                                                 tuple(state.account_utterances)))
    kept = state.step == Step.CONFIRM and bool(state.value)
    if kept:
        # The caller gave a value but never confirmed it: an operator decides, nothing is lost.
        _save(records, state, decision=Decision.PENDING_REVIEW, reason=NOT_CONFIRMED)
    region_id = _operator_region(records, state)
    number = _end(records, state, reason, region_id=region_id, number=number)
    if number:
        return Turn(state, [Say("transfer"), Transfer(number)])
    state.outcome = Outcome.GAVE_UP
    if kept:
        # Say what becomes of that value, then count only the readings saved before it.
        earlier = state.saved - 1
        closing = [Say("saved_for_review"), *([Say("saved_count", {"count": earlier})] if earlier else [])]
    else:
        closing = [Say("not_completed"), *_operator_hours(records, region_id), *_summary(state)]
    return Turn(state, [*closing, Say("goodbye"), Hangup()])


def _operator_hours(records: Records, region_id: int | None) -> list[Say]:
    """When operators answer, said to a caller who cannot reach one now (nothing if none ever does)."""
    hours = records.operator_hours(region_id)
    return [Say("operator_hours", {"hours": hours})] if hours else []


def _operator_region(records: Records, state: CallState) -> int | None:
    """The region whose operators answer this caller: the call's, else that of the account the
    caller ID is on file for, else the one the caller ID suggests (None: the fallback operator)."""
    if state.region_id is not None:
        return state.region_id
    for ref in (state.account, state.offered):
        if ref is not None:
            return ref.region_id
    known = _caller_account(records, state)
    if known is not None:
        return known.region_id
    guess = records.region_for_caller(state.caller)
    return guess.id if guess is not None else None


def _caller_account(records: Records, state: CallState) -> AccountRef | None:
    """The first account the caller's number is on file for: read once in a call (at its opening)
    and kept in its state, so that the turns after it do not read it again."""
    if not state.looked_up:
        known = records.accounts_for_phone(state.caller)
        state.caller_account, state.looked_up = (_account_ref(known[0]) if known else None), True
    return state.caller_account


def _operator(records: Records, state: CallState) -> Turn:
    """The caller asked for a person: put through when an operator is on duty; otherwise told when
    operators answer, and asked the same question again (nothing counted, nothing lost)."""
    region_id = _operator_region(records, state)
    number = records.operator_number(region_id)
    if number:
        return _give_up(records, state, reason="asked_operator", number=number)
    hours = records.operator_hours(region_id)
    said = Say("operator_closed", {"hours": hours}) if hours else Say("no_operator")
    return Turn(state, [said, reask(records, state)])


def _summary(state: CallState) -> list[Say]:
    if not state.saved:
        return [Say("nothing_saved")]
    return [Say("saved_count", {"count": state.saved})]


def _finish(state: CallState) -> Turn:
    state.step = Step.ENDED
    state.outcome = Outcome.COMPLETED if state.saved else Outcome.NO_READING
    return Turn(state, [*_summary(state), Say("goodbye"), Hangup()])


# --- language ----------------------------------------------------------------------------------

def _ask_language(records: Records, state: CallState) -> Ask:
    options = tuple(Say("language_option", {"key": k}, lang=lang) for k, lang in LANGUAGE_KEYS.items())
    return Ask("language", (Say("welcome"), *options), expect="choice")


def _on_language(records: Records, state: CallState, event: Event) -> Turn:
    key = _choice(event)
    if event.kind == "timeout":
        pass  # keep the language guessed from the caller ID
    elif key in LANGUAGE_KEYS:
        state.lang = LANGUAGE_KEYS[key]
    else:
        state.tries += 1
        if state.tries < state.max_tries:
            return Turn(state, [Say("reason_invalid_choice"), _ask_language(records, state)])
    return _after_language(records, state)


def _after_language(records: Records, state: CallState) -> Turn:
    offered = _caller_account(records, state)
    if offered is not None:
        state.offered = offered
        return _enter(records, state, "offer_account")
    return _to_region_or_account(records, state)


def _to_region_or_account(records: Records, state: CallState) -> Turn:
    if state.region_id is not None:
        return _enter(records, state, "account")
    regions = records.regions()
    if not regions:
        return _no_regions(records, state)
    if len(regions) == 1:
        state.region_id = regions[0].id
        return _enter(records, state, "account")
    guess = records.region_for_caller(state.caller)
    if guess is not None and any(r.id == guess.id for r in regions):
        # Said aloud, with one key to choose another: a caller ID can be misleading.
        state.region_id = guess.id
        return _enter(records, state, "region_assumed")
    return _enter(records, state, "region")


def _no_regions(records: Records, state: CallState) -> Turn:
    """No region can be offered (none has a menu key yet): an operator if one is on duty, else
    the caller is told the service is not ready; never an empty menu."""
    number = _end(records, state, "no_regions", region_id=None)
    if number:
        return Turn(state, [Say("transfer"), Transfer(number)])
    state.outcome, state.end_reason = Outcome.SERVICE_NOT_READY, None
    return Turn(state, [Say("service_not_ready"), Say("goodbye"), Hangup()])


# --- reminder call ------------------------------------------------------------------------------

def _ask_reminder(records: Records, state: CallState) -> Ask:
    return Ask("reminder", (Say("reminder_call", {"tail": Digits(_need(state.account, "account").tail)}),),
               expect="choice",
               speech=SPEECH_KINDS["reminder"])


def _on_reminder(records: Records, state: CallState, event: Event) -> Turn:
    if _choice(event) == "1":
        unsure = _unsure(state, event, "1")
        if unsure:
            return unsure
        return _use_account(records, state, _need(state.account, "account"))
    # A call the callee did not ask for: one question, no retries, no operator.
    state.step, state.outcome = Step.ENDED, Outcome.NO_READING
    return Turn(state, [Say("reminder_call_end"), Hangup()])


# --- region ------------------------------------------------------------------------------------

def _ask_region(records: Records, state: CallState) -> Ask:
    regions = sorted(records.regions(), key=lambda r: r.menu_key)
    # With keys above 9 every key is said and typed as two digits ("0 3", "1 2"), so the Gather
    # can end after two keys; the menu is then keypad-only, for the keypad's patient timeouts.
    wide = any(r.menu_key > 9 for r in regions)
    options = tuple(
        Say("region_option_two_digits", {"name": r.name_in(state.lang), "keys": Digits(f"{r.menu_key:02d}")})
        if wide else Say("region_option", {"name": r.name_in(state.lang), "key": r.menu_key})
        for r in regions
    )
    intro = (Say("ask_region"), Say("region_two_digits")) if wide else (Say("ask_region"),)
    return Ask("region", (*intro, *options), expect="choice", max_digits=2 if wide else 1,
               speech=None if wide else SPEECH_KINDS["region"],
               phrases=tuple(dict.fromkeys(name for r in regions if (name := r.own_name(state.lang)))))


def _on_region(records: Records, state: CallState, event: Event) -> Turn:
    key = _choice(event)
    regions = records.regions()
    named = event.speech.phrase if event.speech else None
    if named:
        # A region's name said in the call's language picks it, when no other region has that name.
        by_name = [r for r in regions if r.own_name(state.lang) == named]
        key = str(by_name[0].menu_key) if len(by_name) == 1 else key
    match = [r for r in regions if key and key.isdigit() and r.menu_key == int(key)]
    if not match:
        return _retry(records, state, _ask_region, _why(event, "invalid_choice"))
    unsure = _unsure(state, event, str(match[0].menu_key))
    if unsure:
        return unsure
    state.region_id = match[0].id
    return _enter(records, state, "account")


def _ask_region_assumed(records: Records, state: CallState) -> Ask:
    region = next((r for r in records.regions() if r.id == state.region_id), None)
    name = region.name_in(state.lang) if region else ""
    return Ask("region_assumed", (Say("region_assumed", {"name": name, "key": CHANGE_REGION_KEY}),),
               expect="choice")


def _on_region_assumed(records: Records, state: CallState, event: Event) -> Turn:
    key = _choice(event)
    if event.kind == "timeout" or key == "1":
        return _enter(records, state, "account")  # silence keeps the assumed region
    if key == CHANGE_REGION_KEY:
        state.region_id = None
        return _enter(records, state, "region")
    return _retry(records, state, _ask_region_assumed, _why(event, "invalid_choice"))


# --- account -----------------------------------------------------------------------------------

def _account_ref(account: AccountInfo) -> AccountRef:
    return AccountRef(id=account.id, region_id=account.region_id, tail=account.number_tail)


def _ask_offer(records: Records, state: CallState) -> Ask:
    return Ask("offer_account", (Say("offer_account", {"tail": Digits(_need(state.offered, "offered account").tail)}),),
               expect="choice", speech=SPEECH_KINDS["offer_account"])


def _on_offer(records: Records, state: CallState, event: Event) -> Turn:
    key = _choice(event)
    unsure = _unsure(state, event, key) if key in ("1", "2") else None
    if unsure:
        return unsure
    if key == "1":
        account, state.offered = _need(state.offered, "offered account"), None
        state.region_id = account.region_id
        return _use_account(records, state, account)
    if key == "2":
        state.offered = None
        return _to_region_or_account(records, state)
    return _retry(records, state, _ask_offer, _why(event, "invalid_choice"))


def _ask_account(records: Records, state: CallState) -> Ask:
    return Ask("account", (Say("ask_account"),), expect="number", max_digits=MAX_ACCOUNT_KEYS,
               speech=SPEECH_KINDS["account"])


def _typed_number(event: Event, limit: int) -> str | None:
    """Keys up to #, or the digits a speech step understood; None if it is not a number."""
    if event.kind == "digits":
        text = event.digits.rstrip("#")
    elif event.kind == "speech" and event.speech and event.speech.value:
        text = event.speech.value
    else:
        return None
    if not text or len(text) > limit or not all(c.isdigit() or c in "*." for c in text):
        return None
    return text


def _on_account(records: Records, state: CallState, event: Event) -> Turn:
    speech = event.speech
    if speech is not None:
        state.utterance_id = speech.utterance_id
        if speech.utterance_id is not None:
            state.account_utterances = [*state.account_utterances, speech.utterance_id]
    typed = _typed_number(event, MAX_ACCOUNT_KEYS)
    if typed is None or (speech is not None and speech.decision == "retry"):
        return _retry(records, state, _ask_account, _why(event, "not_a_number"))
    typed = typed.replace(".", "*")
    state.attempts = [*state.attempts, typed]
    account = records.find_account(_need(state.region_id, "region"), typed)
    if account is None and typed.isdigit():
        # A company's caller may give a meter's serial number instead: the account is the meter's.
        account = records.find_account_by_serial(_need(state.region_id, "region"), typed)
    if account is None:
        return _retry(records, state, _ask_account, "account_not_found")
    if not account.active:
        return _retry(records, state, _ask_account, "account_inactive")
    if speech is not None and speech.decision != "accept":
        # Misheard digits may name someone else's account: the caller hears its last digits and
        # confirms before anything is stored on it.
        state.heard_account = _account_ref(account)
        return _enter(records, state, "confirm_account", keep_tries=True)
    return _identified(records, state, _account_ref(account))


def _identified(records: Records, state: CallState, account: AccountRef) -> Turn:
    state.attempts, state.account_utterances, state.heard_account = [], [], None
    return _use_account(records, state, account)


def _ask_confirm_account(records: Records, state: CallState) -> Ask:
    heard = state.heard_account
    tail = heard.tail if heard is not None else ""
    return Ask("confirm_account", (Say("account_read_back", {"tail": Digits(tail)}), Say("ask_confirm_account")),
               expect="choice", speech=SPEECH_KINDS["confirm_account"])


def _on_confirm_account(records: Records, state: CallState, event: Event) -> Turn:
    key = _choice(event)
    if key == "1" and state.heard_account is not None:
        return _identified(records, state, state.heard_account)
    if key == "2":
        # Not the caller's account: asked for the number again, as "2" promises (whatever the tries;
        # a number misheard as an existing one again and again meets MAX_TURNS).
        state.heard_account = None
        state.step = Step.ACCOUNT
        return Turn(state, [_ask_account(records, state)])
    return _retry(records, state, _ask_confirm_account, _why(event, "invalid_choice"))


def _use_account(records: Records, state: CallState, account: AccountRef) -> Turn:
    state.account = account
    state.meters = [MeterRef(id=m.id, utility=m.utility, tail=m.serial_tail, registers=list(m.registers),
                             serial=m.serial_digits)
                    for m in records.meters(account.id)]
    state.done, state.walk = [], None
    if not state.meters:
        return _give_up(records, state, reason="no_meters")
    info = records.account(account.id)
    company = info is not None and info.kind == "company"
    state.by_serial = len(state.meters) > MENU_METERS or company
    if company and records.asks_org_name(account.region_id):
        return _ask_for_org_name(records, state)
    return _to_meters(records, state)


def _to_meters(records: Records, state: CallState) -> Turn:
    """The identified account's meters: its one meter, else the meter question."""
    if len(state.meters) == 1:
        return _use_meter(records, state, 0)
    return _enter(records, state, _meter_step(state))


def _meter_step(state: CallState) -> str:
    return "meter_serial" if state.by_serial else "meter"


# --- the organisation's name -------------------------------------------------------------------

def _ask_for_org_name(records: Records, state: CallState) -> Turn:
    """The organisation's name, recorded: told first that spoken answers are recorded, unless the
    caller heard it already (a line where nothing else is recorded, keypad only, says it here)."""
    turn = _enter(records, state, "org_name")
    if state.notice_said:
        return turn
    state.notice_said = True
    return Turn(turn.state, [Say("recording_notice"), *turn.actions])


def _ask_org_name(records: Records, state: CallState) -> Ask:
    return Ask("org_name", (Say("ask_org_name"),), expect=RECORDS)


def _on_org_name(records: Records, state: CallState, event: Event) -> Turn:
    """Whatever came (the recording, keys, silence, a recording that failed), on to the meters:
    nothing is decided on the name, an operator only listens to it."""
    return _to_meters(records, state)


# --- meter and register ------------------------------------------------------------------------

def _meter_option(key: int, meter: MeterRef) -> Say:
    """A meter named by its utility and the last digits of its serial (none: by its utility)."""
    if meter.tail:
        return Say("meter_option", {"key": key, "utility": Term(f"utility_{meter.utility}"), "tail": Digits(meter.tail)})
    return Say("meter_option_no_tail", {"key": key, "utility": Term(f"utility_{meter.utility}")})


def _ask_meter(records: Records, state: CallState) -> Ask:
    options = tuple(_meter_option(i + 1, m) for i, m in enumerate(state.meters[:9]))
    return Ask("meter", (Say("ask_meter"), *options), expect="choice", speech=SPEECH_KINDS["meter"])


def _on_meter(records: Records, state: CallState, event: Event) -> Turn:
    key = _choice(event)
    named = event.speech.utility if event.speech else None
    if named:
        matching = [i for i, m in enumerate(state.meters[:9]) if m.utility == named]
        key = str(matching[0] + 1) if len(matching) == 1 else key
    if not (key and key.isdigit() and 1 <= int(key) <= min(9, len(state.meters))):
        return _retry(records, state, _ask_meter, _why(event, "invalid_choice"))
    unsure = _unsure(state, event, key)
    if unsure:
        return unsure
    return _use_meter(records, state, int(key) - 1)


def _use_meter(records: Records, state: CallState, index: int) -> Turn:
    state.meter = index
    meter = state.meters[index]
    notice = _window_notice(records, state, meter)
    # The tariff is asked only when there is a choice: a one-register meter, or a two-tariff one
    # with one register still to give in this call, goes straight to the value. A walk through the
    # meters takes in turn every register without a reading this period (the confirmation goes on
    # to the next one).
    if state.walk is not None:  # (all given meanwhile, by someone else: asked again from the first)
        left = _still_to_give(records, state, meter) or list(meter.registers)
    else:
        left = [r for r in meter.registers if (meter.id, r) not in state.done] or list(meter.registers)
    if len(left) == 1 or state.walk is not None:
        state.register = left[0]
        turn = _enter(records, state, "value")
    else:
        turn = _enter(records, state, "register")
    return Turn(turn.state, [*notice, *turn.actions])


def _still_to_give(records: Records, state: CallState, meter: MeterRef) -> list[str]:
    """The meter's registers given neither in this call nor earlier for the period a reading given
    now counts in: a caller who gave the night reading yesterday and the day one now is not asked
    for the night one again (choosing the meter and its tariff still lets them correct it)."""
    left = [r for r in meter.registers if (meter.id, r) not in state.done]
    if not left:
        return left  # read nothing more: the usual one-register meter's confirmation
    given = records.given_this_period(_need(state.account, "account").id)
    return [r for r in left if (meter.id, r) not in given]


def _window_notice(records: Records, state: CallState, meter: MeterRef) -> list[Say]:
    """The meter's submission window is closed now: the caller hears when the window a reading
    given now counts in opens and closes (the reading is still taken, for that period). Said once
    per window in a call: a company's meters mostly share one."""
    window = records.window(meter.id)
    told = f"{window.opens.isoformat()}/{window.closes.isoformat()}"
    if window.open or told in state.windows_told:
        return []
    state.windows_told = [*state.windows_told, told]
    return [Say("window_closed", {"opens": Day(window.opens), "closes": Day(window.closes)})]


def _ask_register(records: Records, state: CallState) -> Ask:
    return Ask("register", (Say("ask_register"),), expect="choice", speech=SPEECH_KINDS["register"])


def _on_register(records: Records, state: CallState, event: Event) -> Turn:
    key = _choice(event)
    if event.speech and event.speech.register:
        key = "1" if event.speech.register == "day" else "2"
    if key not in ("1", "2"):
        return _retry(records, state, _ask_register, _why(event, "invalid_choice"))
    unsure = _unsure(state, event, key)
    if unsure:
        return unsure
    state.register = "day" if key == "1" else "night"
    return _enter(records, state, "value")


# --- a company's meters: by serial, or all in turn ---------------------------------------------

def _ask_meter_serial(records: Records, state: CallState) -> Ask:
    return Ask("meter_serial", (Say("ask_meter_serial"),), expect="number", max_digits=MAX_SERIAL_KEYS,
               speech=SPEECH_KINDS["meter_serial"])


def _meter_named(meter: MeterRef) -> Say:
    if meter.tail:
        return Say("meter_named", {"utility": Term(f"utility_{meter.utility}"), "tail": Digits(meter.tail)})
    return Say("meter_named_no_tail", {"utility": Term(f"utility_{meter.utility}")})


def _chose(event: Event, key: str, choice: str) -> bool:
    """The key alone, or the choice named by speech (heard well enough to be a choice at all)."""
    if event.kind == "digits":
        return event.digits.rstrip("#") == key
    speech = event.speech
    return bool(event.kind == "speech" and speech and speech.choice == choice and speech.decision != "retry")


def _on_meter_serial(records: Records, state: CallState, event: Event) -> Turn:
    if _chose(event, WALK_KEY, WALK):
        return _start_walk(records, state)
    speech = event.speech
    typed = _typed_number(event, MAX_SERIAL_KEYS)
    if typed is None or not typed.isdigit() or (speech is not None and speech.decision == "retry"):
        return _retry(records, state, _ask_meter_serial, _why(event, "not_a_number"))
    if speech is not None and speech.decision != "accept":
        # Digits heard unsurely may name another meter, and nothing reads them back: asked again
        # (the prompt says they may be typed).
        return _retry(records, state, _ask_meter_serial, "not_understood")
    matching = [i for i, m in enumerate(state.meters) if m.serial.endswith(typed)]
    exact = [i for i in matching if state.meters[i].serial == typed]
    if len(matching) > 1 and len(exact) == 1:
        matching = exact  # a serial that is the end of a longer one is still named in full
    if not matching:
        return _retry(records, state, _ask_meter_serial, "serial_not_found")
    if len(matching) > 1:
        # Not the caller's mistake: asked for more digits, no try used (MAX_TURNS bounds it).
        return Turn(state, [Say("reason_serial_ambiguous"), _ask_meter_serial(records, state)])
    turn = _use_meter(records, state, matching[0])
    return Turn(turn.state, [_meter_named(state.meters[matching[0]]), *turn.actions])


def _start_walk(records: Records, state: CallState) -> Turn:
    """All meters in turn: every meter with a register still without a reading this period (none
    given in this call either), each named, those registers asked one after another, one summary
    at the end."""
    given = records.given_this_period(_need(state.account, "account").id)
    to_give = [[r for r in m.registers if (m.id, r) not in state.done and (m.id, r) not in given]
               for m in state.meters]
    todo = [i for i, registers in enumerate(to_give) if registers]
    if not todo:
        turn = _enter(records, state, "next")
        return Turn(turn.state, [Say("walk_none"), *turn.actions])
    state.walk, state.walk_from, state.walk_skipped = todo[1:], state.saved, 0
    state.extra_turns = min(MAX_EXTRA_TURNS, state.extra_turns + WALK_TURNS_PER_REGISTER * sum(
        len(to_give[i]) for i in todo))
    turn = _use_meter(records, state, todo[0])
    return Turn(turn.state, [Say("walk_start", {"count": len(todo)}), _meter_named(state.meters[todo[0]]),
                             *turn.actions])


def _walk_on(records: Records, state: CallState, said: list[Say]) -> Turn:
    """The next meter of the walk, or its summary and the question what next."""
    walk = _need(state.walk, "walk")
    if walk:
        index, state.walk = walk[0], walk[1:]
        turn = _use_meter(records, state, index)
        return Turn(turn.state, [*said, _meter_named(state.meters[index]), *turn.actions])
    summary = Say("walk_summary", {"count": state.saved - state.walk_from, "skipped": state.walk_skipped})
    state.walk = None
    turn = _enter(records, state, "next")
    return Turn(turn.state, [*said, summary, *turn.actions])


# --- value and confirmation --------------------------------------------------------------------

def _meter(state: CallState) -> MeterRef:
    return state.meters[_need(state.meter, "meter")]


def _ask_value(records: Records, state: CallState) -> Ask:
    meter = _meter(state)
    params = {"utility": Term(f"utility_{meter.utility}")}
    key = "ask_value"
    if state.register in ("day", "night"):
        key, params["register"] = "ask_value_register", Term(f"register_{state.register}")
    return Ask("value", (Say(key, params),), expect="number", max_digits=MAX_VALUE_KEYS,
               speech=LAST_READING_KIND if state.last_offered else SPEECH_KINDS["value"])


def _offer_last_reading(records: Records, state: CallState, ask: Ask) -> Ask:
    """Once per call, a caller on file for the account is told the key that says the meter's last
    accepted reading, at the first value question that has one to say. Nobody else is told."""
    if state.last_offered or not _on_file(records, state):
        return ask
    meter, register = _meter(state), _need(state.register, "register")
    if records.last_reading(meter.id, register) is None:
        return ask
    state.last_offered = True
    return replace(ask, prompts=(*ask.prompts, Say("last_reading_offer")),
                   speech=LAST_READING_KIND if ask.speech else None)


def _on_file(records: Records, state: CallState) -> bool:
    return state.account is not None and records.on_file(state.account.id, state.caller)


def _asks_last_reading(records: Records, state: CallState, event: Event) -> bool:
    """The key alone (or "last reading" said), from a caller on file who was offered it, for a meter
    and register whose last reading was not said yet (after that, or for anyone else, it is the value 8)."""
    if not (state.last_offered and _chose(event, LAST_READING_KEY, LAST_READING)):
        return False
    return (_meter(state).id, _need(state.register, "register")) not in state.last_heard and _on_file(records, state)


def _say_last_reading(records: Records, state: CallState) -> Turn:
    meter, register = _meter(state), _need(state.register, "register")
    state.last_heard = [*state.last_heard, (meter.id, register)]
    last = records.last_reading(meter.id, register)
    said = Say("last_reading", {"date": Day(last.day), "value": Digits(last.value)}) if last else Say("no_last_reading")
    return Turn(state, [said, _ask_value(records, state)])


def _on_value(records: Records, state: CallState, event: Event) -> Turn:
    if _asks_last_reading(records, state, event):
        return _say_last_reading(records, state)
    if state.walk is not None and event.kind == "digits" and event.digits.rstrip("#") == WALK_KEY:
        state.walk_skipped += 1
        return _walk_on(records, state, [])
    typed = _typed_number(event, MAX_VALUE_KEYS)
    if typed is not None:
        typed = typed.replace("*", ".")
        if typed.count(".") > 1 or typed.strip(".") == "":
            typed = None
        elif typed.startswith("."):
            typed = "0" + typed
        elif typed.endswith("."):
            typed = typed[:-1]
    if typed is None:
        if event.speech and event.speech.utterance_id:
            state.utterance_id = event.speech.utterance_id
        return _retry(records, state, _ask_value, _why(event, "not_a_number"))
    speech = event.speech
    if speech and speech.decision == "retry":
        state.utterance_id = speech.utterance_id
        return _retry(records, state, _ask_value, "not_understood")
    state.decision, state.reason = Decision.ACCEPTED, None
    state.utterance_id = speech.utterance_id if speech else None
    if speech and speech.decision == "review":
        state.decision, state.reason = Decision.PENDING_REVIEW, LOW_CONFIDENCE
    meter = _meter(state)
    register = _need(state.register, "register")
    verdict = records.judge_value(meter.id, register, typed)
    problem = verdict.code if verdict.refused else None
    if problem:
        if verdict.reveals:
            _write(records, NoteRefusal(meter.id, register, typed, problem))
        if state.tries + 1 < state.max_tries:
            return _retry(records, state, _ask_value, problem)
        # Last try and still failing: keep it for an operator rather than lose it.
        state.decision, state.reason = Decision.PENDING_REVIEW, problem
    elif verdict.reveals:
        # A value read back counts too until it is confirmed and saved (and judged again then).
        _write(records, NoteRefusal(meter.id, register, typed, NOT_CONFIRMED))
    state.value = typed
    return _enter(records, state, "confirm", keep_tries=True)


def _save(records: Records, state: CallState, *, decision: Decision, reason: str | None) -> None:
    meter = _meter(state)
    register, value = _need(state.register, "register"), _need(state.value, "value")
    _write(records, SaveReading(meter.id, register, value, status=decision.value, reason=reason,
                                key=_key(state), utterance_id=state.utterance_id))
    # A count and a set, not a list of what was said: the state a turn writes does not grow with
    # the length of the call.
    state.saved += 1
    if (meter.id, register) not in state.done:
        state.done = [*state.done, (meter.id, register)]


def _ask_confirm(records: Records, state: CallState) -> Ask:
    return Ask("confirm", (Say("read_back", {"value": Digits(_need(state.value, "value"))}), Say("ask_confirm")),
               expect="choice", speech=SPEECH_KINDS["confirm"])


def _on_confirm(records: Records, state: CallState, event: Event) -> Turn:
    key = _choice(event)
    unsure = _unsure(state, event, key) if key in ("1", "2") else None
    if unsure:
        return unsure
    if key == "2":
        # The caller says the value is wrong: always asked for again, whatever the tries (a "2"
        # uses none up, and a value given on the last try is still kept for review; the dropped
        # value counted as read back; a caller going round in circles meets MAX_TURNS).
        state.value = None
        state.step = Step.VALUE
        return Turn(state, [_ask_value(records, state)])
    if key != "1":
        return _retry(records, state, _ask_confirm, _why(event, "invalid_choice"))
    meter = _meter(state)
    # Judged again as it is saved: the readings may have changed since it was read back.
    verdict = records.judge_value(meter.id, _need(state.register, "register"), _need(state.value, "value"))
    if not verdict.accepted:
        state.decision, state.reason = Decision.PENDING_REVIEW, verdict.code
    elif state.reason != LOW_CONFIDENCE:
        state.decision, state.reason = Decision.ACCEPTED, None
    _save(records, state, decision=state.decision, reason=state.reason)
    if state.decision == Decision.ACCEPTED:
        said = Say("saved")
    else:
        said = Say("will_be_checked" if verdict.quiet else "saved_for_review")
    remaining = _still_to_give(records, state, meter)
    if remaining:
        # Two-tariff meter: go straight on to the other register, unless it has its reading.
        state.register = remaining[0]
        turn = _enter(records, state, "value")
        return Turn(turn.state, [said, *turn.actions])
    if state.walk is not None:
        return _walk_on(records, state, [said])
    turn = _enter(records, state, "next")
    return Turn(turn.state, [said, *turn.actions])


# --- next --------------------------------------------------------------------------------------

def _ask_next(records: Records, state: CallState) -> Ask:
    prompts = [Say("next_meter")] if len(state.meters) > 1 else []
    return Ask("next", (*prompts, Say("next_account"), Say("next_finish")), expect="choice",
               speech=SPEECH_KINDS["next"])


def _on_next(records: Records, state: CallState, event: Event) -> Turn:
    key = _choice(event)
    valid = ("1", "2", "3") if len(state.meters) > 1 else ("2", "3")
    unsure = _unsure(state, event, key) if key in valid else None
    if unsure:
        return unsure
    if key == "1" and len(state.meters) > 1:
        return _enter(records, state, _meter_step(state))
    if key == "2":
        state.account, state.meters, state.meter = None, [], None
        return _enter(records, state, "account")
    if key == "3" or event.kind == "timeout":
        return _finish(state)
    return _retry(records, state, _ask_next, _why(event, "invalid_choice"))


def _ended(records: Records, state: CallState, event: Event) -> Turn:
    """A late webhook for a finished call: say goodbye again, change nothing."""
    return Turn(state, [Say("goodbye"), Hangup()])


_ASKERS = {
    "reminder": _ask_reminder,
    "language": _ask_language,
    "region": _ask_region,
    "region_assumed": _ask_region_assumed,
    "offer_account": _ask_offer,
    "account": _ask_account,
    "confirm_account": _ask_confirm_account,
    "org_name": _ask_org_name,
    "meter": _ask_meter,
    "meter_serial": _ask_meter_serial,
    "register": _ask_register,
    "value": _ask_value,
    "confirm": _ask_confirm,
    "next": _ask_next,
}


def _enter(records: Records, state: CallState, step: str, *, keep_tries: bool = False) -> Turn:
    tries = state.tries
    _goto(state, step)
    if keep_tries:
        state.tries = tries
    ask = _ASKERS[step](records, state)
    if step == "value":
        ask = _offer_last_reading(records, state, ask)
    return Turn(state, [ask])


_HANDLERS = {
    "reminder": _on_reminder,
    "language": _on_language,
    "region": _on_region,
    "region_assumed": _on_region_assumed,
    "offer_account": _on_offer,
    "account": _on_account,
    "confirm_account": _on_confirm_account,
    "org_name": _on_org_name,
    "meter": _on_meter,
    "meter_serial": _on_meter_serial,
    "register": _on_register,
    "value": _on_value,
    "confirm": _on_confirm,
    "next": _on_next,
    "ended": _ended,
    "transferred": _ended,
}


def reask(records: Records, state: CallState) -> Ask | None:
    """The question for the current step again (used by a transport's fallback URL)."""
    if state.choice_to_confirm and not state.over:
        return _ask_choice_confirmation(records, state)
    asker = _ASKERS.get(state.step.value)
    return asker(records, state) if asker else None


def speech_phrases(records: Records, state: CallState) -> tuple[str, ...]:
    """The names the current question offers (regions), for the recogniser to listen for."""
    ask = reask(records, state) if state.step == "region" else None
    return ask.phrases if ask else ()
