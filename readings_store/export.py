"""Queries and writes behind the billing integration, free of Flask (the API and the CLI share them).

* ``list_readings``: readings in a stable id order, keyset-paginated (``after_id``).
* ``create_batch`` / ``batch_readings`` / ``acknowledge``: export batches for exactly-once
  delivery. A reading is put into at most one batch by one conditional UPDATE
  (``... WHERE export_batch_id IS NULL AND status = 'accepted'``); on PostgreSQL the candidate
  rows are locked ``FOR UPDATE SKIP LOCKED`` first, so an exporter never waits on a row another
  transaction holds (no deadlock) and never takes a row twice. When every candidate is locked by
  another transaction, ``ExportBusy`` says so instead of "nothing to export". Batch ids have no
  gaps (``_next_batch_id``): exporters number their batches one at a time.
* ``missing_meters``: active meters without an accepted or pending reading in a period, with how
  many periods in a row they have gone without (billing: averages up to 3, norms after that).
* CSV rendering with spreadsheet-formula neutralisation (``csv_rows``).
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence

from sqlalchemy import (
    DateTime,
    Numeric,
    String,
    Text,
    and_,
    case,
    cast,
    exists,
    func,
    literal_column,
    select,
    type_coerce,
    update,
)
from sqlalchemy.orm import Session

from .models import READING_STATUSES, UTILITIES, Account, ExportBatch, Meter, Reading, Region, utcnow

if TYPE_CHECKING:
    from .token_views import View

# Billing periods YYYY-MM from 1970-01 to 2999-12 (so that period arithmetic stays in range).
PERIOD_PATTERN = r"^(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])$"
REGION_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"
PERIOD_RE = re.compile(PERIOD_PATTERN)
REGION_RE = re.compile(REGION_PATTERN)
# Periods in a row without a reading after which billing switches from averages to norms.
AVERAGE_PERIODS = 3
STREAM_CHUNK = 5000
MAX_ID = 2**31 - 1

READING_FIELDS = (
    "id", "account_number", "region_code", "meter_serial", "utility", "register", "value", "period",
    "taken_at", "received_at", "channel", "status", "supersedes", "export_batch",
)
MISSING_FIELDS = (
    "meter_id", "account_number", "region_code", "meter_serial", "utility", "period",
    "last_reading_period", "periods_without", "billing_basis",
)
# Text columns a spreadsheet could take for a formula; numbers and timestamps are left alone.
_CSV_TEXT_FIELDS = {"account_number", "region_code", "meter_serial", "utility", "register", "period",
                    "channel", "status", "billing_basis", "last_reading_period"}


# --------------------------------------------------------------------------------------------
# validation helpers (shared by the API and the CLI)


def check_period(period: str) -> str:
    if not isinstance(period, str) or not PERIOD_RE.match(period):
        raise ValueError(f"period must be YYYY-MM (1970-01 to 2999-12), got {period!r}")
    return period


def check_region(code: str) -> str:
    if not isinstance(code, str) or not REGION_RE.match(code):
        raise ValueError(f"region must be a region code (letters, digits, - and _; max 32), got {code!r}")
    return code


def check_utility(utility: str) -> str:
    if utility not in UTILITIES:
        raise ValueError(f"utility must be one of {', '.join(UTILITIES)}, got {utility!r}")
    return utility


def check_statuses(statuses: Iterable[str]) -> tuple[str, ...]:
    out = tuple(sorted(set(statuses)))
    bad = [s for s in out if s not in READING_STATUSES]
    if bad or not out:
        raise ValueError(f"status must be one or more of {', '.join(READING_STATUSES)}, got {','.join(bad) or 'nothing'}")
    return out


def period_add(period: str, months: int) -> str:
    year, month = int(period[:4]), int(period[5:7])
    index = year * 12 + (month - 1) + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def periods_between(first: str, last: str) -> int:
    """How many months ``last`` is after ``first`` (0 when equal)."""
    return (int(last[:4]) * 12 + int(last[5:7])) - (int(first[:4]) * 12 + int(first[5:7]))


def period_start(period: str) -> dt.datetime:
    return dt.datetime(int(period[:4]), int(period[5:7]), 1, tzinfo=dt.timezone.utc)


# --------------------------------------------------------------------------------------------
# rendering


def iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.utcoffset():
        value = value.astimezone(dt.timezone.utc)
    return value.isoformat().replace("+00:00", "Z")


def decimal_text(value: Decimal) -> str:
    """A reading as exact text, never a float: ``Decimal('1250.50')`` -> ``"1250.5"``."""
    return format(value.normalize(), "f")


def _sql(text: str):
    """A constant of the statement, written into it (keys and formats, never data)."""
    return literal_column("'" + text.replace("'", "''") + "'", String())


def _value_text(dialect: str):
    """``decimal_text`` of a reading's value, in SQL: exact, without trailing zeros."""
    if dialect == "sqlite":  # stored as the text of ``format(Decimal, "f")``
        value = type_coerce(Reading.value, String())
        return case((func.instr(value, _sql(".")) > 0, func.rtrim(func.rtrim(value, _sql("0")), _sql("."))),
                    else_=value)
    return cast(func.trim_scale(type_coerce(Reading.value, Numeric())), Text())


