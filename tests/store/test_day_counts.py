"""The dashboard's counts per UTC day (``call_days``, ``reading_days``) are kept by the database as
calls and readings are inserted, changed and deleted, by the ORM or by plain SQL, and always equal a
count of the rows themselves, folded or not; the dashboard's figures for any days in any time zone
(across a DST switch, in a zone half an hour off UTC) are those of the calls and readings themselves."""
from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, func, insert, select, update

from ivr.console import dashboard as stats
from readings_store import call_figures, day_counts
from readings_store.call_figures import QUESTIONS
from readings_store.models import Call, CallDay, Reading, ReadingDay
from tests import factories as f
from tests.console.test_dashboard_month import _call_steps

pytestmark = pytest.mark.db

UTC = dt.timezone.utc
# The night Europe/Chisinau leaves summer time (25 October 2026: 03:00 local becomes 02:00 again).
SWITCH = dt.datetime(2026, 10, 25, 0, 0, tzinfo=UTC)


def contribution(call: Call) -> dict[str, int]:
    """What one call adds to its day's row, counted here from its own columns."""
    passed = call.questions_passed | (call.questions_left if call.outcome == "completed" else 0)
    out = {"calls": 1, **{h: int(call.started_at.hour == i) for i, h in enumerate(day_counts.HOURS)},
           **{c: getattr(call, c) for c in call_figures.COUNTS}}
    for i, q in enumerate(QUESTIONS):
        out[f"reached_{q}"] = call.questions_reached >> i & 1
        out[f"passed_{q}"] = passed >> i & 1
    return out


def counted_calls(db) -> dict[tuple, Counter]:
    out: dict[tuple, Counter] = {}
    for call in db.scalars(select(Call).where(Call.outcome.is_not(None))):
        key = (call.started_at.date(), call.region_id, call.language, call.outcome)
        out.setdefault(key, Counter()).update(contribution(call))
    return {key: +total for key, total in out.items()}


def kept_calls(db) -> dict[tuple, Counter]:
    columns = day_counts.HOURS + day_counts.CALL_COLUMNS
    key = (CallDay.day, CallDay.region_id, CallDay.language, CallDay.outcome)
    rows = db.execute(select(*key, *(func.sum(getattr(CallDay, c)) for c in columns)).group_by(*key))
    out = {tuple(row[:4]): +Counter(dict(zip(columns, map(int, row[4:])))) for row in rows}
    return {k: v for k, v in out.items() if v}


def counted_readings(db) -> Counter:
    return +Counter((r.received_at.date(), r.status, r.channel) for r in db.scalars(select(Reading)))


def kept_readings(db) -> Counter:
    key = (ReadingDay.day, ReadingDay.status, ReadingDay.channel)
    return +Counter({tuple(row[:3]): int(row[3]) for row in
                     db.execute(select(*key, func.sum(ReadingDay.n)).group_by(*key))})


def take_turns(call: Call, rnd: random.Random) -> str | None:
    """Log a plausible call's steps on ``call`` as its turns do; its outcome."""
    entries, outcome, _reason = _call_steps(rnd, call.started_at, two_tariff=rnd.random() < 0.3)
    for entry in entries:
        call_figures.add_step(call, entry["step"], entry["next"], (entry["event"] or {}).get("kind"))
    return outcome


