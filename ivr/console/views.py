"""Console pages: review queue, item page and its actions, recordings, lookup, dashboard, admin."""
from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import mimetypes
import zoneinfo
from pathlib import Path
from zoneinfo import ZoneInfo

from flask import abort, current_app, flash, g, redirect, render_template, request, send_file, url_for
from flask_login import current_user
from sqlalchemy import and_, func, or_, select, tuple_
from wtforms.fields.choices import SelectChoice

from grammars.plural import english
from readings_store import day_counts, phones, retention, service
from readings_store.export import csv_safe
from readings_store.models import (
    UTILITIES, Account, AccountPhone, AuditEvent, Call, Operator, Reading, Region, ReviewTask,
    Utterance, ValueRefusal, utcnow)

from ivr.ops import recordings
from . import charts, labels, review
from .blueprint import bp
from . import dashboard as stats
from .auth import admin_required, change_own_password
from .auth import now as console_now
from .forms import AcceptForm, CloseForm, CorrectForm, LinkForm, PasswordForm, ProfileForm, RejectForm

PAGE_SIZE = 25
KINDS = ("reading", "identification")
UTC = dt.timezone.utc


def ivr():
    return current_app.extensions["ivr"]


def actor() -> review.Actor:
    return review.Actor(current_user.operator_id, current_user.username)


# --- helpers shared by the templates --------------------------------------------------------------

DEFAULT_TZ = "Europe/Chisinau"  # shown when an operator has no preference and a page spans regions
LANGUAGES = (("en", "English"), ("ro", "Română"), ("ru", "Русский"), ("uk", "Українська"))


def me() -> Operator | None:
    """The logged-in operator's record (for their preferences), once per request."""
    if "console_operator" not in g:
        g.console_operator = g.db.get(Operator, current_user.operator_id) if current_user.is_authenticated else None
    return g.console_operator


@functools.cache
def known_zones() -> tuple[str, ...]:
    return tuple(sorted(zoneinfo.available_timezones()))


def valid_zone(name: str | None) -> bool:
    return bool(name) and name in known_zones()


def set_page_zone(region_tz: str | None = None) -> str:
    """Choose the one time zone of this page: the operator's, else the page's region's, else the
    default. Every time on the page is shown in it and the page says which one it is."""
    operator = me()
    for candidate in (operator.timezone if operator else None, region_tz, DEFAULT_TZ):
        if valid_zone(candidate):
            g.page_tz = candidate
            return candidate
    g.page_tz = "UTC"
    return "UTC"


def page_zone() -> str:
    return g.get("page_tz") or set_page_zone()


def operator_language() -> str:
    operator = me()
    return (operator.language if operator and operator.language else "en")


def region_name(region: Region | None) -> str:
    """A region's name in the operator's language."""
    return region.name_in(operator_language()) if region is not None else "-"