# SQLite: a time not stored as SQLAlchemy writes it is read by ``_sqlite_time`` (Python), as a
# function of the connection.
_SQLITE_TIME_FUNCTION = "ivr_api_time"


def _time_text(dialect: str, column):
    """``iso`` of a time, in SQL: UTC, ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``."""
    if dialect == "sqlite":  # stored as "YYYY-MM-DD HH:MM:SS.ffffff" in UTC: sliced
        stored = type_coerce(column, String())
        standard = and_(func.length(stored) == 26, func.substr(stored, 11, 1) == _sql(" "),
                        func.substr(stored, 20, 1) == _sql("."))
        clock = case((func.substr(stored, 20) == _sql(".000000"), func.substr(stored, 12, 8)),
                     else_=func.substr(stored, 12))
        return case((standard, func.substr(stored, 1, 10) + _sql("T") + clock + _sql("Z")),
                    else_=getattr(func, _SQLITE_TIME_FUNCTION)(stored))
    # At the offset 0 (arithmetic: no time zone to look up for each row); whole seconds lose ".000000".
    utc = func.timezone(literal_column("INTERVAL '0'"), type_coerce(column, DateTime(timezone=True)))
    return func.replace(func.to_char(utc, _sql('YYYY-MM-DD"T"HH24:MI:SS.US"Z"')), _sql(".000000Z"), _sql("Z"))


def _reading_fields(dialect: str, status: str | None = None) -> tuple[dict, dict]:
    """The fields of ``READING_FIELDS`` as SQL, as the API gives them: (numbers, texts). The value
    is ``decimal_text`` and the times ``iso``, in SQL. ``status`` replaces the reading's own (an
    export batch reports the status its readings were exported with)."""
    numbers = {"id": Reading.id, "supersedes": Reading.supersedes_id, "export_batch": Reading.export_batch_id}
    strings = {
        "account_number": Account.number, "region_code": Region.code, "meter_serial": Meter.serial,
        "utility": Meter.utility, "register": Reading.register, "value": _value_text(dialect),
        "period": Reading.period, "taken_at": _time_text(dialect, Reading.taken_at),
        "received_at": _time_text(dialect, Reading.received_at), "channel": Reading.channel,
        "status": Reading.status if status is None else cast(_sql(status), Text()),
    }
    return numbers, strings


# PostgreSQL: a reading's JSON text from ``,"account_number":`` to its channel, kept by the database
# as the reading or what it names changes (migration 0018): a page then needs no join.
_EXPORT_HEAD = literal_column("readings.export_head", Text())


def _reading_document(dialect: str, status: str | None = None):
    """A reading as the API gives it, as one JSON text built by the database: the text of
    ``json.dumps(item, ensure_ascii=False, separators=(",", ":"))`` with the fields of
    ``READING_FIELDS`` in their order, byte for byte (``status`` as in ``_reading_fields``). Python
    then only joins texts: building, converting and encoding 330,000 rows one by one in Python was
    most of a pull.

    SQLite's ``json_object`` writes compact JSON as Python does, from the reading joined to its
    meter, account and region. On PostgreSQL the fields from the account number to the channel
    are the reading's ``export_head`` (written by the database, its rule in migration 0018: a
    change to those fields needs a migration that replaces ``readings_export_head``); the id and
    the fields that change over a reading's life are added here."""
    numbers, strings = _reading_fields(dialect, status)
    if dialect == "sqlite":
        return func.json_object(*(e for f in READING_FIELDS for e in (_sql(f), numbers.get(f, strings.get(f)))),
                                type_=String())
    # Status is one of READING_STATUSES and the others are numbers: nothing to escape.
    return (_sql('{"id":') + cast(Reading.id, Text()) + _EXPORT_HEAD + _sql(',"status":"') + strings["status"]
            + _sql('","supersedes":') + func.coalesce(cast(Reading.supersedes_id, Text()), _sql("null"))
            + _sql(',"export_batch":') + func.coalesce(cast(Reading.export_batch_id, Text()), _sql("null"))
            + _sql("}"))


