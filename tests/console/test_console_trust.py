"""Operator actions keep the ``supersedes`` chain billing follows; the console shows probing."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from readings_store import export, service
from readings_store.models import Reading, ReviewTask
from tests import factories as f


def _fresh(db, model, id_):
    db.expire_all()
    return db.get(model, id_)


def _exported_then_pending(db, *pending_values):
    """An accepted reading billing has received (2000), then readings left pending review."""
    region = f.region(db, window=None)
    meter = f.meter(db, f.account(db, region), previous=1000, previous_days_ago=40)
    db.commit()
    exported = service.store_reading(db, meter, "total", Decimal("2000"), channel="phone_keypad")
    db.commit()
    assert export.create_batch(db) is not None
    db.commit()
    pending = [service.store_reading(db, meter, "total", Decimal(v), channel="phone_speech", status="pending_review",
                                     reason="low_confidence") for v in pending_values]
    db.commit()
    task = db.scalars(select(ReviewTask).where(ReviewTask.reading_id == pending[-1].id)).one()
    return exported, pending, task


def test_accepting_a_pending_reading_names_the_exported_one(oc, db):
    exported, (first, second), task = _exported_then_pending(db, "2050", "2100")
    assert oc.post(f"/console/tasks/{task.id}/accept").status_code == 302
    accepted = _fresh(db, Reading, second.id)
    assert accepted.status == "accepted"
    assert accepted.supersedes_id == exported.id
    assert _fresh(db, Reading, first.id).status == "superseded"


def test_a_correction_names_the_exported_reading_not_the_pending_one(oc, db):
    exported, (pending,), task = _exported_then_pending(db, "2050")
    response = oc.post(f"/console/tasks/{task.id}/correct",
                       data={"correct-value": "2100", "correct-reason": "caller read the wrong dial"})
    assert response.status_code == 302
    new = db.scalars(select(Reading).where(Reading.channel == "operator")).one()
    assert (new.value, new.status, new.supersedes_id) == (Decimal("2100"), "accepted", exported.id)
    assert _fresh(db, Reading, pending.id).status == "superseded"
    batch = export.create_batch(db)
    db.commit()
    assert [(r["id"], r["supersedes"]) for r in export.batch_readings(db, batch.id)] == [(new.id, exported.id)]


# --- probing ------------------------------------------------------------------------------------------

def _probe(phone, caller, *values):
    c = phone(caller=caller)
    c.start()
    for k in ("4", "1", "1000003#", *[f"{v}#" for v in values]):
        c.press(k)
    return c


def _probed_account(db, phone):
    """Demo account 1000003: the customer gives 1500, then five values are refused from two
    numbers, and the sixth value is kept for review without a word on why."""
    from readings_store.demo import load_demo

    load_demo(db, accounts_per_region=5)
    db.commit()
    customer = _probe(phone, "+37369555111", "1500")
    customer.press("1")
    # Below the baseline (the previous period's 1000), which is what probing would search for.
    _probe(phone, "anonymous", "750", "875")
    _probe(phone, "+37369555222", "937", "968")
    _probe(phone, "anonymous", "984")
    sixth = _probe(phone, "anonymous", "990")
    sixth.press("1")
    db.expire_all()
    return db.scalars(select(ReviewTask).where(ReviewTask.reason == "repeated_refusals")).one()


def test_the_review_item_shows_the_probing(oc, db, phone):
    task = _probed_account(db, phone)
    page = oc.get(f"/console/tasks/{task.id}").get_data(as_text=True)
    assert 'id="refusals"' in page
    assert '<strong id="refusal-count">5</strong> values refused for account 1000003' in page
    assert '<span id="refusal-callers">withheld, +37369555222</span>' in page
    assert "That is the limit of 5" in page
    for value in ("750", "875", "937", "968", "984"):
        assert f"<td>{value}</td><td>lower than the previous reading</td>" in page


def test_the_dashboard_lists_probed_accounts(oc, db, phone):
    empty = oc.get("/console/dashboard").get_data(as_text=True)
    assert 'id="probing"' in empty and "<td colspan=\"6\">None.</td>" in empty
    _probed_account(db, phone)
    page = oc.get("/console/dashboard").get_data(as_text=True)
    table = page[page.index('id="probing"'):]
    table = table[:table.index("</table>")]
    assert ">1000003</a>" in table and "<td>5</td>" in table and "withheld, +37369555222" in table
    # Filtered to another region, the account is not listed.
    other = oc.get("/console/dashboard?region=2").get_data(as_text=True)
    assert ">1000003</a>" not in other[other.index('id="probing"'):]


def test_a_reading_item_without_refusals_shows_none(oc, db, phone):
    exported, (pending,), task = _exported_then_pending(db, "2050")
    page = oc.get(f"/console/tasks/{task.id}").get_data(as_text=True)
    assert 'id="refusals"' not in page
