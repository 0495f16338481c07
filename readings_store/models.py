"""SQLAlchemy 2 models: the records the phone line, the operator console and billing share.

Times are stored in UTC (timezone-aware on PostgreSQL, naive-UTC on SQLite; see ``utcnow``);
readings are ``Decimal``. Call state is a JSON column so any worker can serve any webhook.
"""
from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    Time,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator
from . import call_figures, clock, day_counts

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# The product's clock, re-exported here because models and most callers already import from here.
utcnow = clock.utcnow


class UTCDateTime(TypeDecorator):
    """Always hands back aware UTC datetimes, whatever the backend stores."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use UTC-aware datetimes")
        return value.astimezone(dt.timezone.utc)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


def plain_decimal(value: Decimal) -> Decimal:
    """Without trailing zeros and never in exponent form: 5100.0000 -> 5100, 12.500 -> 12.5."""
    normal = value.normalize()
    return normal.quantize(Decimal(1)) if normal.as_tuple().exponent > 0 else normal


class DecimalText(TypeDecorator):
    """Exact decimals everywhere: NUMERIC on PostgreSQL, text on SQLite (which has no decimal type)."""

    impl = Numeric(18, 4)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(40))
        return dialect.type_descriptor(Numeric(18, 4))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = Decimal(value)
        return format(value, "f") if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return plain_decimal(Decimal(value))


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Utility(str, enum.Enum):
    electricity = "electricity"
    cold_water = "cold_water"
    hot_water = "hot_water"
    gas = "gas"
    heat = "heat"


UTILITIES = tuple(u.value for u in Utility)
ACCOUNT_KINDS = ("person", "company")
# Register names: single-register meters use "total"; two-tariff electricity uses day/night.
REGISTERS = {1: ("total",), 2: ("day", "night")}
DEFAULT_TIMEZONE = "Europe/Chisinau"
DEFAULT_WORK_HOURS = (dt.time(8, 0), dt.time(17, 0), "12345")
CHANNELS = ("phone_keypad", "phone_speech", "operator", "api", "import", "sms")
# Channels whose values come from a trusted source whoever stores them; a value by phone or text
# is trusted only when it comes from the account's number on file (``readings_store.intake``).
TRUSTED_CHANNELS = ("operator", "api", "import")
READING_STATUSES = ("accepted", "pending_review", "rejected", "superseded")


class Region(Base):
    __tablename__ = "regions"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default=DEFAULT_TIMEZONE)
    # Operators answer transfers only inside working hours, on working days (ISO weekdays, "12345").
    work_start: Mapped[dt.time] = mapped_column(Time, default=DEFAULT_WORK_HOURS[0])
    work_end: Mapped[dt.time] = mapped_column(Time, default=DEFAULT_WORK_HOURS[1])
    work_days: Mapped[str] = mapped_column(String(7), default=DEFAULT_WORK_HOURS[2])
    operator_number: Mapped[str | None] = mapped_column(String(32))
    # Key the caller presses in the region menu (none: not offered on the phone).
    menu_key: Mapped[int | None] = mapped_column(Integer, unique=True)
    # The name per call language ({"ru": "Кишинёв", ...}); ``name`` is said when one is missing.
    names: Mapped[dict] = mapped_column(JSON, default=dict, server_default="{}")
    # Caller ID prefixes (E.164, e.g. "+37322") that place a caller in this region.
    phone_prefixes: Mapped[list] = mapped_column(JSON, default=list, server_default="[]")
    # A caller identified for a company account is asked to say the organisation's name (recorded
    # for operators, nothing decided on it).
    ask_org_name: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    accounts: Mapped[list[Account]] = relationship(back_populates="region")
    windows: Mapped[list[SubmissionWindow]] = relationship(back_populates="region", cascade="all, delete-orphan")

    def name_in(self, lang: str | None) -> str:
        return (self.names or {}).get(lang or "") or self.name


class Account(Base):
    __tablename__ = "accounts"
    __table_args__ = (
        UniqueConstraint("region_id", "number", name="uq_accounts_region_number"),
        Index("ix_accounts_keypad", "region_id", "keypad_key"),
        # The active accounts of a region, counted from the index alone (the dashboard's coverage).
        Index("ix_accounts_region_active", "region_id", "active"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"))
    number: Mapped[str] = mapped_column(String(64))
    # The number as typed on a phone keypad: digits, with "*" for any separator.
    keypad_key: Mapped[str] = mapped_column(String(64))
    holder_name: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(16), default="person")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    region: Mapped[Region] = relationship(back_populates="accounts")
    phones: Mapped[list[AccountPhone]] = relationship(back_populates="account", cascade="all, delete-orphan")
    meters: Mapped[list[Meter]] = relationship(back_populates="account", order_by="Meter.id")


class AccountPhone(Base):
    __tablename__ = "account_phones"
    __table_args__ = (UniqueConstraint("account_id", "phone", name="uq_account_phones_account_phone"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    phone: Mapped[str] = mapped_column(String(32), index=True)  # E.164
    account: Mapped[Account] = relationship(back_populates="phones")


class Meter(Base):
    __tablename__ = "meters"
    __table_args__ = (UniqueConstraint("account_id", "serial", name="uq_meters_account_serial"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    serial: Mapped[str] = mapped_column(String(64))
    utility: Mapped[str] = mapped_column(String(20))
    registers: Mapped[int] = mapped_column(Integer, default=1)
    digits: Mapped[int] = mapped_column(Integer, default=6)  # integer digits on the dial
    decimals: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Overrides the per-utility daily limit from configuration when set.
    max_daily: Mapped[Decimal | None] = mapped_column(DecimalText)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    account: Mapped[Account] = relationship(back_populates="meters")
    readings: Mapped[list[Reading]] = relationship(back_populates="meter", order_by="Reading.id")

    @property
    def register_names(self) -> tuple[str, ...]:
        return REGISTERS[self.registers]


class SubmissionWindow(Base):
    """Days of the month when readings are taken for a period; end < start wraps into next month."""

    __tablename__ = "submission_windows"
    __table_args__ = (UniqueConstraint("region_id", "utility", name="uq_submission_windows_region_utility"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"))
    utility: Mapped[str | None] = mapped_column(String(20))  # None: every utility
    start_day: Mapped[int] = mapped_column(Integer)
    end_day: Mapped[int] = mapped_column(Integer)
    region: Mapped[Region] = relationship(back_populates="windows")


class Call(Base):
    __tablename__ = "calls"
    __table_args__ = (
        # Open calls by last activity: what ``ivr calls sweep`` looks for.
        Index("ix_calls_open_activity", "ended_at", "last_activity_at"),
        # Everything the dashboard counts over the calls of a period, read from the index alone
        # (a call's row also holds its state and last TwiML, kilobytes the count never needs).
        Index("ix_calls_figures", "started_at", "region_id", "language", "outcome", *call_figures.COLUMNS),
        # An account's latest calls (its console page).
        Index("ix_calls_account_started", "account_id", "started_at"),
        # The calls without an outcome yet, which ``CallDay`` does not count: the dashboard counts
        # them (a few live calls) from this index alone (it names the outcome, always NULL, for that).
        Index("ix_calls_unsettled", "started_at", "region_id", "language", "outcome", *call_figures.COLUMNS,
              sqlite_where=text("outcome IS NULL"), postgresql_where=text("outcome IS NULL")),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(64), unique=True)
    from_number: Mapped[str | None] = mapped_column(String(32), index=True)  # E.164 or None if withheld
    # When the caller's number was erased (`ivr privacy erase`); from_number is then None.
    caller_erased_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    caller_country: Mapped[str | None] = mapped_column(String(2))
    language: Mapped[str | None] = mapped_column(String(8))
    region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    state: Mapped[dict] = mapped_column(JSON, default=dict)
    # The steps the turns of a call in progress have logged (``CallStep`` columns, ``at`` in ISO
    # form), held on the row each turn writes anyway and written as ``call_steps`` rows by one
    # INSERT when the call ends (``Call.steps_so_far`` shows both meanwhile).
    steps: Mapped[list] = mapped_column(JSON, default=list)
    # Sequence number of the webhook expected next; a repeated request replays last_twiml.
    seq: Mapped[int] = mapped_column(Integer, default=0)
    last_twiml: Mapped[str | None] = mapped_column(Text)
    twilio_status: Mapped[str | None] = mapped_column(String(32))
    # completed | no_reading | transferred | gave_up | hung_up | service_not_ready; NULL in progress
    outcome: Mapped[str | None] = mapped_column(String(32))
    # "<step>:<reason>" that ended a transferred, gave_up or hung_up call ("account:account_not_found")
    end_reason: Mapped[str | None] = mapped_column(String(64))
    # How the call's speech answers are heard when it differs from IVR_SPEECH_TRANSPORT: "record"
    # once the media endpoint refused its stream (full, or behind); NULL: the configured transport.
    speech_transport: Mapped[str | None] = mapped_column(String(8))
    # SHA-256 (hex) of the random token the call's <Stream> carries: the media endpoint opens one
    # stream for the call that names it, once (``stream_opened_at``).
    stream_token_hash: Mapped[str | None] = mapped_column(String(64))
    stream_opened_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # When the call was last answered (opened, a turn taken); a call idle for long is swept.
    last_activity_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=utcnow)
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The call's figures for the dashboard, counted by each turn as it logs its step
    # (``readings_store.call_figures``): bit masks of questions, and counts of steps.
    questions_reached: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    questions_passed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    questions_left: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    answers_speech: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    answers_keypad: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    questions_asked: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    questions_reasked: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    steps_logged: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    region: Mapped[Region | None] = relationship()
    account: Mapped[Account | None] = relationship()
    utterances: Mapped[list[Utterance]] = relationship(back_populates="call", order_by="Utterance.id")
    logged_steps: Mapped[list[CallStep]] = relationship(order_by="CallStep.seq", viewonly=True)

    @property
    def steps_so_far(self) -> list[CallStep]:
        """The call's logged steps: its ``call_steps`` rows, then those its row still holds (a call
        in progress), as rows not added to any session."""
        held = [CallStep(call_id=self.id, **{**step, "at": dt.datetime.fromisoformat(step["at"])})
                for step in self.steps or []
                if isinstance(step, dict) and "seq" in step]
        return [*self.logged_steps, *held]


class CallStep(Base):
    """One turn of a call as the phone line logged it: the question answered (``step``), how it
    was answered (``kind``: digits, speech, timeout; None for the call's opening), the question
    or action that came next, and the call's language and region after the turn. Written by the
    turn that decides it, so a turn writes one row however long the call is, and the dashboard
    counts these rows with GROUP BY."""

    __tablename__ = "call_steps"
    __table_args__ = (UniqueConstraint("call_id", "seq", name="uq_call_steps_call_seq"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"))
    seq: Mapped[int] = mapped_column(Integer)  # 1, 2, ... in the order the call logged them
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    step: Mapped[str] = mapped_column(String(32))
    next: Mapped[str | None] = mapped_column(String(32))
    kind: Mapped[str | None] = mapped_column(String(16))
    keys: Mapped[int | None] = mapped_column(Integer)  # how many keys were pressed (never which)
    decision: Mapped[str | None] = mapped_column(String(16))  # the speech decision
    # The opening's detail: caller ID "known"/"withheld" (incoming), who answered (reminder).
    detail: Mapped[str | None] = mapped_column(String(32))
    language: Mapped[str | None] = mapped_column(String(8))
    region_id: Mapped[int | None] = mapped_column(Integer)

    @property
    def event(self) -> dict:
        """The step's event as the console words it (``labels.step_event``)."""
        if self.step == "incoming" and self.kind is None:
            return {"from": self.detail}
        if self.step == "reminder" and self.kind is None:
            return {"answered_by": self.detail}
        return {"kind": self.kind, "keys": self.keys, "decision": self.decision}


class Utterance(Base):
    """One answer of a caller at a speech step: the audio, what was recognised, what was parsed."""

    __tablename__ = "utterances"
    # Utterances whose audio is still kept, oldest first: what the retention command looks at.
    __table_args__ = (Index("ix_utterances_audio_kept", "created_at", sqlite_where=text("audio_path IS NOT NULL"),
                            postgresql_where=text("audio_path IS NOT NULL")),)
    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"), index=True)
    step: Mapped[str] = mapped_column(String(32))
    engine: Mapped[str] = mapped_column(String(16))  # vosk, twilio, keypad; record: kept, not recognised (org_name)
    recording_sid: Mapped[str | None] = mapped_column(String(64))
    audio_path: Mapped[str | None] = mapped_column(String(500))
    # When the audio file was deleted (kept no longer than needed, or erased); audio_path is then None.
    audio_deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    transcript: Mapped[str | None] = mapped_column(Text)
    words: Mapped[list] = mapped_column(JSON, default=list)  # [{"text","confidence","start","end"}]
    alternatives: Mapped[list] = mapped_column(JSON, default=list)  # [{"text","confidence"}]
    parsed_value: Mapped[str | None] = mapped_column(String(64))
    candidates: Mapped[list] = mapped_column(JSON, default=list)
    confidence: Mapped[float | None] = mapped_column()
    decision: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    call: Mapped[Call] = relationship(back_populates="utterances")


class RecordCount(Base):
    """How many calls there are by outcome, readings by status and channel, and export batches
    created and acknowledged, as changes to add up: database triggers (migration 0015_volume) add
    a row of +1 or -1 as those rows are inserted, changed and deleted, in the same transaction, and
    ``/metrics`` sums them and now and then folds them into one row per series
    (``ivr.ops.metrics.compact_record_counts``). Appended, never updated in place: a counter row
    updated by every insert would serialise concurrent calls on it, and on PostgreSQL a bulk insert
    in one transaction would make it longer with every row. ``family`` is calls, readings or
    export_batches; ``first``/``second`` its labels ("" for a call without an outcome yet, and
    where a family has one label)."""

    __tablename__ = "record_counts"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    family: Mapped[str] = mapped_column(String(16))
    first: Mapped[str] = mapped_column(String(32))
    second: Mapped[str] = mapped_column(String(32))
    n: Mapped[int] = mapped_column(BigInteger)


def _day_counts_table(name: str, key: list[Column], counted: tuple[str, ...]) -> Table:
    unfolded = text("NOT folded")
    return Table(
        name, Base.metadata,
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
        Column("day", Date, nullable=False),
        *key,
        Column("folded", Boolean, nullable=False, server_default=false()),
        *(Column(c, Integer, nullable=False) for c in counted),
        Index(f"ix_{name}_day", "day", *(c.name for c in key)),
        Index(f"ix_{name}_unfolded", "day", sqlite_where=unfolded, postgresql_where=unfolded),
    )


class CallDay(Base):
    """The calls with an outcome, per UTC day they started on, region, language and outcome: how
    many, per UTC hour, their steps' counts and per question how many reached and passed it
    (``readings_store.day_counts``). Rows of +1 or -1 changes appended by triggers (migration
    0017_day_counts) as calls change, folded now and then: sum them, never read one."""

    __table__ = _day_counts_table("call_days", [Column("region_id", Integer), Column("language", String(8)),
                                                Column("outcome", String(32), nullable=False)],
                                  day_counts.HOURS + day_counts.CALL_COLUMNS)


class ReadingDay(Base):
    """The readings per UTC day they were received on, status and channel: how many
    (``readings_store.day_counts``), as changes appended by triggers: sum them."""

    __table__ = _day_counts_table("reading_days", [Column("status", String(16), nullable=False),
                                                   Column("channel", String(16), nullable=False)], ("n",))


class ExportBatch(Base):
    __tablename__ = "export_batches"
    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("api_clients.id"))
    region_code: Mapped[str | None] = mapped_column(String(32))
    period: Mapped[str | None] = mapped_column(String(7))
    # The view (readings_store.token_views.View.key) of the token that created it; None: every reading.
    # Only tokens with the same view list, read and acknowledge it.
    view: Mapped[str | None] = mapped_column(String(1000))
    reading_count: Mapped[int] = mapped_column(Integer, default=0)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