def _readings_select(session: Session, *, rows: bool = False, status: str | None = None, joined: bool = False):
    """SELECT readings, each as its JSON text (``_reading_document``), or, with ``rows``, as the
    fields of ``READING_FIELDS`` in columns (``_reading_fields``: for CSV, the same texts without
    JSON). Joined to their meters, accounts and regions when the fields need it or ``joined`` (for
    conditions on them)."""
    connection = session.connection()
    dialect = connection.dialect.name
    if dialect == "sqlite":
        connection.connection.dbapi_connection.create_function(_SQLITE_TIME_FUNCTION, 1, _sqlite_time,
                                                               deterministic=True)
    if rows:
        numbers, strings = _reading_fields(dialect, status)
        query = select(*(numbers[f] if f in numbers else strings[f] for f in READING_FIELDS))
    else:
        query = select(_reading_document(dialect, status))
    query = query.select_from(Reading)
    return _join_names(query) if rows or joined or dialect == "sqlite" else query


def _join_names(query):
    """``query`` on readings joined to the meters, accounts and regions they name."""
    return (query.join(Meter, Reading.meter_id == Meter.id).join(Account, Meter.account_id == Account.id)
            .join(Region, Account.region_id == Region.id))


def _sqlite_time(text: str | None) -> str | None:
    """``iso`` of a time as SQLite stores it, when it is not in the form SQLAlchemy writes."""
    if text is None:
        return None
    parsed = dt.datetime.fromisoformat(text)
    return iso(parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc))


# A spreadsheet starts a formula at = + - @ (or tab/CR before one), and some read the fullwidth
# forms (＝ ＋ － ＠, as typed with East Asian keyboards) as the same characters.
FORMULA_STARTS = "=+-@\t\r\uff1d\uff0b\uff0d\uff20"


def csv_safe(value) -> str:
    """Neutralise spreadsheet formula injection: text starting with a formula character
    (``FORMULA_STARTS``) gets a quote."""
    if value is None:
        return ""
    text = str(value)
    if text and text[0] in FORMULA_STARTS:
        return "'" + text
    return text


def csv_rows(fields: Sequence[str], rows: Iterable[Sequence]) -> Iterator[str]:
    """CSV text of rows (values in the order of ``fields``) in chunks: the header, then one chunk
    per 1000 rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(fields)
    text = [f in _CSV_TEXT_FIELDS for f in fields]
    count = 0
    for row in rows:
        writer.writerow([csv_safe(v) if t else ("" if v is None else v) for v, t in zip(row, text)])
        count += 1
        if count % 1000 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


# --------------------------------------------------------------------------------------------
# readings


@dataclass(frozen=True)
class ReadingFilter:
    statuses: tuple[str, ...] = ("accepted",)
    region: str | None = None
    utility: str | None = None
    period: str | None = None
    view: View | None = None  # the API token's view (token_views): nothing outside it

    def key(self) -> dict:
        key = {"status": list(self.statuses), "region": self.region, "utility": self.utility, "period": self.period}
        return {**key, "view": self.view.key} if self.view is not None and self.view.limited else key

    @property
    def names_others(self) -> bool:
        """Whether the conditions are on the readings' meters, accounts or regions."""
        return (self.view is not None and self.view.limited) or self.region is not None or self.utility is not None

    def apply(self, query, *, statuses: bool = True):
        if statuses:
            query = query.where(Reading.status.in_(self.statuses))
        if self.view is not None and self.view.limited:
            query = query.where(self.view.clause())
        if self.region is not None:
            query = query.where(Region.code == self.region)
        if self.utility is not None:
            query = query.where(Meter.utility == self.utility)
        if self.period is not None:
            query = query.where(Reading.period == self.period)
        return query


def list_readings(session: Session, filters: ReadingFilter, *, after_id: int = 0, limit: int = 500,
                  rows: bool = False) -> tuple[list, int | None, bool]:
    """One page in id order after ``after_id``: the readings as JSON texts (``_reading_document``),
    or with ``rows`` as rows of ``READING_FIELDS``; the last one's id; whether more rows follow."""
    query = _readings_select(session, rows=rows, joined=filters.names_others)
    query = filters.apply(query).where(Reading.id > after_id).order_by(Reading.id)
    result = session.connection().execute(query.limit(limit + 1))
    # The driver's values as they come: no ORM loading, and for texts no Row objects.
    items = list(result.tuples()) if rows else result.scalars().all()
    more = len(items) > limit
    items = items[:limit]
    if not items:
        return items, None, more
    return items, items[-1][0] if rows else json.loads(items[-1])["id"], more


