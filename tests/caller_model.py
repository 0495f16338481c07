"""A model of callers: whole calls driven through the turn service (``ivr/calls.py``) by callers who
go every way a caller can, each call checked against the phone line's invariants.

Each call is one caller: withheld, unknown or on file; speaking one of the four languages; answering
with the keypad, or by voice over the record transport (``<Record>``, fetched and recognised), the
stream transport (the media endpoint's handlers in ``ivr/voice/stream_line.py``: the stream opened with
the call's one-time token, sometimes refused or stopped half way) or Twilio's own recogniser
(Romanian). At every question the caller chooses among the right keys, wrong keys, ``#`` too
early, ``*``, silence, hanging up, ``0``, a speech answer heard with high, middling or low
confidence, with ``[unk]``, parsed two ways, or heard as other digits (often another customer's
account number), "yes", "no", "operator", "2" at the read-back, another meter, another account;
and Twilio sometimes sends the same webhook twice. "2" at a read-back must ask the question again,
as the prompt promises. The phone line's clock is pinned and moves on
between calls, so calls fall in and out of working hours and submission windows, and the same
run always makes the same calls.

After every turn and every call, the invariants:

1. the call ends (goodbye, transfer or hang-up) within ``MAX_TURNS`` + 1 turns;
2. a value the caller confirmed is stored exactly once (accepted or for review), nothing else is
   stored but a value left at its read-back when the call ended, and "saved" is said only for an
   accepted, committed reading (the closing count: the readings stored);
3. nothing is stored on an account the caller did not give by keys, say and be heard right, or
   confirm at a read-back (of a spoken number, or the one offered for the caller ID);
4. every spoken answer to the account question of a call that ended there, without an account,
   is named by an identification item an operator can reach;
5. a request for a person (0, or "operator" heard) in working hours is put through in that turn;
   out of hours the caller hears when operators answer, or that none does, and the same question;
6. no prompt says something untrue for what happened: why an answer is asked again (keys that are
   no number, speech not understood, silence, an account not found), the value and account digits
   read back, the last digits a meter is named by, the tariff question only when there is a
   choice, a two-tariff meter's other tariff asked right after one is stored exactly when it has
   no reading of that period yet (from this call or an earlier one), the operators' hours (checked against the region's hours at those times), the hint
   about 0 once and only where an operator answers;
7. after every turn that wrote its call (a turn taken, the end of a call), the call's row holds
   every column as the turn left the call: the turn writes the row by one Core UPDATE of the
   columns it names (``calls._write_turn``, ``calls._end``), so a column a turn changes but does
   not name would be lost.

Speech is recognised by ``FakeRecogniser`` (a fake standing in for Vosk and Twilio: it hears
what the caller said with the confidence the caller's line allows, and gives out only words of
the question's grammar). The records are an in-memory SQLite database with the product's schema.

``python -m tests.caller_model --calls 50000`` (``make caller-model``) runs it with a random seed,
shared by one process per CPU (each with its own seed drawn from the run's), and prints the seed
of a failing run and the failing call's turns; ``--jobs 1 --seed S --calls N`` replays it (every
call depends on the ones before it: the records they left).
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import random
import re
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, event, select
from sqlalchemy.pool import StaticPool

import grammars
from grammars._lexicon import load as load_pack
from ivr import calls, dialog
from ivr.config import load_config
from ivr.dialog.engine import MAX_TURNS, SPEECH_KINDS
from ivr.prompts import Prompts
from ivr.voice.speech_steps import SpeechSteps
from ivr.voice.stream_line import StreamLine
from ivr.voice.twiml import TwimlRenderer
from readings_store import clock as product_clock
from readings_store import rules
from readings_store.db import make_session_factory
from readings_store.models import (Account, AccountPhone, Base, Call, Meter, Reading, Region, ReviewTask,
                                   SubmissionWindow, Utterance)
from readings_store.service import keypad_key
from speech.recognizer import Recognition, Word

UTC = dt.timezone.utc
PUBLIC_URL = "https://ivr.example.org"
MEDIA_URL = "wss://ivr.example.org/voice/stream"
RECORDINGS = "https://api.twilio.com/2010-04-01/Accounts/AC" + "0" * 32 + "/Recordings/"
AUTH_TOKEN = "caller-model-auth-token-0123456789"
FALLBACK_OPERATOR = "+37322999000"
START = dt.datetime(2026, 3, 2, 5, 0, tzinfo=UTC)  # a Monday morning
LANGUAGE_KEYS = {"ro": "1", "ru": "2", "uk": "3", "en": "4"}
ENGINES = {"ro": "twilio", "ru": "vosk", "uk": "vosk", "en": "vosk"}
ACCEPT, REVIEW = 0.85, 0.5  # the line's confidence thresholds (the configuration's defaults)


# --- the records the callers call about --------------------------------------------------------------

@dataclass(frozen=True)
class RegionSpec:
    code: str
    name: str
    key: int
    zone: str
    hours: tuple[dt.time, dt.time, str]  # start, end, ISO weekdays
    operator: str | None  # None: the configured fallback operator answers in its hours
    window: tuple[int, int] | None = None
    prefixes: tuple[str, ...] = ()
    names: dict = field(default_factory=dict)


@dataclass(frozen=True)
class MeterSpec:
    serial: str
    utility: str
    registers: int = 1
    digits: int = 6
    decimals: int = 0
    previous: str = "100"

    @property
    def register_names(self) -> tuple[str, ...]:
        return ("total",) if self.registers == 1 else ("day", "night")

    @property
    def tail(self) -> str:
        """What the caller reads at the end of the serial: its last digits, if it ends in digits."""
        match = re.search(r"[0-9]+$", self.serial)
        return match.group()[-4:] if match else ""


@dataclass(frozen=True)
class AccountSpec:
    number: str
    region: str
    phones: tuple[str, ...] = ()
    active: bool = True
    meters: tuple[MeterSpec, ...] = ()
    kind: str = "person"

    @property
    def by_serial(self) -> bool:
        """Its meters are picked by their serials' last digits (or all in turn), not from a menu."""
        return self.kind == "company" or len(self.meters) > 9

    @property
    def typed(self) -> str:
        return keypad_key(self.number)

    @property
    def tail(self) -> str:
        return self.typed.replace("*", "")[-4:]


OFFICE = (dt.time(8), dt.time(17), "12345")
REGIONS = (
    RegionSpec("N", "North", 1, "Europe/Chisinau", OFFICE, "+37322000001",
               names={"ru": "Север", "uk": "Північ", "ro": "Nord"}),
    RegionSpec("K", "Kyiv", 2, "Europe/Kyiv", (dt.time(9), dt.time(18), "123456"), None, window=(20, 5),
               prefixes=("+380",)),
    RegionSpec("S", "Siberia", 3, "Asia/Novosibirsk", (dt.time(7, 30), dt.time(16), "12345"), "+73830000003",
               window=(1, 25), names={"ru": "Сибирь", "uk": "Сибір"}),
    RegionSpec("I", "Islands", 4, "Europe/London", (dt.time(0), dt.time(0), ""), "+442070000004"),  # never answers
)
ACCOUNTS = (
    AccountSpec("100001", "N", ("+37369000001",), meters=(MeterSpec("EL000123", "electricity", decimals=1,
                                                                     previous="1000"),)),
    AccountSpec("100007", "N", meters=(MeterSpec("EL-2024-LC1", "electricity", registers=2, previous="5000"),
                                       MeterSpec("CW000888", "cold_water", digits=5, decimals=3, previous="10"))),
    AccountSpec("200-02", "N", ("+37369111222",), meters=(MeterSpec("12345AB", "gas", decimals=3, previous="10"),
                                                         MeterSpec("HT0009", "heat", decimals=1, previous="40"))),
    AccountSpec("700007", "N"),  # no meters
    AccountSpec("300003", "K", ("+380441234567",), meters=(MeterSpec("EL000555", "electricity", registers=2,
                                                                     previous="800"),)),
    AccountSpec("300008", "K", meters=(MeterSpec("GA000321", "gas", decimals=2, previous="77"),)),
    AccountSpec("400004", "S", ("+74951234567",), meters=(MeterSpec("HW000777", "hot_water", decimals=3,
                                                                    previous="5"),)),
    AccountSpec("500005", "S", active=False, meters=(MeterSpec("EL000500", "electricity"),)),
    AccountSpec("600006", "I", ("+442079460000",), meters=(MeterSpec("EL000999", "electricity", previous="42"),)),
    # a company with a dozen meters in a region with a submission window, one phone on file
    AccountSpec("800008", "K", ("+380442223344",), kind="company",
                meters=tuple(MeterSpec(f"CO-77{i:04d}", "electricity", previous="300") for i in range(12))),
)
UNKNOWN_CALLERS = ("+37369555000", "+380671112233", "+79131234567", "+442071112222", "+15551234567")


# --- the clock ---------------------------------------------------------------------------------------

class Clock:
    """The product's clock (``readings_store.clock``) stopped at ``now``, moved on by the model
    between calls (``pinned`` puts it back afterwards)."""

    def __init__(self, now: dt.datetime):
        self._now = now

    @property
    def now(self) -> dt.datetime:
        return self._now

    @now.setter
    def now(self, at: dt.datetime) -> None:
        self._now = at
        product_clock.set_clock(at, frozen=True)


@contextlib.contextmanager
def pinned(clock: Clock):
    """The product's clock stopped at the model's time for the run."""
    with product_clock.travel_to(clock.now, frozen=True):
        yield


