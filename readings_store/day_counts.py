"""The dashboard's counts per UTC day, kept by the database as calls and readings change.

A month's dashboard sums the figures of 100 000 calls and counts 150 000 readings; read from the
calls and readings themselves that is a scan of every one. So the database keeps them per UTC day
as well, in two small tables, and the dashboard sums a few thousand rows instead:

* ``call_days``: per UTC day a call started on, region, language and outcome, the calls that have
  an outcome (a call's figures no longer change once it has one): how many, how many started in
  each UTC hour of the day, their steps' counts (``call_figures.COUNTS``), and per question how
  many reached it and how many passed it (a question left for something that is not a question
  counts as passed in a call that completed, as the funnel counts it). Calls still without an
  outcome are counted from the calls themselves (``ix_calls_unsettled``: a few live calls).
* ``reading_days``: per UTC day a reading was received on, status and channel, how many.

Days are UTC days: a period in any time zone (whose days start at any hour, and last 23 or 25
hours across a DST switch) is its whole UTC days from these tables and the hours at either end
from the rows themselves (``whole_days``).

Triggers (migration ``0017_day_counts``) append a row of +1 or −1 as a call or reading is inserted,
changed and deleted, in the same transaction, as they do for ``record_counts``: appended, never a
counter updated in place, which would serialise concurrent calls on it. ``fold`` sums a day's rows
into one per key when many have piled up (the dashboard asks, ``fold_if_many``); a sum over the
rows is right folded or not.
"""
from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from .call_figures import COUNTS, QUESTIONS

log = logging.getLogger(__name__)

HOURS = tuple(f"hour_{h:02d}" for h in range(24))
REACHED = tuple(f"reached_{q}" for q in QUESTIONS)
PASSED = tuple(f"passed_{q}" for q in QUESTIONS)
# call_days' counted columns, in the order the dashboard reads them (``ivr.console.dashboard.CallCounts``).
CALL_COLUMNS = ("calls", *COUNTS, *REACHED, *PASSED)
CALL_KEY = ("day", "region_id", "language", "outcome")
READING_KEY = ("day", "status", "channel")
# Changes appended since the last fold beyond which the dashboard folds them.
FOLD_AFTER = 2000


def whole_days(start: dt.datetime, end: dt.datetime) -> tuple[dt.date, dt.date] | None:
    """The UTC days wholly inside [start, end) as (first, end): first <= day < end; None if none."""
    start, end = start.astimezone(dt.timezone.utc), end.astimezone(dt.timezone.utc)
    first = start.date() if start.time() == dt.time(0) else start.date() + dt.timedelta(days=1)
    return (first, end.date()) if first < end.date() else None


def midnight(day: dt.date) -> dt.datetime:
    """The UTC instant a UTC day starts."""
    return dt.datetime.combine(day, dt.time(0), dt.timezone.utc)


def pending(session: Session) -> int:
    """Rows appended since the last fold (counted up to ``FOLD_AFTER`` + 1 per table)."""
    limit = FOLD_AFTER + 1
    return int(session.execute(text(
        f"SELECT (SELECT count(*) FROM (SELECT 1 FROM call_days WHERE NOT folded LIMIT {limit}) c) + "
        f"(SELECT count(*) FROM (SELECT 1 FROM reading_days WHERE NOT folded LIMIT {limit}) r)")).scalar_one())


def fold(session: Session) -> None:
    """Sum each day with rows appended since the last fold into one row per key, and commit. On
    PostgreSQL one statement deletes the rows it sums (a change committed meanwhile is neither
    summed nor deleted, and is folded next time); SQLite has one writer at a time, so its
    statements see the same rows."""
    postgresql = session.get_bind().dialect.name == "postgresql"
    for table, key, columns in (("call_days", CALL_KEY, CALL_COLUMNS + HOURS), ("reading_days", READING_KEY, ("n",))):
        names = ", ".join((*key, "folded", *columns))
        sums = ", ".join((*key, "TRUE", *(f"sum({c})" for c in columns)))
        group = f"GROUP BY {', '.join(key)} HAVING sum({columns[0]}) <> 0"
        if postgresql:
            session.execute(text(
                f"WITH gone AS (DELETE FROM {table} WHERE day IN (SELECT day FROM {table} WHERE NOT folded) "
                f"RETURNING *) INSERT INTO {table} ({names}) SELECT {sums} FROM gone {group}"))
            continue
        last = session.execute(text(f"SELECT max(id) FROM {table}")).scalar_one()
        if last is None:
            continue
        days = f"id <= {int(last)} AND day IN (SELECT day FROM {table} WHERE NOT folded AND id <= {int(last)})"
        session.execute(text(f"INSERT INTO {table} ({names}) SELECT {sums} FROM {table} WHERE {days} {group}"))
        session.execute(text(f"DELETE FROM {table} WHERE {days}"))
    session.commit()


def fold_if_many(session: Session) -> None:
    """Fold when more than ``FOLD_AFTER`` changes have piled up; if the fold fails (another writer
    held the database) the counts are still right, and it is tried again next time."""
    if pending(session) <= FOLD_AFTER:
        return
    try:
        fold(session)
    except SQLAlchemyError as exc:
        session.rollback()
        log.warning("day counts not folded: %s", exc.__class__.__name__)