def test_day_counts_follow_every_change_of_calls_and_readings(db):
    rnd = random.Random(16)
    region, other = f.region(db), f.region(db, code="BAL", name="Bălți", menu_key=2)
    meter = f.meter(db, f.account(db, region), previous=None)
    # Calls starting either side of UTC midnight, the last microsecond of a day included.
    starts = [SWITCH - dt.timedelta(microseconds=1), SWITCH, SWITCH + dt.timedelta(hours=1, minutes=30),
              SWITCH - dt.timedelta(hours=23), SWITCH + dt.timedelta(hours=23, minutes=59)]
    calls = [Call(call_sid=f"CA{n:032d}", started_at=starts[n % len(starts)], language=("ro", "ru", None)[n % 3],
                  region_id=(region.id, other.id, None)[n % 3]) for n in range(24)]
    db.add_all(calls)
    db.flush()
    assert kept_calls(db) == counted_calls(db) == {}  # none has an outcome: not counted yet
    # Turns, one flush each as the phone line writes them; some calls end a day later (the day
    # counted is the day the call started).
    for n, call in enumerate(calls):
        outcome = take_turns(call, rnd)
        db.flush()
        if n % 4 != 3:
            call.outcome = outcome or "hung_up"
            call.ended_at = call.started_at + dt.timedelta(hours=26 if n % 4 == 0 else 0, minutes=2)
            db.flush()
    assert kept_calls(db) == counted_calls(db)
    assert len({key[0] for key in counted_calls(db)}) == 2  # either side of midnight
    # Settled calls changed (a late report, a region found, the figures corrected) and deleted,
    # by the ORM and by plain SQL; calls written in bulk.
    calls[0].outcome = "hung_up" if calls[0].outcome == "completed" else "completed"
    calls[1].region_id = other.id
    calls[2].questions_asked += 1
    calls[4].language = "uk"
    db.flush()
    db.execute(update(Call).where(Call.id.in_([calls[5].id, calls[6].id])).values(outcome="completed"))
    db.execute(update(Call).where(Call.id == calls[7].id).values(started_at=SWITCH + dt.timedelta(days=3)))
    db.execute(update(Call).where(Call.id == calls[8].id).values(outcome=None))  # back in progress
    db.delete(calls[9])
    db.flush()
    db.execute(delete(Call).where(Call.id == calls[10].id))
    db.execute(insert(Call), [{"call_sid": f"CB{n:032d}", "started_at": SWITCH + dt.timedelta(hours=n), "state": {},
                               "steps": [], "language": "en", "outcome": ("completed", "gave_up", None)[n % 3],
                               **call_figures.of_steps([("language", "account", "digits"),
                                                        ("account", "hangup", "speech")])}
                              for n in range(30)])
    db.commit()
    assert kept_calls(db) == counted_calls(db)
    # Readings: inserted, moved between statuses and days, deleted.
    db.execute(insert(Reading), [{"meter_id": meter.id, "register": "total", "value": Decimal(n), "period": "2026-10",
                                  "channel": ("phone_keypad", "sms")[n % 2], "status": "pending_review",
                                  "received_at": SWITCH + dt.timedelta(hours=7 * n - 20)} for n in range(12)])
    db.execute(update(Reading).where(Reading.value < 4).values(status="accepted"))
    db.execute(update(Reading).where(Reading.value == 5).values(received_at=SWITCH + dt.timedelta(days=9)))
    db.execute(update(Reading).where(Reading.value == 6).values(period="2026-11"))  # not counted: moves nothing
    db.execute(delete(Reading).where(Reading.value == 7))
    db.commit()
    assert kept_readings(db) == counted_readings(db)
    assert len(counted_readings(db)) > 4
    # A change rolled back leaves the counts as they were.
    db.add(Call(call_sid="CA" + "f" * 32, started_at=SWITCH, outcome="transferred"))
    db.execute(delete(Reading))
    db.flush()
    db.rollback()
    assert kept_calls(db) == counted_calls(db) and kept_readings(db) == counted_readings(db)
    # Folded into one row per day and key, the counts are the same, and go on from there.
    assert day_counts.pending(db) > 0
    day_counts.fold(db)
    assert day_counts.pending(db) == 0
    assert db.scalar(select(func.count()).select_from(CallDay)) == len(counted_calls(db))
    assert db.scalar(select(func.count()).select_from(ReadingDay)) == len(counted_readings(db))
    assert kept_calls(db) == counted_calls(db) and kept_readings(db) == counted_readings(db)
    db.execute(update(Call).values(outcome="no_reading"))
    db.execute(update(Reading).values(status="rejected"))
    db.commit()
    assert kept_calls(db) == counted_calls(db) and kept_readings(db) == counted_readings(db)


def test_the_dashboard_folds_when_many_changes_have_piled_up(db, monkeypatch):
    monkeypatch.setattr(day_counts, "FOLD_AFTER", 10)
    db.execute(insert(Call), [{"call_sid": f"CA{n:032d}", "started_at": SWITCH + dt.timedelta(hours=n % 5),
                               "state": {}, "steps": [], "outcome": ("completed", "hung_up")[n % 2]}
                              for n in range(8)])
    db.commit()
    day_counts.fold_if_many(db)
    assert day_counts.pending(db) == 8  # not yet many
    db.execute(insert(Call), [{"call_sid": f"CB{n:032d}", "started_at": SWITCH, "state": {}, "steps": [],
                               "outcome": "completed"} for n in range(8)])
    db.commit()
    day_counts.fold_if_many(db)
    assert day_counts.pending(db) == 0
    assert kept_calls(db) == counted_calls(db)
    assert db.scalar(select(func.count()).select_from(CallDay)) == 2