# --------------------------------------------------------------------------------------------
# export batches


def batch_summary(batch: ExportBatch) -> dict:
    return {
        "id": batch.id,
        "created_at": iso(batch.created_at),
        "count": batch.reading_count,
        "region_code": batch.region_code,
        "period": batch.period,
        "acknowledged_at": iso(batch.acknowledged_at),
    }


class ExportBusy(RuntimeError):
    """Every reading an export would take is locked by another transaction right now."""


# Held by the exporter numbering a batch, until its transaction ends (any 64-bit key of our own).
EXPORT_NUMBERING_LOCK = 0x6976725F65787074  # "ivr_expt"


def _next_batch_id(session: Session) -> int:
    """PostgreSQL: the next batch id, with no gaps. A sequence would leave one for every export
    that found nothing or whose transaction failed (a sequence value is never handed out twice),
    and billing could not tell a batch it missed from one that never existed. Exporters take a
    transaction lock in turn and number from the highest committed id, so an export that writes
    nothing, or rolls back, leaves its number to the next one. (SQLite gives a new row the highest
    id + 1 itself, inside its one write transaction at a time.)"""
    session.execute(select(func.pg_advisory_xact_lock(EXPORT_NUMBERING_LOCK)))
    return (session.scalar(select(func.max(ExportBatch.id))) or 0) + 1


def create_batch(session: Session, *, region: str | None = None, period: str | None = None,
                 limit: int | None = None, created_by: int | None = None,
                 view: View | None = None) -> ExportBatch | None:
    """Take every accepted, not yet exported reading (optionally of one region/period, at most
    ``limit`` of them, lowest ids first; only of ``view``, ``token_views.for_export``, to which the
    batch then belongs) into a new batch. Returns None, with nothing written,
    when there is nothing to export; raises ExportBusy, with nothing written, when there are such
    readings but another transaction holds every one of them (PostgreSQL). The caller commits."""
    postgres = session.get_bind().dialect.name == "postgresql"
    batch = ExportBatch(created_at=utcnow(), created_by=created_by, region_code=region, period=period,
                        reading_count=0, view=view.key if view is not None else None)
    if postgres:
        batch.id = _next_batch_id(session)
    session.add(batch)
    session.flush()
    filters = ReadingFilter(region=region, period=period)
    candidates = select(Reading.id).where(Reading.export_batch_id.is_(None), Reading.status == "accepted")
    candidates = filters.apply(candidates, statuses=False)
    narrowed = view is not None and view.narrows
    if filters.names_others or narrowed:
        candidates = _join_names(candidates)
    if narrowed:
        candidates = candidates.where(view.export_clause())
    candidates = candidates.order_by(Reading.id)
    if limit is not None:
        candidates = candidates.limit(limit)
    stmt = update(Reading).values(export_batch_id=batch.id).where(
        Reading.export_batch_id.is_(None), Reading.status == "accepted"
    )
    if postgres:
        # Lock the candidates once (MATERIALIZED: never re-evaluated) and skip rows another
        # exporter or writer holds; the outer conditions re-check each row under its lock.
        picked = candidates.with_for_update(skip_locked=True, of=Reading).cte("picked").prefix_with("MATERIALIZED")
        stmt = stmt.where(Reading.id == picked.c.id)
    else:
        # SQLite runs one writer at a time: the single UPDATE is atomic on its own.
        stmt = stmt.where(Reading.id.in_(candidates.scalar_subquery()))
    count = session.execute(stmt.execution_options(synchronize_session=False)).rowcount
    if not count:
        session.delete(batch)
        session.flush()
        if postgres and session.scalar(select(candidates.exists())):
            # Readings are there but another transaction holds them (an exporter that has not
            # committed yet, or a writer): "nothing to export" would be untrue.
            raise ExportBusy("accepted readings not yet exported are locked by another transaction; retry shortly")
        return None
    # The rowcount of the one UPDATE is exactly the rows this batch took (each row re-checked
    # under its lock), so it is the batch's count.
    batch.reading_count = count
    session.flush()
    return batch


def get_batch(session: Session, batch_id: int) -> ExportBatch | None:
    if not 0 < batch_id <= MAX_ID:
        return None
    return session.get(ExportBatch, batch_id)