def open_at(spec: RegionSpec | None, when: dt.datetime) -> bool:
    """Whether the region's operators (None: the fallback's default hours) work at ``when``."""
    zone, (start, end, days) = ("Europe/Chisinau", OFFICE) if spec is None else (spec.zone, spec.hours)
    local = when.astimezone(ZoneInfo(zone))
    return str(local.isoweekday()) in days and start <= local.time().replace(tzinfo=None) < end


# --- fakes: the recogniser and Twilio's REST API ----------------------------------------------------

@dataclass
class Spoken:
    """What the caller says and how the line hears it."""

    words: list[str]
    quality: str  # high | middling | low | unk | ambiguous | disagree | misheard | silence
    heard: list[str] | None = None  # the words heard (misheard: other digits)


class FakeRecogniser:
    """A fake standing in for Vosk (and Twilio's recogniser): returns the recognition of what the
    caller says next, with the confidence of its quality, keeping only words of the grammar it is
    given (anything else comes out as ``[unk]``, as Vosk's does)."""

    CONFIDENCE = {"high": 0.95, "middling": 0.7, "low": 0.3, "unk": 0.9, "ambiguous": 0.95, "disagree": 0.9,
                  "misheard": 0.7, "silence": 0.0}

    def __init__(self):
        self.next: Spoken | None = None
        self.used = 0

    def recognition(self, grammar: list[str] | tuple[str, ...] | None) -> Recognition:
        spoken, self.next = self.next, None
        assert spoken is not None, "FakeRecogniser: nothing said"
        self.used += 1
        if spoken.quality == "silence" or not spoken.words:
            return Recognition(text="", words=(), alternatives=(), has_unk=False, audio_seconds=2.0)
        words = list(spoken.heard or spoken.words)
        if grammar is not None:
            allowed = set(w for phrase in grammar for w in phrase.split())
            words = [w if w in allowed else "[unk]" for w in words]
        if spoken.quality == "unk":
            words.insert(len(words) // 2, "[unk]")
        conf = self.CONFIDENCE[spoken.quality]
        alternatives: tuple = ()
        if spoken.quality == "disagree" and len(words) > 1:
            other = list(words)
            other[-1] = next(w for w in ("two", "два", "doi", "три", "trei", "three") if w != other[-1]) \
                if other[-1] not in ("two", "два", "doi") else other[0]
            alternatives = ((" ".join(words), 0.55), (" ".join(other), 0.45))
        text = " ".join(words)
        return Recognition(text=text, words=tuple(Word(w, conf, 0.4 * i, 0.4 * i + 0.3) for i, w in enumerate(words)),
                           alternatives=alternatives, has_unk="[unk]" in words, audio_seconds=0.4 * len(words) + 0.5)

    def __call__(self, lang: str, grammar: list[str], audio: bytes) -> Recognition:
        return self.recognition(grammar)


class FakeRest:
    """A fake of Twilio's REST client: remembers the calls moved on (``calls(sid).update``)."""

    def __init__(self):
        self.updates: list[tuple[str, str]] = []

    def calls(self, sid: str):
        rest = self

        class _Call:
            def update(self, url: str, method: str = "POST"):
                rest.updates.append((sid, url))

        return _Call()


class CapturingRenderer(TwimlRenderer):
    """The real TwiML renderer, remembering the last actions it rendered (the model reads them)."""

    captured: list | None = None

    def render(self, actions, lang, seq, **options):
        self.captured = list(actions)
        return super().render(actions, lang, seq, **options)


class ModelStreamLine(StreamLine):
    def __init__(self, *args, renderer: CapturingRenderer, **kwargs):
        super().__init__(*args, **kwargs)
        self._renderer = renderer

    def renderer(self) -> TwimlRenderer:
        return self._renderer


# --- the world -----------------------------------------------------------------------------------------

class World:
    """The phone line on an in-memory database, with the fakes, the records and the clock."""

    def __init__(self, workdir: Path):
        engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _foreign_keys(dbapi_conn, _record):  # pragma: no cover - trivial
            dbapi_conn.execute("PRAGMA foreign_keys=ON")

        Base.metadata.create_all(engine)
        self.sessions = make_session_factory(engine)
        self.config = load_config(
            database_url="sqlite://", twilio_auth_token=AUTH_TOKEN, secret_key="caller-model",
            operator_number=FALLBACK_OPERATOR, public_url=PUBLIC_URL, media_url=MEDIA_URL, speech_transport="stream",
            speech_engines=dict(ENGINES), recording_url_prefixes=(RECORDINGS,), recordings_dir=workdir / "recordings",
            twilio_account_sid="AC" + "0" * 32)
        self.clock = Clock(START)
        self.recogniser = FakeRecogniser()
        self.speech = SpeechSteps(self.config, recognizer=self.recogniser, fetcher=lambda url: b"RIFF fake WAVE")
        prompts = Prompts()
        self.renderer = CapturingRenderer(self.config, prompts, lambda step, seq: f"{PUBLIC_URL}/voice/step/{step}?seq={seq}",
                                          lambda lang, key: f"{PUBLIC_URL}/voice/prompts/{lang}/{key}",
                                          self.speech.engine_for, f"{PUBLIC_URL}/voice/recording-status")
        self.rest = FakeRest()
        self.line = ModelStreamLine(self.config, self.sessions, self.speech, prompts, self.rest,
                                    models=lambda lang: None, renderer=self.renderer)
        self.regions = {r.code: r for r in REGIONS}
        self.accounts = {a.number: a for a in ACCOUNTS}
        self.meter_ids: dict[str, int] = {}
        self.account_ids: dict[str, int] = {}
        self.account_by_id: dict[int, AccountSpec] = {}
        self.region_codes: dict[int, str] = {}
        # the last accepted value of each (serial, register): the baseline a value is judged by
        self.baseline = {(m.serial, r): Decimal(m.previous) for a in ACCOUNTS for m in a.meters
                         for r in m.register_names}
        # The call of each turn that wrote it, as the turn left it, by CallSid (invariant 7).
        self.written: dict[str, dict] = {}
        self._build()

    @contextlib.contextmanager
    def recording_call_writes(self):
        """Keep what each turn's call held when the turn wrote it (``calls._write_turn``,
        ``calls._end``: their callers look them up in the module at each call)."""
        originals = {name: getattr(calls, name) for name in ("_write_turn", "_end")}

        def recording(original):
            def wrapped(session, call, *args):
                original(session, call, *args)
                self.written[call.call_sid] = {column.key: getattr(call, column.key) for column in Call.__table__.c}
            return wrapped

        for name, original in originals.items():
            setattr(calls, name, recording(original))
        try:
            yield
        finally:
            for name, original in originals.items():
                setattr(calls, name, original)

    def _build(self) -> None:
        taken = START - dt.timedelta(days=20)
        with self.sessions() as db:
            rows = {}
            for spec in REGIONS:
                start, end, days = spec.hours
                region = Region(code=spec.code, name=spec.name, menu_key=spec.key, timezone=spec.zone,
                                work_start=start, work_end=end, work_days=days, operator_number=spec.operator,
                                phone_prefixes=list(spec.prefixes), names=dict(spec.names))
                db.add(region)
                db.flush()
                if spec.window:
                    db.add(SubmissionWindow(region_id=region.id, utility=None, start_day=spec.window[0],
                                            end_day=spec.window[1]))
                rows[spec.code] = region
                self.region_codes[region.id] = spec.code
            for spec in ACCOUNTS:
                account = Account(region_id=rows[spec.region].id, number=spec.number, keypad_key=spec.typed,
                                  holder_name=f"Holder {spec.number}", active=spec.active, kind=spec.kind)
                account.phones = [AccountPhone(phone=p) for p in spec.phones]
                db.add(account)
                db.flush()
                self.account_ids[spec.number] = account.id
                self.account_by_id[account.id] = spec
                for m in spec.meters:
                    meter = Meter(account_id=account.id, serial=m.serial, utility=m.utility, registers=m.registers,
                                  digits=m.digits, decimals=m.decimals)
                    db.add(meter)
                    db.flush()
                    self.meter_ids[m.serial] = meter.id
                    for register in m.register_names:
                        db.add(Reading(meter_id=meter.id, register=register, value=Decimal(m.previous),
                                       period=f"{taken:%Y-%m}", taken_at=taken, received_at=taken, channel="import",
                                       status="accepted"))
            db.commit()

    def check_baselines(self) -> None:
        """The model's baselines are the line's: the last accepted reading of every meter and
        register (the model follows them from the readings said to be saved)."""
        serial_of = {v: k for k, v in self.meter_ids.items()}
        out: dict[tuple[str, str], tuple] = {}
        with self.sessions() as db:
            for meter_id, register, value, taken, rid in db.execute(
                    select(Reading.meter_id, Reading.register, Reading.value, Reading.taken_at, Reading.id)
                    .where(Reading.status == "accepted")):
                key = (serial_of[meter_id], register)
                if key not in out or (taken, rid) > out[key][1:]:
                    out[key] = (value, taken, rid)
        actual = {k: v[0] for k, v in out.items()}
        if actual != self.baseline:
            raise ModelFailure(f"the last accepted readings are {actual}, the model followed {self.baseline}")


# --- one caller --------------------------------------------------------------------------------------

class ModelFailure(AssertionError):
    pass


@dataclass
class Persona:
    phone: str | None
    lang: str  # the language the caller speaks
    transport: str  # keypad | record | stream (Romanian speech: Twilio's recogniser whatever the transport)
    target: AccountSpec | None  # None: a number that is nobody's
    bogus: str  # the number a caller without an account types
    chaos: float  # how often the caller does something unexpected
    line: str  # the caller's line: how speech is heard (good | fair | poor)
    careful: bool  # compares what is read back with what was meant
    patience: int  # meters the caller wants to give before finishing
    another: AccountSpec | None  # an account to give readings for after the first
    speaks: float = 0.5  # how often the caller speaks where speech is heard (a mumbler always does)


def _digits_words(lang: str, text: str) -> list[str]:
    numbers = load_pack(lang).raw["numbers"]
    point = numbers["decimal_point"][0]
    return [point if c in ".*" else numbers["digits"][c][0] for c in text]


def _tens_words(lang: str, pair: str) -> list[str] | None:
    numbers = load_pack(lang).raw["numbers"]
    tens = numbers["tens"].get(pair[0] + "0")
    if pair[0] in "01" or pair[1] == "0" or not tens:
        return None
    return [tens[0], numbers["digits"][pair[1]][0]]


def _reply(lang: str, label: str) -> str:
    return load_pack(lang).raw["replies"][label][0]


@dataclass
class Turn:
    step: str
    did: str
    said: list[str]
    taken: bool = True


class CallRun:
    """One call by one persona, through the turn service; collects what is needed for the checks."""

    def __init__(self, world: World, rng: random.Random, number: int, persona: Persona):
        self.world, self.rng, self.number, self.p = world, rng, number, persona
        self.sid = f"CA{number:032x}"
        self.turns: list[Turn] = []
        self.actions: list = []
        self.body = ""
        self.seq = 0
        self.step: str | None = None
        self.over = False
        self.hung_up = False
        self.lang = "en"
        self.baselines = world.baseline
        # what the model knows of the call
        self.region: str | None = None  # the region the call is about, once chosen, assumed or identified
        self.account: AccountSpec | None = None  # identified
        self.given: set[str] = set()  # account numbers the caller gave, or confirmed at a read-back
        self.heard_account: AccountSpec | None = None  # read back for confirmation
        self.account_rows = 0  # spoken answers at the account question (an Utterance row each)
        self.account_answers: list[int] = []  # which of them answered it since the last identification
        self.meter: MeterSpec | None = None
        self.register: str | None = None
        self.value_given: str | None = None  # what the caller meant at the value question
        self.read_back: str | None = None  # the value the line read back
        self.done: set[tuple[str, str]] = set()
        self.walking: list[int] | None = None  # all meters in turn: [readings stored, meters skipped] so far
        self.skipping = False  # the caller skipped the meter at this value question
        self.last_offered = False
        self.last_asked: set[tuple[str, str]] = set()  # (serial, register) whose last reading the caller asked
        self.reported: set[tuple[str, str]] = set()
        self.confirmed: list[tuple[int, str, str, str]] = []  # (seq, serial, register, value)
        self.kept_at_end: int | None = None  # the seq of the turn that ended the call at a read-back
        self.hint_said = 0
        self.transport = persona.transport
        self._last_row = None
        self.refused_stream = False
        self.stats = Counter()

    # --- failure -----------------------------------------------------------------------------------

    def fail(self, message: str) -> None:
        lines = [f"call {self.number} ({self.sid}), caller {self.p.phone or 'withheld'}, {self.p.lang}, "
                 f"{self.transport}, target {self.p.target.number if self.p.target else self.p.bogus}: {message}"]
        for i, t in enumerate(self.turns):
            lines.append(f"  {i:3d} {t.step:16s} {t.did:40s} -> {' '.join(t.said)}{'' if t.taken else ' (replayed)'}")
        raise ModelFailure("\n".join(lines))

    def check(self, condition: bool, message: str) -> None:
        if not condition:
            self.fail(message)

    # --- the line's answers ------------------------------------------------------------------------

    @property
    def ask(self) -> dialog.Ask | None:
        last = self.actions[-1] if self.actions else None
        return last if isinstance(last, dialog.Ask) else None

    def says(self, actions=None) -> list[dialog.Say]:
        out = []
        for a in actions if actions is not None else self.actions:
            if isinstance(a, dialog.Say):
                out.append(a)
            elif isinstance(a, dialog.Ask):
                out.extend(a.prompts)
        return out

    def keys_said(self, actions=None) -> list[str]:
        return [s.key for s in self.says(actions)]

    def _check_row(self) -> None:
        """7. the call's row as the last turn that wrote it left the call."""
        left = self.world.written.pop(self.sid, None)
        if left is None:
            return
        with self.world.sessions() as db:
            row = db.execute(select(Call.__table__).where(Call.__table__.c.call_sid == self.sid)).one()._asdict()
        differ = sorted(name for name, value in left.items() if row[name] != value)
        self.check(not differ, f"the call's row is not as its turn left the call: {differ}")

    def _answered(self, actions: list, body: str, did: str, step: str, taken: bool = True) -> None:
        self._check_row()
        self.actions, self.body = actions, body
        self.turns.append(Turn(step, did, self.keys_said(actions), taken))
        last = actions[-1]
        if isinstance(last, (dialog.Hangup, dialog.Transfer)):
            self.over = True
            self.step = None
            return
        found = re.search(r"/voice/step/(\w+)\?seq=(\d+)", body)
        self.check(found is not None and isinstance(last, dialog.Ask), "an answer that neither asks nor ends")
        self.step, self.seq = found.group(1), int(found.group(2))
        self.check(self.step == last.step, f"TwiML asks {self.step}, the engine {last.step}")

    # --- a call --------------------------------------------------------------------------------------

    def run(self) -> None:
        w = self.world
        lang = self._default_language()
        with w.sessions() as db:
            body = calls.open_call(db, w.config, call_sid=self.sid, caller=self.p.phone, country=None, language=lang,
                                   render=w.renderer.render, apology=w.renderer.apology)
            if self.transport == "record":
                calls.use_record_transport(db, self.sid)
        if self.transport == "stream":
            # The media endpoint opens the call's stream with the one-time token of its <Stream>.
            token = re.search(r'<Parameter name="token" value="([^"]+)"', body)
            self.check(token is not None, "a streamed call's first answer starts no stream")
            self.check(w.line.authorize(self.sid, {"token": token.group(1)}) is None, "the call's own stream refused")
            self.check(w.line.authorize(self.sid, {"token": token.group(1)}) is not None, "a stream opened twice")
        self.lang = lang
        self._answered(w.renderer.captured, body, "(incoming)", "incoming")
        self._check_first_turn()
        while not self.over:
            if len(self.turns) > MAX_TURNS + 2:
                self.fail(f"the call did not end within {MAX_TURNS + 1} turns")
            self._turn()
        if not self.hung_up:
            with w.sessions() as db:  # Twilio's status callback after the line ended the call
                calls.end_call(db, call_sid=self.sid, status="completed", duration=str(10 * len(self.turns)))
        self._check_call()

    def _default_language(self) -> str:
        phone = self.p.phone or ""
        table = self.world.config.country_languages
        for code in ("373", "380", "7"):
            if phone.startswith("+" + code):
                return table[code]
        return table.get("*", "en")

    # --- the caller's choice at a question --------------------------------------------------------------

    def _turn(self) -> None:
        rng, ask = self.rng, self.ask
        step = self.step
        self.stats[f"asked:{step}"] += 1
        if self.p.transport == "stream" and not self.refused_stream and rng.random() < 0.01:
            self._refuse_stream()
        roll = rng.random()
        if roll < 0.015:
            return self._hang_up()
        if roll < 0.015 + self.p.chaos:
            return self._chaos(step, ask)
        return self._sensible(step, ask)

    def _can_speak(self, ask: dialog.Ask) -> bool:
        return self.p.transport != "keypad" and ask.speech is not None

    def _chaos(self, step: str, ask: dialog.Ask) -> None:
        rng = self.rng
        options = ["wrong", "early", "star", "silence", "zero", "operator", "garbage"]
        if self._can_speak(ask):
            options += ["mumble", "unk", "yes", "no", "say_operator", "say_digit"]
        choice = rng.choice(options)
        self.stats[f"chaos:{choice}"] += 1
        if choice == "wrong":
            return self._keys(str(rng.choice([5, 6, 7, 8])) + ("#" if ask.expect == "number" else ""))
        if choice == "early":
            return self._keys("#" if rng.random() < 0.5 else "")
        if choice == "star":
            return self._keys("*" + ("#" if ask.expect == "number" else ""))
        if choice == "silence":
            return self._silence()
        if choice == "zero":
            return self._keys("0#" if ask.expect == "number" and rng.random() < 0.5 else "0")
        if choice == "operator":
            return self._speak([_reply(self.lang, "operator")], "high") if self._can_speak(ask) else self._keys("0")
        if choice == "garbage":
            return self._keys(rng.choice(["12#34#", "1*2*3#", "*#*", "99999999999999999999#"]))
        if choice == "mumble":
            return self._speak(_digits_words(self.lang, "7"), "low")
        if choice == "unk":
            return self._speak(["[unk]"], "high")
        if choice in ("yes", "no"):
            return self._speak([_reply(self.lang, choice)], rng.choice(["high", "middling", "low"]))
        if choice == "say_operator":
            return self._speak([_reply(self.lang, "operator")], rng.choice(["high", "high", "low"]))
        return self._speak(_digits_words(self.lang, str(rng.randint(1, 9))), "high")

    def _quality(self) -> str:
        rng = self.rng
        table = {"good": [("high", 80), ("middling", 8), ("unk", 4), ("ambiguous", 4), ("disagree", 2), ("low", 2)],
                 "fair": [("high", 45), ("middling", 15), ("misheard", 10), ("unk", 10), ("ambiguous", 8),
                          ("disagree", 6), ("low", 6)],
                 "poor": [("high", 15), ("middling", 15), ("misheard", 20), ("unk", 15), ("low", 25), ("silence", 10)],
                 "mumbled": [("middling", 20), ("unk", 20), ("low", 40), ("silence", 20)]}
        names, weights = zip(*table[self.p.line])
        return rng.choices(names, weights)[0]

    def _answer(self, ask: dialog.Ask, keys: str, words: list[str] | None, number: str | None = None) -> None:
        """The caller gives ``keys``, or says ``words`` (a ``number``: digits that may be misheard)."""
        self.meant = keys
        if words is not None and self._can_speak(ask) and self.rng.random() < self.p.speaks:
            quality = self._quality()
            heard = None
            if number is not None:
                if quality == "misheard":
                    heard = self._misheard(number)
                elif quality == "ambiguous":
                    words = self._ambiguous(number) or words
            return self._speak(words, quality, heard=heard)
        return self._keys(keys)

    def _misheard(self, number: str) -> list[str]:
        """Other digits than those said: often another customer's account number one digit away
        (the case a read-back is for), else a digit changed."""
        near = [a.typed for a in ACCOUNTS if a.typed != number and len(a.typed) == len(number)
                and sum(x != y for x, y in zip(a.typed, number)) == 1]
        if near and self.rng.random() < 0.5:
            return _digits_words(self.lang, self.rng.choice(near))
        digits = [c for c in number]
        places = [i for i, c in enumerate(digits) if c.isdigit()]
        i = self.rng.choice(places)
        digits[i] = str((int(digits[i]) + self.rng.choice([1, 6])) % 10)
        return _digits_words(self.lang, "".join(digits))

    def _ambiguous(self, number: str) -> list[str] | None:
        if "." in number or "*" in number or len(number) < 2:
            return None
        tens = _tens_words(self.lang, number[-2:])
        return _digits_words(self.lang, number[:-2]) + tens if tens else None

    def _sensible(self, step: str, ask: dialog.Ask) -> None:
        if ask.prompts and ask.prompts[0].key == "confirm_choice":
            # A menu answer heard but not surely: the caller presses the key they meant.
            return self._keys(getattr(self, "meant", None) or str(ask.prompts[0].params["key"]))
        handler = getattr(self, f"_at_{step}")
        handler(ask)

    # --- the questions ------------------------------------------------------------------------------------

    def _at_language(self, ask):
        if self.p.lang == self.lang and self.rng.random() < 0.5:
            return self._silence()
        return self._keys(LANGUAGE_KEYS[self.p.lang])

    def _goal(self) -> AccountSpec | None:
        return self.p.target

    def _at_offer_account(self, ask):
        tail = ask.prompts[0].params["tail"].value
        goal = self._goal()
        yes = goal is not None and goal.tail == tail and goal.phones and self.p.phone in goal.phones
        return self._answer(ask, "1" if yes else "2", [_reply(self.lang, "yes" if yes else "no")])

    def _at_region(self, ask):
        want = self.world.regions[self.p.target.region if self.p.target else "N"]
        names = {p.params.get("name"): p.params.get("key") for p in ask.prompts if p.key == "region_option"}
        key = str(want.key)
        name = want.names.get(self.lang) or want.name
        words = [name.lower()] if name in names and self.rng.random() < 0.5 else _digits_words(self.lang, key)
        return self._answer(ask, key, words)

    def _at_region_assumed(self, ask):
        want = self.p.target.region if self.p.target else self.region
        return self._keys("1" if want == self.region else "9")

    def _at_account(self, ask):
        goal = self._goal()
        number = goal.typed if goal else self.p.bogus
        return self._answer(ask, number + "#", _digits_words(self.lang, number), number=number)

    def _at_confirm_account(self, ask):
        tail = ask.prompts[0].params["tail"].value
        goal = self._goal()
        mine = goal is not None and goal.tail == tail
        yes = mine if self.p.careful or self.rng.random() < 0.7 else not mine
        return self._answer(ask, "1" if yes else "2", [_reply(self.lang, "yes" if yes else "no")])

    def _at_meter(self, ask):
        meters = self.account.meters[:9]
        todo = [i for i, m in enumerate(meters) if any((m.serial, r) not in self.reported for r in m.register_names)]
        index = todo[0] if todo else self.rng.randrange(len(meters))
        utility = load_pack(self.lang).raw["utilities"][meters[index].utility][0]
        words = [utility] if self.rng.random() < 0.5 else _digits_words(self.lang, str(index + 1))
        return self._answer(ask, str(index + 1), words)

    def _at_meter_serial(self, ask):
        meters = self.account.meters
        todo = [m for m in meters if any((m.serial, r) not in self.reported for r in m.register_names)]
        if self.rng.random() < 0.3:
            return self._keys("*")  # all meters in turn
        meter = todo[0] if todo and self.rng.random() < 0.8 else self.rng.choice(meters)
        digits = "".join(c for c in meter.serial if c.isdigit())
        # as few digits as tell it from the others, sometimes too few (a clash), sometimes more
        unique = next(k for k in range(1, len(digits) + 1)
                      if sum("".join(c for c in m.serial if c.isdigit()).endswith(digits[-k:]) for m in meters) == 1)
        k = max(1, min(len(digits), unique + self.rng.choice([-1, 0, 0, 0, 1, 2])))
        tail = digits[-k:]
        return self._answer(ask, tail + "#", _digits_words(self.lang, tail), number=tail)

    def _at_register(self, ask):
        meter = self.meter
        left = [r for r in meter.register_names if (meter.serial, r) not in self.reported] or ["day"]
        register = left[0]
        key = "1" if register == "day" else "2"
        word = load_pack(self.lang).raw["registers"][register][0]
        return self._answer(ask, key, [word] if self.rng.random() < 0.5 else _digits_words(self.lang, key))

    def _right_value(self) -> str:
        meter, register = self.meter, self.register
        base = self.baselines.get((meter.serial, register), Decimal(meter.previous))
        step = Decimal(1).scaleb(-meter.decimals)
        value = base + step * self.rng.randint(1, 9) if meter.decimals else base + self.rng.randint(1, 2)
        return format(value.quantize(step), "f") if meter.decimals else str(int(value))

    def _at_value(self, ask):
        rng = self.rng
        meter_register = (self.meter.serial, self.register)
        if self.last_offered and meter_register not in self.last_asked and rng.random() < 0.3:
            self.last_asked.add(meter_register)
            self.stats["asked_last_reading"] += 1
            return self._keys("8")
        if self.walking is not None and rng.random() < 0.15:
            return self._keys("*#")  # skip this meter
        value = self._right_value()
        kind = rng.choices(["right", "below", "huge", "decimals"], [80, 10, 5, 5])[0]
        if kind == "below":
            base = self.baselines.get((self.meter.serial, self.register), Decimal(self.meter.previous))
            value = str(max(0, int(base) - rng.randint(1, 5)))
        elif kind == "huge":
            value = "9" * (self.meter.digits - 1) + "8"
        elif kind == "decimals":
            value = value + ("1" if "." in value else ".123456")
        self.value_given = value
        typed = value.replace(".", "*")
        return self._answer(ask, typed + "#", _digits_words(self.lang, value), number=value)

    def _at_confirm(self, ask):
        read = ask.prompts[0].params["value"].value
        right = self.value_given is not None and Decimal(read) == Decimal(self.value_given)
        yes = right if self.p.careful or self.rng.random() < 0.8 else self.rng.random() < 0.5
        return self._answer(ask, "1" if yes else "2", [_reply(self.lang, "yes" if yes else "no")])

    def _at_next(self, ask):
        rng = self.rng
        more = self.account and any((m.serial, r) not in self.reported for m in self.account.meters[:9]
                                    for r in m.register_names)
        if more and len(self.account.meters) > 1 and len(self.reported) < self.p.patience:
            key = "1"
        elif self.p.another is not None and self.p.target is not self.p.another:
            self.p.target = self.p.another
            key = "2"
        else:
            key = "3" if rng.random() < 0.8 else ""
        if key == "":
            return self._silence()
        return self._answer(ask, key, _digits_words(self.lang, key))

    def _at_reminder(self, ask):  # pragma: no cover - reminder calls are not placed by the model
        return self._keys("1")

    # --- doing it ------------------------------------------------------------------------------------------

    def _before(self) -> tuple[str, int, int]:
        return self.step, self.seq, len(self.turns)

    def _take(self, step: str, seq: int, keys: dialog.Event, listen=None, recording_sid=None):
        w = self.world
        with w.sessions() as db:
            return calls.take_turn(db, w.config, call_sid=self.sid, step=step, seq=seq, keys=keys, listen=listen,
                                   recording_sid=recording_sid, render=w.renderer.render, apology=w.renderer.apology)

    def _keys(self, digits: str) -> None:
        step, seq, _ = self._before()
        event = dialog.Event("digits", digits=digits) if digits else dialog.Event("timeout")
        answer = self._take(step, seq, event)
        self.check(answer.taken, f"keys {digits!r} for the current turn were not taken")
        actions = self.world.renderer.captured
        self._answered(actions, answer.body, f"keys {digits!r}" if digits else "# (nothing typed)", step)
        self._retry_maybe(step, seq, event)
        self._after(step, seq, "keys" if digits else "silence", digits=digits)

    def _silence(self) -> None:
        step, seq, _ = self._before()
        answer = self._take(step, seq, dialog.Event("timeout"))
        self.check(answer.taken, "silence for the current turn was not taken")
        self._answered(self.world.renderer.captured, answer.body, "silence", step)
        self._retry_maybe(step, seq, dialog.Event("timeout"))
        self._after(step, seq, "silence")

    def _retry_maybe(self, step, seq, event, listen=None) -> None:
        """Twilio sends the same webhook again: the answer given the first time, nothing changed."""
        if self.rng.random() < 0.03:
            before = self.world.recogniser.used
            again = self._take(step, seq, event, listen=listen)
            self.stats["twilio_retry"] += 1
            self.check(not again.taken and again.body == self.body, "a repeated webhook was taken again")
            self.check(self.world.recogniser.used == before, "a repeated webhook was recognised again")

    def _hang_up(self) -> None:
        with self.world.sessions() as db:
            calls.end_call(db, call_sid=self.sid, status="completed", duration="30")
        self.turns.append(Turn(self.step or "-", "hangs up", []))
        self.over, self.hung_up = True, True
        self.stats["hang_up"] += 1

    def _refuse_stream(self) -> None:
        """The media server is full, or died: the call is moved to the record transport for good."""
        if self.rng.random() < 0.5:
            self.world.line.on_refused(self.sid)
        else:
            self.world.line.fall_back(self.sid, "the call's media stream stopped")
        self.refused_stream = True
        self.transport = "record"
        self.stats["stream_refused"] += 1

    def _speak(self, words: list[str], quality: str, heard: list[str] | None = None) -> None:
        w = self.world
        step, seq, _ = self._before()
        spoken = Spoken(words, quality, heard)
        self.stats[f"speech:{quality}"] += 1
        conf = FakeRecogniser.CONFIDENCE[quality]
        if self.lang == "ro":  # Twilio's recogniser: SpeechResult and Confidence on the Gather action
            w.recogniser.next = spoken
            text = w.recogniser.recognition(None).text.replace("[unk]", "").strip()

            def listen(state, ask):  # the turn service says what the question listens for
                return w.speech.from_twilio(state.lang, ask.speech, text, str(conf), state.tries + 1, ask.phrases)

            self._via_listen(step, seq, listen, spoken, "twilio")
        elif self.transport == "stream":
            question = w.line.question(self.sid)
            if question is None:  # nothing listens: the Gather times out
                self.stats["speech_unheard"] += 1
                return self._silence_after(step, seq, spoken)
            w.recogniser.next = spoken
            recognition = w.recogniser.recognition(question.grammar)
            updates = len(w.rest.updates)
            w.line.on_utterance(self.sid, question, recognition, b"RIFF fake WAVE")
            self.check(len(w.rest.updates) == updates + 1, "a spoken answer to the current question moved nothing")
            self.check(w.rest.updates[-1][1].endswith(f"/voice/step/{step}?seq={seq}"), "moved to the wrong URL")
            actions = w.renderer.captured
            # Twilio fetches the answered step's URL: the stored answer, nothing taken again
            again = self._take(step, seq, dialog.Event("timeout"))
            self.check(not again.taken, "Twilio's fetch after a streamed answer took a turn")
            self._answered(actions, again.body, f"says {' '.join(words)!r} ({quality}, stream)", step)
            self._after(step, seq, "speech", spoken=spoken)
        else:
            w.recogniser.next = spoken
            url = f"{RECORDINGS}RE{self.number:016x}{seq:016x}"

            def listen(state, ask):
                return w.speech.from_recording(state.lang, ask.speech, url, state.tries + 1, ask.phrases)

            self._via_listen(step, seq, listen, spoken, "record", recording_sid=f"RE{self.number:016x}{seq:016x}")

    def _via_listen(self, step, seq, listen, spoken: Spoken, how: str, recording_sid=None) -> None:
        answer = self._take(step, seq, dialog.Event("timeout"), listen=listen, recording_sid=recording_sid)
        self.check(answer.taken, "a speech answer for the current turn was not taken")
        self.world.recogniser.next = None
        self._answered(self.world.renderer.captured, answer.body,
                       f"says {' '.join(spoken.words)!r} ({spoken.quality}, {how})", step)
        self._retry_maybe(step, seq, dialog.Event("timeout"), listen=listen)
        self._after(step, seq, "speech", spoken=spoken)

    def _silence_after(self, step, seq, spoken) -> None:
        answer = self._take(step, seq, dialog.Event("timeout"))
        self._answered(self.world.renderer.captured, answer.body, f"says {' '.join(spoken.words)!r} (unheard)", step)
        self._after(step, seq, "silence")

    # --- what the model learns from a turn, and the checks of a turn --------------------------------------

    def _understood_menu(self, spoken: Spoken | None, step: str) -> bool:
        """Whether a spoken answer to a menu gives the line anything (heard clearly enough, a word
        of the question's grammar)."""
        return spoken is not None and spoken.quality not in ("low", "silence") and bool(self._heard_words(spoken, step))

    def _phrases(self, step: str) -> tuple[str, ...]:
        if step != "region":
            return ()
        return tuple(dict.fromkeys(r.names.get(self.lang) or r.name for r in REGIONS))

    def _heard_words(self, spoken: Spoken, step: str) -> list[str]:
        """The words the line got, as the fake recogniser gives them for the step's grammar."""
        words = list(spoken.heard or spoken.words)
        if spoken.quality == "silence":
            return []
        if self.lang != "ro":
            kind = SPEECH_KINDS[step]
            grammar = grammars.build_grammar(self.lang, kind, self._phrases(step))
            allowed = set(w for phrase in grammar for w in phrase.split())
            words = [w if w in allowed else "[unk]" for w in words]
        return [w for w in words if w != "[unk]"]

    def _heard_number(self, spoken: Spoken, step: str) -> str | None:
        words = self._heard_words(spoken, step)
        return grammars.parse_number(" ".join(words), self.lang).best if words else None

    def _said_yes(self, how: str, digits: str, spoken: Spoken | None, step: str) -> bool:
        if how == "keys":
            return digits.rstrip("#") == "1"
        if how != "speech" or not self._understood_menu(spoken, step):
            return False
        return self._menu_key(" ".join(self._heard_words(spoken, step))) == "1"

    def _said_no(self, how: str, digits: str, spoken: Spoken | None, step: str) -> bool:
        if how == "keys":
            return digits.rstrip("#") == "2"
        if how != "speech" or not self._understood_menu(spoken, step):
            return False
        return self._menu_key(" ".join(self._heard_words(spoken, step))) == "2"

    def _row(self):
        with self.world.sessions() as db:
            return db.execute(select(Call.region_id, Call.account_id, Call.end_reason, Call.outcome, Call.language)
                              .where(Call.call_sid == self.sid)).one()

    def _after(self, step: str, seq: int, how: str, *, digits: str = "", spoken: Spoken | None = None) -> None:
        said = self.says()
        keys = [s.key for s in said]
        self._check_reasons(step, how, digits, spoken, keys)
        asked_person = (how == "keys" and digits.rstrip("#") == "0") or (
            how == "speech" and spoken.quality not in ("low", "silence") and
            _reply(self.lang, "operator") in self._heard_words(spoken, step))
        if step == "account" and how == "speech":
            if not asked_person:
                self.account_answers.append(self.account_rows)
            self.account_rows += 1
        # The call's row is read only when the line may have changed what it holds: the language, the
        # region, the account, the end (a turn costs the line a dozen statements; the model adds few).
        moved = step != self.step and step in ("language", "region", "region_assumed", "offer_account")
        identified = self.step in ("meter", "meter_serial", "register", "value") and self.account is None
        row = self._row() if self.over or moved or identified or self._last_row is None else self._last_row
        self._last_row = row
        self.lang = row.language
        if asked_person:
            self._check_person(step, seq, keys, said, row)
            if not self.over:
                return  # the same question again: nothing else changed
        else:
            self.check("operator_closed" not in keys and "no_operator" not in keys,
                       "the operators' hours were said though nobody asked for a person")
        self.check("operator_hint" not in keys, "the hint about 0 was said again")
        self._follow_walk(step, how, digits, keys)
        self._check_says(step, seq, how, digits, spoken, keys, said)
        if step == "confirm" and not self.over and any(k in keys for k in ("saved", "will_be_checked",
                                                                           "saved_for_review")):
            self._check_other_tariff(seq, keys)
        if "walk_summary" in keys or "walk_none" in keys or self.over:
            self.walking = None
        if not asked_person:  # (a request for a person answered no question)
            self._learn(step, seq, how, digits, spoken, said, row)
        if self.over and not asked_person:
            self._check_ending(step, seq, keys, said, row)

    def _follow_walk(self, step: str, how: str, digits: str, keys: list[str]) -> None:
        """Count what a round of all meters in turn stored and skipped, for its summary."""
        if "walk_start" in keys:
            self.check(step == "meter_serial" and how == "keys" and digits.rstrip("#") == "*",
                       "all meters in turn began without the caller asking")
            self.walking = [0, 0]
            self.stats["walk"] += 1
        elif self.walking is not None:
            if step == "value" and how == "keys" and digits.rstrip("#") == "*":
                self.walking[1] += 1
            elif step == "confirm" and any(k in keys for k in ("saved", "will_be_checked", "saved_for_review")):
                self.walking[0] += 1

    def _operator_region(self) -> RegionSpec | None:
        if self.region is not None:
            return self.world.regions[self.region]
        phone = self.p.phone
        on_file = [a for a in ACCOUNTS if phone and phone in a.phones and a.active]
        if on_file:
            return self.world.regions[on_file[0].region]
        for spec in REGIONS:
            if phone and any(phone.startswith(p) for p in spec.prefixes):
                return spec
        return None

    def _line_hours(self, spec: RegionSpec | None) -> bool:
        """Whether an operator line with working hours answers for the region at all."""
        number = (spec.operator if spec else None) or FALLBACK_OPERATOR
        hours = OFFICE if spec is None else spec.hours
        return bool(number) and bool(hours[2]) and hours[0] < hours[1]

    def _check_person(self, step: str, seq: int, keys: list[str], said: list[dialog.Say], row) -> None:
        spec = self._operator_region()
        now = self.world.clock.now
        self.stats["asked_person"] += 1
        if self._line_hours(spec) and open_at(spec, now):
            self.stats["asked_person:transferred"] += 1
            self.check(self.over and isinstance(self.actions[-1], dialog.Transfer),
                       "a person asked for in working hours was not put through in that turn")
            number = (spec.operator if spec else None) or FALLBACK_OPERATOR
            self.check(self.actions[-1].number == number, f"put through to {self.actions[-1].number}, not {number}")
            self._check_ending(step, seq, keys, said, row)
            return
        self.check(not self.over, "a person asked for out of hours ended the call")
        self.check(self.step == step, f"after asking for a person out of hours the caller is at {self.step}, "
                                      f"not at {step} where they were")
        if self._line_hours(spec):
            self.stats["asked_person:hours"] += 1
            self.check(keys[0] == "operator_closed", f"out of hours, {keys[0]} instead of the hours")
            self._check_hours(said[0].params["hours"], spec)
        else:
            self.stats["asked_person:nobody"] += 1
            self.check(keys[0] == "no_operator", f"no operator answers here, but the caller heard {keys[0]}")

    def _caller_zone(self, spec: RegionSpec | None) -> ZoneInfo:
        zones = {"+373": "Europe/Chisinau", "+380": "Europe/Kyiv", "+7495": "Europe/Moscow", "+44": "Europe/London"}
        phone = self.p.phone or ""
        for prefix, zone in zones.items():
            if phone.startswith(prefix):
                return ZoneInfo(zone)
        return ZoneInfo(spec.zone if spec else "Europe/Chisinau")

    def _check_hours(self, hours: dialog.Hours, spec: RegionSpec | None) -> None:
        """The hours said are the operators': for each day of the coming week, the caller's clock
        shows the region's opening and closing at the start and end said, on a day said, and a day
        without work is not said. The days checked are those with the same difference between the
        two clocks as the next working day (the one the hours are said for: summer time may start
        in one zone in between)."""
        home = ZoneInfo(spec.zone if spec else "Europe/Chisinau")
        start, end, days = spec.hours if spec else OFFICE
        zone = self._caller_zone(spec)
        now = self.world.clock.now
        today = now.astimezone(home).date()

        def gap(instant: dt.datetime):
            return instant.astimezone(zone).utcoffset() - instant.astimezone(home).utcoffset()

        coming = [today + dt.timedelta(days=n) for n in range(8)]
        working = [d for d in coming if str(d.isoweekday()) in days]
        reference = next(d for d in working if dt.datetime.combine(d, end, home) > now)
        differ = gap(dt.datetime.combine(reference, start, home))
        for day in coming[:7]:
            opens, closes = dt.datetime.combine(day, start, home), dt.datetime.combine(day, end, home)
            if gap(opens) != differ or gap(closes) != differ:
                continue
            seen = opens.astimezone(zone)
            said_day = str(seen.isoweekday()) in hours.days
            if day in working:
                self.check(said_day and f"{seen:%H:%M}" == hours.start
                           and f"{closes.astimezone(zone):%H:%M}" == hours.end,
                           f"the hours said ({hours}) are not when the operators work on {seen:%a %d %b %H:%M %Z}")
            else:
                self.check(not said_day, f"the hours said ({hours}) name {seen:%a}, a day without work")

    def _check_first_turn(self) -> None:
        keys = self.keys_said()
        spec = self._operator_region()
        hint = keys.count("operator_hint")
        self.check(hint == (1 if self._line_hours(spec) else 0),
                   f"the welcome said the hint about 0 {hint} times where an operator line "
                   f"{'answers' if self._line_hours(spec) else 'never answers'}")

    def _check_reasons(self, step: str, how: str, digits: str, spoken: Spoken | None, keys: list[str]) -> None:
        reasons = [k for k in keys if k.startswith("reason_")]
        if not reasons:
            return
        reason = reasons[0]
        self.stats[reason] += 1
        if reason == "reason_not_a_number":
            self.check(how == "keys" or (how == "speech" and self._heard_number(spoken, step)),
                       "'not a valid number' for an answer that was no keys or number")
        elif reason == "reason_not_understood":
            self.check(how == "speech", "'did not catch that' for an answer that was not speech")
        elif reason == "reason_no_input":
            self.check(how == "silence" or (how == "keys" and digits.strip("#") == ""),
                       "'did not receive your answer' for an answer")
        elif reason == "reason_invalid_choice":
            self.check(how == "keys" or self._understood_menu(spoken, step),
                       "'not one of the options' for speech that was not understood")
        elif reason in ("reason_account_not_found", "reason_account_inactive"):
            number = digits.rstrip("#") if how == "keys" else (self._heard_number(spoken, step) or "")
            number = number.replace(".", "*")
            region = self.region
            found = [a for a in ACCOUNTS if a.typed == number and a.region == region]
            if reason == "reason_account_not_found":
                self.check(not found, f"'account not found' for {number}, an account of region {region}")
            else:
                self.check(found and not found[0].active, f"'account closed' for {number}")
        elif reason == "reason_below_previous":
            value = self._given_value(how, digits, spoken, step)
            base = self.baselines.get((self.meter.serial, self.register))
            self.check(value is not None and base is not None and value < base,
                       f"'lower than the previous reading' for {value} (previous {base})")

    def _given_value(self, how, digits, spoken, step) -> Decimal | None:
        text = digits.rstrip("#").replace("*", ".") if how == "keys" else self._heard_number(spoken, step)
        try:
            return Decimal(text) if text else None
        except Exception:  # noqa: BLE001 - not a number
            return None

    def _learn(self, step, seq, how, digits, spoken, said, row) -> None:
        """Follow the call: the accounts the caller gave, the region and account the line took, the
        meter and register it asks about."""
        region_id, account_id, end_reason, _outcome, _language = row
        now_asked = self.step
        if step == "account":
            if how == "speech":
                if spoken.heard is None and spoken.quality not in ("low", "silence"):
                    self.given.add((self._heard_number(spoken, step) or "").replace(".", "*"))  # heard as said
            elif how == "keys":
                self.given.add(digits.rstrip("#"))
        if step == "confirm_account" and self.heard_account is not None and self._said_yes(how, digits, spoken, step):
            self.given.add(self.heard_account.typed)
        if step == "offer_account" and self._said_yes(how, digits, spoken, step):
            offered = [a for a in ACCOUNTS if self.p.phone in a.phones and a.active][0]
            self.given.add(offered.typed)
        for s in said:
            if s.key == "account_read_back" and step != "account":  # the read-back asked again
                self.check(self.heard_account is not None and s.params["tail"].value == self.heard_account.tail,
                           "another account read back when the read-back was asked again")
            elif s.key == "account_read_back":
                tail = s.params["tail"].value
                heard = (self._heard_number(spoken, step) or "").replace(".", "*") if spoken else ""
                match = [a for a in ACCOUNTS if a.typed == heard and a.region == self.region]
                self.check(len(match) == 1 and match[0].tail == tail,
                           f"an account read back as ending in {tail}; the line heard {heard!r}")
                self.heard_account = match[0]
                self.stats["account_read_back"] += 1
        # where the call is now
        if now_asked == "region" or (now_asked is None and step in ("language", "region") and region_id is None):
            self.region = None
        elif region_id is not None:
            self.region = self.world.region_codes[region_id]
        if step == "region" and now_asked not in ("region", None) and how == "keys":
            chosen = [r.code for r in REGIONS if str(r.key) == digits.rstrip("#")]
            self.check(chosen == [self.region], f"key {digits} chose region {self.region}")
        if now_asked == "account" and step == "next":
            self.account, self.meter = None, None
        identified = now_asked in ("meter", "meter_serial", "register", "value") and self.account is None or (
            self.over and end_reason and end_reason.endswith(":no_meters"))
        if identified:
            self.check(account_id is not None, "meters asked about before an account was chosen")
            self.account = self.world.account_by_id[account_id]
            self.region = self.account.region
            self.account_answers = []
            self.heard_account = None
            self.stats["identified"] += 1
        if now_asked == "value":
            say = self.ask.prompts[0]
            utility = say.params["utility"].key.removeprefix("utility_")
            register = say.params["register"].key.removeprefix("register_") if "register" in say.params else None
            named = [x for x in said if x.key == "meter_named"]
            if named:
                # A meter picked by its serial, or the next of all in turn, is said by its last digits.
                tail = named[-1].params["tail"].value
                meters = [m for m in self.account.meters if m.tail == tail and m.utility == utility]
            elif self.account.by_serial and step in ("value", "confirm") and self.meter is not None:
                meters = [self.meter]  # the same meter's question again, or its other tariff
            else:
                meters = [m for m in self.account.meters if m.utility == utility]
            self.check(len(meters) == 1, f"asked the value of a {utility} meter the account does not have")
            self.meter = meters[0]
            self.register = register or "total"
            self.check((register is None) == (self.meter.registers == 1), "a tariff named for a one-register meter, "
                                                                            "or none for a two-tariff one")
        if now_asked == "register":
            chosen = self._meter_keys(step, how, digits, spoken)
            meters = [m for m in self.account.meters if m.serial in chosen]
            self.check(len(meters) == 1, "the tariff asked, but for which meter?")
            self.meter = meters[0]
            left = [r for r in self.meter.register_names if (self.meter.serial, r) not in self.done]
            self.check(self.meter.registers == 2 and len(left) != 1,
                       f"the tariff asked for meter {self.meter.serial} with {left} left to give")

    def _meter_keys(self, step, how, digits, spoken) -> set[str]:
        """The serial of the meter just chosen at the meter question."""
        if step != "meter":
            if len(self.account.meters) == 1:
                return {self.account.meters[0].serial}
            return {self.meter.serial} if self.meter else set()
        if how == "keys" and digits.rstrip("#").isdigit():
            i = int(digits.rstrip("#")) - 1
            return {self.account.meters[i].serial} if 0 <= i < len(self.account.meters) else set()
        if how == "speech":
            heard = " ".join(self._heard_words(spoken, step))
            utility = grammars.match_utility(heard, self.lang)
            named = [m.serial for m in self.account.meters[:9] if m.utility == utility]
            if len(named) == 1:
                return set(named)
            number = self._menu_key(heard)
            if number and number.isdigit() and 0 < int(number) <= len(self.account.meters):
                return {self.account.meters[int(number) - 1].serial}
        return set()

    def _menu_key(self, heard: str) -> str | None:
        """The key a spoken menu answer stands for: "yes" 1, "no" 2, else a number said."""
        reply = grammars.classify_reply(heard, self.lang)
        if reply in ("yes", "no"):
            return "1" if reply == "yes" else "2"
        return grammars.parse_number(heard, self.lang).best

    def _expected_read_back(self, how, digits, spoken, step) -> str | None:
        if how == "keys":
            text = digits.rstrip("#").replace("*", ".")
            if text.startswith("."):
                text = "0" + text
            return text[:-1] if text.endswith(".") else text
        return self._heard_number(spoken, step) if spoken else None

    def _check_says(self, step, seq, how, digits, spoken, keys, said) -> None:
        for s in said:
            if s.key == "read_back":
                value = s.params["value"].value
                if step == "value":
                    expected = self._expected_read_back(how, digits, spoken, step)
                    self.check(expected is not None and Decimal(value) == Decimal(expected),
                               f"read back {value}; the caller gave {digits or (spoken and ' '.join(spoken.words))!r}")
                    self.read_back = value
                    self.stats["read_back"] += 1
                else:  # the read-back asked again
                    self.check(value == self.read_back, f"read back {value} again, first {self.read_back}")
            elif s.key in ("meter_option", "meter_option_no_tail"):
                account = self.account or self.world.account_by_id[self._row()[1]]
                meter = account.meters[s.params["key"] - 1]
                self.check(s.params["utility"].key == f"utility_{meter.utility}", "a meter named by another utility")
                if s.key == "meter_option":
                    self.check(s.params["tail"].value == meter.tail and meter.tail.isdigit(),
                               f"meter {meter.serial} named as ending in {s.params['tail'].value}")
                else:
                    self.check(meter.tail == "", f"meter {meter.serial} named without the digits it ends in")
            elif s.key == "offer_account":
                tail = s.params["tail"].value
                on_file = [a for a in ACCOUNTS if self.p.phone in a.phones and a.active]
                self.check(bool(on_file) and on_file[0].tail == tail, f"offered an account ending in {tail}")
            elif s.key == "saved":
                self._check_saved(step, seq)
            elif s.key in ("last_reading_offer", "last_reading", "no_last_reading"):
                account = self.account or self.world.account_by_id[self._row()[1]]
                self.check(self.p.phone is not None and self.p.phone in account.phones,
                           f"{s.key} said to a caller not on file for account {account.number}")
                if s.key == "last_reading_offer":
                    self.check(not self.last_offered, "the last reading offered twice in a call")
                    self.last_offered = True
                else:
                    self.check(step == "value" and digits.rstrip("#") == "8" and self.last_offered,
                               f"{s.key} said without the key that asks for it")
                if s.key == "last_reading":
                    base = self.baselines.get((self.meter.serial, self.register))
                    self.check(base is not None and Decimal(s.params["value"].value) == base,
                               f"the last reading said as {s.params['value'].value}, the last accepted is {base}")
                    self.stats["last_reading"] += 1
            elif s.key == "window_closed":
                self._check_window(s)
            elif s.key == "walk_summary":
                saved, skipped = self.walking or [None, None]
                self.check((s.params["count"], s.params["skipped"]) == (saved, skipped),
                           f"the round of all meters summed up as {s.params}, {saved} stored and {skipped} skipped")
                self.stats["walk_summary"] += 1
            elif s.key == "transfer":
                self.check(isinstance(self.actions[-1], dialog.Transfer), "'connecting you' without a transfer")
        if "confirm_choice" in keys:
            return  # a menu answer heard but not surely: nothing is decided until its key is pressed
        if step in ("confirm", "confirm_account") and self._said_no(how, digits, spoken, step):
            # "To enter it again, press 2": whatever the tries, the question again
            again = "value" if step == "confirm" else "account"
            capped = self.over and (self._row().end_reason or "").endswith(":too_many_turns")
            self.check(self.step == again or capped,
                       f"'2' at the read-back, and the caller is at {self.step} instead of the {again} question")
            self.stats[f"declined:{step}"] += 1
        if step != "confirm":
            return
        stored = [k for k in keys if k in ("saved", "will_be_checked", "saved_for_review")]
        if self._said_yes(how, digits, spoken, step):
            self.check(bool(stored) or self.over, "the caller confirmed the value read back, and heard nothing of it")
            if stored and not (self.over and "saved_for_review" in keys and "goodbye" in keys and
                               not any(k in keys for k in ("saved", "will_be_checked"))):
                self.confirmed.append((seq, self.meter.serial, self.register, self.value_given))
                self.done.add((self.meter.serial, self.register))
                self.reported.add((self.meter.serial, self.register))
                return
        if self.over and (stored or isinstance(self.actions[-1], dialog.Transfer)):
            self.kept_at_end = seq  # left at its read-back when the call ended: kept for review

    def _check_other_tariff(self, seq: int, keys: list[str]) -> None:
        """After a two-tariff meter's value is stored, the other tariff is asked at once exactly when
        it has no reading of that period yet (stored before this call, or in it)."""
        meter, register = self.meter, self.register
        if meter is None or meter.registers != 2 or register not in ("day", "night"):
            return
        other = "night" if register == "day" else "day"
        with self.world.sessions() as db:
            saved = db.scalars(select(Reading).where(Reading.idempotency_key == f"{self.sid}:{seq}")).first()
            if saved is None:
                return
            given = db.scalars(select(Reading.id).where(
                Reading.meter_id == saved.meter_id, Reading.register == other, Reading.period == saved.period,
                Reading.status.in_(("accepted", "pending_review")))).first() is not None
        asked = self.step == "value" and "meter_named" not in keys and \
            self.ask.prompts[0].params.get("register") == dialog.Term(f"register_{other}")
        self.check(asked != given, f"meter {meter.serial}: {register} stored, and the {other} tariff "
                                   f"{'asked again though it has a' if asked else 'not asked though it has no'} "
                                   f"reading this period")
        self.stats["other_tariff_asked" if asked else "other_tariff_given"] += 1

    def _check_window(self, say: dialog.Say) -> None:
        """'Readings are not taken now; the next period is from ... to ...': true of the region's
        window on the region's day, now."""
        account = self.account or self.world.account_by_id[self._row()[1]]
        spec = self.world.regions[account.region]
        self.check(spec.window is not None, f"a closed window said in region {spec.code}, which has none")
        today = self.world.clock.now.astimezone(ZoneInfo(spec.zone)).date()
        decision = rules.billing_period(today, spec.window)
        self.check(not decision.in_window, f"the window said closed on {today}, inside {spec.window}")
        opens, closes = rules.window_dates(decision.period, spec.window)
        self.check((say.params["opens"].value, say.params["closes"].value) == (opens, closes),
                   f"the next window said as {say.params}, it is {opens}..{closes}")
        self.stats["window_closed"] += 1

    def _check_saved(self, step, seq) -> None:
        self.check(step == "confirm", "'saved' said at a turn that confirmed nothing")
        key = f"{self.sid}:{seq}"
        with self.world.sessions() as db:
            rows = db.scalars(select(Reading).where(Reading.idempotency_key == key)).all()
            self.check(len(rows) == 1 and rows[0].status == "accepted",
                       f"'saved' said, but the turn stored {[(r.value, r.status) for r in rows]}")
            self.baselines[(self.meter.serial, self.register)] = rows[0].value
        self.stats["saved"] += 1

    def _check_ending(self, step, seq, keys, said, row) -> None:
        stored_before = len(self.confirmed) - (1 if self.confirmed and self.confirmed[-1][0] == seq else 0)
        if "saved_count" in keys:
            count = next(s for s in said if s.key == "saved_count").params["count"]
            self.check(count == stored_before, f"told {count} readings were saved; {stored_before} were")
        if "nothing_saved" in keys:
            self.check(stored_before == 0, "'no reading was saved' in a call that stored one")
        if "not_completed" in keys:
            spec = self._operator_region()
            self.check(("operator_hours" in keys) == self._line_hours(spec),
                       "a call ended out of hours without saying when operators answer" if self._line_hours(spec)
                       else "operators' hours said where no operator answers")
        if "operator_hours" in keys:
            hours = next(s for s in said if s.key == "operator_hours").params["hours"]
            spec = self._operator_region()
            self.check(not open_at(spec, self.world.clock.now), "'an operator can help you' then, while one is on duty")
            self._check_hours(hours, spec)
        if isinstance(self.actions[-1], dialog.Transfer):
            spec = self._operator_region()
            self.check(self._line_hours(spec) and open_at(spec, self.world.clock.now),
                       "put through to an operator out of working hours")
            self.stats["transferred"] += 1

    # --- the checks of a whole call ---------------------------------------------------------------------------

    def _check_call(self) -> None:
        self._check_row()
        w = self.world
        with w.sessions() as db:
            call = calls.find_call(db, self.sid)
            readings = db.scalars(select(Reading).where(Reading.call_id == call.id).order_by(Reading.id)).all()
            tasks = db.scalars(select(ReviewTask).where(ReviewTask.call_id == call.id)).all()
            spoken = db.scalars(select(Utterance).where(Utterance.call_id == call.id).order_by(Utterance.id)).all()
            outcome, end_reason = call.outcome, call.end_reason
            rows = [(r.idempotency_key, r.meter_id, r.register, r.value, r.status, r.status_reason) for r in readings]
        self.stats[f"outcome:{outcome}"] += 1
        # 1. it ended
        self.check(outcome is not None, "the call has no outcome")
        self.check(len([t for t in self.turns if t.taken]) <= MAX_TURNS + 2, "too many turns")
        # 2. each confirmed value stored exactly once; nothing else but a value left at its read-back
        keys = Counter(r[0] for r in rows)
        self.check(all(n == 1 for n in keys.values()), f"a turn stored more than one reading: {keys}")
        by_key = {r[0]: r for r in rows}
        for seq, serial, register, value in self.confirmed:
            row = by_key.get(f"{self.sid}:{seq}")
            self.check(row is not None, f"the value {value} confirmed at turn {seq} was not stored")
            self.check(row[1] == w.meter_ids[serial] and row[2] == register, "stored on another meter or register")
            self.check(row[4] in ("accepted", "pending_review", "superseded"), f"stored as {row[4]}")
        expected = {f"{self.sid}:{c[0]}" for c in self.confirmed}
        if self.kept_at_end is not None:
            expected.add(f"{self.sid}:{self.kept_at_end}")
        extra = [r for r in rows if r[0] not in expected]
        self.check(not extra, f"stored without the caller's confirmation: {extra}")
        if self.kept_at_end is not None:
            row = by_key.get(f"{self.sid}:{self.kept_at_end}")
            self.check(row is not None and row[5] == "not_confirmed", "the value left at its read-back was not kept")
            self.stats["kept_at_read_back"] += 1
        # 3. only on accounts the caller gave
        for r in rows:
            serial = next(s for s, i in w.meter_ids.items() if i == r[1])
            owner = next(a for a in ACCOUNTS if any(m.serial == serial for m in a.meters))
            self.check(owner.typed in self.given,
                       f"a reading stored on account {owner.number}, which the caller never gave "
                       f"(gave {sorted(self.given)})")
        # 4. spoken answers that led nowhere are reachable
        robot_ended = outcome in ("gave_up", "transferred") and end_reason and \
            end_reason.split(":")[0] in ("account", "confirm_account", "offer_account")
        if robot_ended and self.account_answers:
            rows = [u.id for u in spoken if u.step == "account"]
            self.check(len(rows) == self.account_rows, f"{len(rows)} spoken answers kept, {self.account_rows} given")
            answers = [rows[i] for i in self.account_answers]
            items = [t for t in tasks if t.kind == "identification"]
            self.check(items, f"{len(answers)} spoken account answers and no identification item")
            named = set(items[-1].details.get("utterances", []))
            self.check(set(answers) <= named, f"identification item names {sorted(named)}, not all of {answers}")
            self.stats["identification_item_spoken"] += 1


# --- the run -------------------------------------------------------------------------------------------------

def persona(rng: random.Random) -> Persona:
    kind = rng.choices(["withheld", "unknown", "known"], [15, 35, 50])[0]
    target = rng.choices([a for a in ACCOUNTS] + [None], [12, 10, 10, 3, 10, 6, 10, 3, 8, 8, 6])[0]
    if kind == "known":
        holders = [a for a in ACCOUNTS if a.phones]
        holder = rng.choice(holders)
        phone = holder.phones[0]
        target = holder if rng.random() < 0.8 else target
    elif kind == "unknown":
        phone = rng.choice(UNKNOWN_CALLERS)
    else:
        phone = None
    lang = rng.choice(["ro", "ru", "uk", "en"])
    transport = rng.choices(["keypad", "record", "stream"], [30, 35, 35])[0]
    another = rng.choice([a for a in ACCOUNTS if a.meters and a.active]) if rng.random() < 0.06 else None
    mumbler = rng.random() < 0.12  # speaks every answer, and is heard badly
    return Persona(phone=phone, lang=lang, transport=transport, target=target,
                   bogus=rng.choice(["999", "100002", "12*34", "7777777"]),
                   chaos=rng.choice([0.0, 0.04, 0.12, 0.3]),
                   line="mumbled" if mumbler else rng.choice(["good", "good", "fair", "poor"]),
                   careful=rng.random() < 0.8, patience=rng.randint(1, 3), another=another,
                   speaks=1.0 if mumbler else 0.5)


@dataclass
class Report:
    calls: int
    turns: int
    seconds: float
    stats: Counter

    def summary(self) -> str:
        keys = sorted(k for k in self.stats if k.startswith("outcome:"))
        outcomes = ", ".join(f"{k.split(':', 1)[1]} {self.stats[k]}" for k in keys)
        return (f"{self.calls} calls, {self.turns} turns in {self.seconds:.1f} s; outcomes: {outcomes}")


def run(calls_wanted: int, seed: int, workdir: Path, *, on_call=None) -> Report:
    """Make ``calls_wanted`` calls from the run ``seed``; raises ``ModelFailure`` at the first call
    that breaks an invariant."""
    rng = random.Random(seed)
    world = World(workdir)
    stats: Counter = Counter()
    turns = 0
    started = time.perf_counter()
    with pinned(world.clock), world.recording_call_writes():
        for number in range(calls_wanted):
            world.clock.now += dt.timedelta(minutes=rng.randint(1, 240))
            call = CallRun(world, rng, number, persona(rng))
            call.run()
            stats.update(call.stats)
            turns += len(call.turns)
            if on_call is not None:
                on_call(number)
        world.check_baselines()
    return Report(calls_wanted, turns, time.perf_counter() - started, stats)


@contextlib.contextmanager
def clean_environment(workdir: Path):
    """The model's settings only: no IVR_* variable of the shell running it."""
    saved = dict(os.environ)
    for key in list(os.environ):
        if key.startswith("IVR_"):
            del os.environ[key]
    os.environ["IVR_DATA_DIR"] = str(workdir / "data")
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _job(args: tuple[int, int, int]) -> tuple[int, int, str | None, Report | None]:
    """One process's share of a run: (job, seed, failure or None, report)."""
    job, seed, calls_wanted = args
    with tempfile.TemporaryDirectory(prefix="caller-model-") as tmp, clean_environment(Path(tmp)):
        def progress(number: int) -> None:
            if (number + 1) % 5000 == 0:
                print(f"  job {job}: {number + 1} calls", flush=True)

        try:
            return job, seed, None, run(calls_wanted, seed, Path(tmp), on_call=progress)
        except ModelFailure as failure:
            return job, seed, str(failure), None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.caller_model", description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=50_000, help="calls to make in all (default 50000)")
    parser.add_argument("--seed", type=int, default=None, help="the run's seed (default: a random one)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="processes sharing the calls, each with its own seed drawn from the run's "
                             "(default: one per CPU; 1 replays a seed exactly)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    jobs = max(1, min(args.jobs, args.calls))
    seeds = [seed] if jobs == 1 else [random.Random(seed).randrange(2**32) + i for i in range(jobs)]
    shares = [args.calls // jobs + (1 if i < args.calls % jobs else 0) for i in range(jobs)]
    print(f"caller model: {args.calls} calls, seed {seed}" + (f", {jobs} processes" if jobs > 1 else ""), flush=True)
    started = time.perf_counter()
    work = [(i, seeds[i], shares[i]) for i in range(jobs)]
    if jobs == 1:
        results = [_job(work[0])]
    else:
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            results = pool.map(_job, work)
    failed = [r for r in results if r[2] is not None]
    for job, job_seed, failure, _ in failed:
        print(f"FAILED: seed {job_seed}" + (f" (job {job} of the run with seed {seed})" if jobs > 1 else "") +
              f"\n{failure}", file=sys.stderr)
        print(f"replay: python -m tests.caller_model --jobs 1 --seed {job_seed} --calls {shares[job]} "
              f"(make caller-model SEED={job_seed} CALLS={shares[job]})", file=sys.stderr)
    if failed:
        return 1
    stats, turns = Counter(), 0
    for _, _, _, report in results:
        stats.update(report.stats)
        turns += report.turns
    total = Report(args.calls, turns, time.perf_counter() - started, stats)
    print(total.summary())
    print(f"passed, seed {seed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
