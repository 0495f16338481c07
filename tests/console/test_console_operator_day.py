"""The console for a working day: words instead of codes, one labelled time zone per page chosen
in the operator's profile, every value of a call on an item, region names in the operator's
language, the dashboard's charts and figures, and CSV of every table."""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
from pathlib import Path

from decimal import Decimal

import pytest

from readings_store import clock, service
from readings_store.models import Account, Call, Operator, ReviewTask, utcnow
from readings_store.regions import create_region
from tests import factories as f

from ivr.console import charts, labels

from .helpers import add_tries, log_steps, login, seed_calls, seed_pending


def text(response) -> str:
    return response.get_data(as_text=True)


def rows_of(response) -> list[list[str]]:
    assert response.status_code == 200 and response.mimetype == "text/csv", response.status_code
    return list(csv.reader(io.StringIO(text(response))))


# --- 1. words and one time zone ----------------------------------------------------------------------

def test_labels_turn_codes_into_words():
    assert labels.label("account_account_not_found") == "account number: no such account in the region"
    assert labels.label("below_previous") == "lower than the previous reading"
    assert labels.label("transferred", "outcome") == "transferred to an operator"
    assert labels.label("some_new_code") == "some new code"
    assert labels.step_event({"kind": "digits", "keys": 7, "decision": None}) == "7 keys pressed"
    assert labels.step_event({"kind": "speech", "keys": 0, "decision": "confirm"}) == "speech (unsure, read back)"


def test_every_audit_action_the_code_writes_has_words():
    """Actions are written as literals (``action="reading.accept"``, ``_audit(session, "region.add"``)
    across the code; each must be in the console's table, so the trail never shows a raw code."""
    root = Path(__file__).resolve().parents[2]
    written = set()
    for source in [*root.joinpath("ivr").rglob("*.py"), *root.joinpath("readings_store").rglob("*.py")]:
        code = source.read_text(encoding="utf-8")
        written |= set(re.findall(r'action="([a-z_]+\.[a-z_]+)"', code))
        written |= set(re.findall(r'_audit\([a-z_]+, "([a-z_]+\.[a-z_]+)"', code))
    assert len(written) >= 15  # the scan still finds them
    assert written <= set(labels.ACTIONS), sorted(written - set(labels.ACTIONS))


def test_the_audit_trail_reads_as_words(oc, db, config):
    seeded = seed_pending(db, config)
    assert oc.post(f"/console/tasks/{seeded['task'].id}/reject", data={"reject-reason": "wrong meter"}).status_code in (
        200, 302, 303)
    page = text(oc.get(f"/console/tasks/{seeded['task'].id}"))
    trail = page[page.index('id="audit"'):page.index("</ul>", page.index('id="audit"'))]
    assert "rejected the reading" in trail and "reading.reject" not in trail
    assert "(rejected)" in trail


def test_codes_read_as_words_on_every_page(oc, db, config):
    """Utilities, registers, kinds, languages, resolutions and refusal reasons are words on the queue,
    the item, the account page and in the queue's CSV; items are numbered the same way in the queue
    and in the operator's recent actions."""
    for _ in range(3):  # readings before the item's, so that its reading id is not its item number
        f.meter(db, f.account(db, f.region(db, code=f"X{_}", name=f"X{_}", menu_key=10 + _), number=f"9{_}"),
                serial=f"X{_}", previous=5)
    seeded = seed_pending(db, config, utility="cold_water", serial="CW0001", value="10000",
                          reason="implausible_consumption")
    task, reading = seeded["task"], seeded["reading"]
    assert task.id != reading.id
    main = text(oc.get("/console/queue")).split("<main>")[1]
    assert "cold water" in main and "cold_water" not in main.replace('value="cold_water"', "")
    assert "single tariff" in main and "(total)" not in main and f">#{task.id}<" in main
    page = text(oc.get(f"/console/tasks/{task.id}")).split("<main>")[1]
    for words in ("cold water", "single tariff", "English", "Heard by: speech", "reading ·"):
        assert words in page, words
    for code in ("cold_water", ">en<", "vosk", "implausible_consumption"):
        assert code not in page, code
    refused = text(oc.post(f"/console/tasks/{task.id}/accept")).split("<main>")[1]
    assert "consumption above the plausible limit" in refused and "(implausible_consumption)" not in refused
    account = text(oc.get(f"/console/accounts/{seeded['account'].id}")).split("<main>")[1]
    assert "cold water" in account and "(person)" in account and "English" in account
    assert "cold_water" not in account and ">total<" not in account
    rows = rows_of(oc.get("/console/queue?format=csv"))
    assert rows[1][3] == "reading" and rows[1][6] == "cold water"
    # Rejected: the recent actions name the item as the queue did, linked to it.
    assert oc.post(f"/console/tasks/{task.id}/reject", data={"reject-reason": "wrong meter"}).status_code == 302
    recent = text(oc.get("/console/queue"))
    recent = recent[recent.index('id="recent"'):]
    assert f'<a href="/console/tasks/{task.id}">#{task.id}</a>' in recent
    assert f"#{reading.id}<" not in recent and f"#{reading.id} " not in recent
    handled = text(oc.get(f"/console/tasks/{task.id}"))
    assert "Handled: rejected" in handled


