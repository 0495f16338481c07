"""The turn service without Flask (``ivr/calls.py``): a turn, its effects and its claim are one
transaction; a repeated turn changes nothing; an old state row goes on; the status callback ends
a call that was not over."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text

from ivr import calls, dialog
from readings_store import call_figures, service
from readings_store.db import alembic_config, make_engine, upgrade
from readings_store.models import Call, Reading, ReviewTask, ValueRefusal
from tests import factories as f

SID = "CA" + "a" * 32


def fake_render(actions: list, lang: str, seq: int, transport: str | None = None, stream_token: str | None = None) -> str:
    """A fake transport's answer: what would be said and asked, the turn it expects next, and the
    call's own speech transport when it has one."""
    parts = []
    for action in actions:
        if isinstance(action, dialog.Ask):
            parts.append(f"ask:{action.step}")
        elif isinstance(action, dialog.Say):
            parts.append(action.key)
        else:
            parts.append(type(action).__name__.lower())
    return f"{lang}|{seq}|" + ",".join(parts) + (f"|{transport}" if transport else "")


def fake_apology(lang: str) -> str:
    return f"{lang}|apology"


@pytest.fixture
def meter(db):
    region = f.region(db, work=f.NEVER_OPEN)  # failed calls end "after hours" at any time of day
    account = f.account(db, region, number="100001")
    meter = f.meter(db, account, previous=1000)
    db.commit()
    return meter


def _open(db, config, caller="+442079460000"):
    return calls.open_call(db, config, call_sid=SID, caller=caller, country="GB", language="en",
                           render=fake_render, apology=fake_apology)


def _turn(db, config, step, seq, digits):
    event = dialog.Event("digits", digits=digits) if digits else dialog.Event("timeout")
    return calls.take_turn(db, config, call_sid=SID, step=step, seq=seq, keys=event, render=fake_render,
                           apology=fake_apology).body


def _call(db) -> Call:
    db.expire_all()
    return db.scalars(select(Call).where(Call.call_sid == SID)).one()


def test_a_whole_call_through_the_service(db, config, meter):
    assert _open(db, config).endswith("ask:language")
    assert _turn(db, config, "language", 1, "4").endswith("ask:account")
    assert _turn(db, config, "account", 2, "100001#").endswith("ask:value")
    assert _turn(db, config, "value", 3, "1500#") == "en|4|ask:confirm"
    assert _turn(db, config, "confirm", 4, "1") == "en|5|saved,ask:next"
    assert _turn(db, config, "next", 5, "3") == "en|6|saved_count,goodbye,hangup"
    call = _call(db)
    assert (call.outcome, call.end_reason, call.seq, call.account_id) == ("completed", None, 6, meter.account_id)
    assert call.state["outcome"] == "completed" and [s.step for s in call.logged_steps][-1] == "next"
    assert [(str(r.value), r.status, r.idempotency_key) for r in db.scalars(select(Reading).where(
        Reading.channel == "phone_keypad"))] == [("1500", "accepted", f"{SID}:4")]
    # The read-back counted as a refusal until it was saved with it, in the same turn.
    assert db.scalars(select(ValueRefusal)).all() == []


def test_a_call_in_progress_holds_its_steps_on_its_row_and_writes_them_when_it_ends(db, config, meter):
    _open(db, config)
    _turn(db, config, "language", 1, "4")
    _turn(db, config, "account", 2, "100001#")
    call = _call(db)
    # Held on the row the turns write anyway; the console sees them all the same.
    assert call.logged_steps == [] and [s["step"] for s in call.steps] == ["incoming", "language", "account"]
    assert [(s.seq, s.step, s.next) for s in call.steps_so_far] == [
        (0, "incoming", "language"), (1, "language", "account"), (2, "account", "value")]
    # The caller hangs up: the status callback writes them as rows, by one INSERT.
    assert calls.end_call(db, call_sid=SID, status="completed", duration="40")
    call = _call(db)
    assert call.steps == [] and (call.outcome, call.end_reason) == ("hung_up", "value:hung_up")
    assert [(s.seq, s.step, s.next, s.kind) for s in call.logged_steps] == [
        (0, "incoming", "language", None), (1, "language", "account", "digits"), (2, "account", "value", "digits")]
    assert call_figures.of_steps((s.step, s.next, s.kind) for s in call.logged_steps)["steps_logged"] == 3


