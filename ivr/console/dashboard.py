"""The manager's figures for a period: calls per hour, outcomes, the drop-off per question,
readings per region against the submission deadline, the review queue's age, and how callers
answer (speech or keypad, re-asks) per language. Plain queries over a session, no Flask."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from readings_store.models import Account, Call, Meter, Reading, Region, ReviewTask, Utterance

from . import labels

# Questions in the order a call asks them (a reminder call we placed starts at "reminder", then goes
# to the meter); the funnel follows this order.
QUESTIONS = ("reminder", "language", "region", "offer_account", "account", "meter", "register", "value", "confirm")
OUTCOME_ORDER = ("completed", "no_reading", "transferred", "gave_up", "hung_up", "service_not_ready", None)
AGE_BUCKETS = ((1, "under 1 h"), (4, "1–4 h"), (24, "4–24 h"), (72, "1–3 days"), (None, "over 3 days"))
KEYPAD_ENGINES = ("keypad", "dtmf")
SAVED = ("accepted", "pending_review")


def calls_in(session: Session, start: dt.datetime, end: dt.datetime, region_id: int | None):
    query = select(Call).where(Call.started_at >= start, Call.started_at < end)
    if region_id is not None:
        query = query.where(Call.region_id == region_id)
    return session.scalars(query.order_by(Call.started_at, Call.id)).all()


def calls_per_hour(calls, start: dt.datetime, end: dt.datetime, zone: str) -> list[tuple[str, int]]:
    """Calls started in each hour of the period, hours labelled in ``zone``."""
    tz = ZoneInfo(zone)
    counts: dict[dt.datetime, int] = {}
    for call in calls:
        hour = call.started_at.astimezone(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
        counts[hour] = counts.get(hour, 0) + 1
    out = []
    hour = start.astimezone(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
    single_day = end - start <= dt.timedelta(days=1)
    while hour < end:
        local = hour.astimezone(tz)
        name = local.strftime("%H") if single_day else local.strftime("%d.%m %H")
        out.append((name, counts.get(hour, 0)))
        hour += dt.timedelta(hours=1)
    return out


def outcomes(calls) -> list[dict]:
    counts: dict = {}
    for call in calls:
        counts[call.outcome] = counts.get(call.outcome, 0) + 1
    known = [o for o in OUTCOME_ORDER if o in counts]
    other = sorted(o for o in counts if o not in OUTCOME_ORDER)
    return [{"code": o or "", "label": labels.label(o, "outcome"), "value": counts[o]} for o in known + other]


def funnel(calls) -> list[dict]:
    """Per question: calls that reached it (the line asked it at least once) and calls that passed
    it (an answer moved the call on to another question, or the call completed after it)."""
    reached: dict[str, int] = {}
    passed: dict[str, int] = {}
    for call in calls:
        seen, through = set(), set()
        for entry in call.steps or []:
            if not isinstance(entry, dict):
                continue
            step, nxt = entry.get("step"), entry.get("next")
            if step in QUESTIONS:
                seen.add(step)
                if nxt != step and (nxt in QUESTIONS or nxt == "more" or call.outcome == "completed"):
                    through.add(step)
            if nxt in QUESTIONS:
                seen.add(nxt)
        for step in seen:
            reached[step] = reached.get(step, 0) + 1
        for step in through:
            passed[step] = passed.get(step, 0) + 1
    return [{"code": q, "label": labels.label(q, "step"), "value": reached[q], "inner": passed.get(q, 0),
             "note": f"reached, {passed.get(q, 0)} passed"} for q in QUESTIONS if reached.get(q)]


def deadline_for(period: str) -> dt.date:
    """Readings of a billing period are due by the 1st of the following month."""
    year, month = int(period[:4]), int(period[5:7])
    return dt.date(year + month // 12, month % 12 + 1, 1)


def coverage(session: Session, period: str, region_id: int | None, lang: str) -> list[dict]:
    """Per region: active accounts with at least one meter, and how many of them have a reading
    (accepted or waiting for review) in the billing period."""
    accounts = (select(Account.region_id, func.count(func.distinct(Account.id)))
                .join(Meter, Meter.account_id == Account.id)
                .where(Account.active.is_(True)).group_by(Account.region_id))
    with_reading = (select(Account.region_id, func.count(func.distinct(Account.id)))
                    .join(Meter, Meter.account_id == Account.id).join(Reading, Reading.meter_id == Meter.id)
                    .where(Account.active.is_(True), Reading.period == period, Reading.status.in_(SAVED))
                    .group_by(Account.region_id))
    if region_id is not None:
        accounts = accounts.where(Account.region_id == region_id)
        with_reading = with_reading.where(Account.region_id == region_id)
    totals = dict(session.execute(accounts).all())
    done = dict(session.execute(with_reading).all())
    regions = {r.id: r for r in session.scalars(select(Region).where(Region.id.in_(totals)))}
    rows = []
    for rid, total in totals.items():
        got = done.get(rid, 0)
        rows.append({"region_id": rid, "label": regions[rid].name_in(lang), "accounts": total,
                     "with_reading": got, "value": got / total if total else 0.0,
                     "note": f"({got} of {total})"})
    return sorted(rows, key=lambda r: r["label"])


def queue_age(session: Session, now: dt.datetime, region_id: int | None) -> list[dict]:
    query = select(ReviewTask.created_at).where(ReviewTask.status == "open")
    if region_id is not None:
        query = query.where(ReviewTask.region_id == region_id)
    counts = [0] * len(AGE_BUCKETS)
    for created in session.scalars(query):
        hours = (now - created).total_seconds() / 3600
        for i, (limit, _name) in enumerate(AGE_BUCKETS):
            if limit is None or hours < limit:
                counts[i] += 1
                break
    return [{"label": name, "value": counts[i], "late": limit is None or limit > 24}
            for i, (limit, name) in enumerate(AGE_BUCKETS)]


def answers_by_language(session: Session, calls) -> list[dict]:
    """Per call language: answers given by speech and by keypad (utterances), and the re-ask rate:
    the share of questions the line had to ask again (a step whose next question was itself)."""
    by_call = {c.id: (c.language or "-") for c in calls}
    rows: dict[str, dict] = {}
    for call in calls:
        row = rows.setdefault(by_call[call.id], {"speech": 0, "keypad": 0, "asked": 0, "reasked": 0})
        for entry in call.steps or []:
            if isinstance(entry, dict) and entry.get("step") in QUESTIONS:
                row["asked"] += 1
                row["reasked"] += entry.get("next") == entry.get("step")
    ids = list(by_call)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        for call_id, engine, count in session.execute(
                select(Utterance.call_id, Utterance.engine, func.count()).where(Utterance.call_id.in_(chunk))
                .group_by(Utterance.call_id, Utterance.engine)):
            row = rows[by_call[call_id]]
            row["keypad" if engine in KEYPAD_ENGINES else "speech"] += count
    out = []
    for lang in sorted(rows):
        row = rows[lang]
        answers = row["speech"] + row["keypad"]
        out.append({"language": lang, **row,
                    "speech_share": row["speech"] / answers if answers else None,
                    "reask_rate": row["reasked"] / row["asked"] if row["asked"] else None})
    return out