def _trusted_by_channel(context) -> bool:
    return context.get_current_parameters().get("channel") in TRUSTED_CHANNELS


class Reading(Base):
    # On PostgreSQL the table also has ``export_head``, the billing JSON text of the fields that name
    # the reading's account, region and meter and its own fixed fields, written only by the database's
    # triggers (migration 0018) and read only by ``readings_store.export``: not mapped here.
    __tablename__ = "readings"
    __table_args__ = (
        Index("ix_readings_meter_register", "meter_id", "register", "period"),
        Index("ix_readings_status_id", "status", "id"),
        # The dashboard: readings received in a period by status and channel, and the meters with
        # a reading of a billing period; both read from the index alone.
        Index("ix_readings_received", "received_at", "status", "channel"),
        Index("ix_readings_period_status", "period", "status", "meter_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"))
    register: Mapped[str] = mapped_column(String(8), default="total")
    value: Mapped[Decimal] = mapped_column(DecimalText)
    period: Mapped[str] = mapped_column(String(7))  # YYYY-MM billing period
    out_of_window: Mapped[bool] = mapped_column(Boolean, default=False)
    taken_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    status_reason: Mapped[str | None] = mapped_column(String(64))
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"), index=True)
    utterance_id: Mapped[int | None] = mapped_column(ForeignKey("utterances.id"))
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("readings.id"))
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("operators.id"))
    export_batch_id: Mapped[int | None] = mapped_column(ForeignKey("export_batches.id"), index=True)
    # Set by the phone line (CallSid + step sequence) so a repeated webhook never stores twice.
    idempotency_key: Mapped[str | None] = mapped_column(String(120), unique=True)
    # The number the value came from by phone or text (E.164; None when withheld or another channel).
    given_from: Mapped[str | None] = mapped_column(String(32))
    # Given by a trusted source: the account's number on file, an operator, an import or the API
    # (by channel unless set). Only such a reading can be the baseline a new value is judged against.
    trusted: Mapped[bool] = mapped_column(Boolean, default=_trusted_by_channel, server_default=false())

    meter: Mapped[Meter] = relationship(back_populates="readings")
    call: Mapped[Call | None] = relationship()
    utterance: Mapped[Utterance | None] = relationship()


