"""Recordings (range requests, traversal), lookup, account history, dashboard."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from readings_store.models import Call, Utterance, utcnow
from tests import factories as f

from .helpers import seed_pending


# --- recordings -------------------------------------------------------------------------------------

def test_recording_needs_login(client, pending):
    response = client.get(f"/console/recordings/{pending['utterance'].id}")
    assert response.status_code == 302 and response.headers["Location"].startswith("/console/login")


def test_recording_served_whole_and_by_range(oc, pending, config):
    path = Path(config.recordings_dir) / pending["utterance"].audio_path
    size = path.stat().st_size
    whole = oc.get(f"/console/recordings/{pending['utterance'].id}")
    assert whole.status_code == 200 and whole.mimetype in ("audio/wav", "audio/x-wav")
    assert whole.data == path.read_bytes() and whole.data[:4] == b"RIFF"
    assert whole.headers["Accept-Ranges"] == "bytes"
    assert "private" in whole.headers["Cache-Control"]
    part = oc.get(f"/console/recordings/{pending['utterance'].id}", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.headers["Content-Range"] == f"bytes 100-199/{size}"
    assert part.data == path.read_bytes()[100:200]
    tail = oc.get(f"/console/recordings/{pending['utterance'].id}", headers={"Range": "bytes=-44"})
    assert tail.status_code == 206 and len(tail.data) == 44


def test_recording_outside_the_recordings_folder_is_refused(oc, db, pending, config, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    utterance = db.get(Utterance, pending["utterance"].id)
    for bad in ("../../secret.txt", str(secret), "../" * 12 + "etc/passwd", "missing.wav"):
        utterance.audio_path = bad
        db.commit()
        response = oc.get(f"/console/recordings/{utterance.id}")
        assert response.status_code == 404, bad
        assert b"top secret" not in response.data
    assert oc.get("/console/recordings/99999").status_code == 404
    # The path-looking URL is not a route at all.
    assert oc.get("/console/recordings/..%2F..%2Fsecret.txt").status_code == 404


# --- lookup -----------------------------------------------------------------------------------------

def test_lookup_by_account_number_with_or_without_separators(oc, db):
    region = f.region(db)
    account = f.account(db, region, number="12/345-6", holder="Maria Rusu")
    db.commit()
    for typed in ("12/345-6", "12 345 6", "12-345/6", "123456"):
        response = oc.get("/console/lookup", query_string={"q": typed})
        assert response.status_code == 302, typed
        assert response.headers["Location"] == f"/console/accounts/{account.id}"
    none = oc.get("/console/lookup?q=999").get_data(as_text=True)
    assert "No account matches" in none


def test_lookup_by_phone(oc, db):
    region = f.region(db)
    account = f.account(db, region, number="555", phones=("+37369123456",))
    other = f.account(db, region, number="556", phones=("+37369123456",))
    db.commit()
    for typed in ("+373 69 123 456", "0037369123456", "069123456"):
        page = oc.get("/console/lookup", query_string={"q": typed}).get_data(as_text=True)
        assert f"/console/accounts/{account.id}" in page and f"/console/accounts/{other.id}" in page, typed
        assert "+37369123456" in page


def test_account_page_shows_meters_and_history_with_channels(oc, db, pending):
    page = oc.get(f"/console/accounts/{pending['account'].id}").get_data(as_text=True)
    assert "EL0001" in page and "Ion Popescu" in page
    assert "phone, speech" in page and "import" in page and "waiting for review" in page
    assert ">phone_speech<" not in page and ">pending_review" not in page
    assert "+37369123456" in page
    assert oc.get("/console/accounts/9999").status_code == 404


def test_lookup_by_holder_name_in_any_case_and_alphabet(oc, db):
    region = f.region(db)
    ion = f.account(db, region, number="100001", holder="Ion Popescu")
    maria = f.account(db, region, number="100002", holder="Maria Popescu")
    olga = f.account(db, region, number="100003", holder="Ольга Шевченко")
    f.account(db, region, number="100004", holder="SRL 100% Apă")
    db.commit()
    page = oc.get("/console/lookup?q=popescu").get_data(as_text=True)
    assert f"/console/accounts/{ion.id}" in page and f"/console/accounts/{maria.id}" in page
    assert f"/console/accounts/{olga.id}" not in page
    # Every word must match, in any order; one match opens the account.
    for typed in ("popescu ion", "ION POPESCU", "шевченко", "ОЛЬГА", "ольга шев"):
        response = oc.get("/console/lookup", query_string={"q": typed})
        expected = ion if "ion" in typed.lower() else olga
        assert response.status_code == 302 and response.headers["Location"] == f"/console/accounts/{expected.id}", typed
    # LIKE wildcards are searched for as they are, not as wildcards.
    assert "No account matches" in oc.get("/console/lookup?q=Ion%25Mar").get_data(as_text=True)
    assert oc.get("/console/lookup", query_string={"q": "100% apă"}).status_code == 302
    found = oc.get("/console/lookup?q=popescu&format=csv").get_data(as_text=True).splitlines()
    assert found[0] == "account,region,holder,active" and len(found) == 3


# --- dashboard --------------------------------------------------------------------------------------

def test_dashboard_figures(oc, db, config):
    region = f.region(db)
    seed_pending(db, config, region=region)  # one completed call, one pending reading
    now = utcnow()
    for i, (outcome, language) in enumerate([("completed", "ro"), ("gave_up", "ro"),
                                             ("hung_up", "ru")]):
        db.add(Call(call_sid=f"CA{'d' * 31}{i}", language=language, region_id=region.id, outcome=outcome,
                    started_at=now))
    db.add(Call(call_sid="CA" + "c" * 32, language="ro", region_id=region.id, outcome="completed",
                started_at=now - dt.timedelta(days=2)))
    db.commit()
    page = oc.get("/console/dashboard").get_data(as_text=True)
    assert 'id="calls-today">4<' in page
    assert 'id="completed-share">50%<' in page
    assert 'id="queue-size">1<' in page
    assert 'id="readings-today">1<' in page  # the pending one; the import was 30 days ago
    assert "Chișinău" in page and "gave up after retries" in page and "caller hung up" in page
    regional = oc.get(f"/console/dashboard?region={region.id}").get_data(as_text=True)
    assert "Europe/Chisinau" in regional
    # The day in the page's zone (Europe/Chisinau), whatever the hour of UTC.
    earlier = (now - dt.timedelta(days=2)).astimezone(ZoneInfo("Europe/Chisinau")).date().isoformat()
    assert 'id="calls-today">1<' in oc.get(f"/console/dashboard?date={earlier}").get_data(as_text=True)