def direct(calls: list[Call], start: dt.datetime, end: dt.datetime) -> dict:
    """The dashboard's call figures over ``calls`` started in [start, end), counted here."""
    chosen = [c for c in calls if start <= c.started_at < end]
    outcomes = Counter(c.outcome for c in chosen)
    totals: Counter = Counter()
    for call in chosen:
        totals.update(contribution(call))
    hours = Counter(c.started_at.strftime("%Y-%m-%d %H") for c in chosen)
    return {"outcomes": dict(outcomes), "reached": {q: totals[f"reached_{q}"] for q in QUESTIONS},
            "passed": {q: totals[f"passed_{q}"] for q in QUESTIONS},
            "counts": [totals[c] for c in call_figures.COUNTS], "hours": hours}


@pytest.mark.parametrize("zone", ["Europe/Chisinau", "Asia/Kolkata", "UTC"])
def test_dashboard_figures_equal_the_calls_across_a_dst_switch(db, zone):
    """Calls every 7 minutes for five days around the switch, some in progress: the figures of
    one local day, of three, and of a day and a bit, are the calls' own, the hours are the local
    day's hours (25 on the day summer time ends in Chisinau), whether the day counts are folded or not."""
    rnd = random.Random(25)
    region = f.region(db)
    meter = f.meter(db, f.account(db, region), previous=None)
    calls = []
    for n in range(5 * 24 * 60 // 7):
        call = Call(call_sid=f"CA{n:032d}", started_at=SWITCH - dt.timedelta(days=2) + dt.timedelta(minutes=7 * n),
                    language=rnd.choice(["ro", "ru", None]), region_id=rnd.choice([region.id, None]))
        outcome = take_turns(call, rnd)
        call.outcome = outcome if n % 13 else None
        calls.append(call)
    db.add_all(calls)
    db.execute(insert(Reading), [{"meter_id": meter.id, "register": "total", "value": Decimal(n), "period": "2026-10",
                                  "channel": rnd.choice(["sms", "api"]), "status": rnd.choice(["accepted", "rejected"]),
                                  "received_at": SWITCH - dt.timedelta(days=2) + dt.timedelta(minutes=11 * n)}
                                 for n in range(5 * 24 * 60 // 11)])
    db.commit()
    tz = ZoneInfo(zone)
    calls, readings = db.scalars(select(Call)).all(), db.scalars(select(Reading)).all()
    local = SWITCH.astimezone(tz).date()
    for folded in (False, True):
        if folded:
            day_counts.fold(db)
        for first, last in ((local, local), (local - dt.timedelta(days=1), local + dt.timedelta(days=1)),
                            (local + dt.timedelta(days=1), local + dt.timedelta(days=1))):
            start = dt.datetime.combine(first, dt.time(0), tz).astimezone(UTC)
            end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(0), tz).astimezone(UTC)
            for region_id in (None, region.id):
                mine = [c for c in calls if region_id is None or c.region_id == region_id]
                scope = stats.Scope(start, end, region_id)
                counts = stats.call_counts(db, scope)
                want = direct(mine, start, end)
                assert counts.outcomes() == want["outcomes"]
                assert counts.reached() == want["reached"] and counts.passed() == want["passed"]
                assert [sum(r[4 + i] for r in counts.rows) for i in range(5)] == want["counts"]
                hours = stats.calls_per_hour(db, scope, zone)
                moment = start.replace(minute=0)  # the UTC hours from the one the period starts in
                assert len(hours) == -(-(end - moment) // dt.timedelta(hours=1))
                assert sum(n for _name, n in hours) == sum(want["outcomes"].values())
                assert [n for _name, n in hours] == [
                    want["hours"].get((moment + dt.timedelta(hours=h)).strftime("%Y-%m-%d %H"), 0)
                    for h in range(len(hours))]
            got = {(s, c): n for s, c, n in stats.readings_received(db, stats.Scope(start, end, None))}
            assert got == dict(Counter((r.status, r.channel) for r in readings if start <= r.received_at < end))
    switch_day = stats.calls_per_hour(db, stats.Scope(
        dt.datetime.combine(local, dt.time(0), tz).astimezone(UTC),
        dt.datetime.combine(local + dt.timedelta(days=1), dt.time(0), tz).astimezone(UTC)), zone)
    if zone != "Asia/Kolkata":  # its days start half-way through a UTC hour: 25 hours show
        assert len(switch_day) == (25 if zone == "Europe/Chisinau" else 24)