def test_call_steps_read_as_words_in_the_regions_zone(oc, db, config):
    seeded = seed_pending(db, config)
    at = dt.datetime(2026, 7, 1, 3, 36, 47, tzinfo=dt.timezone.utc)
    log_steps(db, seeded["call"], [{"at": at, "step": "account",
                                    "event": {"kind": "digits", "keys": 7, "decision": None}, "next": "account"}])
    seeded["call"].outcome = "transferred"
    db.commit()
    page = text(oc.get(f"/console/tasks/{seeded['task'].id}"))
    steps = page[page.index('id="steps"'):page.index("</ol>", page.index('id="steps"'))]
    # 03:36:47 UTC is 06:36:47 in Chișinău in summer.
    assert "06:36:47" in steps and "account number: 7 keys pressed &rarr; account number" in steps
    assert "{&#39;kind&#39;" not in page and "03:36:47" not in page
    assert 'id="page-zone"' in page and "Times: Europe/Chisinau" in page
    assert "transferred to an operator" in page
    assert "speech recognised with low confidence" in page and "low_confidence" not in page.split("<main>")[1]


def test_every_page_names_its_time_zone(oc, db, config):
    seeded = seed_pending(db, config)
    for url in ("/console/queue", f"/console/tasks/{seeded['task'].id}", "/console/dashboard",
                f"/console/accounts/{seeded['account'].id}", "/console/lookup?q=nothing", "/console/profile"):
        assert re.search(r'id="page-zone"[^>]*>Times: [A-Za-z_/]+<', text(oc.get(url))), url


def test_profile_time_zone_applies_everywhere_and_bad_input_changes_nothing(oc, db, config, operator):
    seeded = seed_pending(db, config, created_at=dt.datetime(2026, 1, 10, 12, 0, tzinfo=dt.timezone.utc))
    item = f"/console/tasks/{seeded['task'].id}"
    assert "Open since 2026-01-10 14:00" in text(oc.get(item))  # the region's zone by default
    response = oc.post("/console/profile", data={"timezone": "Mars/Olympus", "language": "en"})
    assert response.status_code == 422 and "is not a time zone" in text(response)
    response = oc.post("/console/profile", data={"timezone": "Europe/Chisinau", "language": "xx"})
    assert response.status_code == 422
    db.expire_all()
    assert (db.get(Operator, operator.id).timezone, db.get(Operator, operator.id).language) == (None, None)
    assert oc.post("/console/profile", data={"timezone": "Asia/Tokyo", "language": "ru"}).status_code == 302
    db.expire_all()
    assert (db.get(Operator, operator.id).timezone, db.get(Operator, operator.id).language) == ("Asia/Tokyo", "ru")
    page = text(oc.get(item))
    assert "Open since 2026-01-10 21:00" in page and "Times: Asia/Tokyo" in page
    assert oc.post("/console/profile", data={"timezone": "", "language": "en"}).status_code == 302
    db.expire_all()
    assert db.get(Operator, operator.id).timezone is None


def test_profile_needs_the_csrf_token(app, client, operator):
    from .helpers import login
    login(client)
    assert client.post("/console/profile", data={"timezone": "Asia/Tokyo", "language": "en"}).status_code in (400, 403)


# --- 2. the queue in one zone ----------------------------------------------------------------------

def test_queue_received_is_in_one_labelled_zone_across_regions(oc, db, config):
    west = f.region(db, code="LIS", name="Lisboa", menu_key=2, timezone="Europe/Lisbon")
    east = f.region(db, code="CHI", name="Chișinău", menu_key=1, timezone="Europe/Chisinau")
    base = dt.datetime(2026, 1, 10, 10, 0, tzinfo=dt.timezone.utc)
    # The Lisbon item came first (10:00 UTC) and the Chișinău one 30 minutes later; by their own
    # clocks they would read 10:00 and 12:30, in one zone 12:00 and 12:30.
    seed_pending(db, config, region=west, number="200001", serial="LS0001", created_at=base)
    seed_pending(db, config, region=east, number="100001", serial="EL0001", created_at=base + dt.timedelta(minutes=30))
    page = text(oc.get("/console/queue"))
    assert "Received (Europe/Chisinau)" in page
    body = page[page.index("<tbody>"):page.index("</tbody>")]
    assert body.index("2026-01-10 12:00") < body.index("2026-01-10 12:30")
    assert "10:00" not in body
    filtered = text(oc.get(f"/console/queue?region={west.id}"))
    assert "Received (Europe/Lisbon)" in filtered and "2026-01-10 10:00" in filtered