def batch_documents(session: Session, batch_id: int, *, chunk: int = STREAM_CHUNK,
                    rows: bool = False) -> Iterator:
    """The readings of a batch, in id order, as they were exported: JSON texts
    (``_reading_document``), or with ``rows`` rows of ``READING_FIELDS``. Fields of a reading
    never change after it is stored, except its status: the batch reports the status it was
    exported with ("accepted"), so re-reading a batch gives the same content every time.

    One query, streamed (a server-side cursor on PostgreSQL, ``chunk`` rows at a time): paging
    with ``id > last`` would rescan the batch's index entries for every chunk."""
    stmt = (
        _readings_select(session, rows=rows, status="accepted").where(Reading.export_batch_id == batch_id)
        .order_by(Reading.id).execution_options(stream_results=True, yield_per=chunk)
    )
    result = session.connection().execute(stmt)
    try:
        yield from (result.tuples() if rows else result.scalars())
    finally:
        result.close()


def batch_readings(session: Session, batch_id: int, *, chunk: int = STREAM_CHUNK) -> Iterator[dict]:
    """``batch_documents`` as dicts."""
    return (dict(zip(READING_FIELDS, row)) for row in batch_documents(session, batch_id, chunk=chunk, rows=True))


def acknowledge(session: Session, batch_id: int) -> ExportBatch | None:
    """Mark a batch delivered; acknowledging again keeps the first time. The caller commits."""
    if not 0 < batch_id <= MAX_ID:
        return None
    session.execute(
        update(ExportBatch).where(ExportBatch.id == batch_id, ExportBatch.acknowledged_at.is_(None))
        .values(acknowledged_at=utcnow()).execution_options(synchronize_session=False)
    )
    batch = session.get(ExportBatch, batch_id)
    if batch is not None:
        session.refresh(batch)
    return batch


def list_batches(session: Session, *, acknowledged: bool | None = None, after_id: int = 0,
                 limit: int = 100, view: View | None = None) -> tuple[list[ExportBatch], bool]:
    """Batches in id order; with ``view``, only the ones that belong to it."""
    query = select(ExportBatch).where(ExportBatch.id > after_id)
    if view is not None:
        query = query.where(view.batch_clause())
    if acknowledged is True:
        query = query.where(ExportBatch.acknowledged_at.is_not(None))
    elif acknowledged is False:
        query = query.where(ExportBatch.acknowledged_at.is_(None))
    rows = list(session.scalars(query.order_by(ExportBatch.id).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


# --------------------------------------------------------------------------------------------
# missing readings


@dataclass(frozen=True)
class MissingFilter:
    period: str
    region: str | None = None
    utility: str | None = None
    view: View | None = None  # the API token's view (token_views): nothing outside it

    def key(self) -> dict:
        key = {"period": self.period, "region": self.region, "utility": self.utility}
        return {**key, "view": self.view.key} if self.view is not None and self.view.limited else key


_COUNTED = ("accepted", "pending_review")


def missing_meters(session: Session, filters: MissingFilter, *, after_id: int = 0,
                   limit: int = 500) -> tuple[list[dict], bool]:
    """Active meters of active accounts, installed before the period ended, with no accepted or
    pending reading in it; in meter id order after ``after_id``."""
    period = filters.period
    has_reading = exists().where(
        Reading.meter_id == Meter.id, Reading.period == period, Reading.status.in_(_COUNTED)
    )
    query = (
        select(Meter.id, Account.number, Region.code, Meter.serial, Meter.utility, Meter.created_at)
        .join(Account, Meter.account_id == Account.id)
        .join(Region, Account.region_id == Region.id)
        .where(Meter.active.is_(True), Account.active.is_(True), Meter.id > after_id,
               Meter.created_at < period_start(period_add(period, 1)), ~has_reading)
    )
    if filters.region is not None:
        query = query.where(Region.code == filters.region)
    if filters.utility is not None:
        query = query.where(Meter.utility == filters.utility)
    if filters.view is not None and filters.view.limited:
        query = query.where(filters.view.clause())
    rows = session.execute(query.order_by(Meter.id).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    last: dict[int, str] = {}
    if rows:
        last = dict(session.execute(
            select(Reading.meter_id, func.max(Reading.period))
            .where(Reading.meter_id.in_([r[0] for r in rows]), Reading.period < period, Reading.status.in_(_COUNTED))
            .group_by(Reading.meter_id)
        ).all())
    items = []
    for meter_id, number, region, serial, utility, created_at in rows:
        previous = last.get(meter_id)
        if previous is not None:
            without = periods_between(previous, period)
        else:
            installed = f"{created_at.astimezone(dt.timezone.utc):%Y-%m}"
            without = periods_between(installed, period) + 1
        items.append({
            "meter_id": meter_id,
            "account_number": number,
            "region_code": region,
            "meter_serial": serial,
            "utility": utility,
            "period": period,
            "last_reading_period": previous,
            "periods_without": without,
            "billing_basis": "norm" if without > AVERAGE_PERIODS else "average",
        })
    return items, more
