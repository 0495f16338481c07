"""Console pages: review queue, item page and its actions, recordings, lookup, dashboard, admin."""
from __future__ import annotations

import datetime as dt
import mimetypes
from pathlib import Path
from zoneinfo import ZoneInfo

from flask import abort, current_app, flash, g, redirect, render_template, request, send_file, url_for
from flask_login import current_user
from sqlalchemy import and_, func, or_, select

from readings_store import service
from readings_store.models import (
    UTILITIES,
    Account,
    AccountPhone,
    AuditEvent,
    Call,
    Meter,
    Operator,
    Reading,
    Region,
    ReviewTask,
    Utterance,
    ValueRefusal,
    utcnow,
)

from . import bp, review
from .auth import admin_required
from .forms import AcceptForm, CloseForm, CorrectForm, LinkForm, RejectForm

PAGE_SIZE = 25
KINDS = ("reading", "identification")
UTC = dt.timezone.utc


def ivr():
    return current_app.extensions["ivr"]


def actor() -> review.Actor:
    return review.Actor(current_user.operator_id, current_user.username)


# --- helpers shared by the templates --------------------------------------------------------------

def local_time(value: dt.datetime | None, tz: str | None = None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return ""
    try:
        zone = ZoneInfo(tz) if tz else UTC
    except (KeyError, ValueError):
        zone = UTC
    local = value.astimezone(zone)
    return local.strftime(fmt) + ("" if tz else " UTC")


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
    return {"local_time": local_time, "utilities": UTILITIES}


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
        # The day in the filtered region's timezone, or the UTC day across regions.
        start, end = day_bounds(dt.date.fromisoformat(filters["date"]), _region_tz(filters.get("region")))
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
    try:
        page = max(1, int(request.args.get("page", 1)))
    except ValueError:
        page = 1
    query = open_tasks(filters)
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


def _task_context(task: ReviewTask) -> dict:
    db = g.db
    reading = task.reading
    utterance = task.utterance or (reading.utterance if reading else None)
    call = task.call or (reading.call if reading else None) or (utterance.call if utterance else None)
    meter = reading.meter if reading else None
    region = task.region or (meter.account.region if meter else None)
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
    link_form.region_id.choices = [(r.id, r.name) for r in db.scalars(select(Region).order_by(Region.name))]
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
        "audio_exists": bool(utterance and utterance.audio_path and _recording_path(utterance.audio_path)),
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


@bp.post("/tasks/<int:task_id>/accept")
def accept(task_id: int):
    task = _task_or_404(task_id)
    if (handled := _already_handled(task)) is not None:
        return handled
    form = AcceptForm(prefix="accept")
    if not form.validate_on_submit():
        return _refused(task, review.ActionError(_form_errors(form) or "Invalid form."), "accept")
    try:
        reading = review.accept(g.db, ivr().config, task, actor(), override=form.override.data,
                                reason=form.reason.data)
    except review.ActionError as exc:
        return _refused(task, exc, "accept")
    g.db.commit()
    return _after_action(task, f"Accepted {reading.value} for item #{task.id}.")


@bp.post("/tasks/<int:task_id>/correct")
def correct(task_id: int):
    task = _task_or_404(task_id)
    if (handled := _already_handled(task)) is not None:
        return handled
    form = CorrectForm(prefix="correct")
    if not form.validate_on_submit():
        return _refused(task, review.ActionError(_form_errors(form) or "Invalid form."), "correct")
    try:
        new = review.correct(g.db, ivr().config, task, actor(), value=form.value.data, reason=form.reason.data,
                             override=form.override.data)
    except review.ActionError as exc:
        return _refused(task, exc, "correct")
    g.db.commit()
    return _after_action(task, f"Corrected item #{task.id} to {new.value}.")


@bp.post("/tasks/<int:task_id>/reject")
def reject(task_id: int):
    task = _task_or_404(task_id)
    if (handled := _already_handled(task)) is not None:
        return handled
    form = RejectForm(prefix="reject")
    if not form.validate_on_submit():
        return _refused(task, review.ActionError(_form_errors(form) or "Invalid form."), "reject")
    try:
        review.reject(g.db, ivr().config, task, actor(), reason=form.reason.data)
    except review.ActionError as exc:
        return _refused(task, exc, "reject")
    g.db.commit()
    return _after_action(task, f"Rejected item #{task.id}.")


@bp.post("/tasks/<int:task_id>/link")
def link(task_id: int):
    task = _task_or_404(task_id)
    if (handled := _already_handled(task)) is not None:
        return handled
    form = LinkForm(prefix="link")
    form.region_id.choices = [(r.id, r.name) for r in g.db.scalars(select(Region).order_by(Region.name))]
    if not form.validate_on_submit():
        return _refused(task, review.ActionError(_form_errors(form) or "Invalid form."), "link")
    try:
        account = review.link(g.db, task, actor(), region_id=form.region_id.data, number=form.number.data,
                              add_phone=form.add_phone.data, note=form.reason.data)
    except review.ActionError as exc:
        return _refused(task, exc, "link")
    g.db.commit()
    return _after_action(task, f"Linked item #{task.id} to account {account.number}.")


@bp.post("/tasks/<int:task_id>/close")
def close(task_id: int):
    task = _task_or_404(task_id)
    if (handled := _already_handled(task)) is not None:
        return handled
    form = CloseForm(prefix="close")
    if not form.validate_on_submit():
        return _refused(task, review.ActionError(_form_errors(form) or "Invalid form."), "close")
    try:
        review.close(g.db, task, actor(), reason=form.reason.data)
    except review.ActionError as exc:
        return _refused(task, exc, "close")
    g.db.commit()
    return _after_action(task, f"Closed item #{task.id}.")


# --- recordings ------------------------------------------------------------------------------------

def _recording_path(stored: str) -> Path | None:
    """The file for an utterance's ``audio_path``, only if it lies inside ``recordings_dir``."""
    root = Path(ivr().config.recordings_dir).resolve()
    candidate = Path(stored)
    candidate = (candidate if candidate.is_absolute() else root / candidate).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


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

@bp.get("/lookup")
def lookup():
    q = (request.args.get("q") or "").strip()[:64]
    accounts: list[Account] = []
    phone = None
    if q:
        key = service.keypad_key(q)
        found = {}
        if key:
            # As typed (separators matter on the keypad) or digits only, ignoring the separators.
            digits = key.replace("*", "")
            for a in g.db.scalars(select(Account).where(or_(Account.keypad_key == key,
                                                            func.replace(Account.keypad_key, "*", "") == digits))
                                  .order_by(Account.id).limit(50)):
                found[a.id] = a
        phone = review.normalise_phone(q, ivr().config.console_phone_region)
        if phone:
            for a in g.db.scalars(select(Account).join(AccountPhone).where(AccountPhone.phone == phone)
                                  .order_by(Account.id).limit(50)):
                found[a.id] = a
        accounts = list(found.values())
        if len(accounts) == 1 and request.args.get("go") != "0":
            return redirect(url_for("console.account", account_id=accounts[0].id))
    return render_template("console/lookup.html", q=q, accounts=accounts, phone=phone)


@bp.get("/accounts/<int:account_id>")
def account(account_id: int):
    acc = g.db.get(Account, account_id)
    if acc is None:
        abort(404)
    readings = {}
    for m in acc.meters:
        readings[m.id] = g.db.scalars(select(Reading).where(Reading.meter_id == m.id)
                                      .order_by(Reading.taken_at.desc(), Reading.id.desc()).limit(50)).all()
    operators = {o.id: o.username for o in g.db.scalars(select(Operator))}
    calls = g.db.scalars(select(Call).where(Call.account_id == acc.id).order_by(Call.started_at.desc())
                         .limit(10)).all()
    return render_template("console/account.html", account=acc, readings=readings, operators=operators,
                           calls=calls, tz=acc.region.timezone)


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
    out = []
    for account_id, period, count, last in db.execute(query).all():
        callers = db.scalars(select(ValueRefusal.caller).where(ValueRefusal.account_id == account_id,
                                                               ValueRefusal.period == period)
                             .order_by(ValueRefusal.id)).all()
        out.append({"account": db.get(Account, account_id), "period": period, "count": count, "last": last,
                    "callers": _callers(callers)})
    return out


OUTCOME_GROUPS = {"completed": "completed", "no_reading": "no reading", "transferred": "transferred",
                  "gave_up": "gave up", "hung_up": "hung up", "service_not_ready": "service not ready"}


def outcome_group(outcome: str | None) -> str:
    """The dashboard's label for a ``Call.outcome`` (NULL: the call is in progress)."""
    if outcome is None:
        return "in progress"
    return OUTCOME_GROUPS.get(outcome, "other")


def _day_figures(filters: dict) -> dict:
    db = g.db
    tz = _region_tz(filters.get("region"))
    zone = ZoneInfo(tz) if tz else UTC
    day = dt.date.fromisoformat(filters["date"]) if "date" in filters else utcnow().astimezone(zone).date()
    start, end = day_bounds(day, tz)
    calls = select(Call.region_id, Call.language, Call.outcome, func.count()).where(
        Call.started_at >= start, Call.started_at < end)
    if "region" in filters:
        calls = calls.where(Call.region_id == filters["region"])
    regions = {r.id: r.name for r in db.scalars(select(Region))}
    by_group: dict[str, int] = {}
    rows: dict[tuple, dict] = {}
    total = 0
    for region_id, language, outcome, count in db.execute(calls.group_by(Call.region_id, Call.language,
                                                                        Call.outcome)):
        group = outcome_group(outcome)
        by_group[group] = by_group.get(group, 0) + count
        total += count
        row = rows.setdefault((regions.get(region_id, "unknown region"), language or "-"),
                              {"calls": 0, "completed": 0})
        row["calls"] += count
        row["completed"] += count if group == "completed" else 0
    readings = select(Reading.status, Reading.channel, func.count()).where(
        Reading.received_at >= start, Reading.received_at < end)
    if "region" in filters:
        readings = readings.join(Meter).join(Account).where(Account.region_id == filters["region"])
    reading_rows = db.execute(readings.group_by(Reading.status, Reading.channel)).all()
    queue = db.execute(select(ReviewTask.kind, func.count()).where(ReviewTask.status == "open")
                       .group_by(ReviewTask.kind)).all()
    per_operator = []
    if current_user.is_admin:
        per_operator = db.execute(
            select(Operator.username, ReviewTask.resolution, func.count())
            .join(Operator, Operator.id == ReviewTask.resolved_by)
            .where(ReviewTask.resolved_at >= start, ReviewTask.resolved_at < end)
            .group_by(Operator.username, ReviewTask.resolution).order_by(Operator.username)).all()
    completed = by_group.get("completed", 0)
    return {
        "day": day, "tz": tz or "UTC", "total_calls": total, "by_group": sorted(by_group.items()),
        "completed_share": (completed / total) if total else None,
        "per_region_language": sorted(((k[0], k[1], v) for k, v in rows.items()), key=lambda x: (x[0], x[1])),
        "readings": reading_rows, "readings_saved": sum(c for s, _ch, c in reading_rows if s != "rejected"),
        "queue": queue, "queue_size": sum(c for _k, c in queue), "per_operator": per_operator,
        "probing": probing(end, filters.get("region")), "probe_limit": ivr().config.probe_limit,
    }


@bp.get("/dashboard")
def dashboard():
    filters = {k: v for k, v in parse_filters(request.args).items() if k in ("region", "date")}
    return render_template("console/dashboard.html", filters=filters,
                           regions=g.db.scalars(select(Region).order_by(Region.name)).all(), **_day_figures(filters))


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