def test_a_long_call_holds_a_bounded_number_of_steps_and_logs_every_one(db, config, meter):
    """What a turn writes does not grow with the call: the row holds at most HELD_STEPS steps."""
    _open(db, config)
    _turn(db, config, "language", 1, "4")
    seq, held = 2, []
    for n in range(5):  # 5 readings in a row: 4 turns each
        for step, keys in (("account", "100001#"), ("value", f"{1500 + n}#"), ("confirm", "1"), ("next", "2")):
            _turn(db, config, step, seq, keys)
            seq += 1
            held.append(len(_call(db).steps))
    assert max(held) < calls.HELD_STEPS and len(held) > calls.HELD_STEPS
    assert calls.end_call(db, call_sid=SID, status="completed", duration="300")
    call = _call(db)
    assert call.steps == [] and [s.seq for s in call.logged_steps] == list(range(seq))


def test_each_turn_counts_its_step_in_the_calls_dashboard_figures(db, config, meter):
    _open(db, config)
    _turn(db, config, "language", 1, "4")
    _turn(db, config, "account", 2, "")  # no answer: asked again
    _turn(db, config, "account", 3, "100001#")
    call = _call(db)
    bits = call_figures.BIT
    assert (call.questions_reached, call.questions_passed) == (bits["language"] | bits["account"] | bits["value"],
                                                               bits["language"] | bits["account"])
    assert (call.answers_keypad, call.answers_speech, call.questions_asked, call.questions_reasked,
            call.steps_logged) == (2, 0, 3, 1, 4)
    for step, seq, keys in (("value", 4, "1500#"), ("confirm", 5, "1"), ("next", 6, "3")):
        _turn(db, config, step, seq, keys)
    call = _call(db)
    # Whatever the turns counted is what their logged steps say, a repeated turn counted once.
    _turn(db, config, "next", 6, "3")
    assert {name: getattr(_call(db), name) for name in call_figures.COLUMNS} == call_figures.of_steps(
        (s.step, s.next, s.kind) for s in call.logged_steps)
    # The confirmation led to "next" (not one of the funnel's questions): passed because the call completed.
    assert call.answers_keypad == 5 and call.questions_left == bits["confirm"] and call.outcome == "completed"


def test_a_repeated_turn_gets_the_same_answer_and_changes_nothing(db, config, meter):
    _open(db, config)
    _turn(db, config, "language", 1, "4")
    _turn(db, config, "account", 2, "100001#")
    _turn(db, config, "value", 3, "1500#")
    first = _turn(db, config, "confirm", 4, "1")
    steps = len(_call(db).logged_steps)
    assert _turn(db, config, "confirm", 4, "2") == first  # a retry with other keys: still the first answer
    assert _turn(db, config, "value", 3, "999#") == first  # an old turn
    assert len(_call(db).logged_steps) == steps and _call(db).seq == 5
    assert len(db.scalars(select(Reading).where(Reading.channel == "phone_keypad")).all()) == 1


