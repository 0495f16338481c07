"""The phone line's turns, without Flask: open a call, take a turn, end a call.

A transport (the Twilio webhooks in ``ivr/voice/webhooks.py``, the stream line in
``ivr/voice/stream_line.py``) turns a request into an event and the actions it gets back into its
own answer; everything else happens here, in one transaction per turn. How a turn is taken (read,
listen, claim, keep the audio, the engine, one commit) is told once, in docs/design.md, *One
webhook, step by step*.

``answer_reminder_call`` opens a reminder call we placed (``ivr remind --call``) when Twilio says
it was answered: by a person, the dialog starts at the reminder question for the account the
outbox row names; by a machine, the call is hung up and counts as placed.

``end_call`` takes Twilio's status callback: a call that ends before the dialog did is
``hung_up``, with the step it was at as its ``end_reason``. ``sweep_idle_calls`` ends the calls
whose status callback never came (it hit a dying worker): after ``IVR_CALL_IDLE_MINUTES`` without
a turn, a call is ended as that callback would have ended it.

A call on the stream transport gets a random token for its one media stream
(``issue_stream_token``, sent in the ``<Stream>``'s ``<Parameter>``); the media endpoint opens a
stream only for a live call on that transport whose unused token it names (``bind_stream``).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import errno
import functools
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Callable, cast

from sqlalchemy import Table, bindparam, func, insert, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, configure_mappers

from readings_store import call_figures, intake, service
from readings_store import sms as sms_store
from readings_store.models import Call, CallStep, ReviewTask, Utterance, utcnow

from . import dialog
from .config import RECORD_TRANSPORT, STREAM_TRANSPORT, Config
from .dialog.state import CallState, Outcome
from .logsafe import safe_logger
from .records import SqlRecords, call_meter

log = safe_logger(__name__)

# Twilio call statuses after which the call is over.
FINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})

# (actions, call language, seq of the next turn, transport=the call's ``Call.speech_transport``,
# stream_token=the token of the media stream the answer starts, on the call's first answer)
# -> the transport's answer (TwiML)
Render = Callable[..., str]
# call language -> an apology that ends the call, needing nothing but the configuration
Apology = Callable[[str], str]
# (call state, the question being answered) -> a recognised speech answer (``speech_steps.Heard``)
# or None. Called only for a question that listens for speech (``Ask.speech``: the grammar kind,
# ``Ask.phrases``: the names it offers), so a transport knows what to recognise from the question;
# and for a question that records (``Ask.expect == RECORDS``): then a ``Recorded``, nothing recognised.
Listen = Callable[[CallState, dialog.Ask], object]
RECORDS = dialog.RECORDS  # a question whose answer is a recording kept for operators, not recognised
_CALLS = cast(Table, Call.__table__)


@dataclass(frozen=True)
class Recorded:
    """The audio of an answer to a question that records (None: it could not be fetched now; the
    recording's status callback may still bring it, ``recording_status``)."""

    audio: bytes | None


def load_state(call: Call) -> CallState | None:
    """The call's state, or None (logged) when its row holds no state this version can read."""
    try:
        return CallState.from_json(call.state or {})
    except ValueError as exc:
        log.error("call %s: unreadable state (%s)", call.call_sid, exc)
        return None


@dataclass(frozen=True)
class TurnAnswer:
    """The transport's answer to a turn request, and whether this request took the turn (False:
    a repeated or out-of-date request, answered with what was answered before)."""

    body: str
    taken: bool


def find_call(session: Session, call_sid: str) -> Call | None:
    return session.scalars(select(Call).where(Call.call_sid == call_sid)).first()


# --- the call's media stream ----------------------------------------------------------------------

def _changed(session: Session, statement) -> int:
    """Rows an UPDATE changed."""
    return cast(CursorResult, session.execute(statement)).rowcount


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def streams(config: Config) -> bool:
    """Whether calls hear speech answers over a media stream (``IVR_SPEECH_TRANSPORT=stream``)."""
    return config.speech_transport == STREAM_TRANSPORT and bool(config.media_url)


def issue_stream_token(config: Config, call: Call) -> str | None:
    """A new random token for the call's one media stream (its hash kept on the call), or None
    when calls are not streamed. The token goes only into the TwiML that starts the stream."""
    if not streams(config) or call.speech_transport == RECORD_TRANSPORT:
        return None
    token = secrets.token_urlsafe(32)
    call.stream_token_hash = _token_hash(token)
    return token


def bind_stream(session: Session, config: Config, call_sid: str, token: str | None) -> str | None:
    """Open the media stream that names ``call_sid`` with ``token``: None when the call exists, is
    live, is on the stream transport and this is its token, not used before (it is used now,
    committed); otherwise why not (the stream is closed, and the call is left as it is)."""
    if not isinstance(token, str) or not token or len(token) > 128:
        return "no stream token"
    if not streams(config):
        return "calls are not streamed (IVR_SPEECH_TRANSPORT)"
    # One conditional UPDATE: of two streams naming the same token at once, one opens.
    opened = _changed(session, update(Call).where(
        Call.call_sid == call_sid, Call.stream_token_hash == _token_hash(token), Call.stream_opened_at.is_(None),
        Call.outcome.is_(None), Call.ended_at.is_(None),
        or_(Call.speech_transport.is_(None), Call.speech_transport == STREAM_TRANSPORT))
        .values(stream_opened_at=utcnow()).execution_options(synchronize_session=False))
    if opened == 1:
        session.commit()
        return None
    session.rollback()
    call = find_call(session, call_sid)
    if call is None:
        return "unknown call"
    if call.outcome or call.ended_at is not None:
        return "the call is over"
    if call.speech_transport == RECORD_TRANSPORT:
        return "the call is on the record transport"
    if call.stream_token_hash is None or not hmac.compare_digest(call.stream_token_hash, _token_hash(token)):
        return "wrong stream token"
    return "the call's stream token was used before"


# What the opening of a call writes: its row (the rest of its columns take their defaults).
_INSERT_CALL = insert(_CALLS).returning(_CALLS.c.id)
_OPEN_COLUMNS = ("call_sid", "from_number", "caller_country", "language", "seq", "state", "steps", "last_twiml",
                 "last_activity_at", "stream_token_hash", *call_figures.COLUMNS)


def open_call(session: Session, config: Config, *, call_sid: str, caller: str | None, country: str | None,
              language: str, render: Render, apology: Apology) -> str:
    """The first answer of a call; a repeated ``incoming`` request gets the answer it got before
    (the CallSid is unique: its row is not looked for first, the INSERT of a repeat fails)."""
    call = Call(call_sid=call_sid, from_number=caller, caller_country=country, language=language, seq=1, steps=[])
    # The row is inserted once, with its first state and answer (the opening reads no id of it),
    # by a Core INSERT: the call is not in the session.
    turn = dialog.start(SqlRecords(session, config, call), call_sid=call_sid, caller=caller, language=language,
                        max_tries=config.max_tries, may_record=config.may_record())
    body = render(turn.actions, turn.state.lang, call.seq, transport=call.speech_transport,
                  stream_token=issue_stream_token(config, call))
    call.state, call.last_twiml, call.last_activity_at = turn.state.to_json(), body, utcnow()
    # The opening's step counted in the figures the INSERT writes (its row needs the call's id).
    next_ = _next_of(turn.actions)
    call_figures.add_step(call, "incoming", next_, None)
    call.steps = [_step(call, "incoming", next_, {"from": "known" if caller else "withheld"}, call.last_activity_at)]
    held = _take_held_steps(call) if turn.state.over else []  # a call over at once: its step as a row
    try:
        call.id = session.execute(_INSERT_CALL, {name: getattr(call, name) for name in _OPEN_COLUMNS}).scalar_one()
    except IntegrityError:
        session.rollback()
        existing = find_call(session, call_sid)
        if existing is None:
            raise  # another constraint: a programming error
        return existing.last_twiml or apology(existing.language or "en")
    _insert_steps(session, call, held)
    session.commit()
    return body


def answered_by_machine(answered_by: str | None) -> bool:
    """Twilio's ``AnsweredBy`` for an answering machine or a fax (``human`` and ``unknown``: a person
    may be there, so the robot speaks)."""
    return (answered_by or "").startswith("machine") or answered_by == "fax"


def answer_reminder_call(session: Session, config: Config, *, token: str, call_sid: str, callee: str | None,
                         country: str | None, answered_by: str | None, render: Render, polite_end: Apology,
                         fallback_language: str) -> str:
    """The first answer of a reminder call: Twilio fetched the URL naming the outbox row by its
    ``token``. An unknown token, or one of another call or number, gets ``polite_end`` and
    changes nothing; a repeated request gets the answer it got before."""
    existing = find_call(session, call_sid)
    if existing is not None:
        return existing.last_twiml or polite_end(existing.language or fallback_language)
    row = sms_store.reminder_call(session, token)
    if row is None or row.to_number is None or row.account_id is None or row.message_sid not in (None, call_sid) \
            or callee != row.to_number or row.status not in ("pending", "placed", "machine"):
        log.warning("reminder call %s: the answer URL names no reminder call placed to this number", call_sid)
        session.rollback()
        return polite_end(fallback_language)
    if answered_by_machine(answered_by) or row.status == "machine":
        # Nothing is left on the machine (its greeting is still playing); the reminder counts as placed.
        row.status = "machine"
        session.commit()
        return render([dialog.Hangup()], row.language, 0)
    call = Call(call_sid=call_sid, from_number=row.to_number, caller_country=country, language=row.language, seq=1,
                steps=[])
    session.add(call)
    session.flush()
    turn = dialog.start_reminder(SqlRecords(session, config, call), call_sid=call_sid, callee=row.to_number,
                                 language=row.language, account_id=row.account_id, max_tries=config.max_tries,
                                 may_record=config.may_record(row.language))
    # The caller's audio is streamed only to a call that is asked something (not to a machine).
    asks = any(isinstance(a, dialog.Ask) for a in turn.actions)
    body = render(turn.actions, turn.state.lang, call.seq,
                  stream_token=issue_stream_token(config, call) if asks else None)
    _write_state(call, turn.state)
    call.last_twiml = body
    row.status = "answered"
    _log_step(call, "reminder", {"answered_by": (answered_by or "unknown")[:32]}, turn.actions)
    if _steps_due(call):
        write_steps(session, call)
    session.commit()
    return body


def is_current(session: Session, call_sid: str, step: str, seq: int) -> bool:
    """Whether the call expects the turn ``seq`` at the question ``step`` now (a read only)."""
    call = find_call(session, call_sid)
    if call is None:
        return False
    state = load_state(call)
    return state is not None and call.seq == seq and state.step.value == step


def take_turn(session: Session, config: Config, *, call_sid: str, step: str, seq: int, keys: dialog.Event,
              render: Render, apology: Apology, listen: Listen | None = None,
              recording_sid: str | None = None) -> TurnAnswer:
    """Take the turn ``seq`` of the call, answering the question ``step``: the caller's ``keys``
    event, or the speech answer ``listen`` recognises (its audio kept with ``recording_sid``).

    ``listen`` only for a request that carries speech: it is recognised before the turn is claimed,
    so a slow recognition holds no lock. Keys need no such wait: the call is claimed and loaded by
    one statement (``_claim``), so that a keypad turn costs one read-and-claim and one write."""
    if listen is None:
        call = _claim(session, call_sid, seq)
        if call is None:
            return _not_taken(session, call_sid, apology)
        state = load_state(call)
        if state is None or state.step.value != step:
            return _not_taken(session, call_sid, apology)
        return TurnAnswer(_advance(session, config, call, state, step, keys, seq, render, call.speech_transport),
                          True)
    call = find_call(session, call_sid)
    if call is None:
        log.warning("webhook for unknown call %s", call_sid)
        return TurnAnswer(apology("en"), False)
    state = load_state(call)
    if state is None:
        return TurnAnswer(call.last_twiml or apology(call.language or "en"), False)
    current = call.seq == seq and state.step.value == step
    ask = _question(session, config, call, state) if current else None
    heard = listen(state, ask) if ask is not None and (ask.speech is not None or ask.expect == RECORDS) else None
    # The transport is read with the claim: a call moved to the record transport meanwhile (its
    # stream refused) gets this turn's question recorded, not streamed to nobody.
    claimed = session.execute(
        update(Call).where(Call.id == call.id, Call.seq == seq).values(seq=seq + 1).returning(Call.speech_transport)
    ).first()
    if claimed is None or not current:
        # A repeated or out-of-date request: answer what we answered before, change nothing.
        session.rollback()
        session.refresh(call)
        return TurnAnswer(call.last_twiml or apology(call.language or "en"), False)
    event = keys
    if isinstance(heard, Recorded):
        event = dialog.Event("recording", speech=keep_recording(session, config, call, step, seq, heard,
                                                                recording_sid=recording_sid))
    elif heard is not None:
        event = dialog.Event("speech", speech=keep_utterance(session, config, call, step, seq, heard,
                                                             recording_sid=recording_sid))
    return TurnAnswer(_advance(session, config, call, state, step, event, seq, render, claimed.speech_transport),
                      True)


# The statements every turn runs are built once, with bind parameters: building a statement and
# its cache key costs more than running it. They are Core statements on the calls table: the ORM's
# loading and flushing of the call cost more CPU than the statements themselves (README, the
# webhook benchmark).
_CLAIM = (update(_CALLS).where(_CALLS.c.call_sid == bindparam("claimed_sid"), _CALLS.c.seq == bindparam("claimed_seq"))
          .values(seq=_CALLS.c.seq + 1).returning(*_CALLS.c))


def _claim(session: Session, call_sid: str, seq: int) -> Call | None:
    """Claim the turn ``seq`` and load the call, in one statement: ``UPDATE ... SET seq = seq + 1
    WHERE call_sid = ? AND seq = ? RETURNING *``. None: no such call, or the turn was taken
    before (a retried webhook, two workers racing). The claim holds the row (PostgreSQL) or the
    database's write lock (SQLite) until the turn commits or rolls back. The call is not in the
    session: the turn writes it by one UPDATE (``_write_turn``)."""
    row = session.execute(_CLAIM, {"claimed_sid": call_sid, "claimed_seq": seq}).first()
    if row is None:
        return None
    intake.note_write_lock(session)
    return _call_of(row)


_CALL_MAPPER = Call.__mapper__


def _call_of(row) -> Call:
    """The call a ``RETURNING *`` row holds, outside the session. Its values go straight into the
    object's ``__dict__``: ``Call(**row)`` sets each of the 30 columns through the ORM's attribute
    events, which cost more than the statement's result (61-71 µs against 3 per claim, measured in
    process). What the turn then changes is set as usual."""
    if not _CALL_MAPPER.configured:
        # As the ORM's constructor would: a worker's first turn may come before any query has
        # configured the mappers, and another thread may be configuring them now (this waits).
        configure_mappers()
    call = cast(Call, _CALL_MAPPER.class_manager.new_instance())
    call.__dict__.update(row._mapping)
    return call


def _not_taken(session: Session, call_sid: str, apology: Apology) -> TurnAnswer:
    """A keypad request that took no turn (repeated, out of date, for another question, or for an
    unknown call): the claim, if any, is undone, and the answer given before is given again."""
    session.rollback()
    call = find_call(session, call_sid)
    if call is None:
        log.warning("webhook for unknown call %s", call_sid)
        return TurnAnswer(apology("en"), False)
    return TurnAnswer(call.last_twiml or apology(call.language or "en"), False)


def _advance(session: Session, config: Config, call: Call, state: CallState, step: str, event: dialog.Event,
             seq: int, render: Render, transport: str | None) -> str:
    records = SqlRecords(session, config, call)
    turn = dialog.handle(records, state, event)
    # The effects first: what they read must not flush the call's row early, so that the call is
    # written once, by one UPDATE, with its step row at the commit.
    persist_effects(session, call, turn.effects, records)
    call.seq = seq + 1
    body = render(turn.actions, turn.state.lang, call.seq, transport=transport)
    _write_state(call, turn.state)
    call.last_twiml = body
    _log_step(call, step, {"kind": event.kind, "keys": len(event.digits),
                           "decision": event.speech.decision if event.speech else None}, turn.actions)
    _write_turn(session, call)
    # Commit before answering: the caller hears "saved" only for a reading that is stored.
    session.commit()
    return body


# What a turn writes to its call's row (its seq is written by the claim).
_TURN_COLUMNS = ("state", "steps", "language", "account_id", "region_id", "outcome", "end_reason", "last_twiml",
                 "last_activity_at", *call_figures.COLUMNS)


@functools.cache
def _update_of(columns: tuple[str, ...]):
    """The UPDATE of ``columns`` of one call's row (``call_id``; values ``new_<column>``)."""
    return (update(_CALLS).where(_CALLS.c.id == bindparam("call_id"))
            .values({name: bindparam(f"new_{name}") for name in columns}))


def _write_call(session: Session, call: Call, columns: tuple[str, ...]) -> None:
    """Write ``columns`` of the call to its row, by one UPDATE, in the caller's transaction. A call
    read through the ORM (a spoken answer's turn, the sweep) leaves the session first, so that
    the commit does not write it again."""
    if call in session:
        session.expunge(call)
    session.execute(_update_of(columns), {"call_id": call.id, **{f"new_{name}": getattr(call, name)
                                                                 for name in columns}})


def _write_turn(session: Session, call: Call) -> None:
    """Write the turn's changes to the call's row (with its held steps as ``call_steps`` rows when
    they are due, ``_log_step``), in the turn's transaction."""
    held = _take_held_steps(call) if _steps_due(call) else []
    _write_call(session, call, _TURN_COLUMNS)
    _insert_steps(session, call, held)


def _write_state(call: Call, state: CallState) -> None:
    """The state, and the columns the console and the dashboard read from it."""
    call.state, call.language = state.to_json(), state.lang
    if state.account is not None:
        call.account_id, call.region_id = state.account.id, state.account.region_id
    elif state.region_id:
        call.region_id = state.region_id
    if state.outcome is not None:
        call.outcome, call.end_reason = state.outcome.value, state.end_reason


def persist_effects(session: Session, call: Call, effects: list, records: SqlRecords | None = None) -> None:
    """Write what the engine decided, in the turn's transaction (the caller commits)."""
    def meter_of(meter_id: int):
        return records.meter(meter_id) if records is not None else call_meter(session, call, meter_id)

    for effect in effects:
        if isinstance(effect, dialog.SaveReading):
            meter = meter_of(effect.meter_id)
            source = intake.Source("phone_speech" if effect.utterance_id else "phone_keypad",
                                   phone=call.from_number, call_id=call.id)
            verdict = records.verdict(meter.id, effect.register, effect.value) if records is not None else None
            service.store_reading(
                session, meter, effect.register, Decimal(effect.value), channel=source.channel,
                status=effect.status, reason=effect.reason, call_id=call.id, utterance_id=effect.utterance_id,
                idempotency_key=effect.key, given_from=source.phone,
                trusted=verdict.trusted if verdict is not None and verdict.judged is not None
                else intake.is_trusted(session, meter, source),
                judged=verdict.judged if verdict is not None else None,
                # A turn's save is made once: the turn is claimed (``_claim``), its key is its turn's.
                claimed=records is not None,
            )
            service.forget_read_back(session, call.id, meter.id, effect.register, effect.value)
        elif isinstance(effect, dialog.NoteRefusal):
            verdict = records.verdict(effect.meter_id, effect.register, effect.value) if records is not None else None
            service.record_refusal(session, meter_of(effect.meter_id), effect.register,
                                   effect.value, effect.code, call_id=call.id, caller=call.from_number,
                                   period=verdict.period if verdict is not None else None)
        elif isinstance(effect, dialog.ReportFailedIdentification):
            # Every spoken answer to the account question is named, so an operator can listen to each.
            session.add(ReviewTask(kind="identification", reason="account_not_found", region_id=effect.region_id,
                                   call_id=call.id, utterance_id=effect.utterance_id,
                                   details={"attempts": list(effect.attempts), "caller": call.from_number,
                                            "utterances": list(effect.utterances)}))
        else:  # pragma: no cover - programming error
            raise TypeError(f"unknown effect {effect!r}")


# Steps a call's row holds at most: a usual call (about 6 steps) writes them all by one INSERT at its
# end; a long one writes them every HELD_STEPS turns, so a turn's UPDATE stays small.
HELD_STEPS = 8


def _log_step(call: Call, step: str, event: dict, actions: list, *, at: dt.datetime | None = None) -> None:
    """Log the step of the turn that took ``call.seq - 1`` (0: the call's opening) on the call:
    held on its row (``Call.steps``, a few small entries; the turn writes the row anyway). The
    caller writes the steps held as ``call_steps`` rows by one INSERT when they are due
    (``_steps_due``: the turn that ends the dialog, else ``_end``: the status callback or the
    sweep; or once ``HELD_STEPS`` are held), so that what a turn writes does not grow with the
    call's length."""
    now = at or utcnow()
    next_ = _next_of(actions)
    call.steps = [*(call.steps or []), _step(call, step, next_, event, now)]
    # The dashboard's figures of the call, in the row the turn writes anyway.
    call_figures.add_step(call, step, next_, event.get("kind"))
    call.last_activity_at = now


def _steps_due(call: Call) -> bool:
    """Whether the steps the call's row holds are to be written as rows now: the dialog ended, or
    ``HELD_STEPS`` are held."""
    return call.outcome is not None or len(call.steps or []) >= HELD_STEPS


def write_steps(session: Session, call: Call) -> None:
    """Write the steps the call's row holds as ``call_steps`` rows, by one INSERT, in the caller's
    transaction (the call's row is flushed with it, by the ORM)."""
    _insert_steps(session, call, _take_held_steps(call))


def _take_held_steps(call: Call) -> list[dict]:
    """The steps the call's row holds, which it then no longer holds."""
    held = [step for step in call.steps or [] if isinstance(step, dict) and "seq" in step]
    if call.steps:
        call.steps = []
    return held


def _insert_steps(session: Session, call: Call, held: list[dict]) -> None:
    if held:
        session.execute(insert(cast(Table, CallStep.__table__)), [
            {**step, "call_id": call.id, "at": dt.datetime.fromisoformat(step["at"])} for step in held])


def _next_of(actions: list) -> str:
    """What a turn's step led to: the question asked, else the last action (transfer, hang-up)."""
    asked = [a.step for a in actions if isinstance(a, dialog.Ask)]
    return asked[0] if asked else type(actions[-1]).__name__.lower()


def _step(call: Call, step: str, next_: str, event: dict, at: dt.datetime) -> dict:
    """The ``CallStep`` of the turn that took ``call.seq - 1`` (0: the call's opening), as the
    call's row holds it until the call ends."""
    return {"seq": call.seq - 1, "at": at.isoformat(), "step": step, "next": next_, "kind": event.get("kind"),
            "keys": event.get("keys"), "decision": event.get("decision"),
            "detail": event.get("from", event.get("answered_by")), "language": call.language,
            "region_id": call.region_id}


def use_record_transport(session: Session, call_sid: str, *, only_if_streaming: bool = False) -> Call | None:
    """Hear the call's speech answers with the record transport from now on (the media endpoint
    refused its stream, or the stream stopped); returns the call, read after the change is
    committed, or None (unknown call, or over: nothing changes; with ``only_if_streaming``, also
    a call already on the record transport, so that of several reports of one failure only the
    first moves the call). Takes no turn: the question stays where it is."""
    call = find_call(session, call_sid)
    if call is None:
        return None
    state = load_state(call)
    if state is None or state.over or call.outcome or call.ended_at is not None:
        return None
    # One UPDATE, not the ORM object: a turn being taken meanwhile keeps every other column.
    moved = _changed(session, update(Call).where(
        Call.id == call.id, *([or_(Call.speech_transport.is_(None), Call.speech_transport != RECORD_TRANSPORT)]
                              if only_if_streaming else []))
        .values(speech_transport=RECORD_TRANSPORT).execution_options(synchronize_session=False))
    session.commit()
    session.refresh(call)
    return call if moved or not only_if_streaming else None


def speech_question(session: Session, config: Config, call: Call | None,
                    engine_for: Callable[[str], str]) -> tuple[CallState, str, dialog.Ask] | None:
    """(state, speech kind, question) when the call's current question may be answered by voice
    through Vosk, whichever transport brings the audio; else None (a keypad question, a caller
    who typed, a language not heard by Vosk, a call that is over)."""
    if call is None:
        return None
    state = load_state(call)
    if state is None or state.over or state.keypad_only:
        return None
    ask = _question(session, config, call, state)
    if ask is None or ask.speech is None or engine_for(state.lang) != "vosk":
        return None
    return state, ask.speech, ask


def end_call(session: Session, *, call_sid: str, status: str, duration: str | None) -> bool:
    """Twilio's status callback; False for an unknown call. A call over before its dialog ended
    is ``hung_up`` at the step it was at."""
    # Written and read back by one statement (``UPDATE ... RETURNING``); what the end writes
    # besides (an outcome for a call still in its dialog, a receipt) follows in the same transaction.
    params: dict = {"ended_sid": call_sid, "new_status": status[:32], "ended_now": utcnow()}
    final = params["new_status"] in FINAL_STATUSES
    # ASCII digits that fit the INTEGER column; anything else ("²", 20 digits) is ignored.
    if final and duration and duration.isascii() and duration.isdigit() and len(duration) <= 9:
        params["new_duration"] = int(duration)
    row = session.execute(_end_statement(final, "new_duration" in params), params).first()
    if row is None:
        if sms_store.record_call_status(session, call_sid, status):  # a reminder call nobody answered
            session.commit()
            return True
        log.warning("status callback for unknown call %s", call_sid)
        session.rollback()
        return False
    call = _call_of(row)  # outside the session: ``_end`` writes what it changes
    if final:
        _end(session, call, utcnow(), "hung_up")
    session.commit()
    return True


@functools.cache
def _end_statement(final: bool, duration: bool):
    """``end_call``'s UPDATE ... RETURNING: the status; for a final one the end time (kept if set)
    and, with ``duration``, Twilio's duration."""
    values: dict = {"twilio_status": bindparam("new_status")}
    if final:
        values["ended_at"] = func.coalesce(_CALLS.c.ended_at, bindparam("ended_now", type_=_CALLS.c.ended_at.type))
        if duration:
            values["duration_seconds"] = bindparam("new_duration")
    return update(_CALLS).where(_CALLS.c.call_sid == bindparam("ended_sid")).values(**values).returning(*_CALLS.c)


# What the end of a call writes to its row besides what ``end_call``'s statement wrote.
_END_COLUMNS = ("ended_at", "outcome", "end_reason", "state", "steps")


def _end(session: Session, call: Call, at: dt.datetime, reason: str) -> None:
    """What the end of a call writes, in the caller's transaction: its end time, an outcome
    (``hung_up`` at the step it was at, ``reason`` after the step, if the dialog had not ended),
    the steps its row still holds, and the receipt by SMS. The call's row is written by one Core
    UPDATE, and only when the end changes it (a call whose dialog ended, ended by ``end_call``,
    needs none)."""
    held = _take_held_steps(call)
    if call.ended_at is None or not call.outcome or held:
        call.ended_at = call.ended_at or at
        if not call.outcome:
            state = load_state(call)
            step = state.step.value if state else "start"
            call.outcome, call.end_reason = Outcome.HUNG_UP.value, f"{step}:{reason}"
            if state is not None:
                state.outcome, state.end_reason = Outcome.HUNG_UP, call.end_reason
                call.state = state.to_json()
        _write_call(session, call, _END_COLUMNS)
    _insert_steps(session, call, held)
    # A receipt by SMS, written with the call's end and sent later (``ivr sms send-pending``).
    sms_store.queue_receipt(session, call, call.language or "en")


# end_reason of a call ended by the sweep: its end was never reported (Twilio's status callback
# was lost), so the caller is taken to have hung up at the step the call was at.
NO_STATUS = "no_status"


def sweep_idle_calls(session: Session, idle: dt.timedelta, *, now: dt.datetime | None = None,
                     limit: int = 1000) -> list[str]:
    """End the calls not ended yet and without a turn for ``idle`` (their status callback never
    came): each as ``end_call`` would, ended at its last activity. One transaction per call,
    the call re-read under a row lock, so a turn or a status callback arriving meanwhile wins.
    Returns the CallSids ended (at most ``limit``; the next run takes the rest)."""
    cutoff = (now or utcnow()) - idle
    last = func.coalesce(Call.last_activity_at, Call.started_at)
    ids = session.scalars(select(Call.id).where(Call.ended_at.is_(None), last < cutoff)
                          .order_by(Call.id).limit(limit)).all()
    session.rollback()
    ended = []
    for call_id in ids:
        call = session.scalars(select(Call).where(Call.id == call_id).with_for_update()).first()
        if call is None or call.ended_at is not None or (call.last_activity_at or call.started_at) >= cutoff:
            session.rollback()
            continue
        at = call.last_activity_at or call.started_at
        _end(session, call, at, NO_STATUS)
        session.commit()
        log.warning("call %s ended by the sweep: no activity since %s and no end reported by Twilio",
                    call.call_sid, at.isoformat())
        ended.append(call.call_sid)
    return ended


# --- the caller's audio ---------------------------------------------------------------------------

def _fits(value: str | None, size: int) -> str | None:
    """A parsed number for a String(size) column: one longer (minutes of "one one one...") is no
    meter reading, and would fail the INSERT on PostgreSQL; the transcript keeps what was said."""
    return value if value is None or len(value) <= size else None


def store_audio(root: Path, call_sid: str, name: str, audio: bytes) -> str:
    """Write a caller's audio under the recordings folder ``root``; returns its path relative to
    it. Callers' voices are personal data: folders 0700, files 0600, whatever the umask. A write
    that fails (a full or read-only volume) raises ``OSError`` and leaves no partial file."""
    relative = Path(call_sid) / name
    target = root / relative
    for folder in (root, target.parent):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(audio)
    except OSError:
        target.unlink(missing_ok=True)
        raise
    return str(relative)


def store_audio_or_none(root: Path, call_sid: str, name: str, audio: bytes) -> str | None:
    """``store_audio``, or None when the recordings folder cannot take the audio (full, read-only,
    gone): the answer still counts without its audio, and the error says what to fix."""
    try:
        return store_audio(root, call_sid, name, audio)
    except OSError as exc:
        what = "full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "not writable"
        log.error("call %s: the recordings folder %s is %s (%s): the answer is kept without its audio",
                  call_sid, root, what, exc.strerror or exc.__class__.__name__)
        return None


def keep_utterance(session: Session, config: Config, call: Call, step: str, seq: int, heard, *,
                   recording_sid: str | None = None) -> dialog.SpeechInput:
    """Store the caller's audio and what was made of it (the operator console shows both); the
    speech input names the ``Utterance`` row."""
    audio_path = (store_audio_or_none(config.recordings_dir, call.call_sid, f"{seq:03d}-{step}.wav", heard.audio)
                  if heard.audio else None)
    utterance = Utterance(call_id=call.id, step=step, engine=heard.engine, recording_sid=recording_sid,
                          audio_path=audio_path, transcript=heard.transcript, words=heard.words,
                          alternatives=heard.alternatives, parsed_value=_fits(heard.speech.value, 64),
                          candidates=heard.candidates, confidence=heard.confidence,
                          decision=heard.speech.decision)
    session.add(utterance)
    session.flush()
    return dataclasses.replace(heard.speech, utterance_id=utterance.id)


def keep_recording(session: Session, config: Config, call: Call, step: str, seq: int, recorded: Recorded, *,
                   recording_sid: str | None = None) -> dialog.SpeechInput:
    """Store the audio of an answer to a question that records, like a spoken answer's (the
    recordings folder, an ``Utterance`` row: kept as long, erased alike), with nothing recognised.
    Nothing to keep (no audio, no recording to fetch later): no row."""
    audio_path = (store_audio_or_none(config.recordings_dir, call.call_sid, f"{seq:03d}-{step}.wav", recorded.audio)
                  if recorded.audio else None)
    if audio_path is None and recording_sid is None:
        return dialog.SpeechInput(text="", decision="retry")
    utterance = Utterance(call_id=call.id, step=step, engine="record", recording_sid=recording_sid,
                          audio_path=audio_path, transcript=None, words=[], alternatives=[], candidates=[])
    session.add(utterance)
    session.flush()
    return dialog.SpeechInput(text="", utterance_id=utterance.id)


def current_question(session: Session, config: Config, call: Call) -> dialog.Ask | None:
    """The question the call is at, asked again (a transport's fallback), or None when over."""
    state = load_state(call)
    return _question(session, config, call, state) if state else None


def question_at(session: Session, config: Config, call_sid: str, step: str, seq: int) -> dialog.Ask | None:
    """The question ``step`` of turn ``seq`` when the call is at it now, else None: what it
    expects (``Ask.expect``) and listens for (``Ask.speech``, ``Ask.phrases``). Changes nothing."""
    call = find_call(session, call_sid)
    if call is None or call.seq != seq:
        return None
    state = load_state(call)
    if state is None or state.step.value != step:
        return None
    return _question(session, config, call, state)


def _question(session: Session, config: Config, call: Call, state: CallState) -> dialog.Ask | None:
    return dialog.reask(SqlRecords(session, config, call), state)
