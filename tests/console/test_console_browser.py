"""The console in headless Chromium: log in, open the queue, accept an item with the "a" key, play
the next item's audio, correct its reading with a reason, and see the audit entry.
Uses the system browser (/usr/bin/chromium), never a download."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from readings_store.models import Reading, utcnow
from tests import factories as f

from .browser import ARTIFACTS, browser_tests, log_in, open_page
from .helpers import make_operator, seed_pending

pytestmark = browser_tests


def test_operator_corrects_a_reading_after_listening(live_server, browser, db, config):
    make_operator(db)
    db.commit()
    region = f.region(db)
    older = seed_pending(db, config, region=region, number="100002", serial="EL0002", value="1100",
                         created_at=utcnow() - timedelta(hours=1))
    seeded = seed_pending(db, config, region=region)
    page, errors = open_page(browser)
    recordings = []
    page.on("response", lambda r: recordings.append(r.status) if "/console/recordings/" in r.url else None)

    page.goto(live_server + "/console/queue")
    assert "/console/login" in page.url
    log_in(page, live_server, "olga")
    assert page.inner_text("#open-count") == "2"

    page.click("#start")
    page.wait_for_url(f"**/console/tasks/{older['task'].id}*")
    # "a" accepts the oldest item, and the next one opens.
    page.keyboard.press("a")
    page.wait_for_url(f"**/console/tasks/{seeded['task'].id}*")
    assert f"Accepted 1100 for item #{older['task'].id}." in page.content()
    assert page.inner_text("mark.low") == "three"

    # "p" plays the recording (a key press is a user gesture, so autoplay rules allow it).
    page.keyboard.press("p")
    page.wait_for_function(
        "() => { const a = document.getElementById('player'); return a.readyState >= 2 && a.currentTime > 0; }")
    assert recordings and all(status in (200, 206) for status in recordings)
    state = page.evaluate("() => { const a = document.getElementById('player');"
                          " return {ready: a.readyState, t: a.currentTime, err: a.error}; }")
    assert state["ready"] >= 2 and state["t"] > 0 and state["err"] is None

    page.fill("#correct-form input[name='correct-value']", "1200")
    page.fill("#correct-form textarea[name='correct-reason']", "caller said twelve hundred on the recording")
    page.click("#correct-form button[type=submit]")
    page.wait_for_url("**/console/queue*")
    assert "Corrected item" in page.content()
    audit = page.inner_text("#recent")
    assert "corrected the reading" in audit and "1300" in audit and "1200" in audit
    assert "caller said twelve hundred" in audit

    # The item page keeps the trail.
    page.goto(live_server + f"/console/tasks/{seeded['task'].id}")
    assert "corrected the reading" in page.inner_text("#audit")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "console.png"), full_page=True)
    assert not errors

    db.expire_all()
    new = db.scalars(select(Reading).where(Reading.channel == "operator")).one()
    assert str(new.value) == "1200" and new.supersedes_id is None  # nothing billing saw in the period
    assert db.get(Reading, seeded["reading"].id).status == "superseded"
    assert db.get(Reading, older["reading"].id).status == "accepted"


def test_admin_edits_a_region_on_the_regions_page(live_server, browser, db):
    from readings_store.regions import create_region, describe, get_region

    make_operator(db, username="ada", role="admin")
    create_region(db, "CHI", "Chișinău", menu_key=1, names={"ro": "Chișinău", "ru": "Кишинёв", "en": "Chisinau"},
                  phone_prefixes="+37322", operator_number="+37322123456",
                  windows={"water": "20-25", "electricity": "15-end"})
    create_region(db, "BAL", "Bălți", menu_key=2, names={"ru": "Бельцы"}, phone_prefixes="+373231")
    create_region(db, "ORH", "Orhei")  # imported, no menu key yet
    db.commit()
    page, errors = open_page(browser, viewport={"width": 1400, "height": 700})
    log_in(page, live_server, "ada")
    page.click("header nav a:has-text('Regions')")
    page.wait_for_url("**/console/admin/regions")
    page.click("#regions a:has-text('ORH')")
    # A key another region holds is refused with the reason, and the form keeps what was typed.
    page.fill("input[name='region-menu_key']", "2")
    page.fill("input[name='region-name_ru']", "Оргеев")
    page.click("#region-form button[type=submit]")
    assert "menu key 2 is already used by region BAL (Bălți)" in page.inner_text("#region-error")
    assert page.input_value("input[name='region-name_ru']") == "Оргеев"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "region-edit.png"), full_page=True)
    page.fill("input[name='region-menu_key']", "3")
    page.fill("input[name='region-phone_prefixes']", "+373235")
    page.fill("input[name='region-window_all']", "1-end")
    page.click("#region-form button[type=submit]")
    page.wait_for_url("**/console/admin/regions")
    assert "Region ORH saved." in page.content()
    page.screenshot(path=str(ARTIFACTS / "regions.png"), full_page=True)
    assert not errors
    db.expire_all()
    orh = describe(get_region(db, "ORH"))
    assert (orh["menu_key"], orh["names"], orh["phone_prefixes"], orh["windows"]) == \
        (3, {"ru": "Оргеев"}, ["+373235"], {"all": "1-end"})
