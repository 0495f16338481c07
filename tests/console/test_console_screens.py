"""The console's pages in headless Chromium at a laptop's 1366×768: the queue, an item whose
decision block fits above the fold, the dashboard with its charts, the profile and the regions
page. Each page is saved as a screenshot in test-artifacts/. Uses the system browser."""
from __future__ import annotations

import datetime as dt
from readings_store.models import utcnow
from readings_store.regions import create_region

from .browser import ARTIFACTS, browser_tests, log_in, open_page
from .helpers import add_tries, make_operator, seed_calls, seed_pending

pytestmark = browser_tests


def test_an_operators_day_in_screenshots(live_server, browser, db, config):
    make_operator(db, username="ada", role="admin")
    region = create_region(db, "CHI", "Chișinău", menu_key=1,
                           names={"ro": "Chișinău", "ru": "Кишинёв", "en": "Chisinau"})
    create_region(db, "BAL", "Bălți", menu_key=2, names={"ru": "Бельцы"})
    db.commit()
    older = seed_pending(db, config, region=region, number="100002", serial="EL0002", value="1100",
                         created_at=utcnow() - dt.timedelta(hours=3))
    item = seed_pending(db, config, region=region, value="9000", reason="low_confidence")
    add_tries(db, item)
    seed_calls(db, region)
    ARTIFACTS.mkdir(exist_ok=True)

    page, errors = open_page(browser, viewport={"width": 1366, "height": 768})
    log_in(page, live_server, "ada")

    # Profile: Russian region names, times in Kyiv.
    page.click("#page-zone ~ a.who")
    page.wait_for_url("**/console/profile")
    page.fill("input[name=timezone]", "Mars/Olympus")
    page.click("#profile-form button[type=submit]")
    assert "not a time zone" in page.inner_text("#profile-error")
    page.fill("input[name=timezone]", "Europe/Kyiv")
    page.select_option("select[name=language]", "ru")
    page.click("#profile-form button[type=submit]")
    page.wait_for_url("**/console/profile")
    assert "Preferences saved." in page.content()
    page.screenshot(path=str(ARTIFACTS / "console-profile.png"), full_page=True)

    page.goto(live_server + "/console/queue")
    assert page.inner_text("#page-zone") == "Times: Europe/Kyiv"
    assert "Received (Europe/Kyiv)" in page.inner_text("#queue thead")
    rows = page.inner_text("#queue tbody")
    assert "Кишинёв" in rows and "speech recognised with low confidence" in rows
    assert rows.index(f"#{older['task'].id}") < rows.index(f"#{item['task'].id}")
    page.screenshot(path=str(ARTIFACTS / "console-queue.png"), full_page=True)

    page.goto(live_server + f"/console/tasks/{item['task'].id}")
    page.screenshot(path=str(ARTIFACTS / "console-item-fold.png"))
    page.screenshot(path=str(ARTIFACTS / "console-item.png"), full_page=True)
    decide = page.locator("#decide").bounding_box()
    assert decide["y"] + decide["height"] <= 768, decide
    tries = page.inner_text("#tries")
    assert tries.index("750") < tries.index("13000") < tries.index("9000")
    assert "keypad" in tries and "speech" in tries and "lower than the previous reading" in tries
    # 9000 is above the plausible consumption: accept needs an override, so it is not the primary button.
    assert page.get_attribute("#accept-button", "class") == "secondary"
    assert "Needs an override" in page.inner_text("#accept-problem")
    shortcuts = page.inner_text("#shortcuts")
    assert all(k in shortcuts for k in ("a accept", "c correct", "r reject", "p play", "n next"))

    today = utcnow().date()
    page.goto(live_server + f"/console/dashboard?from={today - dt.timedelta(days=1)}&to={today + dt.timedelta(days=1)}")
    for chart in ("hours", "outcomes", "funnel", "coverage", "queue", "speech", "reask"):
        assert page.locator(f"svg#chart-{chart}").count() == 1, chart
    outcomes = page.inner_text("#outcomes")
    assert "transferred to an operator\t1" in outcomes and "gave up after retries\t1" in outcomes
    page.screenshot(path=str(ARTIFACTS / "console-dashboard.png"), full_page=True)

    page.goto(live_server + "/console/admin/regions")
    page.screenshot(path=str(ARTIFACTS / "console-regions.png"), full_page=True)
    assert not errors
