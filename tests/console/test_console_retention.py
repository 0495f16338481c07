"""The console says when an item's audio will be deleted, and that it was."""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from zoneinfo import ZoneInfo

from ivr.ops.recordings import purge
from readings_store import clock

from .helpers import login, seed_pending

NOW = dt.datetime(2031, 5, 14, 10, 0, tzinfo=dt.timezone.utc)
CHISINAU = ZoneInfo("Europe/Chisinau")  # the region's time zone, in which the item page shows times


def _retention(page: str) -> str:
    match = re.search(r'<p class="hint" id="audio-retention">(.*?)</p>', page, re.S)
    return " ".join(match.group(1).split()) if match else ""


def test_item_page_says_when_its_audio_goes(nocsrf, client, operator, db, config, sessions):
    with clock.travel_to(NOW):
        seeded = seed_pending(db, config)
        assert login(client).status_code == 302
        url = f"/console/tasks/{seeded['task'].id}"
        page = client.get(url).get_data(as_text=True)
        assert _retention(page) == "The recording is kept until 90 days after every item of this call is decided."
        assert client.post(f"{url}/reject", data={"reject-reason": "not a meter value"}).status_code == 302
        page = client.get(url).get_data(as_text=True)
        db.expire_all()
        decided = db.get(type(seeded["task"]), seeded["task"].id).resolved_at
        due = (decided + dt.timedelta(days=90)).astimezone(CHISINAU)
        assert _retention(page) == (f"The recording will be deleted on {due:%Y-%m-%d} "
                                    "(90 days after the last item of this call was decided).")
        assert purge(sessions, Path(config.recordings_dir), 90, now=decided + dt.timedelta(days=89)).recordings == 0
        assert purge(sessions, Path(config.recordings_dir), 90, now=decided + dt.timedelta(days=91)).recordings == 1
        page = client.get(url).get_data(as_text=True)
    assert "No recording for this item." in page and 'id="player"' not in page
    gone = (decided + dt.timedelta(days=91)).astimezone(CHISINAU)
    assert _retention(page) == f"The recording was deleted on {gone:%Y-%m-%d}."
