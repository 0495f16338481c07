"""The README's scripted call on the demo data says "saved" whatever the day of the month: the
demo's history readings belong to the previous billing period by the product's own rule."""
from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from readings_store import clock
from readings_store.models import Reading
from tests.conftest import AUTH_TOKEN

README_KEYS = "4 1 1000003# 1500# 1 3"
# Local time in Chisinau (the demo's first region): window 20–5, so these fall inside the window
# that closes the previous month, at its last day, at its first day, outside it, on 29 February
# and across the spring DST switch.
INSTANTS = ("2026-12-01T08:05", "2026-12-03T15:00", "2026-12-05T23:59", "2026-12-06T00:01",
            "2026-12-20T09:00", "2026-12-31T23:30", "2028-02-29T12:00", "2027-03-28T02:59", None)


@pytest.mark.parametrize("local", INSTANTS)
def test_the_readme_scripted_call_saves_its_reading(config, db, monkeypatch, local):
    if local is not None:
        at = dt.datetime.fromisoformat(local).replace(tzinfo=dt.timezone(dt.timedelta(hours=2)))
        clock.set_clock(at)
    monkeypatch.setenv("IVR_DATABASE_URL", config.database_url)
    monkeypatch.setenv("IVR_TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    monkeypatch.setenv("IVR_DATA_DIR", str(config.data_dir))
    from ivr.cli import cli

    runner = CliRunner()
    loaded = runner.invoke(cli, ["demo-data", "--accounts", "5"])
    assert loaded.exit_code == 0, loaded.output
    result = runner.invoke(cli, ["call", "--keys", README_KEYS])
    assert result.exit_code == 0, result.output
    assert "robot: Reading saved." in result.output
    assert "robot: Saved: 1 reading." in result.output
    db.expire_all()
    saved = db.scalars(select(Reading).where(Reading.channel == "phone_keypad")).all()
    assert [(str(r.value), r.status) for r in saved] == [("1500", "accepted")]