# --- 3. every value of the call ----------------------------------------------------------------------

def test_item_lists_every_value_of_the_call_with_how_and_why(oc, db, config):
    seeded = seed_pending(db, config)
    add_tries(db, seeded)
    page = text(oc.get(f"/console/tasks/{seeded['task'].id}"))
    table = page[page.index('id="tries"'):page.index("</table>", page.index('id="tries"'))]
    cells = re.findall(r"<td>([^<]*)</td>", table)
    values = cells[1::4]
    assert values == ["750", "13000", "1300"]
    assert cells[2::4] == ["keypad", "speech", "speech"]
    assert cells[3::4] == ["refused: lower than the previous reading", "refused: read back, caller did not confirm",
                           "waiting for review: speech recognised with low confidence"]


# --- 4. the decision block ---------------------------------------------------------------------------

def test_accept_is_primary_only_when_it_would_pass(oc, db, config):
    fine = seed_pending(db, config)  # 1300 after 1000 thirty days ago: plausible
    region = fine["region"]
    odd = seed_pending(db, config, region=region, number="100002", serial="EL0002", value="90000")
    page = text(oc.get(f"/console/tasks/{fine['task'].id}"))
    assert 'class="primary" id="accept-button"' in page and 'id="accept-problem"' not in page
    page = text(oc.get(f"/console/tasks/{odd['task'].id}"))
    assert 'class="secondary" id="accept-button"' in page
    assert "Needs an override: consumption above the plausible limit" in page
    assert 'class="primary" title="Shortcut: c' in page  # correcting is what is left to do
    shortcuts = page[page.index('id="shortcuts"'):page.index("</p>", page.index('id="shortcuts"'))]
    for key in "acrpn":
        assert f"<kbd>{key}</kbd>" in shortcuts
    # What decides comes before the history, call steps and audit.
    assert page.index('id="accept-form"') < page.index('id="below"') < page.index('id="history"') \
        < page.index("Audit trail")


# --- 5. region names in the operator's language ------------------------------------------------------

def test_region_names_follow_the_operators_language(oc, db, config, operator):
    region = create_region(db, "CHI", "Chișinău", menu_key=1, names={"ru": "Кишинёв", "en": "Chisinau"})
    db.commit()
    seed_pending(db, config, region=region)
    assert "Chisinau" in text(oc.get("/console/queue"))
    db.get(Operator, operator.id).language = "ru"
    db.commit()
    page = text(oc.get("/console/queue"))
    body = page[page.index("<tbody>"):page.index("</tbody>")]
    assert "Кишинёв" in body and "Chisinau" not in body


# --- 6 and 7. the dashboard ----------------------------------------------------------------------------

def _period_query() -> str:
    today = utcnow().date()
    return f"from={today - dt.timedelta(days=1)}&to={today + dt.timedelta(days=1)}"


def test_dashboard_draws_its_charts_as_inline_svg(oc, db, config):
    region = f.region(db)
    seed_calls(db, region)
    page = text(oc.get(f"/console/dashboard?{_period_query()}"))
    for chart in ("hours", "outcomes", "funnel", "coverage", "queue", "speech", "reask"):
        assert f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="chart-{chart}"' in page, chart
    assert "<script" not in page.split("<main>")[1]
    hours = page[page.index('id="chart-hours"'):page.index("</svg>", page.index('id="chart-hours"'))]
    assert sum(int(n) for n in re.findall(r": (\d+)</title></rect>", hours)) == 6


def test_dashboard_tells_transferred_from_gave_up(oc, db, config):
    region = f.region(db)
    seed_calls(db, region)
    rows = rows_of(oc.get(f"/console/dashboard?{_period_query()}&format=csv&table=outcomes"))
    assert rows[0] == ["outcome", "calls"]
    assert dict(rows[1:]) == {"completed": "2", "transferred to an operator": "1", "gave up after retries": "1",
                              "caller hung up": "1", "in progress": "1"}
    per_region = rows_of(oc.get(f"/console/dashboard?{_period_query()}&format=csv&table=per_region"))
    ro = next(r for r in per_region if r[1] == "Romanian")
    assert per_region[0] == ["region", "language", "calls", "completed", "transferred", "gave_up"]
    assert ro[2:] == ["4", "1", "1", "0"]