def test_effects_and_the_claim_are_one_transaction(db, config, meter, monkeypatch):
    _open(db, config)
    _turn(db, config, "language", 1, "4")
    _turn(db, config, "account", 2, "100001#")
    _turn(db, config, "value", 3, "1500#")

    def broken_store(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(service, "store_reading", broken_store)
    with pytest.raises(RuntimeError):
        _turn(db, config, "confirm", 4, "1")
    db.rollback()
    call = _call(db)
    assert call.seq == 4 and call.state["step"] == "confirm"  # the turn was not taken
    assert db.scalars(select(Reading).where(Reading.channel == "phone_keypad")).all() == []
    monkeypatch.undo()
    assert "saved" in _turn(db, config, "confirm", 4, "1")  # Twilio's retry takes it
    assert len(db.scalars(select(Reading).where(Reading.channel == "phone_keypad")).all()) == 1


def test_failed_identification_and_refusals_are_written_by_the_turn_that_decided_them(db, config, meter):
    _open(db, config)
    _turn(db, config, "language", 1, "4")
    for seq, typed in ((2, "1#"), (3, "2#")):
        _turn(db, config, "account", seq, typed)
    assert db.scalars(select(ReviewTask)).all() == []
    assert _turn(db, config, "account", 4, "3#").endswith("not_completed,nothing_saved,goodbye,hangup")
    task = db.scalars(select(ReviewTask)).one()
    assert (task.kind, task.details["attempts"], task.call_id) == ("identification", ["1", "2", "3"], _call(db).id)
    call = _call(db)
    assert (call.outcome, call.end_reason) == ("gave_up", "account:account_not_found")


def test_a_value_below_the_previous_one_is_counted_in_its_turn(db, config, meter):
    _open(db, config)
    _turn(db, config, "language", 1, "4")
    _turn(db, config, "account", 2, "100001#")
    assert "reason_below_previous" in _turn(db, config, "value", 3, "10#")
    refusal = db.scalars(select(ValueRefusal)).one()
    assert (refusal.value, refusal.code, refusal.call_id) == ("10", "below_previous", _call(db).id)


def test_a_call_in_progress_with_an_old_state_row_goes_on(db, config, meter):
    """A call answered by the previous version (state as a plain dict with ``status``) when this
    one was deployed."""
    account_id = meter.account_id
    db.add(Call(call_sid=SID, from_number="+442079460000", language="en", seq=4, steps=[], state={
        "call_sid": SID, "caller": "+442079460000", "lang": "en", "max_tries": 3, "step": "confirm", "tries": 0,
        "region_id": meter.account.region_id, "account": {"id": account_id, "region_id": meter.account.region_id,
                                                           "tail": "0001"},
        "meters": [{"id": meter.id, "utility": "electricity", "tail": "0001", "registers": ["total"]}],
        "meter": 0, "register": "total", "value": "1500", "status": "accepted", "reason": None,
        "utterance_id": None, "saved": [], "done": [], "attempts": [], "seq": 3}, account_id=account_id))
    db.commit()
    assert "saved" in _turn(db, config, "confirm", 4, "1")
    assert [str(r.value) for r in db.scalars(select(Reading).where(Reading.channel == "phone_keypad"))] == ["1500"]
    assert _call(db).state["decision"] == "accepted"


def test_an_unreadable_state_gets_the_last_answer_and_changes_nothing(db, config, meter):
    db.add(Call(call_sid=SID, language="ru", seq=2, steps=[], state={"step": "dancing"}, last_twiml="before"))
    db.commit()
    assert _turn(db, config, "value", 2, "1500#") == "before"
    assert _call(db).seq == 2


def test_unknown_call_gets_an_apology(db, config):
    assert _turn(db, config, "value", 1, "1#") == "en|apology"


def test_hanging_up_ends_the_call_at_its_step(db, config, meter):
    _open(db, config)
    _turn(db, config, "language", 1, "4")
    assert calls.end_call(db, call_sid=SID, status="completed", duration="31")
    call = _call(db)
    assert (call.outcome, call.end_reason, call.duration_seconds) == ("hung_up", "account:hung_up", 31)
    assert call.state["outcome"] == "hung_up"
    # A late callback keeps the outcome; an unknown call is reported, nothing written.
    assert calls.end_call(db, call_sid=SID, status="completed", duration="x")
    assert (_call(db).outcome, _call(db).duration_seconds) == ("hung_up", 31)
    assert not calls.end_call(db, call_sid="CA" + "b" * 32, status="completed", duration="1")


def test_a_finished_call_keeps_its_outcome_when_twilio_reports_the_end(db, config, meter):
    _open(db, config)
    _turn(db, config, "language", 1, "4")
    _turn(db, config, "account", 2, "100001#")
    _turn(db, config, "value", 3, "1500#")
    _turn(db, config, "confirm", 4, "1")
    _turn(db, config, "next", 5, "3")
    calls.end_call(db, call_sid=SID, status="completed", duration="60")
    assert (_call(db).outcome, _call(db).end_reason) == ("completed", None)


# --- migration 0005 --------------------------------------------------------------------------------



OLD_ROWS = [  # outcome, state step -> outcome, end_reason
    ("completed", "ended", "completed", None),
    ("no_reading", "ended", "no_reading", None),
    ("hung_up_at_value", "value", "hung_up", "value:hung_up"),
    ("account_account_not_found", "ended", "gave_up", "account:account_not_found"),
    ("confirm_no_input", "transferred", "transferred", "confirm:no_input"),
    ("offer_account_invalid_choice", "ended", "gave_up", "offer_account:invalid_choice"),
    ("asked_operator", "transferred", "transferred", "asked_operator"),
    ("no_regions", "transferred", "transferred", "no_regions"),
    ("no_regions", "ended", "service_not_ready", None),
    (None, "value", None, None),
]


@pytest.mark.db
def test_migration_0005_splits_old_outcomes_and_goes_back(empty_database_url):
    from alembic import command

    url = empty_database_url
    upgrade(url, "0004")
    engine = make_engine(url)
    with engine.begin() as conn:
        for i, (outcome, step, _o, _r) in enumerate(OLD_ROWS):
            conn.execute(text("INSERT INTO calls (call_sid, state, steps, seq, outcome, started_at) "
                              "VALUES (:sid, :state, '[]', 1, :outcome, '2026-01-01 00:00:00+00')"),
                         {"sid": f"CA{i:032d}", "state": f'{{"step": "{step}"}}', "outcome": outcome})
    upgrade(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT outcome, end_reason FROM calls ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [(o, r) for _old, _step, o, r in OLD_ROWS]
    command.downgrade(alembic_config(url), "0004")
    assert "end_reason" not in {c["name"] for c in inspect(engine).get_columns("calls")}
    with engine.connect() as conn:
        back = [r[0] for r in conn.execute(text("SELECT outcome FROM calls ORDER BY id"))]
    assert back == [old for old, *_ in OLD_ROWS]
    engine.dispose()


# --- a call moved to the record transport ---------------------------------------------------------

def test_a_call_moved_to_the_record_transport_renders_its_turns_with_it(db, config, meter):
    _open(db, config)
    assert _turn(db, config, "language", 1, "4") == "en|2|ask:account"  # the configured transport
    call = calls.use_record_transport(db, SID)
    assert call is not None and call.speech_transport == "record" and call.seq == 2
    assert (_call(db).seq, _call(db).state["step"]) == (2, "account")  # no turn taken
    assert _turn(db, config, "account", 2, "100001#") == "en|3|ask:value|record"
    assert calls.use_record_transport(db, SID).speech_transport == "record"  # again: the same


def test_a_call_moved_while_its_turn_is_taken_gets_the_record_transport(db, config, meter, sessions):
    """The mark lands between the turn's read of the call and its claim (another process, the
    media endpoint): the answer is rendered with the transport read by the claim."""
    _open(db, config)
    assert _turn(db, config, "language", 1, "4") == "en|2|ask:account"
    asked = []

    def mark_meanwhile(state, ask):
        asked.append((ask.step, ask.speech))
        with sessions() as other:
            assert calls.use_record_transport(other, SID) is not None
        return None

    answer = calls.take_turn(db, config, call_sid=SID, step="account", seq=2,
                             keys=dialog.Event("digits", digits="100001#"), listen=mark_meanwhile,
                             render=fake_render, apology=fake_apology)
    assert answer.taken and answer.body == "en|3|ask:value|record"
    assert asked == [("account", "digits")]  # the question says what it listens for


def test_the_transport_listens_only_at_a_question_that_listens_for_speech(db, config, meter):
    """The language menu is keys only (its Ask has no speech kind): no recognition is asked for."""
    _open(db, config)
    heard = []
    answer = calls.take_turn(db, config, call_sid=SID, step="language", seq=1, keys=dialog.Event("digits", digits="4"),
                             listen=lambda state, ask: heard.append(ask), render=fake_render, apology=fake_apology)
    assert answer.taken and answer.body == "en|2|ask:account" and heard == []


def test_question_at_names_the_current_question_only(db, config, meter):
    _open(db, config)
    _turn(db, config, "language", 1, "4")
    ask = calls.question_at(db, config, SID, "account", 2)
    assert (ask.step, ask.expect, ask.speech) == ("account", "number", "digits")
    assert calls.question_at(db, config, SID, "account", 1) is None  # a turn already taken
    assert calls.question_at(db, config, SID, "language", 2) is None
    assert calls.question_at(db, config, "CA" + "0" * 32, "account", 2) is None


def test_an_unknown_or_finished_call_is_not_moved(db, config, meter):
    assert calls.use_record_transport(db, SID) is None
    assert db.scalars(select(Call)).all() == []
    _open(db, config)
    _turn(db, config, "language", 1, "4")
    calls.end_call(db, call_sid=SID, status="completed", duration="12")  # hung up
    assert calls.use_record_transport(db, SID) is None
    assert _call(db).speech_transport is None


@pytest.mark.db
def test_migration_0009_adds_the_call_transport_and_goes_back(empty_database_url):
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from readings_store.models import Base

    url = empty_database_url
    upgrade(url, "0008")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO calls (call_sid, state, steps, seq, started_at) "
                          "VALUES (:sid, '{}', '[]', 1, '2026-01-01 00:00:00+00')"), {"sid": SID})
    upgrade(url, "0009")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT speech_transport FROM calls")).scalar_one() is None  # as configured
    upgrade(url)  # the models are the newest revision's
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diffs if "calls" in repr(d) and d[0] != "add_table"] == []  # call_steps: 0011
    command.downgrade(alembic_config(url), "0008")
    assert "speech_transport" not in {c["name"] for c in inspect(engine).get_columns("calls")}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT call_sid FROM calls")).scalar_one() == SID
    engine.dispose()


