"""The manager's figures for a period: calls per hour, outcomes, the drop-off per question,
readings per region against each region's submission window, the review queue's age, and how
callers answer (speech or keypad, re-asks) per language. Plain queries over a session, no Flask.

Every figure is counted by the database, and no row is loaded into Python: at most one row per
region, language and outcome (per day for the hours). The calls' figures (which each call's turns
kept as they logged their steps, ``readings_store.call_figures``) and the readings received are
summed over the period's whole UTC days from the day counts the database keeps
(``readings_store.day_counts``: a few thousand rows for a month, however many calls it had), and
over the hours at either end from indexes of the calls and readings themselves; accounts and
review items are counted from indexes. So the page costs a few aggregate queries, and a month
costs little more than a day.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, select, true, union_all
from sqlalchemy.orm import Session

from grammars.plural import english
from readings_store import day_counts, rules, service
from readings_store.call_figures import COUNTS, FUNNEL, QUESTIONS
from readings_store.models import (UTILITIES, Account, Call, CallDay, Meter, Reading, ReadingDay, Region,
                                   ReviewTask, SubmissionWindow)

from . import labels

OUTCOME_ORDER = ("completed", "no_reading", "transferred", "gave_up", "hung_up", "service_not_ready", None)
AGE_BUCKETS = ((1, "under 1 h"), (4, "1–4 h"), (24, "4–24 h"), (72, "1–3 days"), (None, "over 3 days"))
SAVED = ("accepted", "pending_review")


@dataclass(frozen=True)
class Scope:
    """The calls a dashboard counts: started in [start, end), in one region or all."""

    start: dt.datetime
    end: dt.datetime
    region_id: int | None = None


# --- calls ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CallCounts:
    """The calls of a scope counted by region, language and outcome. ``rows``: region_id, language,
    outcome, calls, then the steps' counts (speech, keypad, asked, reasked, logged), then per
    question (``QUESTIONS``) the calls that reached it, then the calls that passed it (a question
    left for something that is not a question counts as passed if the call completed). A key may
    come in several rows (counted per day and from the calls themselves): every figure sums them."""

    rows: list[tuple]

    def outcomes(self) -> dict[str | None, int]:
        out: dict[str | None, int] = {}
        for _region_id, _language, outcome, calls, *_ in self.rows:
            out[outcome] = out.get(outcome, 0) + calls
        return out

    def _questions(self, first: int) -> dict[str, int]:
        totals = [sum(row[first + i] for row in self.rows) for i in range(len(QUESTIONS))]
        return dict(zip(QUESTIONS, totals))

    def reached(self) -> dict[str, int]:
        """Per question, the calls that reached it."""
        return self._questions(9)

    def passed(self) -> dict[str, int]:
        """Per question, the calls that passed it."""
        return self._questions(9 + len(QUESTIONS))

    def answers(self) -> dict[str | None, tuple[int, int, int, int]]:
        """Per call language with steps logged: speech, keypad, asked, reasked."""
        out: dict[str | None, list[int]] = {}
        for row in self.rows:
            language, counts, logged = row[1], row[4:8], row[8]
            if not logged:
                continue  # calls without steps answered nothing
            total = out.setdefault(language, [0, 0, 0, 0])
            for i, n in enumerate(counts):
                total[i] += n
        return {language: (total[0], total[1], total[2], total[3]) for language, total in out.items()}


def _parts(scope: Scope) -> tuple[tuple[dt.date, dt.date] | None, list]:
    """How a scope is counted: its whole UTC days from the day counts (None: none), and the
    conditions on calls counted from the calls themselves: the hours at either end, and the calls
    of the whole days still without an outcome (which the day counts do not hold yet)."""
    days = day_counts.whole_days(scope.start, scope.end)
    region = [Call.region_id == scope.region_id] if scope.region_id is not None else []
    if days is None:
        return None, [and_(Call.started_at >= scope.start, Call.started_at < scope.end, *region)]
    first, last = (day_counts.midnight(d) for d in days)
    calls = [and_(Call.started_at >= first, Call.started_at < last, Call.outcome.is_(None), *region)]
    if scope.start < first:
        calls.append(and_(Call.started_at >= scope.start, Call.started_at < first, *region))
    if last < scope.end:
        calls.append(and_(Call.started_at >= last, Call.started_at < scope.end, *region))
    return days, calls


def _days_where(days: tuple[dt.date, dt.date], scope: Scope) -> list:
    clauses = [CallDay.day >= days[0], CallDay.day < days[1]]
    if scope.region_id is not None:
        clauses.append(CallDay.region_id == scope.region_id)
    return clauses


def call_counts(session: Session, scope: Scope) -> CallCounts:
    """Sums over the scope's whole UTC days (``CallDay``: a row per day, region, language and
    outcome), and over the calls of the hours at either end and those of the days without an
    outcome yet, read from their indexes (``ix_calls_figures``, ``ix_calls_unsettled``): one statement."""
    days, calls = _parts(scope)
    key = (Call.region_id, Call.language, Call.outcome)
    passed = case((Call.outcome == "completed", Call.questions_passed.op("|")(Call.questions_left)),
                  else_=Call.questions_passed)

    def bit(mask, i: int):
        return func.sum(mask.op(">>")(i).op("&")(1))

    direct = [*key, func.count(), *(func.sum(getattr(Call, c)) for c in COUNTS),
              *(bit(Call.questions_reached, i) for i in range(len(QUESTIONS))),
              *(bit(passed, i) for i in range(len(QUESTIONS)))]
    parts = [select(*direct).where(where).group_by(*key) for where in calls]
    if days is not None:
        day_key = (CallDay.region_id, CallDay.language, CallDay.outcome)
        parts.append(select(*day_key, *(func.sum(getattr(CallDay, c)) for c in day_counts.CALL_COLUMNS))
                     .where(*_days_where(days, scope)).group_by(*day_key))
    query = parts[0] if len(parts) == 1 else union_all(*parts)
    return CallCounts([(region_id, language, outcome, *(int(n or 0) for n in counts))
                       for region_id, language, outcome, *counts in session.execute(query)])


def outcomes(counts: CallCounts) -> list[dict]:
    by_outcome = counts.outcomes()
    known = [o for o in OUTCOME_ORDER if o in by_outcome]
    other = sorted(o for o in by_outcome if o not in OUTCOME_ORDER)
    return [{"code": o or "", "label": labels.label(o, "outcome"), "value": by_outcome[o]} for o in known + other]


def _utc_hour(session: Session):
    """SQL: the UTC hour a call started in, as text "YYYY-MM-DD HH"."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", Call.started_at), "YYYY-MM-DD HH24")
    # SQLite keeps UTC times as text, "YYYY-MM-DD HH:MM:SS.ffffff": the hour is its first 13 characters.
    return func.substr(Call.started_at, 1, 13)