def test_dashboard_funnel_per_question(oc, db, config):
    region = f.region(db)
    seed_calls(db, region)
    rows = rows_of(oc.get(f"/console/dashboard?{_period_query()}&format=csv&table=funnel"))
    funnel = {r[0]: (int(r[1]), int(r[2])) for r in rows[1:]}
    # All six calls were asked their language and answered it; of the six asked for the account,
    # the two completed calls and the one that gave up later got past it; the transferred call and
    # the two that stopped there did not.
    assert funnel["language"] == (6, 6)
    assert funnel["account number"] == (6, 3)
    assert funnel["meter value"] == (3, 2)
    assert funnel["read-back and confirm"] == (2, 2)


# 3 December 2026, 10:00 UTC: Chișinău (window 20-5) still takes November's readings until the 5th;
# Bălți (window 1-25) takes December's, and its November window closed on 25 November.
DEC_3 = dt.datetime(2026, 12, 3, 10, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def on_dec_3(nocsrf, client, operator):
    """A console client logged in with the product's clock stopped at ``DEC_3``."""
    clock.set_clock(DEC_3, frozen=True)
    assert login(client).status_code == 302
    return client


def _two_windows(db):
    chi = f.region(db, window=(20, 5))
    bal = f.region(db, code="BAL", name="Bălți", menu_key=2, window=(1, 25))
    read, unread = f.account(db, chi, number="100001"), f.account(db, chi, number="100002")
    f.account(db, chi, number="100003")  # no meter: nothing to read
    meters = [f.meter(db, account, serial=f"EL{account.number}", previous=500) for account in (read, unread)]
    bal_meter = f.meter(db, f.account(db, bal, number="200001"), serial="EL200001")  # new: no history
    for meter in (meters[0], bal_meter):  # given today: November's in Chișinău, December's in Bălți
        service.store_reading(db, meter, "total", Decimal(510), channel="phone_keypad", now=DEC_3)
    db.commit()
    return chi, bal


def test_dashboard_coverage_follows_each_regions_window(on_dec_3, db, config):
    chi, bal = _two_windows(db)
    client = on_dec_3
    # The default period is the one whose window is open now: November, in Chișinău until the 5th.
    rows = rows_of(client.get("/console/dashboard?format=csv&table=coverage"))
    assert rows == [["region", "accounts", "with_reading", "share", "window_opens", "window_closes", "days_left"],
                    ["Bălți", "1", "0", "0.000", "2026-11-01", "2026-11-25", ""],
                    ["Chișinău", "2", "1", "0.500", "2026-11-20", "2026-12-05", "2"]]
    page = text(client.get("/console/dashboard"))
    card = page[page.index('id="deadline"'):page.index("</div>", page.index('id="deadline"'))]
    assert 'id="days-left">2<' in card and "days left for 2026-11" in card and "2026-12-05" in card
    chart = page[page.index('id="chart-coverage"'):page.index("</svg>", page.index('id="chart-coverage"'))]
    assert "50% (1 of 2) closes 2026-12-05, 2 days left" in chart
    assert "0% (1 of 1)" not in chart and "window closed 2026-11-25" in chart
    assert re.search(r"[−-]\d+ day", page) is None  # never a negative number of days
    # December: Bălți's window is open (22 days left), Chișinău's opens on the 20th.
    rows = rows_of(client.get("/console/dashboard?period=2026-12&format=csv&table=coverage"))
    assert rows[1:] == [["Bălți", "1", "1", "1.000", "2026-12-01", "2026-12-25", "22"],
                        ["Chișinău", "2", "0", "0.000", "2026-12-20", "2027-01-05", ""]]
    # One region: its own open window decides the period.
    page = text(client.get(f"/console/dashboard?region={bal.id}"))
    assert "Accounts with a reading for 2026-12" in page and 'id="days-left">22<' in page
    page = text(client.get(f"/console/dashboard?region={chi.id}&period=2026-11"))
    assert 'id="days-left">2<' in page and "2026-12-01" not in page


def test_dashboard_deadline_on_the_last_day_and_after(nocsrf, client, operator, db, config):
    chi = f.region(db, window=(20, 5))
    f.meter(db, f.account(db, chi), previous=500)
    db.commit()
    clock.set_clock(dt.datetime(2026, 12, 5, 20, 0, tzinfo=dt.timezone.utc), frozen=True)  # 22:00 in Chișinău
    assert login(client).status_code == 302
    page = text(client.get("/console/dashboard"))
    assert 'id="days-left">0<' in page and "today is the last day" in page and "for 2026-11" in page
    clock.set_clock(dt.datetime(2026, 12, 5, 22, 30, tzinfo=dt.timezone.utc), frozen=True)  # 6 December there
    assert login(client).status_code == 302  # a new session: the old one idled out as the clock moved on
    page = text(client.get("/console/dashboard?period=2026-11"))
    assert "closed on <span class=\"big\">2026-12-05</span>" in page and 'id="days-left"' not in page
    # The default moves on to the next window (December's, opening on the 20th).
    assert "The window for 2026-12 opens on" in text(client.get("/console/dashboard"))


def test_dashboard_queue_age_and_answers_per_language(oc, db, config):
    region = f.region(db)
    seed_pending(db, config, region=region, created_at=utcnow() - dt.timedelta(days=4))
    seed_pending(db, config, region=region, number="100002", serial="EL0002")
    seed_calls(db, region)
    ages = dict(rows_of(oc.get("/console/dashboard?format=csv&table=queue_age"))[1:])
    assert ages == {"under 1 h": "1", "1–4 h": "0", "4–24 h": "0", "1–3 days": "0", "over 3 days": "1"}
    answers = {r[0]: r[1:] for r in rows_of(oc.get(f"/console/dashboard?{_period_query()}&format=csv&table=answers"))}
    assert answers["language"] == ["speech", "keypad", "asked", "reasked"]
    # Romanian: one spoken answer and nine on the keypad; 10 questions asked, 2 of them again (the
    # transferred call's account). Keys count as answers as much as speech does.
    assert answers["Romanian"] == ["1", "9", "10", "2"]
    assert answers["Russian"] == ["1", "8", "9", "2"]
    page = text(oc.get(f"/console/dashboard?{_period_query()}"))
    speech = page[page.index('id="chart-speech"'):page.index("</svg>", page.index('id="chart-speech"'))]
    assert "10% speech (1 spoken, 9 on keys)" in speech and "Romanian" in speech and ">ro<" not in speech


def test_dashboard_csv_of_an_unknown_table_is_refused(oc, db):
    response = oc.get("/console/dashboard?format=csv&table=secrets")
    assert response.status_code == 400 and "No such table" in text(response)


def test_charts_escape_labels_and_draw_zero_rows():
    svg = charts.bars([{"label": "<script>x</script>", "value": 0}], title="t & u", chart_id="c")
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "t &amp; u" in svg
    empty = charts.columns([], title="none", chart_id="e")
    assert "No data." in empty


# --- 8. CSV -------------------------------------------------------------------------------------------

def test_queue_and_lookup_csv_neutralise_formulas(oc, db, config):
    seeded = seed_pending(db, config, holder="=HYPERLINK(\"http://x\")")
    task = db.get(ReviewTask, seeded["task"].id)
    task.reason = "=cmd|' /C calc'!A0"
    db.commit()
    rows = rows_of(oc.get("/console/queue?format=csv"))
    assert rows[0] == ["item", "received", "zone", "kind", "reason", "region", "utility", "value"]
    assert rows[1][0] == str(task.id) and rows[1][2] == "Europe/Chisinau" and rows[1][4].startswith("'=")
    found = rows_of(oc.get("/console/lookup?q=100001&format=csv"))
    assert found[0] == ["account", "region", "holder", "active"]
    assert found[1][0] == "100001" and found[1][2] == "'=HYPERLINK(\"http://x\")"
    assert db.get(Account, seeded["account"].id).holder_name.startswith("=")  # only the export is quoted


def test_queue_csv_keeps_the_filters(oc, db, config):
    seeded = seed_pending(db, config)
    other = f.region(db, code="BAL", name="Bălți", menu_key=2)
    rows = rows_of(oc.get(f"/console/queue?format=csv&region={other.id}"))
    assert rows == [["item", "received", "zone", "kind", "reason", "region", "utility", "value"]]
    rows = rows_of(oc.get(f"/console/queue?format=csv&region={seeded['region'].id}"))
    assert len(rows) == 2 and rows[1][7] == "1300"


def test_calls_without_steps_still_count(oc, db):
    region = f.region(db)
    db.add(Call(call_sid="CA" + "e" * 32, language="uk", region_id=region.id, outcome="service_not_ready",
                started_at=utcnow(), steps=[]))
    db.commit()
    rows = rows_of(oc.get(f"/console/dashboard?{_period_query()}&format=csv&table=outcomes"))
    assert rows[1:] == [["service not ready", "1"]]
