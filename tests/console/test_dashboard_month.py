"""A month of a hotline, counted twice: the dashboard's every figure and every CSV table, and an
independent count in plain SQL written here (over the calls and the `call_steps` rows their turns wrote,
hour numbers from epoch seconds, correlated EXISTS for the funnel), on the same records.

The month is November 2026 in four regions with different submission windows and time zones,
seen on 3 December 2026 at 10:00 UTC (the product's clock is stopped there): about 3 000 calls
answered on the keypad and by speech, with re-asks, transfers, hang-ups, give-ups and calls still
in progress; readings of every status and channel in October, November and December; review
items of every age, handled and open; refused values, some of them probing.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import random
import re
from collections import Counter
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import bindparam, text

from ivr.console import labels
from readings_store import call_figures, clock
from readings_store.models import (Account, AccountPhone, Call, CallStep, Meter, Operator, Reading, Region, ReviewTask,
                                   SubmissionWindow, UTCDateTime, ValueRefusal)

from .helpers import FAST_HASH, PASSWORD, login, step_rows

pytestmark = pytest.mark.db

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
ZONE = ZoneInfo("Europe/Chisinau")  # the console's zone for pages across regions
FIRST, LAST = dt.date(2026, 11, 1), dt.date(2026, 11, 30)
START = dt.datetime.combine(FIRST, dt.time(0), ZONE).astimezone(UTC)  # 31 Oct 22:00 UTC
END = dt.datetime.combine(LAST + dt.timedelta(days=1), dt.time(0), ZONE).astimezone(UTC)
QUERY = f"from={FIRST}&to={LAST}"
QUESTIONS = ("reminder", "language", "region", "offer_account", "account", "meter", "register", "value", "confirm")
LANGS = ("en", "ro", "ru", "uk")
PROBE_LIMIT = 5

# code, name, zone, menu key, windows {utility or None: (start, end)}
REGIONS = (
    ("CHI", "Chișinău", "Europe/Chisinau", 1, {None: (20, 5)}),
    ("BAL", "Bălți", "Europe/Chisinau", 2, {None: (1, 25)}),
    ("KYI", "Kyiv", "Europe/Kyiv", 3, {None: (25, 3), "electricity": (10, 20)}),
    ("NSK", "Novosibirsk", "Asia/Novosibirsk", 4, {}),
)
# Each region's window for November as a person reads the settings above on 3 December.
NOVEMBER = {
    "Bălți": ("2026-11-01", "2026-11-25", ""),  # closed
    "Chișinău": ("2026-11-20", "2026-12-05", "2"),  # 20-5: open until the 5th
    "Kyiv": ("2026-11-10", "2026-12-03", "0"),  # electricity 10-20, the rest 25-3: today is the last day
    "Novosibirsk": ("2026-11-01", "2026-11-30", ""),  # no window: the calendar month, closed
}


# --- the month -------------------------------------------------------------------------------------------

def _at(rnd: random.Random, first: dt.datetime, last: dt.datetime) -> dt.datetime:
    return first + dt.timedelta(seconds=rnd.randrange(int((last - first).total_seconds())))


def _call_steps(rnd: random.Random, started: dt.datetime, two_tariff: bool) -> tuple[list, str | None, str | None]:
    """The steps a call logs (as ``ivr.calls`` writes them), its outcome and how it ended."""
    entries: list[dict] = []
    at = started

    def log(step, event, nxt):
        nonlocal at
        at += dt.timedelta(seconds=rnd.randint(3, 20))
        entries.append({"at": at.isoformat(), "step": step, "event": event, "next": nxt})

    def answer(speech_ok: bool):
        if speech_ok and rnd.random() < 0.45:
            return {"kind": "speech", "keys": 0, "decision": rnd.choice(["accept", "confirm", "retry"])}
        if rnd.random() < 0.06:
            return {"kind": "timeout", "keys": 0, "decision": None}
        return {"kind": "digits", "keys": rnd.randint(1, 9), "decision": None}

    reminder = rnd.random() < 0.05
    if reminder:
        log("reminder", {"answered_by": "human"}, "reminder")
        plan = ["reminder", "meter", "value", "confirm"]
    else:
        log("incoming", {"from": rnd.choice(["known", "withheld"])}, "language")
        plan = ["language"] + (["region"] if rnd.random() < 0.6 else []) + \
            [rnd.choice(["offer_account", "account"]), "meter"] + (["register"] if two_tariff else []) + \
            ["value", "confirm"]
    fate = rnd.random()
    stop_at = rnd.randrange(len(plan)) if fate < 0.35 else None
    for index, step in enumerate(plan):
        retries = 0
        while rnd.random() < 0.18 and retries < 2:  # asked again
            log(step, answer(step != "reminder"), step)
            retries += 1
        if index == stop_at:
            if fate < 0.12:
                log(step, answer(True), "transfer")
                return entries, "transferred", f"{step}:max_tries"
            if fate < 0.22:
                log(step, answer(True), "hangup")
                return entries, "gave_up", f"{step}:max_tries"
            if fate < 0.32:
                return entries, "hung_up", f"{step}:hung_up"
            return entries, None, None  # still in progress
        last = index + 1 == len(plan)
        if last and rnd.random() < 0.3:  # saved, and the line said goodbye at once
            log(step, answer(True), "hangup")
            return entries, "completed", None
        log(step, answer(step != "reminder"), "more" if last else plan[index + 1])
    log("more", {"kind": "digits", "keys": 1, "decision": None}, "hangup")
    return entries, ("no_reading" if rnd.random() < 0.05 else "completed"), None


def build_month(db, seed: int = 2026, *, calls_count: int = 3000, accounts_per_region: int = 150,
                tasks_count: int | None = None, chunk: int = 20_000) -> dict:
    """The records of the month, written with bulk inserts (a few thousand rows in well under a second;
    ``benchmarks/console_bench.py`` makes a bigger one). ``tasks_count`` review items (default a
    seventh of the calls)."""
    rnd = random.Random(seed)
    regions = {}
    for code, name, zone, key, windows in REGIONS:
        region = Region(code=code, name=name, timezone=zone, menu_key=key, names={}, phone_prefixes=[],
                        work_start=dt.time(8), work_end=dt.time(17), work_days="12345")
        db.add(region)
        db.flush()
        for utility, (start, end) in windows.items():
            db.add(SubmissionWindow(region_id=region.id, utility=utility, start_day=start, end_day=end))
        regions[code] = region.id
    admin = Operator(username="ada", password_hash=_hash(), role="admin", active=True, failed_logins=0)
    other = Operator(username="olga", password_hash=_hash(), role="operator", active=True, failed_logins=0)
    db.add_all([admin, other])
    db.flush()

    accounts, meters, phones = [], [], []
    account_id = meter_id = 0
    for code, region_id in regions.items():
        for i in range(accounts_per_region):
            account_id += 1
            accounts.append({"id": account_id, "region_id": region_id, "number": f"{region_id}{i:05d}",
                             "keypad_key": f"{region_id}{i:05d}", "holder_name": f"Holder {account_id}",
                             "kind": "company" if i % 20 == 0 else "person", "active": rnd.random() > 0.05,
                             "created_at": NOW, "updated_at": NOW})
            if i % 4 == 0:
                phones.append({"account_id": account_id, "phone": f"+3736{account_id:07d}"})
            if i % 33 == 0:
                continue  # an account without meters: nothing to read
            for n in range(rnd.randint(1, 3)):
                meter_id += 1
                utility = rnd.choice(["electricity", "cold_water", "hot_water", "gas", "heat"])
                meters.append({"id": meter_id, "account_id": account_id, "serial": f"M{meter_id:06d}",
                               "utility": utility, "registers": 2 if utility == "electricity" and n % 2 else 1,
                               "digits": 6, "decimals": 1, "active": rnd.random() > 0.03,
                               "created_at": dt.datetime(2025, 1, 1, tzinfo=UTC)})
    _insert(db, Account, accounts, chunk)
    _insert(db, AccountPhone, phones, chunk)
    _insert(db, Meter, meters, chunk)

    calls, logged = [], []
    for call_id in range(1, calls_count + 1):
        started = _at(rnd, dt.datetime(2026, 10, 28, tzinfo=UTC), NOW)
        region_id = rnd.choice([*regions.values(), None])
        lang = rnd.choice([*LANGS, None]) if rnd.random() < 0.08 else rnd.choice(LANGS)
        if rnd.random() < 0.02:
            steps, outcome, reason = [], "service_not_ready", None
        else:
            steps, outcome, reason = _call_steps(rnd, started, two_tariff=rnd.random() < 0.3)
        rows = step_rows(call_id, steps, lang, region_id)
        calls.append({"id": call_id, "call_sid": f"CA{call_id:032x}", "from_number": f"+3736{call_id:07d}",
                      "language": lang, "region_id": region_id, "state": {}, "steps": [], "seq": len(steps),
                      "outcome": outcome, "end_reason": reason, "started_at": started,
                      # As the calls' turns count their steps (the test below counts the steps themselves).
                      **call_figures.of_steps((r["step"], r["next"], r["kind"]) for r in rows)})
        logged.extend(rows)
    _insert(db, Call, calls, chunk)
    _insert(db, CallStep, logged, chunk)

    readings, reading_id = [], 0
    statuses = ["accepted"] * 6 + ["pending_review", "rejected", "superseded"]
    channels = ["phone_keypad", "phone_speech", "sms", "api", "operator", "import"]
    for meter in meters:
        for period, first, last in (("2026-10", dt.datetime(2026, 10, 18, tzinfo=UTC), dt.datetime(2026, 11, 6, tzinfo=UTC)),
                                    ("2026-11", dt.datetime(2026, 11, 1, tzinfo=UTC), NOW),
                                    ("2026-12", dt.datetime(2026, 12, 1, tzinfo=UTC), NOW)):
            if rnd.random() < 0.45:
                continue
            for register in (("day", "night") if meter["registers"] == 2 else ("total",)):
                reading_id += 1
                received = _at(rnd, first, last)
                readings.append({"id": reading_id, "meter_id": meter["id"], "register": register,
                                 "value": Decimal(rnd.randint(100, 9000)), "period": period, "out_of_window": False,
                                 "taken_at": received, "received_at": received, "channel": rnd.choice(channels),
                                 "status": rnd.choice(statuses),
                                 "call_id": rnd.choice([None, rnd.randint(1, calls_count)])})
    _insert(db, Reading, readings, chunk)

    tasks = []
    for task_id in range(1, (calls_count // 7 if tasks_count is None else tasks_count) + 1):
        created = NOW - dt.timedelta(hours=rnd.uniform(0, 240))
        done = rnd.random() < 0.5
        resolved = _at(rnd, created, NOW) if done else None
        tasks.append({"id": task_id, "kind": rnd.choice(["reading", "identification"]),
                      "reason": rnd.choice(["low_confidence", "replaces_other_caller", "account_not_found"]),
                      "status": "done" if done else "open", "region_id": rnd.choice(list(regions.values())),
                      "utility": None, "details": {}, "created_at": created, "resolved_at": resolved,
                      "resolved_by": rnd.choice([admin.id, other.id]) if done else None,
                      "resolution": rnd.choice(["accepted", "corrected", "rejected", "linked", "closed"]) if done
                      else None})
    _insert(db, ReviewTask, tasks, chunk)

    refusals = []
    for _ in range(calls_count // 5):
        account = rnd.choice(accounts[:40])  # crowded on a few accounts: some reach the probing limit
        refusals.append({"account_id": account["id"], "meter_id": rnd.choice(meters)["id"], "register": "total",
                         "period": rnd.choice(["2026-10", "2026-11"]), "value": str(rnd.randint(1, 999)),
                         "code": rnd.choice(["below_previous", "implausible_consumption", "not_confirmed"]),
                         "caller": rnd.choice([None, "+37369000001", "+37369000002"]),
                         "created_at": _at(rnd, dt.datetime(2026, 10, 1, tzinfo=UTC), NOW)})
    _insert(db, ValueRefusal, refusals, chunk)
    db.commit()
    return {"calls": len(calls), "readings": len(readings), "accounts": len(accounts), "tasks": len(tasks)}


def _insert(db, model, rows: list[dict], chunk: int) -> None:
    for start in range(0, len(rows), chunk):
        db.execute(model.__table__.insert(), rows[start:start + chunk])


def _hash() -> str:
    from werkzeug.security import generate_password_hash

    return generate_password_hash(PASSWORD, method=FAST_HASH)


# --- the independent count ---------------------------------------------------------------------------------

class Sql:
    """Plain SQL on the same database; the steps are the ``call_steps`` rows the calls' turns wrote."""

    def __init__(self, db):
        self.db = db
        self.each = "call_steps e WHERE e.call_id = c.id AND"
        self.steps = "calls c JOIN call_steps e ON e.call_id = c.id"
        self.step, self.next, self.kind = "e.step", "e.next", "e.kind"
        if db.get_bind().dialect.name == "postgresql":
            self.hour = "floor(extract(epoch FROM (c.started_at - :start)) / 3600)"
        else:
            self.hour = "(strftime('%s', c.started_at) - strftime('%s', :start)) / 3600"

    def rows(self, sql: str, **params) -> list:
        statement = text(sql)
        for name, value in params.items():
            if isinstance(value, dt.datetime):
                statement = statement.bindparams(bindparam(name, value, type_=UTCDateTime))
            else:
                statement = statement.bindparams(bindparam(name, value))
        return self.db.execute(statement).all()

    def calls(self, sql: str, **params) -> list:
        """``sql`` with ``{calls}``: the condition for a call of the month."""
        return self.rows(sql.format(calls="c.started_at >= :start AND c.started_at < :end", steps=self.steps,
                                    each=self.each,
                                    step=self.step, next=self.next, kind=self.kind, hour=self.hour,
                                    questions=", ".join(f"'{q}'" for q in QUESTIONS)),
                         start=START, end=END, **params)


