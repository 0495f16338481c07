"""The admin-only Regions page: every setting listed and edited through the region service;
bad input shown with its reason and nothing changed; operators get 403; CSRF required."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from readings_store.models import AuditEvent, Region
from readings_store.regions import create_region, describe, get_region
from tests import factories as f

from .helpers import csrf_from, login


@pytest.fixture
def regions(db):
    chi = create_region(db, "CHI", "Chișinău", menu_key=1, names={"ru": "Кишинёв"}, phone_prefixes="+37322",
                        operator_number="+37322123456", windows={"water": "20-25", "electricity": "15-end"})
    bal = create_region(db, "BAL", "Bălți", menu_key=2)
    f.account(db, bal)
    create_region(db, "UNG", "Ungheni")  # imported, no key yet
    db.commit()
    return chi


@pytest.fixture
def ac(client, admin):
    """A client logged in as an administrator (CSRF on: tokens are read from the pages)."""
    assert login(client, username="ada").status_code == 302
    return client


def _form(page: str, **changes) -> dict:
    """The edit form's current values (as the browser would send them), with ``changes``."""
    import re

    data = {m.group(1): m.group(2) for m in re.finditer(r'<input[^>]*name="(region-[a-z_]+)"[^>]*value="([^"]*)"', page)}
    for name in re.findall(r'<input[^>]*name="(region-[a-z_]+)"', page):
        data.setdefault(name, "")
    for tag in re.findall(r'<input[^>]*type="checkbox"[^>]*>', page):  # sent only when ticked
        if " checked" not in tag:
            data.pop(re.search(r'name="([^"]+)"', tag).group(1), None)
    data.update({f"region-{k}": v for k, v in changes.items()})
    data["csrf_token"] = csrf_from(page)
    return data


def test_admin_sees_every_setting_and_the_nav_link(ac, regions):
    page = ac.get("/console/admin/regions").get_data(as_text=True)
    assert 'href="/console/admin/regions"' in page
    for text in ("CHI", "Chișinău", "Кишинёв", "Europe/Chisinau", "12345", "08:00–17:00", "+37322123456",
                 "+37322", "cold water 20-25", "electricity 15-end", "hot water 20-25", "BAL", "UNG"):
        assert text in page, text
    rows = page.split("<tbody>")[1].split("</tr>")
    assert "CHI" in rows[0] and "BAL" in rows[1] and "UNG" in rows[2] and "—" in rows[2]


def test_operators_get_403_everywhere(client, operator, regions, db):
    assert login(client).status_code == 302
    page = client.get("/console/queue").get_data(as_text=True)
    assert "/console/admin/regions" not in page
    token = csrf_from(page)
    for method, url in [("GET", "/console/admin/regions"), ("GET", "/console/admin/regions/new"),
                        ("GET", f"/console/admin/regions/{regions.id}"),
                        ("POST", f"/console/admin/regions/{regions.id}"), ("POST", "/console/admin/regions/new"),
                        ("POST", f"/console/admin/regions/{regions.id}/remove")]:
        response = client.open(url, method=method, data={"csrf_token": token, "region-menu_key": "9"})
        assert response.status_code == 403, (method, url)
    db.expire_all()
    assert get_region(db, "CHI").menu_key == 1


def test_admin_edits_every_setting(ac, regions, db):
    page = ac.get(f"/console/admin/regions/{regions.id}").get_data(as_text=True)
    assert 'value="Кишинёв"' in page and 'value="+37322"' in page and 'value="15-end"' in page
    data = _form(page, code="CHIS", name="Chisinau", name_ro="Chișinău", name_ru="Кишинёв", name_uk="Кишинів",
                 name_en="", menu_key="12", timezone="Europe/Kyiv", work_days="123456", work_start="07:00",
                 work_end="19:30", operator_number="+37322 555 666", phone_prefixes="+37322, +373221",
                 window_all="25-5", window_electricity="", window_gas="1-end", ask_org_name="y")
    response = ac.post(f"/console/admin/regions/{regions.id}", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)
    assert "Region CHIS saved." in ac.get(response.headers["Location"]).get_data(as_text=True)
    db.expire_all()
    assert describe(db.get(Region, regions.id)) == {
        "code": "CHIS", "name": "Chisinau", "names": {"ro": "Chișinău", "ru": "Кишинёв", "uk": "Кишинів"},
        "menu_key": 12, "timezone": "Europe/Kyiv", "work_days": "123456", "work_start": "07:00", "work_end": "19:30",
        "operator_number": "+37322555666", "phone_prefixes": ["+37322", "+373221"],
        "windows": {"all": "25-5", "cold_water": "20-25", "gas": "1-end", "hot_water": "20-25"},
        "ask_org_name": True,
    }
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "region.update")).one()
    assert event.actor_kind == "operator" and event.actor_name == "ada" and event.after["code"] == "CHIS"
    # Ticked, it is shown ticked; sent unticked, it is off again.
    page = ac.get(f"/console/admin/regions/{regions.id}").get_data(as_text=True)
    assert re.search(r'<input[^>]*checked[^>]*name="region-ask_org_name"|<input[^>]*name="region-ask_org_name"[^>]*checked',
                     page)
    assert ac.post(f"/console/admin/regions/{regions.id}", data=_form(page)).status_code == 302
    db.expire_all()
    assert db.get(Region, regions.id).ask_org_name  # the form sent it ticked, as shown
    data = {k: v for k, v in _form(page).items() if k != "region-ask_org_name"}
    assert ac.post(f"/console/admin/regions/{regions.id}", data=data).status_code == 302
    db.expire_all()
    assert not db.get(Region, regions.id).ask_org_name