class ValueRefusal(Base):
    """An answer of the phone line that told a caller something about the account's readings: a
    value refused as lower than the previous one or implausible (``code`` is the rule), or read
    back as plausible and then not confirmed (``not_confirmed``; removed once the value is saved).
    Counted per account and billing period: past the configured limit the line no longer says
    anything about a value, so nobody can search for a customer's previous reading by trying values."""

    __tablename__ = "value_refusals"
    __table_args__ = (
        Index("ix_value_refusals_account_period", "account_id", "period"),
        # The dashboard's accounts that reached the limit: a period's refusals by account, from the index alone.
        Index("ix_value_refusals_created_account", "created_at", "account_id", "period"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"))
    register: Mapped[str] = mapped_column(String(8))
    period: Mapped[str] = mapped_column(String(7))  # billing period the value would have gone into
    value: Mapped[str] = mapped_column(String(32))  # as the caller gave it
    code: Mapped[str] = mapped_column(String(64))  # the rule that refused it, or not_confirmed
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"))
    caller: Mapped[str | None] = mapped_column(String(32))  # E.164, None when withheld
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    account: Mapped[Account] = relationship()


class ReviewTask(Base):
    """Something the robot was unsure of, waiting for an operator: a reading or an identification."""

    __tablename__ = "review_tasks"
    __table_args__ = (
        Index("ix_review_tasks_status_created", "status", "created_at"),
        # The queue's counts of open items by reason and kind, under any of its filters, from the index alone.
        Index("ix_review_tasks_status_reason", "status", "reason", "kind", "region_id", "utility", "created_at"),
        # The dashboard's items each operator handled in a period, from the index alone.
        Index("ix_review_tasks_resolved", "resolved_at", "resolved_by", "resolution"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # reading | identification
    reason: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | done
    region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"))
    utility: Mapped[str | None] = mapped_column(String(20))
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"))
    reading_id: Mapped[int | None] = mapped_column(ForeignKey("readings.id"))
    utterance_id: Mapped[int | None] = mapped_column(ForeignKey("utterances.id"))
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("operators.id"))
    resolution: Mapped[str | None] = mapped_column(String(16))  # accepted | corrected | rejected

    region: Mapped[Region | None] = relationship()
    call: Mapped[Call | None] = relationship()
    reading: Mapped[Reading | None] = relationship()
    utterance: Mapped[Utterance | None] = relationship()


class Operator(Base):
    __tablename__ = "operators"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16), default="operator")  # operator | admin
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Console preferences: IANA time zone for every time shown (None: the region's, or the
    # service's default zone when a page spans regions) and the language of region names.
    timezone: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(8))


class ApiClient(Base):
    __tablename__ = "api_clients"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    token_prefix: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(8))  # read | write
    # The token's view: the utilities it sees (None: every utility) and, in ``regions``, the regions
    # (none listed: every region). See readings_store.token_views.
    utilities: Mapped[list | None] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    regions: Mapped[list[ApiClientRegion]] = relationship(cascade="all, delete-orphan", lazy="selectin")