def csv_rows(client, table: str, query: str = QUERY) -> list[list[str]]:
    response = client.get(f"/console/dashboard?{query}&format=csv&table={table}")
    assert response.status_code == 200 and response.mimetype == "text/csv", (table, response.status_code)
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


@pytest.fixture
def month(db, nocsrf, client):
    """The month's records, and an administrator's console on 3 December 2026 at 10:00 UTC."""
    clock.set_clock(NOW, frozen=True)
    figures = build_month(db)
    assert login(client, "ada").status_code == 302
    return figures


def test_every_dashboard_figure_matches_an_independent_count(month, db, client):
    sql = Sql(db)
    region_names = dict(sql.rows("SELECT id, name FROM regions"))

    # Calls by outcome, and the cards made of them.
    by_outcome = dict(sql.calls("SELECT outcome, count(*) FROM calls c WHERE {calls} GROUP BY outcome"))
    total = sum(by_outcome.values())
    assert 2000 < total < month["calls"]  # most of the generated calls, not those of October or December
    outcomes = csv_rows(client, "outcomes")
    assert outcomes[0] == ["outcome", "calls"]
    assert {name: int(n) for name, n in outcomes[1:]} == {labels.label(o, "outcome"): n for o, n in by_outcome.items()}
    page = client.get(f"/console/dashboard?{QUERY}").get_data(as_text=True)
    assert f'id="calls-today">{total}<' in page
    assert f'id="completed-share">{round(100 * by_outcome["completed"] / total)}%<' in page

    # Per region and language.
    per = {(region_names.get(r, "unknown region"), labels.label(lang, "language")): (n, c, t, g) for r, lang, n, c, t, g in
           sql.calls("SELECT region_id, language, count(*), "
                     "sum(CASE WHEN outcome = 'completed' THEN 1 ELSE 0 END), "
                     "sum(CASE WHEN outcome = 'transferred' THEN 1 ELSE 0 END), "
                     "sum(CASE WHEN outcome = 'gave_up' THEN 1 ELSE 0 END) "
                     "FROM calls c WHERE {calls} GROUP BY region_id, language")}
    rows = csv_rows(client, "per_region")
    assert rows[0] == ["region", "language", "calls", "completed", "transferred", "gave_up"]
    assert {(r[0], r[1]): tuple(map(int, r[2:])) for r in rows[1:]} == per
    assert len(rows) - 1 == len(per) and ("unknown region", "not chosen") in per

    # Calls per hour: 720 hours of the month in the page's zone.
    by_hour = {int(h): n for h, n in sql.calls("SELECT {hour} AS h, count(*) FROM calls c WHERE {calls} GROUP BY h")}
    rows = csv_rows(client, "hours")
    hours = int((END - START).total_seconds() // 3600)
    assert rows[0] == ["hour", "calls"] and len(rows) - 1 == hours == 720
    assert rows[1:] == [[(START + dt.timedelta(hours=h)).astimezone(ZONE).strftime("%d.%m %H"), str(by_hour.get(h, 0))]
                        for h in range(hours)]

    # The drop-off per question: calls asked it (a step at it, or a step leading to it), calls past it.
    reached = {q: sql.calls("SELECT count(*) FROM calls c WHERE {calls} AND EXISTS (SELECT 1 FROM {each} "
                            "({step} = :q OR {next} = :q))", q=q)[0][0] for q in QUESTIONS}
    passed = dict(sql.calls(
        "SELECT {step}, count(DISTINCT c.id) FROM {steps} WHERE {calls} AND {step} IN ({questions}) "
        "AND {next} <> {step} AND ({next} IN ({questions}, 'more') OR c.outcome = 'completed') GROUP BY {step}"))
    rows = csv_rows(client, "funnel")
    assert rows[0] == ["question", "reached", "passed"]
    expected = [[labels.label(q, "step"), str(reached[q]), str(passed.get(q, 0))] for q in QUESTIONS if reached.get(q)]
    assert rows[1:] == expected and len(expected) == len(QUESTIONS)

    # Speech or keypad, and re-asks, per language.
    answers = sql.calls(
        "SELECT c.language, sum(CASE WHEN {kind} = 'speech' THEN 1 ELSE 0 END), "
        "sum(CASE WHEN {kind} = 'digits' THEN 1 ELSE 0 END), sum(CASE WHEN {step} IN ({questions}) THEN 1 ELSE 0 END), "
        "sum(CASE WHEN {step} IN ({questions}) AND {next} = {step} THEN 1 ELSE 0 END) "
        "FROM {steps} WHERE {calls} GROUP BY c.language")
    rows = csv_rows(client, "answers")
    assert rows[0] == ["language", "speech", "keypad", "asked", "reasked"]
    assert {r[0]: tuple(map(int, r[1:])) for r in rows[1:]} == {
        labels.label(lang, "language"): tuple(map(int, counts)) for lang, *counts in answers}
    assert all(int(r[2]) > 0 and int(r[1]) > 0 for r in rows[1:])  # keys are counted, and speech
    speech_chart = page[page.index('id="chart-speech"'):page.index("</svg>", page.index('id="chart-speech"'))]
    for lang, speech, keypad, *_ in answers:
        assert f"({speech} spoken, {keypad} on keys)" in speech_chart

    # Readings received in the month, by status and channel; the card counts those not rejected.
    readings = sql.rows("SELECT status, channel, count(*) FROM readings WHERE received_at >= :start "
                        "AND received_at < :end GROUP BY status, channel", start=START, end=END)
    rows = csv_rows(client, "readings")
    assert rows[0] == ["status", "channel", "count"]
    assert Counter({(r[0], r[1]): int(r[2]) for r in rows[1:]}) == Counter(
        {(labels.label(s, "status"), labels.label(ch, "channel")): n for s, ch, n in readings})
    saved = sum(n for s, _ch, n in readings if s != "rejected")
    assert f'id="readings-today">{saved}<' in page

    # The review queue by age, now.
    ages = sql.rows("SELECT "
                    "sum(CASE WHEN created_at > :h1 THEN 1 ELSE 0 END), "
                    "sum(CASE WHEN created_at <= :h1 AND created_at > :h4 THEN 1 ELSE 0 END), "
                    "sum(CASE WHEN created_at <= :h4 AND created_at > :h24 THEN 1 ELSE 0 END), "
                    "sum(CASE WHEN created_at <= :h24 AND created_at > :h72 THEN 1 ELSE 0 END), "
                    "sum(CASE WHEN created_at <= :h72 THEN 1 ELSE 0 END) FROM review_tasks WHERE status = 'open'",
                    **{f"h{h}": NOW - dt.timedelta(hours=h) for h in (1, 4, 24, 72)})[0]
    rows = csv_rows(client, "queue_age")
    assert rows == [["age", "open_items"], *[[name, str(n)] for name, n in
                                             zip(["under 1 h", "1–4 h", "4–24 h", "1–3 days", "over 3 days"], ages)]]
    open_items = sql.rows("SELECT count(*) FROM review_tasks WHERE status = 'open'")[0][0]
    assert sum(ages) == open_items and f'id="queue-size">{open_items}<' in page

    # Coverage of the period whose window is open now (November), against each region's window.
    covered = dict(sql.rows(
        "SELECT a.region_id, count(*) FROM accounts a WHERE a.active = :yes "
        "AND EXISTS (SELECT 1 FROM meters m WHERE m.account_id = a.id) GROUP BY a.region_id", yes=True))
    with_reading = dict(sql.rows(
        "SELECT a.region_id, count(*) FROM accounts a WHERE a.active = :yes AND EXISTS (SELECT 1 FROM meters m "
        "JOIN readings r ON r.meter_id = m.id WHERE m.account_id = a.id AND r.period = '2026-11' "
        "AND r.status IN ('accepted', 'pending_review')) GROUP BY a.region_id", yes=True))
    rows = csv_rows(client, "coverage")
    assert rows[0] == ["region", "accounts", "with_reading", "share", "window_opens", "window_closes", "days_left"]
    expected = []
    for region_id, name in sorted(region_names.items(), key=lambda r: r[1]):
        got, of = with_reading.get(region_id, 0), covered[region_id]
        expected.append([name, str(of), str(got), f"{got / of:.3f}", *NOVEMBER[name]])
    assert rows[1:] == expected
    assert "Accounts with a reading for 2026-11" in page
    card = page[page.index('id="deadline"'):page.index("</div>", page.index('id="deadline"'))]
    assert 'id="days-left">0<' in card and "2026-12-03" in card and "today is the last day" in card

    # Accounts that reached the refused-values limit in a period, over the five weeks before the end.
    probed = sql.rows(
        "SELECT v.account_id, v.period, count(*) FROM value_refusals v WHERE v.created_at >= :since "
        "AND v.created_at < :end GROUP BY v.account_id, v.period HAVING count(*) >= :limit "
        "ORDER BY count(*) DESC, v.account_id", since=END - dt.timedelta(days=35), end=END, limit=PROBE_LIMIT)
    numbers = dict(sql.rows("SELECT id, number FROM accounts"))
    rows = csv_rows(client, "probing")
    assert rows[0] == ["account", "region", "period", "refused", "callers", "last"]
    assert len(probed) > 3
    assert [(r[0], r[2], int(r[3])) for r in rows[1:]] == [(numbers[a], p, n) for a, p, n in probed[:20]]

    # What each operator handled in the month (administrators see it).
    handled = sql.rows("SELECT o.username, t.resolution, count(*) FROM review_tasks t JOIN operators o "
                       "ON o.id = t.resolved_by WHERE t.resolved_at >= :start AND t.resolved_at < :end "
                       "GROUP BY o.username, t.resolution", start=START, end=END)
    rows = csv_rows(client, "per_operator")
    assert rows[0] == ["operator", "resolution", "items"]
    assert {(r[0], r[1]): int(r[2]) for r in rows[1:]} == {
        (name, labels.label(res, "resolution")): n for name, res, n in handled}


def test_the_month_is_counted_the_same_for_one_region(month, db, client):
    """With a region chosen, every count is that region's."""
    sql = Sql(db)
    region_id, name = sql.rows("SELECT id, name FROM regions WHERE code = 'KYI'")[0]
    query = f"{QUERY}&region={region_id}"
    by_outcome = dict(sql.calls("SELECT outcome, count(*) FROM calls c WHERE {calls} AND c.region_id = :r "
                                "GROUP BY outcome", r=region_id))
    rows = csv_rows(client, "outcomes", query)
    assert {n: int(c) for n, c in rows[1:]} == {labels.label(o, "outcome"): c for o, c in by_outcome.items()}
    rows = csv_rows(client, "coverage", query)
    assert [r[0] for r in rows[1:]] == [name] and rows[1][4:] == list(NOVEMBER[name])
    open_items = sql.rows("SELECT count(*) FROM review_tasks WHERE status = 'open' AND region_id = :r",
                          r=region_id)[0][0]
    page = client.get(f"/console/dashboard?{query}").get_data(as_text=True)
    assert f'id="queue-size">{open_items}<' in page and "Times: Europe/Kyiv" in page
    assert re.search(r"[−-]\d+ day", page) is None
