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
* CSV rendering with spreadsheet-formula neutralisation.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence

from sqlalchemy import DateTime, Numeric, String, exists, func, select, type_coerce, update
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


def _reading_columns(dialect: str):
    """The columns of a reading as the API gives it. The value and the two times come as the
    driver hands them (``type_coerce``: no conversion per row by the ORM's types), and are turned
    into the API's text by ``_converters`` for that database: a pull of 330,000 readings spent most
    of its time converting values and times to Python objects and back to text."""
    if dialect == "sqlite":  # stored as text: exact decimals, and "YYYY-MM-DD HH:MM:SS.ffffff" in UTC
        value, taken, received = (type_coerce(c, String()) for c in
                                  (Reading.value, Reading.taken_at, Reading.received_at))
    else:
        value = type_coerce(Reading.value, Numeric(18, 4, asdecimal=True))
        taken, received = (type_coerce(c, DateTime(timezone=True)) for c in (Reading.taken_at, Reading.received_at))
    return (
        Reading.id, Account.number, Region.code, Meter.serial, Meter.utility, Reading.register, value,
        Reading.period, taken, received, Reading.channel, Reading.status,
        Reading.supersedes_id, Reading.export_batch_id,
    )


def _sqlite_value(text: str) -> str:
    """``decimal_text`` of a value as SQLite stores it (``format(Decimal, "f")``)."""
    return text.rstrip("0").rstrip(".") if "." in text else text


def _sqlite_time(text: str | None) -> str | None:
    """``iso`` of a time as SQLite stores it (UTC, "YYYY-MM-DD HH:MM:SS.ffffff"), by slicing."""
    if text is None:
        return None
    if len(text) != 26 or text[10] != " " or text[19] != ".":  # not as SQLAlchemy writes it: parse it
        parsed = dt.datetime.fromisoformat(text)
        return iso(parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc))
    if text.endswith(".000000"):
        return f"{text[:10]}T{text[11:19]}Z"
    return f"{text[:10]}T{text[11:]}Z"


def _converters(dialect: str):
    """(value, time) -> API text, for the columns ``_reading_columns`` gives on ``dialect``."""
    if dialect == "sqlite":
        return _sqlite_value, _sqlite_time
    return decimal_text, iso


def _reading_select(dialect: str):
    return (
        select(*_reading_columns(dialect))
        .join(Meter, Reading.meter_id == Meter.id)
        .join(Account, Meter.account_id == Account.id)
        .join(Region, Account.region_id == Region.id)
    )


def _item(row, value, time, status: str | None = None) -> dict:
    return {
        "id": row[0],
        "account_number": row[1],
        "region_code": row[2],
        "meter_serial": row[3],
        "utility": row[4],
        "register": row[5],
        "value": value(row[6]),
        "period": row[7],
        "taken_at": time(row[8]),
        "received_at": time(row[9]),
        "channel": row[10],
        "status": status or row[11],
        "supersedes": row[12],
        "export_batch": row[13],
    }


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


def csv_lines(fields: Sequence[str], items: Iterable[dict]) -> Iterator[str]:
    """CSV text in chunks: the header, then one chunk per 1000 rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(fields)
    count = 0
    for item in items:
        writer.writerow([csv_safe(item[f]) if f in _CSV_TEXT_FIELDS else ("" if item[f] is None else item[f])
                         for f in fields])
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


def list_readings(session: Session, filters: ReadingFilter, *, after_id: int = 0, limit: int = 500) -> tuple[list[dict], bool]:
    """One page in id order after ``after_id``; also whether more rows follow."""
    dialect = session.get_bind().dialect.name
    query = filters.apply(_reading_select(dialect)).where(Reading.id > after_id).order_by(Reading.id).limit(limit + 1)
    rows = session.connection().execute(query).all()  # Core rows: no ORM loading overhead
    value, time = _converters(dialect)
    return [_item(r, value, time) for r in rows[:limit]], len(rows) > limit


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
    narrowed = view is not None and view.narrows
    if region is not None or period is not None or narrowed:
        candidates = candidates.join(Meter, Reading.meter_id == Meter.id).join(Account, Meter.account_id == Account.id)
        candidates = candidates.join(Region, Account.region_id == Region.id)
        candidates = filters.apply(candidates, statuses=False)
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


def batch_readings(session: Session, batch_id: int, *, chunk: int = STREAM_CHUNK) -> Iterator[dict]:
    """The readings of a batch, in id order, as they were exported. Fields of a reading never
    change after it is stored, except its status: the batch reports the status it was exported
    with ("accepted"), so re-reading a batch gives the same content every time.

    One query, streamed (a server-side cursor on PostgreSQL, ``chunk`` rows at a time): paging
    with ``id > last`` would rescan the batch's index entries for every chunk."""
    dialect = session.get_bind().dialect.name
    stmt = (
        _reading_select(dialect).where(Reading.export_batch_id == batch_id).order_by(Reading.id)
        .execution_options(stream_results=True, yield_per=chunk)
    )
    value, time = _converters(dialect)
    result = session.connection().execute(stmt)
    try:
        for row in result:
            yield _item(row, value, time, status="accepted")
    finally:
        result.close()


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
