"""Admin only: the Regions page lists every region with all its settings and edits them.

The checks are those of ``readings_store.regions`` (the same as ``ivr regions``): a bad setting is
shown with its reason, the form keeps what was typed, and nothing is changed.
"""
from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import func, select

from readings_store import regions as settings_service
from readings_store.models import UTILITIES, Account, Region

from .blueprint import bp
from .auth import admin_required
from .forms import RegionForm, RemoveRegionForm

WINDOW_FIELDS = (settings_service.ALL_UTILITIES, *UTILITIES)


def _actor() -> dict:
    return {"actor_kind": "operator", "actor_id": current_user.operator_id, "actor_name": current_user.username}


def _region_or_404(region_id: int) -> Region:
    region = g.db.get(Region, region_id)
    if region is None:
        abort(404)
    return region


def _fill(form: RegionForm, region: Region) -> None:
    """The form's fields from the region's current settings."""
    current = settings_service.describe(region)
    form.code.data, form.name.data = current["code"], current["name"]
    for lang in settings_service.LANGUAGES:
        getattr(form, f"name_{lang}").data = current["names"].get(lang, "")
    form.menu_key.data = "" if current["menu_key"] is None else str(current["menu_key"])
    form.timezone.data, form.work_days.data = current["timezone"], current["work_days"]
    form.work_start.data, form.work_end.data = current["work_start"], current["work_end"]
    form.operator_number.data = current["operator_number"] or ""
    form.phone_prefixes.data = ", ".join(current["phone_prefixes"])
    for utility in WINDOW_FIELDS:
        getattr(form, f"window_{utility}").data = current["windows"].get(utility, "")
    form.ask_org_name.data = current["ask_org_name"]


def _settings(form: RegionForm) -> dict:
    """Every field of the form as a setting: an empty optional field clears that setting."""
    return {
        "code": form.code.data,
        "name": form.name.data,
        "names": {lang: getattr(form, f"name_{lang}").data for lang in settings_service.LANGUAGES},
        "menu_key": form.menu_key.data,
        "timezone": form.timezone.data,
        "work_days": form.work_days.data,
        "work_start": form.work_start.data,
        "work_end": form.work_end.data,
        "operator_number": form.operator_number.data,
        "phone_prefixes": form.phone_prefixes.data or "",
        "windows": {utility: getattr(form, f"window_{utility}").data for utility in WINDOW_FIELDS},
        "ask_org_name": bool(form.ask_org_name.data),
    }


def _form_page(form: RegionForm, region: Region | None, error: str | None = None, status: int = 200):
    return render_template("console/admin_region.html", form=form, region=region, error=error,
                           window_fields=WINDOW_FIELDS, languages=settings_service.LANGUAGES,
                           remove_form=RemoveRegionForm(prefix="remove")), status


def _form_errors(form) -> str:
    return " ".join(msg for errors in form.errors.values() for msg in errors)


@bp.get("/admin/regions")
@admin_required
def admin_regions():
    counts = dict(g.db.execute(select(Account.region_id, func.count()).group_by(Account.region_id)).all())
    rows = [(region, settings_service.describe(region), counts.get(region.id, 0))
            for region in settings_service.all_regions(g.db)]
    return render_template("console/admin_regions.html", rows=rows, languages=settings_service.LANGUAGES)


@bp.get("/admin/regions/new")
@admin_required
def region_new():
    form = RegionForm(prefix="region")
    form.timezone.data = Region.timezone.default.arg
    form.work_days.data = Region.work_days.default.arg
    form.work_start.data = f"{Region.work_start.default.arg:%H:%M}"
    form.work_end.data = f"{Region.work_end.default.arg:%H:%M}"
    form.menu_key.data = str(settings_service.next_free_menu_key(g.db))
    return _form_page(form, None)[0]


@bp.post("/admin/regions/new")
@admin_required
def region_create():
    form = RegionForm(prefix="region")
    if not form.validate_on_submit():
        return _form_page(form, None, _form_errors(form) or "Invalid form.", 422)
    settings = _settings(form)
    try:
        region = settings_service.create_region(g.db, settings.pop("code"), settings.pop("name"),
                                                actor=_actor(), **settings)
    except settings_service.RegionError as exc:
        g.db.rollback()
        return _form_page(form, None, f"{exc}. Nothing was changed.", 422)
    g.db.commit()
    flash(f"Region {region.code} added.", "success")
    return redirect(url_for("console.admin_regions"))


@bp.get("/admin/regions/<int:region_id>")
@admin_required
def region_edit(region_id: int):
    region = _region_or_404(region_id)
    form = RegionForm(prefix="region")
    _fill(form, region)
    return _form_page(form, region)[0]


@bp.post("/admin/regions/<int:region_id>")
@admin_required
def region_update(region_id: int):
    region = _region_or_404(region_id)
    form = RegionForm(prefix="region")
    if not form.validate_on_submit():
        return _form_page(form, region, _form_errors(form) or "Invalid form.", 422)
    try:
        settings_service.update_region(g.db, region, actor=_actor(), **_settings(form))
    except settings_service.RegionError as exc:
        g.db.rollback()
        return _form_page(form, _region_or_404(region_id), f"{exc}. Nothing was changed.", 422)
    g.db.commit()
    flash(f"Region {region.code} saved.", "success")
    return redirect(url_for("console.admin_regions"))


@bp.post("/admin/regions/<int:region_id>/remove")
@admin_required
def region_remove(region_id: int):
    region = _region_or_404(region_id)
    code = region.code
    try:
        settings_service.remove_region(g.db, region, actor=_actor())
    except settings_service.RegionError as exc:
        g.db.rollback()
        flash(f"{exc}.", "warning")
        return redirect(url_for("console.region_edit", region_id=region_id))
    g.db.commit()
    flash(f"Region {code} removed.", "success")
    return redirect(url_for("console.admin_regions"))