# What a freshly forked worker whose first request is a turn runs: nothing has configured the ORM's
# mappers yet when the claim's row becomes the call (``calls._call_of``).
_FIRST_TURN_OF_A_PROCESS = """
import sys
from sqlalchemy.orm import Session
from ivr import calls, dialog
from ivr.config import load_config
from readings_store.db import make_engine
from readings_store.models import Call
assert not Call.__mapper__.configured, "an import configured the mappers: this test needs another way to be first"
config = load_config(database_url=sys.argv[1], twilio_auth_token="t", secret_key="s")
with Session(make_engine(sys.argv[1])) as session:
    answer = calls.take_turn(session, config, call_sid=sys.argv[2], step="language", seq=1,
                             keys=dialog.Event("digits", digits="4"), render=lambda actions, lang, seq, **kw: f"{lang}|{seq}",
                             apology=lambda lang: "apology")
print(answer.body, answer.taken)
"""


def test_a_fresh_process_takes_a_turn_before_anything_configured_the_orm(db, config, meter, tmp_path):
    _open(db, config)
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")} | {"IVR_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", _FIRST_TURN_OF_A_PROCESS, config.database_url, SID],
                          capture_output=True, text=True, env=env, cwd=Path(__file__).resolve().parents[2], timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["en|2", "True"]
    assert _call(db).seq == 2 and _call(db).language == "en"