class ApiClientRegion(Base):
    """A region an API token is limited to (a token with none sees every region)."""

    __tablename__ = "api_client_regions"
    __table_args__ = (UniqueConstraint("api_client_id", "region_id", name="uq_api_client_regions_client_region"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    api_client_id: Mapped[int] = mapped_column(ForeignKey("api_clients.id", ondelete="CASCADE"))
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)


class AuditEvent(Base):
    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_kind: Mapped[str] = mapped_column(String(16))  # operator | api | system | caller
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor_name: Mapped[str | None] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[int | None] = mapped_column(Integer)
    before: Mapped[dict | None] = mapped_column(JSON)
    after: Mapped[dict | None] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(Text)


class ConsoleSession(Base):
    """A logged-in console session, kept on the server: the cookie only names it (by a random
    token whose SHA-256 is stored here), so logging out or expiring ends it for good."""

    __tablename__ = "console_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class LoginAttempt(Base):
    """One console log-in attempt not (yet) known to have succeeded, by name and source address.
    Written before the password is checked and counted after, so parallel guesses all count."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_name_ip_at", "username", "ip", "at"),
        Index("ix_login_attempts_ip_at", "ip", "at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class SmsMessage(Base):
    """A text message received on the SMS line, with the reply it got: Twilio's MessageSid makes a
    repeated webhook get the same reply and store nothing twice; the rows per sender and hour are
    what the line counts to throttle a number that sends too many."""

    __tablename__ = "sms_messages"
    __table_args__ = (Index("ix_sms_messages_from_at", "from_number", "received_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    message_sid: Mapped[str] = mapped_column(String(64), unique=True)
    from_number: Mapped[str] = mapped_column(String(32))  # E.164
    body: Mapped[str] = mapped_column(String(1600))
    language: Mapped[str | None] = mapped_column(String(8))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    # readings | keyword | help | refused | throttled
    outcome: Mapped[str] = mapped_column(String(16))
    reply: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class SmsOptOut(Base):
    """A phone number that texted STOP (or its equivalent in another language): it gets no receipt
    or reminder until it texts START."""

    __tablename__ = "sms_opt_outs"
    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(32), unique=True)  # E.164
    keyword: Mapped[str] = mapped_column(String(32))
    opted_out_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class SmsOutbox(Base):
    """A text message to send (a receipt after a call, a reminder) or a reminder call to place
    (``kind`` ``call``): written in the transaction that decides it, sent afterwards by
    ``ivr sms send-pending`` and retried with backoff, so sending never holds up or undoes a call.
    ``status`` of a message: pending, sent (Twilio took it), then Twilio's delivery status
    (delivered, undelivered, failed ...); of a call: pending, placed (Twilio took it; its CallSid in
    ``message_sid``), then answered, machine, or how it ended unanswered (busy, no-answer ...).
    ``cancelled`` when the number opted out before it went, ``failed`` when every attempt failed.
    One receipt per call (``call_id``); one reminder of each kind per account and period. A call's
    answer URL names it only by ``token`` (random), never by anything about the customer."""

    __tablename__ = "sms_outbox"
    __table_args__ = (
        Index("ix_sms_outbox_status_next", "status", "next_attempt_at"),
        # One reminder of each kind (text, call) per account and period, ever (receipts have no period).
        UniqueConstraint("account_id", "period", "kind", name="uq_sms_outbox_account_period_kind"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # receipt | reminder | call
    to_number: Mapped[str | None] = mapped_column(String(32))  # E.164; None once erased (`ivr privacy erase`)
    language: Mapped[str] = mapped_column(String(8))
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"), unique=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    period: Mapped[str | None] = mapped_column(String(7))
    body: Mapped[str | None] = mapped_column(Text)  # rendered when first sent
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    message_sid: Mapped[str | None] = mapped_column(String(64), unique=True)  # SM... or, for a call, CA...
    token: Mapped[str | None] = mapped_column(String(43), unique=True)  # a call's answer URL: /voice/reminder/<token>
    error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