@pytest.mark.parametrize("changes, message", [
    ({"menu_key": "2"}, "menu key 2 is already used by region BAL (Bălți)"),
    ({"menu_key": "100"}, "menu key must be from 1 to 99"),
    ({"code": "BAL"}, "region code BAL is already used by region BAL (Bălți)"),
    ({"timezone": "Europe/Nowhere"}, "timezone &#39;Europe/Nowhere&#39; is not a known time zone"),
    ({"work_days": "0123"}, "working days must be ISO weekday digits"),
    ({"work_start": "18:00"}, "working hours must start before they end, got 18:00-17:00"),
    ({"operator_number": "+373"}, "operator number &#39;+373&#39; is not a valid phone number"),
    ({"phone_prefixes": "+37322, 22"}, "phone prefix &#39;22&#39; must be + and 1-15 digits"),
    ({"window_gas": "10-45"}, "a window day must be from 1 to 31"),
    ({"name": ""}, "the region name must not be empty"),
])
def test_bad_input_is_explained_and_changes_nothing(ac, regions, db, changes, message):
    before = describe(regions)
    page = ac.get(f"/console/admin/regions/{regions.id}").get_data(as_text=True)
    response = ac.post(f"/console/admin/regions/{regions.id}", data=_form(page, name_en="Chisinau", **changes))
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert message in body and "Nothing was changed." in body
    key, value = next(iter(changes.items()))
    assert value == "" or f'value="{value}"' in body.replace("&#39;", "'")  # what was typed is kept
    db.expire_all()
    assert describe(db.get(Region, regions.id)) == before
    assert db.scalars(select(AuditEvent).where(AuditEvent.action == "region.update")).all() == []


def test_post_without_csrf_token_changes_nothing(ac, regions, db):
    page = ac.get(f"/console/admin/regions/{regions.id}").get_data(as_text=True)
    data = _form(page, menu_key="7")
    del data["csrf_token"]
    assert ac.post(f"/console/admin/regions/{regions.id}", data=data).status_code == 400
    db.expire_all()
    assert get_region(db, "CHI").menu_key == 1


def test_admin_adds_a_region(ac, regions, db):
    page = ac.get("/console/admin/regions/new").get_data(as_text=True)
    assert 'value="3"' in page  # the next free menu key is proposed
    response = ac.post("/console/admin/regions/new",
                       data=_form(page, code="CAH", name="Cahul", name_ru="Кагул", phone_prefixes="+373299",
                                  window_all="1-end"))
    assert response.status_code == 302, response.get_data(as_text=True)
    db.expire_all()
    cah = get_region(db, "CAH")
    assert (cah.menu_key, cah.name_in("ru"), cah.phone_prefixes, describe(cah)["windows"]) == \
        (3, "Кагул", ["+373299"], {"all": "1-end"})
    again = ac.post("/console/admin/regions/new", data=_form(page, code="CAH", name="Cahul 2", menu_key="4"))
    assert again.status_code == 422 and "region code CAH is already used" in again.get_data(as_text=True)


def test_remove_is_refused_while_the_region_has_accounts(ac, regions, db):
    bal = get_region(db, "BAL")
    page = ac.get(f"/console/admin/regions/{bal.id}").get_data(as_text=True)
    response = ac.post(f"/console/admin/regions/{bal.id}/remove", data={"csrf_token": csrf_from(page)},
                       follow_redirects=True)
    assert "still has 1 account(s); it was not removed" in response.get_data(as_text=True)
    ung = get_region(db, "UNG")
    response = ac.post(f"/console/admin/regions/{ung.id}/remove", data={"csrf_token": csrf_from(page)},
                       follow_redirects=True)
    assert "Region UNG removed." in response.get_data(as_text=True)
    db.expire_all()
    assert sorted(r.code for r in db.scalars(select(Region))) == ["BAL", "CHI"]
