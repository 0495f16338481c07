"""Review queue, item page and its actions: rules, status transitions, audit, double processing."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from ivr.console import review
from ivr.console.views import DEFAULT_TZ
from readings_store import clock
from readings_store.models import AccountPhone, AuditEvent, Call, Reading, ReviewTask, Utterance, utcnow
from tests import factories as f

from .helpers import login, make_operator, seed_pending


def _fresh(db, model, id_):
    db.expire_all()
    return db.get(model, id_)


def _identification(db, region, attempts=("12345", "1 2 3"), caller="+37369000111"):
    call = Call(call_sid=f"CA{'e' * 31}{len(attempts)}", from_number=caller, language="ro", region_id=region.id,
                outcome="account_not_found")
    db.add(call)
    db.flush()
    task = ReviewTask(kind="identification", reason="account_not_found", region_id=region.id, call_id=call.id,
                      details={"attempts": list(attempts), "caller": caller})
    db.add(task)
    db.commit()
    return task, call


# --- queue ------------------------------------------------------------------------------------------

def test_queue_lists_open_items_oldest_first_with_counts(oc, db, config):
    region = f.region(db)
    old = seed_pending(db, config, region=region, number="100001", created_at=utcnow() - dt.timedelta(hours=5))
    new = seed_pending(db, config, region=region, number="100002", serial="W1", utility="cold_water", value="12",
                       previous=10, reason="implausible_consumption")
    ident, _ = _identification(db, region)
    page = oc.get("/console/queue").get_data(as_text=True)
    assert 'id="open-count">3<' in page
    assert "reading: 2" in page and "identification: 1" in page
    order = [page.index(f">#{t.id}<") for t in (old["task"], new["task"], ident)]
    assert order == sorted(order)


def test_queue_filters(oc, db, config):
    r1 = f.region(db)
    r2 = f.region(db, code="BAL", name="Bălți", menu_key=2)
    a = seed_pending(db, config, region=r1, number="1")
    b = seed_pending(db, config, region=r2, number="2", serial="W2", utility="cold_water", value="12", previous=10,
                     reason="implausible_consumption")

    def ids(query):
        page = oc.get("/console/queue?" + query).get_data(as_text=True)
        return {t for t in (a["task"].id, b["task"].id) if f">#{t}<" in page}

    assert ids("") == {a["task"].id, b["task"].id}
    assert ids(f"region={r2.id}") == {b["task"].id}
    assert ids("utility=electricity") == {a["task"].id}
    assert ids("reason=implausible_consumption") == {b["task"].id}
    assert ids("kind=identification") == set()
    # The filter's day is the page's (the console's default zone here), not UTC's: near midnight they differ.
    today = a["task"].created_at.replace(tzinfo=dt.timezone.utc).astimezone(ZoneInfo(DEFAULT_TZ)).date()
    assert ids(f"date={today.isoformat()}") == {a["task"].id, b["task"].id}
    assert ids(f"date={(today - dt.timedelta(days=3)).isoformat()}") == set()
    assert ids("region=abc&utility=bogus&date=nonsense") == {a["task"].id, b["task"].id}


def test_queue_is_paginated(oc, db, config, monkeypatch):
    monkeypatch.setattr("ivr.console.views.PAGE_SIZE", 2)
    region = f.region(db)
    tasks = [seed_pending(db, config, region=region, number=str(200 + i), created_at=utcnow()
                          - dt.timedelta(minutes=10 - i))["task"] for i in range(5)]
    first = oc.get("/console/queue").get_data(as_text=True)
    third = oc.get("/console/queue?page=3").get_data(as_text=True)
    assert f">#{tasks[0].id}<" in first and f">#{tasks[2].id}<" not in first
    assert "page 1 of 3" in first
    assert f">#{tasks[4].id}<" in third and f">#{tasks[0].id}<" not in third


# --- item page --------------------------------------------------------------------------------------

@pytest.fixture
def pending_30_days_on(db, config):
    """``pending`` on a day when the previous reading (30 days back) is in the previous period, so
    that it is exactly 30 days old and the plausible range is 1000 + 30 x 200."""
    clock.set_clock(dt.datetime(2026, 11, 10, 10, tzinfo=dt.timezone.utc))
    return seed_pending(db, config)


def test_item_page_shows_audio_transcript_range_history_and_steps(oc, pending_30_days_on):
    pending = pending_30_days_on
    page = oc.get(f"/console/tasks/{pending['task'].id}").get_data(as_text=True)
    assert f'src="/console/recordings/{pending["utterance"].id}"' in page and "<audio" in page
    # "three" had confidence 0.41, under the 0.85 threshold: marked; the others are not.
    assert '<mark class="low" title="confidence 0.41">three</mark>' in page
    assert '<mark class="low" title="confidence 0.97">one</mark>' not in page
    assert "one two zero zero" in page  # alternative
    assert "Parsed value: <strong>1300</strong>" in page
    # Previous 1000 thirty days ago, 200 kWh a day: plausible up to 7000.
    assert "Plausible: 1000 – 7000" in page
    assert 'id="history"' in page and "import" in page
    assert 'id="steps"' in page and "confirm" in page
    assert "+37369123456" in page and "Ion Popescu" in page


def test_item_page_escapes_caller_and_import_data(oc, db, config):
    evil = "<script>alert('x')</script>"
    seeded = seed_pending(db, config, holder=evil, transcript=evil,
                          words=[{"text": evil, "confidence": 0.2, "start": 0, "end": 1},
                                 {"text": "<b>bold</b>", "confidence": 0.99, "start": 1, "end": 2}])
    seeded["utterance"].alternatives = [{"text": evil, "confidence": 0.1}]
    db.commit()
    for url in (f"/console/tasks/{seeded['task'].id}", f"/console/accounts/{seeded['account'].id}",
                "/console/lookup?q=100001&go=0", "/console/queue"):
        page = oc.get(url).get_data(as_text=True)
        assert "<script>alert" not in page and "<b>bold" not in page, url
    page = oc.get(f"/console/tasks/{seeded['task'].id}").get_data(as_text=True)
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page


# --- accept / correct / reject ----------------------------------------------------------------------

def test_accept(oc, db, pending, operator):
    response = oc.post(f"/console/tasks/{pending['task'].id}/accept")
    assert response.status_code == 302
    assert response.headers["Location"].startswith(f"/console/tasks/next?after={pending['task'].id}")
    reading = _fresh(db, Reading, pending["reading"].id)
    assert reading.status == "accepted" and reading.operator_id == operator.id
    task = db.get(ReviewTask, pending["task"].id)
    assert (task.status, task.resolution, task.resolved_by) == ("done", "accepted", operator.id)
    assert task.resolved_at is not None
    assert db.get(Utterance, pending["utterance"].id).decision == "accepted"
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "reading.accept")).one()
    assert (event.actor_kind, event.actor_id, event.actor_name) == ("operator", operator.id, "olga")
    assert event.before["status"] == "pending_review" and event.after["status"] == "accepted"
    assert event.after["override"] is False


def test_accept_supersedes_an_earlier_reading_of_the_period(oc, db, config):
    region = f.region(db)
    seeded = seed_pending(db, config, region=region)
    earlier = Reading(meter_id=seeded["meter"].id, register="total", value=Decimal("1100"),
                      period=seeded["reading"].period, channel="phone_keypad", status="accepted",
                      taken_at=utcnow() - dt.timedelta(hours=2), received_at=utcnow() - dt.timedelta(hours=2))
    db.add(earlier)
    db.commit()
    assert oc.post(f"/console/tasks/{seeded['task'].id}/accept").status_code == 302
    assert _fresh(db, Reading, earlier.id).status == "superseded"
    assert db.get(Reading, seeded["reading"].id).status == "accepted"


def test_next_item_opens_after_an_action(oc, db, config):
    region = f.region(db)
    first = seed_pending(db, config, region=region, number="1", created_at=utcnow() - dt.timedelta(hours=2))
    second = seed_pending(db, config, region=region, number="2", created_at=utcnow() - dt.timedelta(hours=1))
    response = oc.post(f"/console/tasks/{first['task'].id}/accept", follow_redirects=False)
    nxt = oc.get(response.headers["Location"])
    assert nxt.headers["Location"].startswith(f"/console/tasks/{second['task'].id}")
    page = oc.get(nxt.headers["Location"]).get_data(as_text=True)
    assert f"Accepted 1300 for item #{first['task'].id}." in page
    # Skipping ("n") from the last open one wraps round, and an empty queue lands on the queue page.
    skip = oc.get(f"/console/tasks/next?after={second['task'].id}")
    assert skip.headers["Location"].startswith("/console/queue")
    oc.post(f"/console/tasks/{second['task'].id}/reject", data={"reject-reason": "noise"})
    cleared = oc.get(f"/console/tasks/next?after={second['task'].id}", follow_redirects=True)
    assert "The queue is clear." in cleared.get_data(as_text=True)


def test_accept_refused_by_a_rule_unless_overridden_with_a_reason(oc, db, config):
    # 9000 kWh in 30 days is 300 a day, above the 200 limit.
    seeded = seed_pending(db, config, value="10000", reason="implausible_consumption")
    url = f"/console/tasks/{seeded['task'].id}/accept"
    refused = oc.post(url)
    assert refused.status_code == 422
    assert "Refused by the rules: consumption above the plausible limit (" in refused.get_data(as_text=True)
    assert "implausible_consumption" not in refused.get_data(as_text=True).split("<main>")[1]
    assert _fresh(db, Reading, seeded["reading"].id).status == "pending_review"
    no_reason = oc.post(url, data={"accept-override": "y", "accept-reason": "  "})
    assert no_reason.status_code == 422 and "An override needs a reason." in no_reason.get_data(as_text=True)
    assert _fresh(db, ReviewTask, seeded["task"].id).status == "open"
    ok = oc.post(url, data={"accept-override": "y", "accept-reason": "caller confirmed: new heat pump"})
    assert ok.status_code == 302
    reading = _fresh(db, Reading, seeded["reading"].id)
    assert (reading.status, reading.status_reason) == ("accepted", "operator_override")
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "reading.accept")).one()
    assert event.after["override"] is True and event.reason == "caller confirmed: new heat pump"


def test_a_value_that_cannot_be_on_the_meter_is_never_accepted(oc, db, config):
    seeded = seed_pending(db, config, value="1234567", reason="too_many_digits")
    refused = oc.post(f"/console/tasks/{seeded['task'].id}/accept", data={"accept-override": "y", "accept-reason": "sure"})
    assert refused.status_code == 422 and "cannot be overridden" in refused.get_data(as_text=True)
    assert _fresh(db, Reading, seeded["reading"].id).status == "pending_review"


def test_correct_stores_a_new_operator_reading(oc, db, pending, operator):
    response = oc.post(f"/console/tasks/{pending['task'].id}/correct",
                       data={"correct-value": "1200,5", "correct-reason": "caller said twelve hundred point five"})
    assert response.status_code == 302
    old = _fresh(db, Reading, pending["reading"].id)
    assert (old.status, old.status_reason) == ("superseded", "operator_corrected")
    new = db.scalars(select(Reading).where(Reading.channel == "operator")).one()
    assert (new.value, new.status, new.channel, new.operator_id) == (Decimal("1200.5"), "accepted", "operator",
                                                                    operator.id)
    # Billing never saw the pending reading, and nothing was accepted before in the period.
    assert new.supersedes_id is None
    assert new.period == old.period and new.call_id == old.call_id and new.utterance_id == old.utterance_id
    task = db.get(ReviewTask, pending["task"].id)
    assert (task.status, task.resolution) == ("done", "corrected")
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "reading.correct")).one()
    assert event.before["value"] == "1300" and event.after["value"] == "1200.5"
    assert event.after["reading_id"] == new.id and event.reason == "caller said twelve hundred point five"
    page = oc.get(f"/console/tasks/{pending['task'].id}").get_data(as_text=True)
    assert "corrected the reading" in page and "1300 (waiting for review)" in page and "1200.5 (accepted)" in page
    history = oc.get(f"/console/accounts/{pending['account'].id}").get_data(as_text=True)
    assert "operator" in history and "olga" in history


@pytest.mark.parametrize("data, message", [
    ({"correct-value": "1200", "correct-reason": ""}, "A correction needs a reason."),
    ({"correct-value": "", "correct-reason": "x"}, "Enter the correct value."),
    ({"correct-value": "12a0", "correct-reason": "x"}, "is not a meter value"),
    ({"correct-value": "900", "correct-reason": "x"}, "Refused by the rules: lower than the previous reading ("),
    ({"correct-value": "1200.55", "correct-reason": "x", "correct-override": "y"}, "cannot be overridden"),
])
def test_bad_corrections_are_refused_and_change_nothing(oc, db, pending, data, message):
    response = oc.post(f"/console/tasks/{pending['task'].id}/correct", data=data)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert _fresh(db, Reading, pending["reading"].id).status == "pending_review"
    assert db.get(ReviewTask, pending["task"].id).status == "open"
    assert db.scalars(select(Reading).where(Reading.channel == "operator")).first() is None
    assert db.scalars(select(AuditEvent)).first() is None


def test_correction_below_previous_with_override(oc, db, pending):
    response = oc.post(f"/console/tasks/{pending['task'].id}/correct",
                       data={"correct-value": "5", "correct-reason": "meter replaced last week", "correct-override": "y"})
    assert response.status_code == 302
    new = db.scalars(select(Reading).where(Reading.channel == "operator")).one()
    assert (new.value, new.status, new.status_reason) == (Decimal("5"), "accepted", "operator_override")


def test_reject_needs_a_reason(oc, db, pending):
    url = f"/console/tasks/{pending['task'].id}/reject"
    assert oc.post(url, data={"reject-reason": ""}).status_code == 422
    assert _fresh(db, Reading, pending["reading"].id).status == "pending_review"
    assert oc.post(url, data={"reject-reason": "only noise on the recording"}).status_code == 302
    reading = _fresh(db, Reading, pending["reading"].id)
    assert (reading.status, reading.status_reason) == ("rejected", "operator_rejected")
    task = db.get(ReviewTask, pending["task"].id)
    assert (task.status, task.resolution) == ("done", "rejected")
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "reading.reject")).one()
    assert event.reason == "only noise on the recording"


def test_second_operator_gets_already_handled(app, oc, db, pending):
    make_operator(db, username="petru")
    db.commit()
    other = app.test_client()
    assert login(other, username="petru").status_code == 302
    # Both have the page open; olga accepts first.
    assert other.get(f"/console/tasks/{pending['task'].id}").status_code == 200
    assert oc.post(f"/console/tasks/{pending['task'].id}/accept").status_code == 302
    response = other.post(f"/console/tasks/{pending['task'].id}/correct", data={"correct-value": "1250", "correct-reason": "x"},
                          follow_redirects=True)
    assert "already handled by olga (accepted)" in response.get_data(as_text=True)
    assert db.scalars(select(Reading).where(Reading.channel == "operator")).first() is None
    assert len(db.scalars(select(AuditEvent)).all()) == 1


def test_conditional_update_stops_a_race(sessions, config, db, pending):
    """Two sessions load the same open task; the second to write finds it already claimed."""
    ann = make_operator(db, username="ann")
    bob = make_operator(db, username="bob")
    db.commit()
    first, second = sessions(), sessions()
    try:
        t1 = first.get(ReviewTask, pending["task"].id)
        t2 = second.get(ReviewTask, pending["task"].id)
        assert t1.status == t2.status == "open"
        assert t1.reading.status == t2.reading.status == "pending_review"
        review.accept(first, config, t1, review.Actor(ann.id, "ann"))
        first.commit()
        with pytest.raises(review.AlreadyHandled, match="already handled by ann"):
            review.reject(second, config, t2, review.Actor(bob.id, "bob"), reason="dup")
    finally:
        first.close()
        second.close()
    assert _fresh(db, Reading, pending["reading"].id).status == "accepted"


def test_reading_replaced_by_a_newer_call_is_not_overwritten(oc, db, config, pending):
    """The phone line stored a newer reading meanwhile: the old item closed itself."""
    from readings_store import service

    service.store_reading(db, pending["meter"], "total", Decimal("1310"), channel="phone_keypad")
    db.commit()
    response = oc.post(f"/console/tasks/{pending['task'].id}/accept", follow_redirects=True)
    assert "already handled" in response.get_data(as_text=True)
    assert _fresh(db, Reading, pending["reading"].id).status == "superseded"


# --- identification ---------------------------------------------------------------------------------

def test_link_identification_to_an_account(oc, db, config):
    region = f.region(db)
    account = f.account(db, region, number="12/345-6")
    task, call = _identification(db, region)
    page = oc.get(f"/console/tasks/{task.id}").get_data(as_text=True)
    assert "12345, 1 2 3" in page and "+37369000111" in page
    response = oc.post(f"/console/tasks/{task.id}/link",
                       data={"link-region_id": region.id, "link-number": "12 345 6", "link-add_phone": "y"})
    assert response.status_code == 302
    task = _fresh(db, ReviewTask, task.id)
    assert (task.status, task.resolution) == ("done", "linked")
    assert db.get(Call, call.id).account_id == account.id
    assert db.scalars(select(AccountPhone.phone).where(AccountPhone.account_id == account.id)).all() == \
        ["+37369000111"]
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "identification.link")).one()
    assert event.after["account_id"] == account.id and event.entity == "review_task"


def test_an_identification_item_plays_every_spoken_answer(oc, db, config):
    region = f.region(db)
    task, call = _identification(db, region)
    (config.recordings_dir / call.call_sid).mkdir(parents=True)
    answers = []
    for n, (transcript, parsed) in enumerate((("[unk] [unk]", None), ("nine nine nine", "999"))):
        path = f"{call.call_sid}/00{n}-account.wav"
        (config.recordings_dir / path).write_bytes(b"RIFF....WAVE")
        answers.append(Utterance(call_id=call.id, step="account", engine="vosk", audio_path=path,
                                 transcript=transcript, parsed_value=parsed, decision="retry"))
    answers.append(Utterance(call_id=call.id, step="account", engine="vosk", audio_path=None, transcript=""))
    db.add_all(answers)
    db.flush()
    task.details = {**task.details, "utterances": [u.id for u in answers]}
    db.commit()
    page = oc.get(f"/console/tasks/{task.id}").get_data(as_text=True)
    listed = page.split('id="spoken-answers"')[1].split("</ol>")[0]
    assert listed.count("<li>") == 3 and "“[unk] [unk]”" in listed and "(heard as 999)" in listed
    for u in answers[:2]:
        assert f"/console/recordings/{u.id}" in listed
        assert oc.get(f"/console/recordings/{u.id}").status_code == 200
    assert "no recording" in listed


def test_link_to_unknown_account_is_refused(oc, db):
    region = f.region(db)
    task, _ = _identification(db, region)
    response = oc.post(f"/console/tasks/{task.id}/link", data={"link-region_id": region.id, "link-number": "999"})
    assert response.status_code == 422 and "No account" in response.get_data(as_text=True)
    assert _fresh(db, ReviewTask, task.id).status == "open"


def test_close_identification_needs_a_reason(oc, db):
    region = f.region(db)
    task, _ = _identification(db, region)
    assert oc.post(f"/console/tasks/{task.id}/close", data={"close-reason": ""}).status_code == 422
    assert oc.post(f"/console/tasks/{task.id}/close", data={"close-reason": "wrong number"}).status_code == 302
    task = _fresh(db, ReviewTask, task.id)
    assert (task.status, task.resolution) == ("done", "closed")
    assert db.scalars(select(AuditEvent.reason).where(AuditEvent.action == "identification.close")).one() == \
        "wrong number"


def test_reading_actions_refused_on_identification_items(oc, db):
    region = f.region(db)
    task, _ = _identification(db, region)
    assert oc.post(f"/console/tasks/{task.id}/accept").status_code == 422
    assert oc.post("/console/tasks/99999/accept").status_code == 404


def test_plausible_range_of_a_corrected_item_is_against_the_reading_before(oc, pending_30_days_on):
    pending = pending_30_days_on
    oc.post(f"/console/tasks/{pending['task'].id}/correct",
            data={"correct-value": "1200", "correct-reason": "misheard"})
    page = oc.get(f"/console/tasks/{pending['task'].id}").get_data(as_text=True)
    assert "Plausible: 1000 – 7000" in page