def local_time(value: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """``value`` in the page's time zone (the label is shown once, in the page header)."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(ZoneInfo(page_zone())).strftime(fmt)


def marked_words(utterance: Utterance | None) -> list[dict]:
    """The transcript as words, each flagged ``low`` when under the accept threshold."""
    if utterance is None:
        return []
    threshold = ivr().config.confidence_accept
    out = []
    for word in utterance.words or []:
        if not isinstance(word, dict):
            continue
        confidence = word.get("confidence")
        try:
            confidence = float(confidence) if confidence is not None else None
        except (TypeError, ValueError):
            confidence = None
        out.append({"text": str(word.get("text", "")), "confidence": confidence,
                    "low": confidence is not None and confidence < threshold})
    return out


@bp.context_processor
def _helpers():
    return {"local_time": local_time, "utilities": UTILITIES, "label": labels.label,
            "step_event": labels.step_event, "page_zone": page_zone, "region_name": region_name,
            "step_time": step_time, "plural": english}


def step_time(at: dt.datetime | str | None) -> str:
    """A call step's time (or ISO timestamp) in the page's zone, to the second."""
    try:
        moment = dt.datetime.fromisoformat(at) if isinstance(at, str) and at else at or None
    except (TypeError, ValueError):
        return ""
    return local_time(moment, "%H:%M:%S")


# --- filters ---------------------------------------------------------------------------------------

def parse_filters(args) -> dict:
    """Queue filters from the query string; anything malformed is dropped."""
    out: dict = {}
    try:
        if args.get("region"):
            out["region"] = int(args["region"])
    except ValueError:
        pass
    if args.get("utility") in UTILITIES:
        out["utility"] = args["utility"]
    if args.get("kind") in KINDS:
        out["kind"] = args["kind"]
    reason = (args.get("reason") or "").strip()
    if reason and len(reason) <= 64:
        out["reason"] = reason
    try:
        if args.get("date"):
            out["date"] = dt.date.fromisoformat(args["date"]).isoformat()
    except ValueError:
        pass
    return out


def day_bounds(day: dt.date, tz: str | None) -> tuple[dt.datetime, dt.datetime]:
    """UTC start and end of a calendar day in ``tz`` (UTC when None)."""
    zone = ZoneInfo(tz) if tz else UTC
    start = dt.datetime.combine(day, dt.time(0), tzinfo=zone)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def _region_tz(region_id: int | None) -> str | None:
    region = g.db.get(Region, region_id) if region_id else None
    return region.timezone if region else None


def open_tasks(filters: dict):
    query = select(ReviewTask).where(ReviewTask.status == "open")
    if "region" in filters:
        query = query.where(ReviewTask.region_id == filters["region"])
    if "utility" in filters:
        query = query.where(ReviewTask.utility == filters["utility"])
    if "kind" in filters:
        query = query.where(ReviewTask.kind == filters["kind"])
    if "reason" in filters:
        query = query.where(ReviewTask.reason == filters["reason"])
    if "date" in filters:
        # The calendar day in the page's time zone, the one the "Received" times are shown in.
        start, end = day_bounds(dt.date.fromisoformat(filters["date"]), page_zone())
        query = query.where(ReviewTask.created_at >= start, ReviewTask.created_at < end)
    return query


def _counts(query, column) -> list[tuple[str, int]]:
    sub = query.subquery()
    rows = g.db.execute(select(sub.c[column], func.count()).group_by(sub.c[column]).order_by(sub.c[column]))
    return [(value or "-", count) for value, count in rows]


# --- queue -----------------------------------------------------------------------------------------

@bp.get("/")
def index():
    return redirect(url_for("console.queue"))


@bp.get("/queue")
def queue():
    filters = parse_filters(request.args)
    set_page_zone(_region_tz(filters.get("region")))
    try:
        page = max(1, int(request.args.get("page", 1)))
    except ValueError:
        page = 1
    query = open_tasks(filters)
    if wants_csv():
        # One statement: the items with their reading's value; regions are few (one query each at most).
        listed = (query.with_only_columns(ReviewTask.id, ReviewTask.created_at, ReviewTask.kind, ReviewTask.reason,
                                          ReviewTask.region_id, ReviewTask.utility, ReviewTask.details, Reading.value)
                  .outerjoin(Reading, Reading.id == ReviewTask.reading_id)
                  .order_by(ReviewTask.created_at, ReviewTask.id).limit(10000))
        # What every row shares is worked out once: up to 10 000 rows are written per request.
        names = {r.id: region_name(r) for r in g.db.scalars(select(Region))}
        zone_name = page_zone()
        zone = ZoneInfo(zone_name)
        # "received" as strftime("%Y-%m-%d %H:%M:%S") writes it, in about half the time.
        rows = [{"item": t.id, "received": t.created_at.astimezone(zone).isoformat(" ", "seconds")[:19],
                 "zone": zone_name, "kind": labels.label(t.kind, "kind"), "reason": labels.label(t.reason),
                 "region": names.get(t.region_id, "-"),
                 "utility": labels.label(t.utility, "utility") if t.utility else "",
                 "value": str(t.value) if t.value is not None else
                 ", ".join(map(str, (t.details or {}).get("attempts", [])))}
                for t in g.db.execute(listed)]
        return csv_response("queue", ["item", "received", "zone", "kind", "reason", "region", "utility", "value"],
                            rows)
    total = g.db.scalar(select(func.count()).select_from(query.subquery()))
    tasks = g.db.scalars(query.order_by(ReviewTask.created_at, ReviewTask.id)
                         .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
    all_open = g.db.scalar(select(func.count()).select_from(ReviewTask).where(ReviewTask.status == "open"))
    reasons = g.db.scalars(select(ReviewTask.reason).where(ReviewTask.status == "open").distinct()
                           .order_by(ReviewTask.reason)).all()
    recent = g.db.scalars(select(AuditEvent).where(AuditEvent.actor_kind == "operator",
                                                   AuditEvent.actor_id == current_user.operator_id)
                          .order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(5)).all()
    return render_template(
        "console/queue.html", tasks=tasks, total=total, all_open=all_open, filters=filters, page=page,
        pages=max(1, -(-total // PAGE_SIZE)), by_kind=_counts(query, "kind"), by_reason=_counts(query, "reason"),
        regions=g.db.scalars(select(Region).order_by(Region.name)).all(), reasons=reasons, recent=recent,
    )


@bp.get("/tasks/next")
def next_task():
    """The oldest open item matching the filters (after ``after`` when skipping), else the queue."""
    filters = parse_filters(request.args)
    query = open_tasks(filters).order_by(ReviewTask.created_at, ReviewTask.id)
    after = g.db.get(ReviewTask, request.args.get("after", type=int) or 0)
    task = None
    if after is not None:
        task = g.db.scalars(query.where(or_(ReviewTask.created_at > after.created_at,
                                            and_(ReviewTask.created_at == after.created_at,
                                                 ReviewTask.id > after.id))).limit(1)).first()
        if task is None:  # wrap round to the oldest one, unless that is the one being skipped
            task = g.db.scalars(query.where(ReviewTask.id != after.id).limit(1)).first()
    else:
        task = g.db.scalars(query.limit(1)).first()
    if task is None:
        flash("The queue is clear." if not filters else "No more open items match the filters.", "info")
        return redirect(url_for("console.queue", **filters))
    return redirect(url_for("console.task", task_id=task.id, **filters))


# --- item page -------------------------------------------------------------------------------------

def _task_or_404(task_id: int) -> ReviewTask:
    task = g.db.get(ReviewTask, task_id)
    if task is None:
        abort(404)
    return task


def _already_handled(task: ReviewTask):
    """Before looking at the form: a handled item says so, whatever was submitted."""
    if task.status == "open":
        return None
    flash(review.already_handled_message(g.db, task.id), "warning")
    return redirect(url_for("console.task", task_id=task.id, **parse_filters(request.args)))


def tries(reading: Reading) -> list[dict]:
    """Every value the caller gave in the reading's call for its meter and register, oldest first:
    refused ones (with the rule that refused them) and saved ones (with their status), each with how
    it was given (speech or keys)."""
    db = g.db
    if reading.call_id is None:
        return [{"at": reading.received_at, "value": str(reading.value), "how": labels.label(reading.channel, "channel"),
                 "outcome": labels.label(reading.status, "status"), "current": True}]
    utterances = db.scalars(select(Utterance).where(Utterance.call_id == reading.call_id, Utterance.step == "value")
                            .order_by(Utterance.created_at, Utterance.id)).all()
    used: set[int] = set()

    def how(value: str, at: dt.datetime, utterance_id: int | None = None) -> str:
        match = db.get(Utterance, utterance_id) if utterance_id else None
        if match is None:
            for u in reversed(utterances):
                if u.id not in used and u.parsed_value == value and u.created_at <= at:
                    match = u
                    break
        if match is None:
            return "not recorded"
        used.add(match.id)
        return labels.label(match.engine, "channel")

    out = []
    for r in db.scalars(select(ValueRefusal).where(ValueRefusal.call_id == reading.call_id,
                                                   ValueRefusal.meter_id == reading.meter_id,
                                                   ValueRefusal.register == reading.register)):
        out.append({"at": r.created_at, "value": r.value, "how": how(r.value, r.created_at),
                    "outcome": "refused: " + labels.label(r.code), "current": False})
    for r in db.scalars(select(Reading).where(Reading.call_id == reading.call_id, Reading.meter_id == reading.meter_id,
                                              Reading.register == reading.register)):
        given = how(str(r.value), r.received_at, r.utterance_id)
        if given == "not recorded":
            given = labels.label(r.channel, "channel")
        outcome = labels.label(r.status, "status")
        if r.status_reason:
            outcome += ": " + labels.label(r.status_reason)
        out.append({"at": r.received_at, "value": str(r.value), "how": given, "outcome": outcome,
                    "current": r.id == reading.id})
    return sorted(out, key=lambda t: t["at"])


def spoken_answers(task: ReviewTask) -> list[dict]:
    """The spoken answers an identification item names (``details["utterances"]``), in the order
    given, each with what was heard and whether its recording can be played."""
    ids = [i for i in (task.details or {}).get("utterances", []) if isinstance(i, int)]
    if task.kind != "identification" or not ids or task.call_id is None:
        return []
    found = {u.id: u for u in g.db.scalars(select(Utterance).where(Utterance.id.in_(ids),
                                                                    Utterance.call_id == task.call_id))}
    return [{"utterance": found[i], "playable": bool(found[i].audio_path and _recording_path(found[i].audio_path))}
            for i in ids if i in found]


def _org_name(call: Call | None) -> dict | None:
    """The organisation's name the call's caller recorded, and whether it can be played; None if
    the call recorded none."""
    found = recordings.org_names(g.db, [call.id]).get(call.id) if call is not None else None
    return _playable(found) if found is not None else None


def _playable(utterance: Utterance) -> dict:
    return {"utterance": utterance, "playable": bool(utterance.audio_path and _recording_path(utterance.audio_path))}


def accept_refused(reading: Reading | None) -> str | None:
    """Why accepting the value as it is would be refused without an override, if it would."""
    if reading is None or reading.status != "pending_review":
        return None
    problem = review.check_rules(g.db, ivr().config, reading, reading.value)
    return labels.label(problem.code) if problem else None


def _task_context(task: ReviewTask) -> dict:
    db = g.db
    reading = task.reading
    utterance = task.utterance or (reading.utterance if reading else None)
    call = task.call or (reading.call if reading else None) or (utterance.call if utterance else None)
    meter = reading.meter if reading else None
    region = task.region or (meter.account.region if meter else None)
    set_page_zone(region.timezone if region else None)
    history = []
    plausible = None
    refusals = []
    if reading is not None:
        history = db.scalars(select(Reading).where(Reading.meter_id == meter.id)
                             .order_by(Reading.taken_at.desc(), Reading.id.desc()).limit(12)).all()
        plausible = review.plausible_range(db, ivr().config, reading)
        refusals = service.refusals(db, meter.account_id, reading.period)
    audit_filter = [and_(AuditEvent.entity == "review_task", AuditEvent.entity_id == task.id)]
    if reading is not None:
        audit_filter.append(and_(AuditEvent.entity == "reading", AuditEvent.entity_id == reading.id))
    trail = db.scalars(select(AuditEvent).where(or_(*audit_filter)).order_by(AuditEvent.at, AuditEvent.id)).all()
    resolver = db.get(Operator, task.resolved_by) if task.resolved_by else None
    link_form = LinkForm(prefix="link")
    link_form.region_id.choices = [SelectChoice(r.id, r.name) for r in db.scalars(select(Region).order_by(Region.name))]
    if region is not None and request.method == "GET":
        link_form.region_id.data = region.id
    return {
        "task": task, "reading": reading, "utterance": utterance, "call": call, "meter": meter, "region": region,
        "tz": region.timezone if region else None, "words": marked_words(utterance), "history": history,
        "plausible": plausible, "trail": trail, "resolver": resolver, "refusals": refusals,
        "refusal_callers": _callers(r.caller for r in refusals), "probe_limit": ivr().config.probe_limit,
        "threshold": ivr().config.confidence_accept, "filters": parse_filters(request.args),
        "accept_form": AcceptForm(prefix="accept"), "correct_form": CorrectForm(prefix="correct"),
        "reject_form": RejectForm(prefix="reject"), "link_form": link_form, "close_form": CloseForm(prefix="close"),
        "tries": tries(reading) if reading is not None else [],
        "answers": spoken_answers(task),
        "org_name": _org_name(call),
        "accept_problem": accept_refused(reading),
        "audio_exists": bool(utterance and utterance.audio_path and _recording_path(utterance.audio_path)),
        # When the call's recordings go (None while an item of the call is open) and after how long.
        "audio_deleted_from": retention.deletion_time(db, call, ivr().config.recordings_keep_days) if call else None,
        "keep_days": ivr().config.recordings_keep_days,
    }


@bp.get("/tasks/<int:task_id>")
def task(task_id: int):
    return render_template("console/task.html", **_task_context(_task_or_404(task_id)))


def _after_action(task: ReviewTask, message: str):
    flash(message, "success")
    return redirect(url_for("console.next_task", after=task.id, **parse_filters(request.args)))


def _refused(task: ReviewTask, error: review.ActionError, form_name: str):
    g.db.rollback()
    if isinstance(error, review.AlreadyHandled):
        flash(error.message, "warning")
        return redirect(url_for("console.task", task_id=task.id, **parse_filters(request.args)))
    context = _task_context(g.db.get(ReviewTask, task.id))
    context["action_error"] = error
    context["error_form"] = form_name
    return render_template("console/task.html", **context), 422


def _form_errors(form) -> str:
    return " ".join(msg for errors in form.errors.values() for msg in errors)


def _act(task_id: int, name: str, form_class, act, *, choices=None):
    """One review action, as every action button runs it: the item (404), not handled already, its
    form valid, then ``act(task, form)`` (the message to flash) committed; a refusal changes
    nothing and shows the item again with the error under the form ``name``."""
    task = _task_or_404(task_id)
    if (handled := _already_handled(task)) is not None:
        return handled
    form = form_class(prefix=name)
    if choices is not None:
        form.region_id.choices = choices()
    if not form.validate_on_submit():
        return _refused(task, review.ActionError(_form_errors(form) or "Invalid form."), name)
    try:
        message = act(task, form)
    except review.ActionError as exc:
        return _refused(task, exc, name)
    g.db.commit()
    return _after_action(task, message)


@bp.post("/tasks/<int:task_id>/accept")
def accept(task_id: int):
    def act(task, form):
        reading = review.accept(g.db, ivr().config, task, actor(), override=form.override.data,
                                reason=form.reason.data)
        return f"Accepted {reading.value} for item #{task.id}."
    return _act(task_id, "accept", AcceptForm, act)


@bp.post("/tasks/<int:task_id>/correct")
def correct(task_id: int):
    def act(task, form):
        new = review.correct(g.db, ivr().config, task, actor(), value=form.value.data, reason=form.reason.data,
                             override=form.override.data)
        return f"Corrected item #{task.id} to {new.value}."
    return _act(task_id, "correct", CorrectForm, act)


@bp.post("/tasks/<int:task_id>/reject")
def reject(task_id: int):
    def act(task, form):
        review.reject(g.db, ivr().config, task, actor(), reason=form.reason.data)
        return f"Rejected item #{task.id}."
    return _act(task_id, "reject", RejectForm, act)


@bp.post("/tasks/<int:task_id>/link")
def link(task_id: int):
    def act(task, form):
        account = review.link(g.db, task, actor(), region_id=form.region_id.data, number=form.number.data,
                              add_phone=form.add_phone.data, note=form.reason.data)
        return f"Linked item #{task.id} to account {account.number}."
    regions = lambda: [SelectChoice(r.id, r.name) for r in g.db.scalars(select(Region).order_by(Region.name))]  # noqa: E731
    return _act(task_id, "link", LinkForm, act, choices=regions)


@bp.post("/tasks/<int:task_id>/close")
def close(task_id: int):
    def act(task, form):
        review.close(g.db, task, actor(), reason=form.reason.data)
        return f"Closed item #{task.id}."
    return _act(task_id, "close", CloseForm, act)


# --- recordings ------------------------------------------------------------------------------------

def _recording_path(stored: str) -> Path | None:
    """The file for an utterance's ``audio_path``, only if it lies inside ``recordings_dir``."""
    candidate = recordings.recording_file(Path(ivr().config.recordings_dir), stored)
    return candidate if candidate is not None and candidate.is_file() else None


@bp.get("/recordings/<int:utterance_id>")
def recording(utterance_id: int):
    utterance = g.db.get(Utterance, utterance_id)
    if utterance is None or not utterance.audio_path:
        abort(404)
    path = _recording_path(utterance.audio_path)
    if path is None:
        current_app.logger.warning("recording of utterance %s is missing or outside the recordings folder",
                                   utterance_id)
        abort(404)
    mimetype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return send_file(path, mimetype=mimetype, conditional=True, max_age=0, etag=True)


# --- lookup ----------------------------------------------------------------------------------------

LOOKUP_NAMES = 50  # accounts listed for a holder's name; a longer name narrows it


def holder_has(word: str):
    """SQL: the account holder's name contains ``word``, ignoring case in any alphabet."""
    if g.db.get_bind().dialect.name == "postgresql":
        return Account.holder_name.icontains(word, autoescape=True)
    return func.casefold(Account.holder_name).contains(word.casefold(), autoescape=True)


@bp.get("/lookup")
def lookup():
    q = (request.args.get("q") or "").strip()[:64]
    accounts: list[Account] = []
    phone = None
    if q:
        # As typed (separators matter on the keypad) or digits only, ignoring the separators.
        found = {a.id: a for a in service.accounts_by_key(g.db, q, limit=50, any_separators=True)}
        phone = phones.e164(q, ivr().config.console_phone_region)
        if phone:
            for a in g.db.scalars(select(Account).join(AccountPhone).where(AccountPhone.phone == phone)
                                  .order_by(Account.id).limit(50)):
                found[a.id] = a
        words = q.split()
        if any(ch.isalpha() for ch in q):
            for a in g.db.scalars(select(Account).where(*[holder_has(word) for word in words])
                                  .order_by(Account.holder_name, Account.id).limit(LOOKUP_NAMES)):
                found.setdefault(a.id, a)
        accounts = list(found.values())
        if len(accounts) == 1 and request.args.get("go") != "0" and not wants_csv():
            return redirect(url_for("console.account", account_id=accounts[0].id))
    if wants_csv():
        return csv_response("lookup", ["account", "region", "holder", "active"],
                            [{"account": a.number, "region": region_name(a.region), "holder": a.holder_name,
                              "active": "yes" if a.active else "no"} for a in accounts])
    return render_template("console/lookup.html", q=q, accounts=accounts, phone=phone, limit=LOOKUP_NAMES)


@bp.get("/accounts/<int:account_id>")
def account(account_id: int):
    acc = g.db.get(Account, account_id)
    if acc is None:
        abort(404)
    set_page_zone(acc.region.timezone)
    readings = {}
    for m in acc.meters:
        readings[m.id] = g.db.scalars(select(Reading).where(Reading.meter_id == m.id)
                                      .order_by(Reading.taken_at.desc(), Reading.id.desc()).limit(50)).all()
    operators = {o.id: o.username for o in g.db.scalars(select(Operator))}
    calls = g.db.scalars(select(Call).where(Call.account_id == acc.id).order_by(Call.started_at.desc())
                         .limit(10)).all()
    # The organisation's name each call recorded, beside the readings it gave (and in its call's line).
    names = {call_id: _playable(u) for call_id, u in recordings.org_names(
        g.db, [r.call_id for rows in readings.values() for r in rows] + [c.id for c in calls]).items()}
    return render_template("console/account.html", account=acc, readings=readings, operators=operators,
                           calls=calls, tz=acc.region.timezone, org_names=names)


# --- dashboard -------------------------------------------------------------------------------------

PROBING_DAYS = 35  # a billing period and its submission window
PROBING_ROWS = 20


def _callers(numbers) -> list[str]:
    """Distinct caller IDs in order of first appearance, "withheld" for none."""
    return list(dict.fromkeys(n or "withheld" for n in numbers))


def probing(end: dt.datetime, region_id: int | None) -> list[dict]:
    """Accounts that reached the refused-values limit in a billing period, with refusals in the
    ``PROBING_DAYS`` before ``end``: most refusals first."""
    db = g.db
    query = (select(ValueRefusal.account_id, ValueRefusal.period, func.count(), func.max(ValueRefusal.created_at))
             .where(ValueRefusal.created_at >= end - dt.timedelta(days=PROBING_DAYS), ValueRefusal.created_at < end)
             .group_by(ValueRefusal.account_id, ValueRefusal.period)
             .having(func.count() >= ivr().config.probe_limit)
             .order_by(func.count().desc(), ValueRefusal.account_id).limit(PROBING_ROWS))
    if region_id is not None:
        query = query.join(Account, Account.id == ValueRefusal.account_id).where(Account.region_id == region_id)
    found = db.execute(query).all()
    if not found:
        return []
    # Their callers (each once, in order of first refusal) and accounts in two statements, not two per row.
    callers: dict[tuple[int, str], list] = {}
    first = func.min(ValueRefusal.id)
    for account_id, period, caller, _first in db.execute(
            select(ValueRefusal.account_id, ValueRefusal.period, ValueRefusal.caller, first)
            .where(tuple_(ValueRefusal.account_id, ValueRefusal.period).in_([(a, p) for a, p, *_ in found]))
            .group_by(ValueRefusal.account_id, ValueRefusal.period, ValueRefusal.caller).order_by(first)):
        callers.setdefault((account_id, period), []).append(caller)
    accounts = {a.id: a for a in db.scalars(select(Account).where(Account.id.in_({a for a, *_ in found})))}
    return [{"account": accounts[account_id], "period": period, "count": count, "last": last,
             "callers": _callers(callers.get((account_id, period), []))}
            for account_id, period, count, last in found]


def _period(args, zone: str, now: dt.datetime) -> tuple[dt.date, dt.date]:
    """The dashboard's days, inclusive: ``from``/``to``, or one ``date``, else today (in ``zone``)."""
    today = now.astimezone(ZoneInfo(zone)).date()

    def day(name):
        try:
            return dt.date.fromisoformat(args[name]) if args.get(name) else None
        except ValueError:
            return None
    first = day("from") or day("date")
    last = day("to") or day("date") or (first if first and first > today else None) or today
    first = first or last
    if first > last:
        first, last = last, first
    if (last - first).days > 31:  # a billing period and its window at most
        first = last - dt.timedelta(days=31)
    return first, last


def csv_response(name: str, fields: list[str], rows: list[dict]):
    """A table as a CSV download, text neutralised against spreadsheet formulas."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(fields)
    for row in rows:
        writer.writerow([csv_safe("" if row.get(f) is None else row.get(f)) for f in fields])
    response = current_app.response_class(buffer.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return response


def wants_csv() -> bool:
    return request.args.get("format") == "csv"


class DashboardFigures:
    """The dashboard's figures for the chosen days, region and billing period, each counted by the
    database when first asked for: the page asks for all of them, a CSV download for its table only."""

    TABLES = ("outcomes", "per_region", "hours", "funnel", "coverage", "queue_age", "answers", "readings",
              "probing", "per_operator")

    def __init__(self, region_id: int | None):
        self.db = g.db
        self.region_id = region_id
        self.zone = set_page_zone(_region_tz(region_id))
        self.now = console_now()
        self.first, self.last = _period(request.args, self.zone, self.now)
        self.start, _ = day_bounds(self.first, self.zone)
        _, self.end = day_bounds(self.last, self.zone)
        self.scope = stats.Scope(self.start, self.end, region_id)
        self.lang = operator_language()
        self._folded = False

    @functools.cached_property
    def regions(self) -> dict[int, Region]:
        return {r.id: r for r in self.db.scalars(select(Region))}

    @functools.cached_property
    def covered(self) -> list[Region]:
        return [r for r in self.regions.values() if self.region_id is None or r.id == self.region_id]

    @functools.cached_property
    def windows(self) -> dict:
        return stats.windows(self.db, self.covered)

    @functools.cached_property
    def period(self) -> str:
        """The billing period asked for, else the one whose submission window is open now."""
        period = request.args.get("period") or ""
        if (len(period) == 7 and period[4] == "-" and period[:4].isdigit() and period[5:].isdigit()
                and 1 <= int(period[5:]) <= 12):
            return period
        return stats.default_period(self.covered, self.windows, self.now)

    def _day_counts(self) -> None:
        """Before the calls' and readings' figures are summed from the day counts, their changes are
        folded if many have piled up (``readings_store.day_counts``): once per request."""
        if not self._folded:
            self._folded = True
            day_counts.fold_if_many(self.db)

    @functools.cached_property
    def calls(self) -> stats.CallCounts:
        self._day_counts()
        return stats.call_counts(self.db, self.scope)

    @functools.cached_property
    def outcomes(self) -> list[dict]:
        return stats.outcomes(self.calls)

    @functools.cached_property
    def per_region_language(self) -> list[dict]:
        return sorted(({**row, "region": region_name(self.regions.get(row["region_id"])) if row["region_id"]
                        else "unknown region", "language": labels.label(row["language"], "language")}
                       for row in stats.per_region_language(self.calls)),
                      key=lambda r: (r["region"], r["language"]))

    @functools.cached_property
    def hours(self) -> list[tuple[str, int]]:
        self._day_counts()
        return stats.calls_per_hour(self.db, self.scope, self.zone)

    @functools.cached_property
    def funnel(self) -> list[dict]:
        return stats.funnel(self.calls)

    @functools.cached_property
    def answers(self) -> list[dict]:
        return [{**a, "language": labels.label(a["language"], "language")}
                for a in stats.answers_by_language(self.calls)]

    @functools.cached_property
    def coverage(self) -> list[dict]:
        return stats.coverage(self.db, self.period, self.covered, self.windows, self.lang, self.now)

    @functools.cached_property
    def readings_counted(self) -> list[tuple]:
        self._day_counts()
        return stats.readings_received(self.db, self.scope)

    @functools.cached_property
    def readings(self) -> list[dict]:
        return [{"status": labels.label(s, "status"), "channel": labels.label(ch, "channel"), "count": c}
                for s, ch, c in self.readings_counted]

    @functools.cached_property
    def queue_rows(self) -> list[dict]:
        return stats.queue_age(self.db, self.now, self.region_id)

    @functools.cached_property
    def per_operator(self) -> list[dict]:
        if not current_user.is_admin:
            return []
        return [{"operator": name, "resolution": labels.label(res, "resolution"), "items": count}
                for name, res, count in
                self.db.execute(select(Operator.username, ReviewTask.resolution, func.count())
                                .join(Operator, Operator.id == ReviewTask.resolved_by)
                                .where(ReviewTask.resolved_at >= self.start, ReviewTask.resolved_at < self.end)
                                .group_by(Operator.username, ReviewTask.resolution).order_by(Operator.username))]

    @functools.cached_property
    def probing(self) -> list[dict]:
        return probing(self.end, self.region_id)

    def table(self, name: str) -> tuple[list[str], list[dict]] | None:
        """A table's CSV columns and rows; None for a name that is not one (or not for this operator)."""
        if name not in self.TABLES or (name == "per_operator" and not current_user.is_admin):
            return None
        if name == "outcomes":
            return ["outcome", "calls"], [{"outcome": o["label"], "calls": o["value"]} for o in self.outcomes]
        if name == "per_region":
            return ["region", "language", "calls", "completed", "transferred", "gave_up"], self.per_region_language
        if name == "hours":
            return ["hour", "calls"], [{"hour": h, "calls": c} for h, c in self.hours]
        if name == "funnel":
            return ["question", "reached", "passed"], [{"question": r["label"], "reached": r["value"],
                                                        "passed": r["inner"]} for r in self.funnel]
        if name == "coverage":
            return (["region", "accounts", "with_reading", "share", "window_opens", "window_closes", "days_left"],
                    [{"region": r["label"], "accounts": r["accounts"], "with_reading": r["with_reading"],
                      "share": f"{r['value']:.3f}", "window_opens": r["window"].opens,
                      "window_closes": r["window"].closes, "days_left": r["window"].days_left}
                     for r in self.coverage])
        if name == "queue_age":
            return ["age", "open_items"], [{"age": r["label"], "open_items": r["value"]} for r in self.queue_rows]
        if name == "answers":
            return ["language", "speech", "keypad", "asked", "reasked"], self.answers
        if name == "readings":
            return ["status", "channel", "count"], self.readings
        if name == "probing":
            return (["account", "region", "period", "refused", "callers", "last"],
                    [{"account": p["account"].number, "region": region_name(p["account"].region),
                      "period": p["period"], "refused": p["count"], "callers": " ".join(p["callers"]),
                      "last": local_time(p["last"])} for p in self.probing])
        return ["operator", "resolution", "items"], self.per_operator

    def page(self) -> dict:
        """Everything the page shows."""
        total = sum(o["value"] for o in self.outcomes)
        completed = sum(o["value"] for o in self.outcomes if o["code"] == "completed")
        every = max(1, -(-len(self.hours) * 70 // 900))  # an hour label at least 70 px apart
        return {
            "first": self.first, "last": self.last, "tz": self.zone, "total_calls": total,
            "completed_share": (completed / total) if total else None, "outcomes": self.outcomes,
            "per_region_language": self.per_region_language, "readings": self.readings,
            "readings_saved": sum(c for s, _ch, c in self.readings_counted if s != "rejected"),
            "queue_rows": self.queue_rows, "queue_size": sum(r["value"] for r in self.queue_rows),
            "per_operator": self.per_operator, "probing": self.probing, "probe_limit": ivr().config.probe_limit,
            "period": self.period, "deadline": stats.deadline_card(self.coverage), "coverage": self.coverage,
            "funnel": self.funnel, "answers": self.answers,
            "charts": {
                "hours": charts.columns(self.hours, title="Calls per hour", chart_id="chart-hours", every=every),
                "outcomes": charts.bars(self.outcomes, title="Calls by outcome", chart_id="chart-outcomes"),
                "funnel": charts.bars(self.funnel, title="Calls that reached and passed each question",
                                      chart_id="chart-funnel"),
                "coverage": charts.bars(self.coverage, title=f"Accounts with a reading for {self.period}",
                                        percent=True, target=1.0, chart_id="chart-coverage"),
                "queue": charts.bars(self.queue_rows, title="Open review items by age", chart_id="chart-queue"),
                "speech": charts.bars([{"label": a["language"], "value": a["speech_share"] or 0,
                                        "note": f"speech ({a['speech']} spoken, {a['keypad']} on keys)"}
                                       for a in self.answers],
                                      title="Share of answers by speech per language", percent=True,
                                      chart_id="chart-speech"),
                "reask": charts.bars([{"label": a["language"], "value": a["reask_rate"] or 0,
                                       "note": f"asked again ({a['reasked']} of {a['asked']})"} for a in self.answers],
                                     title="Re-ask rate per language", percent=True, chart_id="chart-reask"),
            },
        }


@bp.get("/dashboard")
def dashboard():
    filters = {k: v for k, v in parse_filters(request.args).items() if k == "region"}
    figures = DashboardFigures(filters.get("region"))
    if wants_csv():
        table = figures.table(request.args.get("table", ""))
        if table is None:
            return render_template("console/error.html", title="No such table",
                                   message="Pick one of the tables' CSV links on the dashboard."), 400
        fields, rows = table
        return csv_response(f"dashboard-{request.args['table']}-{figures.first}-{figures.last}", fields, rows)
    query = {k: v for k, v in request.args.items() if k in ("region", "from", "to", "date", "period")}
    return render_template("console/dashboard.html", filters=filters, query=query,
                           regions=g.db.scalars(select(Region).order_by(Region.name)).all(), **figures.page())


@bp.route("/profile", methods=["GET", "POST"])
def profile():
    """The operator's own preferences: the time zone every page shows and the language of region names."""
    operator = me()
    form = ProfileForm(obj=operator if request.method == "GET" else None)
    if request.method == "GET":
        form.language.data = operator.language or "en"
        set_page_zone()
        return render_template("console/profile.html", form=form, zones=known_zones(),
                               password_form=PasswordForm(prefix="password"))
    zone = (form.timezone.data or "").strip()
    error = None
    if not form.validate_on_submit():
        error = _form_errors(form) or "Invalid form."
    elif zone and not valid_zone(zone):
        error = f"“{zone[:64]}” is not a time zone; pick one from the list, such as Europe/Chisinau."
    if error:
        set_page_zone()
        return render_template("console/profile.html", form=form, zones=known_zones(), error=error,
                               password_form=PasswordForm(prefix="password")), 422
    operator.timezone = zone or None
    operator.language = form.language.data
    g.db.commit()
    flash("Preferences saved.", "success")
    return redirect(url_for("console.profile"))


@bp.post("/profile/password")
def change_password():
    """The operator changes their own password (the current one is asked for)."""
    form = PasswordForm(prefix="password")
    if form.validate_on_submit():
        status, message = change_own_password(g.db, me(), form.current.data, form.new.data, form.repeated.data)
    else:
        status, message = 422, _form_errors(form) or "Invalid form."
    if status == 200:
        flash(message, "success")
        return redirect(url_for("console.profile"))
    g.db.rollback()
    operator = me()
    profile_form = ProfileForm(obj=operator)
    profile_form.language.data = operator.language or "en"
    set_page_zone()
    response = current_app.make_response((render_template(
        "console/profile.html", form=profile_form, zones=known_zones(), password_form=PasswordForm(prefix="password"),
        password_error=message), status))
    if status == 429:
        response.headers["Retry-After"] = str(g.get("login_retry_minutes", 15) * 60)
    return response


@bp.get("/admin/operators")
@admin_required
def admin_operators():
    """Admin only: operators, their state and what each resolved in the last 7 days."""
    since = utcnow() - dt.timedelta(days=7)
    figures = {}
    for operator_id, resolution, count in g.db.execute(
            select(ReviewTask.resolved_by, ReviewTask.resolution, func.count())
            .where(ReviewTask.resolved_at >= since, ReviewTask.resolved_by.is_not(None))
            .group_by(ReviewTask.resolved_by, ReviewTask.resolution)):
        figures.setdefault(operator_id, {})[resolution] = count
    operators = g.db.scalars(select(Operator).order_by(Operator.username)).all()
    return render_template("console/admin_operators.html", operators=operators, figures=figures, now=utcnow())


@bp.errorhandler(403)
def forbidden(exc):
    return render_template("console/error.html", title="Not allowed",
                           message="This page is for administrators."), 403


@bp.errorhandler(404)
def not_found(exc):
    return render_template("console/error.html", title="Not found", message="There is nothing here."), 404