def calls_per_hour(session: Session, scope: Scope, zone: str) -> list[tuple[str, int]]:
    """Calls started in each hour of the period, hours labelled in ``zone``: the whole UTC days'
    from ``CallDay`` (a column per UTC hour), the rest from the calls, as ``call_counts``."""
    days, calls = _parts(scope)
    hour = _utc_hour(session).label("hour")
    counts: dict[str, int] = {}
    parts = [select(hour, func.count()).where(where).group_by(hour) for where in calls]
    for name, n in session.execute(parts[0] if len(parts) == 1 else union_all(*parts)):
        counts[name] = counts.get(name, 0) + n
    if days is not None:
        query = (select(CallDay.day, *(func.sum(getattr(CallDay, h)) for h in day_counts.HOURS))
                 .where(*_days_where(days, scope)).group_by(CallDay.day))
        for day, *per_hour in session.execute(query):
            for h, n in enumerate(per_hour):
                name = f"{day.isoformat()} {h:02d}"
                counts[name] = counts.get(name, 0) + int(n or 0)
    tz = ZoneInfo(zone)
    out = []
    moment = scope.start.astimezone(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
    single_day = scope.end - scope.start <= dt.timedelta(days=1)
    while moment < scope.end:
        local = moment.astimezone(tz)
        name = local.strftime("%H") if single_day else local.strftime("%d.%m %H")
        out.append((name, counts.get(moment.strftime("%Y-%m-%d %H"), 0)))
        moment += dt.timedelta(hours=1)
    return out


def per_region_language(counts: CallCounts) -> list[dict]:
    """Calls per region and call language: how many, and how many completed, were transferred or
    gave up. ``region_id`` and ``language`` are None when the call never got that far."""
    out: dict[tuple, dict] = {}
    for region_id, language, outcome, calls, *_ in counts.rows:
        row = out.setdefault((region_id, language), {"region_id": region_id, "language": language, "calls": 0,
                                                     "completed": 0, "transferred": 0, "gave_up": 0})
        row["calls"] += calls
        if outcome in ("completed", "transferred", "gave_up"):
            row[outcome] += calls
    return list(out.values())


def funnel(counts: CallCounts) -> list[dict]:
    """Per question: calls that reached it (the line asked it at least once) and calls that passed
    it (an answer moved the call on to another question, or the call completed after it)."""
    reached, passed = counts.reached(), counts.passed()
    return [{"code": q, "label": labels.label(q, "step"), "value": reached[q],
             "inner": passed[q], "note": f"reached, {passed[q]} passed"}
            for q in FUNNEL if reached[q]]


def answers_by_language(counts: CallCounts) -> list[dict]:
    """Per call language: answers given by speech and on the keypad (every answered step), and the
    re-ask rate: the share of questions the line had to ask again (a step whose next question was
    itself). ``language`` is None for calls that never chose one; calls without steps answered nothing."""
    out = []
    answers = counts.answers()
    for lang in sorted(answers, key=lambda lang: lang or ""):
        speech, keypad, asked, reasked = answers[lang]
        given = speech + keypad
        out.append({"language": lang, "speech": speech, "keypad": keypad, "asked": asked, "reasked": reasked,
                    "speech_share": speech / given if given else None,
                    "reask_rate": reasked / asked if asked else None})
    return out


# --- readings received ----------------------------------------------------------------------------

def readings_received(session: Session, scope: Scope) -> list[tuple[str, str, int]]:
    """Readings received in the scope's period, by status and channel (sorted; none with 0). For
    all regions the whole UTC days are summed from ``ReadingDay`` and the hours at either end
    counted from ``ix_readings_received``; for one region they are counted through the meters'
    accounts."""
    if scope.region_id is not None:
        query = (select(Reading.status, Reading.channel, func.count())
                 .join(Meter).join(Account).where(Account.region_id == scope.region_id,
                                                  Reading.received_at >= scope.start, Reading.received_at < scope.end)
                 .group_by(Reading.status, Reading.channel))
        return sorted((status, channel, n) for status, channel, n in session.execute(query) if n)
    days = day_counts.whole_days(scope.start, scope.end)
    ranges = [(scope.start, scope.end)]
    parts = []
    if days is not None:
        first, last = (day_counts.midnight(d) for d in days)
        ranges = [(start, end) for start, end in ((scope.start, first), (last, scope.end)) if start < end]
        parts.append(select(ReadingDay.status, ReadingDay.channel, func.sum(ReadingDay.n))
                     .where(ReadingDay.day >= days[0], ReadingDay.day < days[1])
                     .group_by(ReadingDay.status, ReadingDay.channel))
    parts += [select(Reading.status, Reading.channel, func.count())
              .where(Reading.received_at >= start, Reading.received_at < end)
              .group_by(Reading.status, Reading.channel) for start, end in ranges]
    counts: dict[tuple[str, str], int] = {}
    for status, channel, n in session.execute(parts[0] if len(parts) == 1 else union_all(*parts)):
        counts[(status, channel)] = counts.get((status, channel), 0) + int(n or 0)
    return sorted((status, channel, n) for (status, channel), n in counts.items() if n)


# --- the review queue -----------------------------------------------------------------------------

def queue_age(session: Session, now: dt.datetime, region_id: int | None) -> list[dict]:
    """Open review items by how long they have waited."""
    buckets, lower = [], None
    for limit, _name in AGE_BUCKETS:
        newest = ReviewTask.created_at > now - dt.timedelta(hours=limit) if limit is not None else true()
        oldest = ReviewTask.created_at <= now - dt.timedelta(hours=lower) if lower is not None else true()
        buckets.append(func.sum(case((and_(newest, oldest), 1), else_=0)))
        lower = limit
    query = select(*buckets).where(ReviewTask.status == "open")
    if region_id is not None:
        query = query.where(ReviewTask.region_id == region_id)
    counts = [int(n or 0) for n in session.execute(query).one()]
    return [{"label": name, "value": counts[i], "late": limit is None or limit > 24}
            for i, (limit, name) in enumerate(AGE_BUCKETS)]


# --- readings against the submission windows ------------------------------------------------------

def windows(session: Session, regions: list[Region]) -> dict[tuple[int, str], tuple[int, int] | None]:
    """Each region's submission window per utility, as the phone line applies them (one statement)."""
    of_region: dict[int, list[SubmissionWindow]] = {r.id: [] for r in regions}
    for window in session.scalars(select(SubmissionWindow).where(SubmissionWindow.region_id.in_(of_region))):
        of_region[window.region_id].append(window)
    return {(r.id, u): service.choose_window(of_region[r.id], u) for r in regions for u in UTILITIES}


def default_period(regions: list[Region], windows_of: dict, now: dt.datetime) -> str:
    """The billing period whose submission window is open now (each region's own day and windows;
    the earliest when they differ), else the next one to open. Decided by ``rules.billing_period``,
    as the phone line files a reading given now."""
    open_now, next_ = set(), set()
    for region in regions:
        today = service.region_now(region, now).date()
        for utility in UTILITIES:
            decision = rules.billing_period(today, windows_of[(region.id, utility)])
            (open_now if decision.in_window else next_).add(decision.period)
    return min(open_now or next_ or {rules.billing_period(now.date(), None).period})


@dataclass(frozen=True)
class Window:
    """When a region takes readings for a period (region dates), and where today stands."""

    opens: dt.date
    closes: dt.date  # the region's deadline: the last day of its last window for the period
    today: dt.date

    @property
    def state(self) -> str:  # not_open | open | closed
        return "not_open" if self.today < self.opens else "closed" if self.today > self.closes else "open"

    @property
    def days_left(self) -> int | None:
        """Whole days after today on which readings still count (0 on the last day); None unless open."""
        return (self.closes - self.today).days if self.state == "open" else None


def region_window(region: Region, windows_of: dict, period: str, now: dt.datetime) -> Window:
    """The region's window for ``period``: from the first of its utilities' windows to open to the
    last to close (a utility without a window takes the calendar month, ``rules.window_dates``)."""
    dates = [rules.window_dates(period, windows_of[(region.id, u)]) for u in UTILITIES]
    return Window(min(o for o, _ in dates), max(c for _, c in dates), service.region_now(region, now).date())


def coverage(session: Session, period: str, regions: list[Region], windows_of: dict, lang: str,
             now: dt.datetime) -> list[dict]:
    """Per region: active accounts with at least one meter, how many of them have a reading
    (accepted or waiting for review) in the billing period, and the region's window for it."""
    ids = [r.id for r in regions]
    # Active accounts with a meter, from the index of a region's active accounts; and of them those
    # with a saved reading of the period, found from the period's readings (ix_readings_period_status:
    # a few readings per account) rather than by probing every account's meters for one.
    has_meter = select(Meter.id).where(Meter.account_id == Account.id).exists()
    accounts = (select(Account.region_id, func.count())
                .where(Account.active.is_(True), Account.region_id.in_(ids), has_meter).group_by(Account.region_id))
    read = (select(Meter.account_id).join(Reading, Reading.meter_id == Meter.id)
            .where(Reading.period == period, Reading.status.in_(SAVED)))
    with_reading = (select(Account.region_id, func.count())
                    .where(Account.active.is_(True), Account.region_id.in_(ids), Account.id.in_(read))
                    .group_by(Account.region_id))
    totals = dict(session.execute(accounts).all())
    done = dict(session.execute(with_reading).all())
    rows = []
    for region in regions:
        total = totals.get(region.id)
        if not total:
            continue
        got = done.get(region.id, 0)
        window = region_window(region, windows_of, period, now)
        share = got / total
        rows.append({"region_id": region.id, "label": region.name_in(lang), "accounts": total, "with_reading": got,
                     "value": share, "window": window, "late": window.state == "closed" and share < 1,
                     "note": f"({got} of {total}) {window_note(window)}"})
    return sorted(rows, key=lambda r: r["label"])


def window_note(window: Window) -> str:
    """A region's window in words, never a negative number of days."""
    if window.state == "not_open":
        return f"window opens {window.opens}"
    if window.state == "closed":
        return f"window closed {window.closes}"
    left = window.days_left
    return f"closes {window.closes}, " + ("last day" if left == 0 else f"{left} {english(left, 'day', 'days')} left")


def deadline_card(rows: list[dict]) -> dict | None:
    """The headline for the period: the nearest deadline among regions whose window is open, else
    when the next one opens, else when the last one closed. None without regions to cover."""
    windows_ = [r["window"] for r in rows]
    if not windows_:
        return None
    open_ = [w for w in windows_ if w.state == "open"]
    if open_:
        nearest = min(open_, key=lambda w: (w.days_left, w.closes))
        return {"state": "open", "days": nearest.days_left, "date": nearest.closes}
    waiting = [w for w in windows_ if w.state == "not_open"]
    if waiting:
        return {"state": "not_open", "days": None, "date": min(w.opens for w in waiting)}
    return {"state": "closed", "days": None, "date": max(w.closes for w in windows_)}
