"""``supersedes`` on every channel: it names the last reading of that meter, register and period that
billing has received in an export batch, else nothing; a reading replaced before it was exported is
never exported.

The customer saves 1120, corrects it to 1125 before any export: the first batch holds 1125 alone,
naming nothing. Then 1126 after that export: the next batch holds 1126, naming 1125.
"""
from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from sqlalchemy import select

from ivr.console import review
from readings_store import export, intake, service
from readings_store.models import Reading, ReviewTask
from tests.console.helpers import make_operator
from tests.integration.test_intake_channels import CUSTOMER, SAVED, _home, by_phone, by_text

pytestmark = pytest.mark.db


def _meter(db):
    return db.scalars(select(Reading).where(Reading.channel == "import")).one().meter


def _batch(db) -> list[tuple[str, str, int | None, int]]:
    """A new export batch: (value, channel, supersedes, id) of this period's readings."""
    batch = export.create_batch(db)
    db.commit()
    assert batch is not None
    return [(r["value"], r["channel"], r["supersedes"], r["id"]) for r in export.batch_readings(db, batch.id)
            if r["channel"] != "import"]


def _pending(db, meter, value: str) -> ReviewTask:
    """A value the phone line kept for an operator (understood with low confidence)."""
    reading = service.store_reading(db, meter, "total", Decimal(value), channel="phone_speech",
                                    status="pending_review", reason="low_confidence")
    db.flush()
    return db.scalars(select(ReviewTask).where(ReviewTask.reading_id == reading.id)).one()


@pytest.fixture
def givers(db, phone, client, config):
    """channel -> give(value): the customer (or an operator) gives ``value`` by that channel."""
    _home(db, "1100")
    meter = _meter(db)
    operator = make_operator(db)
    db.commit()
    actor = review.Actor(operator.id, operator.username)
    wrong = itertools.count(1)

    def by_api(value):
        verdict, _ = intake.take(db, meter, "total", value, intake.Source("api"), config)
        db.commit()
        assert verdict.outcome == "accepted"

    def operator_accepts(value):
        review.accept(db, config, _pending(db, meter, value), actor)
        db.commit()

    def operator_corrects(value):
        task = _pending(db, meter, str(1100 + next(wrong)))  # heard wrong, corrected by the operator
        review.correct(db, config, task, actor, value=value, reason="listened to the recording")
        db.commit()

    return {
        "phone": lambda value: SAVED in by_phone(phone, CUSTOMER, value) or pytest.fail("not saved"),
        "sms": lambda value: by_text(client, CUSTOMER, value).endswith("Accepted.") or pytest.fail("not accepted"),
        "api": by_api,
        "operator accept": operator_accepts,
        "operator correct": operator_corrects,
    }


CHANNELS = {"phone": "phone_keypad", "sms": "sms", "api": "api", "operator accept": "phone_speech",
            "operator correct": "operator"}


@pytest.mark.parametrize("channel", list(CHANNELS))
def test_supersedes_names_only_what_billing_received(db, givers, channel):
    give = givers[channel]
    give("1120")
    give("1125")
    first = _batch(db)
    assert [row[:3] for row in first] == [("1125", CHANNELS[channel], None)]
    give("1126")
    second = _batch(db)
    assert [row[:3] for row in second] == [("1126", CHANNELS[channel], first[0][3])]
    # The replaced readings are superseded and never exported.
    db.expire_all()
    never = db.scalars(select(Reading).where(Reading.channel != "import", Reading.export_batch_id.is_(None))).all()
    assert {r.status for r in never} <= {"superseded"}
    assert "1120" in {format(r.value, "f") for r in never}
