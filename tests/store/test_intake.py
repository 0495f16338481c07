"""The intake policy's table of cases: one function judges one value for any channel, given who
gave it, against the baseline, and says what to store.

Every case runs on a meter whose last reading (1113, an import of the previous period) is the
baseline, at a fixed moment, so it passes on any day at any hour.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal as D

import pytest
from sqlalchemy import func, select

from readings_store import export, intake, service
from readings_store.models import Call, Reading, ReviewTask, ValueRefusal
from tests import factories as f

pytestmark = pytest.mark.db

NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.timezone.utc)
BEFORE = NOW - dt.timedelta(days=40)  # the previous period's reading
CUSTOMER = "+37369555111"  # on file for the account
STRANGER = "+37369555222"
STRANGER_2 = "+37369555333"


@dataclass
class Policy:
    probe_limit: int = 5

    def daily_limit(self, utility: str) -> D:
        return D("200")


class World:
    """An account with the customer's number on file, one electricity meter (6 digits, 1 decimal)
    whose last reading is 1113, and the calls that give values."""

    def __init__(self, db):
        self.db = db
        region = f.region(db, window=None)
        self.account = f.account(db, region, number="1000003", phones=(CUSTOMER,))
        self.meter = f.meter(db, self.account, digits=6, decimals=1)
        self.base = Reading(meter_id=self.meter.id, register="total", value=D("1113"), period=f"{BEFORE:%Y-%m}",
                            taken_at=BEFORE, received_at=BEFORE, channel="import", status="accepted")
        db.add(self.base)
        self.calls = {}
        for name, number in (("customer", CUSTOMER), ("stranger", STRANGER), ("withheld", None),
                             ("withheld again", None)):
            call = Call(call_sid=f"CA{len(self.calls):032d}", from_number=number)
            db.add(call)
            db.flush()
            self.calls[name] = call.id
        db.commit()
        self.texts = 0

    def source(self, who: str) -> intake.Source:
        if who.endswith("by text"):
            self.texts += 1
            phone = {"customer by text": CUSTOMER, "stranger by text": STRANGER,
                     "another stranger by text": STRANGER_2}[who]
            return intake.Source("sms", phone=phone, message_sid=f"SM{self.texts:032x}")
        if who in ("operator", "import", "api"):
            return intake.Source(who)
        call = who.removesuffix(" by phone")
        return intake.Source("phone_keypad", phone=self.db.get(Call, self.calls[call]).from_number,
                             call_id=self.calls[call])

    def judge(self, who: str, value: str, policy: Policy | None = None) -> intake.Verdict:
        return intake.judge(self.db, self.meter, "total", value, self.source(who), policy or Policy(), now=NOW)

    def take(self, who: str, value: str, policy: Policy | None = None) -> tuple[intake.Verdict, Reading | None]:
        verdict, reading = intake.take(self.db, self.meter, "total", value, self.source(who), policy or Policy(),
                                       now=NOW)
        self.db.commit()
        return verdict, reading

    def export(self) -> None:
        assert export.create_batch(self.db) is not None
        self.db.commit()

    def readings(self) -> list[tuple[str, str, str | None]]:
        self.db.expire_all()
        return [(format(r.value, "f"), r.status, r.status_reason) for r in self.db.scalars(
            select(Reading).where(Reading.period == f"{NOW:%Y-%m}").order_by(Reading.id))]

    def refusals(self) -> int:
        return self.db.scalar(select(func.count()).select_from(ValueRefusal))


@pytest.fixture
def world(db):
    return World(db)


# Earlier values of the period (stored through the policy; "export": billing takes what is accepted),
# then who gives which value, and the verdict.
CASES = [
    # Nothing earlier in the period: judged against the baseline only, whoever gives it.
    ("first value, customer by phone", [], "customer by phone", "1150.5", ("accepted", None)),
    ("first value, withheld number", [], "withheld by phone", "1999.9", ("accepted", None)),
    ("first value, stranger by text", [], "stranger by text", "1200", ("accepted", None)),
    ("first value, operator", [], "operator", "1200", ("accepted", None)),
    ("first value, the API", [], "api", "1200", ("accepted", None)),
    ("first value, an import", [], "import", "1200", ("accepted", None)),
    # The rules against the baseline, for every channel.
    ("lower than the baseline, by phone", [], "customer by phone", "1100", ("refused", "below_previous")),
    ("lower than the baseline, by text", [], "stranger by text", "1100", ("refused", "below_previous")),
    ("lower than the baseline, operator", [], "operator", "1100", ("refused", "below_previous")),
    ("lower than the baseline, the API", [], "api", "1100", ("refused", "below_previous")),
    ("implausible over the baseline", [], "customer by text", "99999", ("refused", "implausible_consumption")),
    ("not on the dial", [], "customer by phone", "1234567", ("refused", "too_many_digits")),
    ("too many decimals", [], "withheld by phone", "1200.55", ("refused", "too_many_decimals")),
    ("not a number", [], "stranger by text", "12a", ("refused", "not_a_number")),
    # A withheld or unknown number's reading is never the baseline.
    ("the customer after a stranger's first value", [("withheld by phone", "1999.9")], "customer by phone",
     "1150.5", ("accepted", None)),
    ("the customer by text after a stranger's first value", [("stranger by text", "1999.9")], "customer by text",
     "1150.5", ("accepted", None)),
    ("the operator after a stranger's first value", [("stranger by phone", "1999.9")], "operator", "1150.5",
     ("accepted", None)),
    ("the customer after a stranger's exported value", [("stranger by text", "1999.9"), "export"],
     "customer by phone", "1150.5", ("accepted", None)),
    # The customer corrects their own reading: judged against the baseline, not the reading replaced.
    ("own correction higher", [("customer by phone", "1150")], "customer by phone", "1900", ("accepted", None)),
    ("own correction lower", [("customer by phone", "1150")], "customer by text", "1120", ("accepted", None)),
    ("own correction below the baseline", [("customer by phone", "1150")], "customer by phone", "1100",
     ("refused", "below_previous")),
    ("the customer over an operator's value", [("operator", "1150")], "customer by text", "1140",
     ("accepted", None)),
    ("the customer over an exported value", [("customer by phone", "1150"), "export"], "customer by phone", "1160",
     ("accepted", None)),
    ("the customer below an exported value", [("customer by phone", "1150"), "export"], "customer by text", "1140",
     ("refused", "below_previous")),
    # A withheld or unknown number replacing a reading someone else gave, or one billing has: review.
    ("a stranger over the customer", [("customer by phone", "1150")], "stranger by phone", "1160",
     ("review", "replaces_other_caller")),
    ("a withheld number over the customer's text", [("customer by text", "1150")], "withheld by phone", "1160",
     ("review", "replaces_other_caller")),
    ("a stranger over an operator", [("operator", "1150")], "stranger by text", "1160",
     ("review", "replaces_other_caller")),
    ("a stranger over the API", [("api", "1150")], "stranger by text", "1160", ("review", "replaces_other_caller")),
    ("a stranger over another stranger", [("stranger by text", "1150")], "another stranger by text", "1160",
     ("review", "replaces_other_caller")),
    ("another withheld call", [("withheld by phone", "1150")], "withheld again by phone", "1160",
     ("review", "replaces_other_caller")),
    ("a stranger over an exported value", [("stranger by text", "1150"), "export"], "stranger by text", "1160",
     ("review", "replaces_exported")),
    # ... but the same number, or the same withheld call, corrects its own until it is exported.
    ("a stranger corrects their own text", [("stranger by text", "1150")], "stranger by text", "1140",
     ("accepted", None)),
    ("a stranger's text corrected by phone", [("stranger by text", "1150")], "stranger by phone", "1140",
     ("accepted", None)),
    ("a stranger's call corrected by text", [("stranger by phone", "1150")], "stranger by text", "1140",
     ("accepted", None)),
    ("a withheld call corrects itself", [("withheld by phone", "1150")], "withheld by phone", "1140",
     ("accepted", None)),
    # Trusted sources replace anyone's unexported reading.
    ("an operator over the customer", [("customer by phone", "1150")], "operator", "1160", ("accepted", None)),
    ("the API over a stranger", [("stranger by text", "1150")], "api", "1160", ("accepted", None)),
    ("an import over an exported value", [("customer by phone", "1150"), "export"], "import", "1160",
     ("accepted", None)),
]


@pytest.mark.parametrize("earlier,who,value,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_table_of_cases(world, earlier, who, value, expected):
    for step in earlier:
        if step == "export":
            world.export()
        else:
            verdict, _ = world.take(*step)
            assert verdict.outcome == "accepted", step
    verdict = world.judge(who, value)
    assert (verdict.outcome, verdict.code) == expected
    assert verdict.quiet == (expected[1] in ("below_previous", "implausible_consumption", "replaces_other_caller",
                                            "replaces_exported"))


def test_what_an_accepted_value_stores_and_replaces(world):
    """The customer's value replaces every unexported reading of the period, whoever gave it, and
    names in ``supersedes`` only the reading billing received."""
    stranger, first = world.take("withheld by phone", "1999.9")
    assert (stranger.outcome, stranger.trusted, stranger.baseline_id, first.trusted) == ("accepted", False,
                                                                                         world.base.id, False)
    verdict = world.judge("customer by phone", "1150.5")
    assert (verdict.baseline_id, verdict.replaces, verdict.supersedes_id, verdict.trusted) == (
        world.base.id, (first.id,), None, True)
    verdict, second = world.take("customer by text", "1150.5")
    assert (second.status, second.trusted, second.given_from, second.supersedes_id) == ("accepted", True, CUSTOMER,
                                                                                        None)
    assert world.readings() == [("1999.9", "superseded", None), ("1150.5", "accepted", None)]
    world.export()
    verdict, third = world.take("customer by phone", "1151")
    assert (verdict.supersedes_id, third.supersedes_id, verdict.replaces) == (second.id, second.id, (second.id,))


def test_review_stores_a_pending_reading_for_an_operator_and_leaves_the_customers(world):
    _, mine = world.take("customer by phone", "1150")
    verdict, theirs = world.take("stranger by text", "1160")
    assert (verdict.outcome, verdict.status, verdict.replaces) == ("review", "pending_review", ())
    assert (theirs.status, theirs.status_reason, theirs.trusted, theirs.given_from) == (
        "pending_review", "replaces_other_caller", False, STRANGER)
    task = world.db.scalars(select(ReviewTask)).one()
    assert (task.reason, task.reading_id) == ("replaces_other_caller", theirs.id)
    assert world.readings() == [("1150", "accepted", None), ("1160", "pending_review", "replaces_other_caller")]


def test_refusals_on_the_public_lines_are_counted_and_past_the_limit_values_go_quietly_to_review(world):
    policy = Policy(probe_limit=3)
    for value in ("10", "1100", "99999"):
        verdict, stored = world.take("stranger by text", value, policy)
        assert (verdict.outcome, verdict.reveals, stored) == ("refused", True, None)
    assert world.refusals() == 3
    # Whatever the value now, the same answer: kept for an operator, nothing told.
    for value in ("1100", "1150"):
        verdict = world.judge("customer by phone", value, policy)
        assert (verdict.outcome, verdict.code, verdict.quiet, verdict.reveals) == (
            "review", "repeated_refusals", True, False)
    # A value that cannot be on the dial says nothing about the readings: still explained, not counted.
    verdict, _ = world.take("stranger by text", "1234567", policy)
    assert (verdict.outcome, verdict.code, verdict.reveals) == ("refused", "too_many_digits", False)
    # Operators, imports and the API are not probing: they are still told the rule.
    for who in ("operator", "import", "api"):
        verdict = world.judge(who, "1100", policy)
        assert (verdict.outcome, verdict.code, verdict.reveals) == ("refused", "below_previous", False)
    assert world.refusals() == 3


def test_a_value_given_again_in_the_same_call_is_not_counted_twice(world):
    """The phone line judges a value when it is given and again when it is confirmed: its own
    read-back in this call does not count against it; any other value, or another call, does."""
    policy = Policy(probe_limit=2)
    this_call = world.source("withheld by phone")
    service.record_refusal(world.db, world.meter, "total", "1200", intake.NOT_CONFIRMED,
                           call_id=world.calls["withheld again"], caller=None, now=NOW)
    service.record_refusal(world.db, world.meter, "total", "1400", intake.NOT_CONFIRMED, call_id=this_call.call_id,
                           caller=None, now=NOW)
    world.db.commit()
    assert world.judge("withheld by phone", "1400", policy).outcome == "accepted"
    assert world.judge("withheld by phone", "1450", policy).code == "repeated_refusals"
    assert world.judge("withheld again by phone", "1400", policy).code == "repeated_refusals"


def test_an_account_or_meter_out_of_service_is_refused(world):
    world.meter.active = False
    world.db.commit()
    assert world.judge("operator", "1200").code == "meter_inactive"
    world.account.active = False
    world.db.commit()
    assert world.judge("customer by text", "1200").code == "account_inactive"
    assert world.refusals() == 0


def test_an_unknown_register_is_refused(world):
    verdict = intake.judge(world.db, world.meter, "night", "1200", world.source("api"), Policy(), now=NOW)
    assert (verdict.outcome, verdict.code) == ("refused", "unknown_register")


def test_an_unknown_channel_is_a_programming_error():
    with pytest.raises(ValueError):
        intake.Source("fax")
