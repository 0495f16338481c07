"""The organisation's name, in whole calls through the signed webhooks: where the region asks for it,
a company's caller hears the recording notice (if not heard yet) and the question, is recorded with
``<Record>`` after a tone on either transport, and goes on to the meters whatever came. The audio is
kept like a spoken answer's: in the recordings folder, deleted after ``IVR_RECORDINGS_KEEP_DAYS``,
erased with the caller's number; logged-in operators play it beside the call's readings."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select

from ivr.app import create_app
from ivr.ops import privacy, recordings
from ivr.voice.simulator import SimulatedCall, flask_transport
from ivr.voice.speech_steps import SpeechSteps
from readings_store import call_figures
from readings_store.models import Call, Reading, ReviewTask, Utterance, utcnow
from tests import factories as f
from tests.conftest import AUTH_TOKEN
from tests.console.helpers import login, make_operator

from .test_speech_calls import WAV, FakeFetch, recording_params

STRANGER = "+442079460000"
NOTICE = "Spoken answers are recorded for checking."
QUESTION = "After the tone, say the name of your organisation, then press hash."


@pytest.fixture
def line(db):
    region = f.region(db, work=f.NEVER_OPEN)
    region.ask_org_name = True
    company = f.account(db, region, number="500005", kind="company", holder="SRL Apa")
    f.meter(db, company, serial="CO-770001", previous=100, decimals=0)
    f.meter(db, company, serial="CO-770002", previous=100, decimals=0)
    home = f.account(db, region, number="100001")
    f.meter(db, home, serial="EL000123", previous=1000, decimals=0)
    db.commit()
    return {"region": region, "company": company}


@pytest.fixture
def fetch():
    return FakeFetch()


@pytest.fixture
def app_with(config, engine, fetch):
    def make(**settings):
        for name, value in settings.items():
            setattr(config, name, value)
        config.recording_url_prefixes = ("https://api.twilio.com/",)
        app = create_app(config, engine=engine, speech=SpeechSteps(config, fetcher=fetch))
        app.config.update(TESTING=True)
        return app
    return make


KEYPAD_ONLY = {"speech_engines": {"ro": "off", "ru": "off", "uk": "off", "en": "off"}}


def dial(app) -> SimulatedCall:
    return SimulatedCall("http://localhost", AUTH_TOKEN, flask_transport(app.test_client()), caller=STRANGER)


def to_the_name(call: SimulatedCall, account: str = "500005#"):
    heard = list(call.start().texts)
    heard += call.press("4").texts
    p = call.press(account)
    return heard, p


def name_said(call: SimulatedCall, **params):
    """The caller says the name after the tone: Twilio posts the recording to the Record action."""
    return call._follow(call.last.record["action"], recording_params(**params))  # noqa: SLF001


def test_a_keypad_only_line_says_the_notice_then_records_the_name(db, line, app_with, fetch, config):
    app = app_with(**KEYPAD_ONLY)
    assert not config.may_record()  # nothing else is recorded on this line
    call = dial(app)
    heard, p = to_the_name(call)
    assert NOTICE not in heard  # not at the start: nothing was going to be recorded then
    assert p.texts[-2:] == [NOTICE, QUESTION]
    assert p.record is not None and p.record["playBeep"] == "true" and p.record["finishOnKey"] == "#"
    assert p.record["action"] == p.gather["action"] and "speech" not in p.gather.get("input", "")
    p = name_said(call)
    assert any("serial number" in t for t in p.texts)  # on to the meters, nothing said of the name
    db.expire_all()
    name = db.scalars(select(Utterance).where(Utterance.step == "org_name")).one()
    assert name.engine == "record" and name.transcript is None and name.recording_sid
    path = Path(config.recordings_dir) / name.audio_path
    assert path.read_bytes() == WAV and fetch.urls and path.parent.name == call.call_sid
    # Nothing else changes: the meter is chosen and read as before.
    call.press("1#"); call.press("160#")
    assert "Reading saved." in call.press("1").texts
    assert NOTICE not in call.press("3").texts and call.heard.count(NOTICE) == 1
    call.hang_up()
    row = db.scalars(select(Call)).one()
    assert row.questions_reached & call_figures.BIT["org_name"] and row.questions_passed & call_figures.BIT["org_name"]
    assert row.questions_reached & call_figures.BIT["meter_serial"]


def test_a_line_that_records_said_the_notice_at_the_start_only(db, line, app_with):
    app = app_with()  # Vosk languages configured: spoken answers may be recorded
    call = dial(app)
    heard, p = to_the_name(call)
    assert heard.count(NOTICE) == 1 and NOTICE not in p.texts and p.texts[-1] == QUESTION


def test_a_name_not_fetched_in_time_is_attached_when_twilio_reports_it(db, line, app_with, fetch, config):
    call = dial(app_with(**KEYPAD_ONLY))
    _, p = to_the_name(call)
    assert p.record["recordingStatusCallback"] == "http://localhost/voice/recording-status"
    fetch.fail = OSError("connection reset")
    params = recording_params()
    call._follow(call.last.record["action"], params)  # noqa: SLF001
    fetch.fail = None
    late = {"RecordingSid": params["RecordingSid"], "RecordingUrl": params["RecordingUrl"],
            "RecordingStatus": "completed", "RecordingDuration": "3"}
    assert call.post("http://localhost/voice/recording-status", late)[0] == 204
    db.expire_all()
    name = db.scalars(select(Utterance).where(Utterance.step == "org_name")).one()
    assert (Path(config.recordings_dir) / name.audio_path).read_bytes() == WAV


@pytest.mark.parametrize("answer", ["silence", "key", "not fetched"])
def test_nothing_decided_on_the_name(db, line, app_with, fetch, answer):
    call = dial(app_with(**KEYPAD_ONLY))
    to_the_name(call)
    if answer == "silence":
        p = call._follow(call.last.gather["action"] + "&timeout=1")  # noqa: SLF001 - the Redirect after <Record>
    elif answer == "key":
        p = call.press("5")
    else:
        fetch.fail = OSError("connection reset")
        p = name_said(call)
    assert any("serial number" in t for t in p.texts)
    db.expire_all()
    kept = db.scalars(select(Utterance).where(Utterance.step == "org_name")).all()
    if answer == "not fetched":  # kept for the late recording callback to bring the audio
        assert len(kept) == 1 and kept[0].audio_path is None and kept[0].recording_sid
    else:
        assert kept == []


def test_not_asked_of_a_household_or_where_the_region_does_not_ask(db, line, app_with):
    call = dial(app_with(**KEYPAD_ONLY))
    _, p = to_the_name(call, "100001#")
    assert QUESTION not in p.texts and NOTICE not in p.texts
    line["region"].ask_org_name = False
    db.commit()
    call = dial(app_with(**KEYPAD_ONLY))
    _, p = to_the_name(call)
    assert QUESTION not in p.texts and p.record is None


def test_recorded_on_the_stream_transport_too(db, line, app_with):
    app = app_with(speech_transport="stream", media_url="wss://ivr.example.org/voice/stream")
    call = dial(app)
    _, p = to_the_name(call)
    assert p.texts[-1] == QUESTION and p.record is not None and p.record["playBeep"] == "true"
    assert any("serial number" in t for t in name_said(call).texts)
    db.expire_all()
    assert db.scalars(select(Utterance).where(Utterance.step == "org_name")).one().audio_path


def _named_call(db, app) -> tuple[SimulatedCall, Reading]:
    call = dial(app)
    to_the_name(call)
    name_said(call)
    call.press("2#"); call.press("170#"); call.press("1"); call.press("3")
    call.hang_up()
    db.expire_all()
    return call, db.scalars(select(Reading).where(Reading.channel.like("phone%"))).one()


def test_operators_play_it_beside_the_readings(db, line, app_with):
    app = app_with(**KEYPAD_ONLY)
    _, reading = _named_call(db, app)
    name = db.scalars(select(Utterance).where(Utterance.step == "org_name")).one()
    task = ReviewTask(kind="reading", reason="low_confidence", reading_id=reading.id, call_id=reading.call_id,
                      region_id=line["region"].id)
    db.add(task)
    make_operator(db)
    db.commit()
    src = f'src="/console/recordings/{name.id}"'
    stranger = app.test_client()
    assert stranger.get(f"/console/recordings/{name.id}").status_code in (302, 401)
    assert src not in stranger.get(f"/console/accounts/{line['company'].id}").get_data(as_text=True)
    client = app.test_client()
    assert login(client).status_code == 302
    account_page = client.get(f"/console/accounts/{line['company'].id}").get_data(as_text=True)
    assert "Organisation's name" in account_page and account_page.count(src) == 2  # its reading, its call
    item = client.get(f"/console/tasks/{task.id}").get_data(as_text=True)
    assert 'id="org-name"' in item and src in item
    audio = client.get(f"/console/recordings/{name.id}")
    assert audio.status_code == 200 and audio.get_data() == WAV
    # An account whose calls recorded no name has no such column.
    home = db.scalars(select(Reading).where(Reading.meter.has(serial="EL000123"))).first().meter.account_id
    assert "Organisation's name" not in client.get(f"/console/accounts/{home}").get_data(as_text=True)


def test_kept_as_long_as_answers_and_erased_with_the_number(db, line, app_with, config, sessions):
    app = app_with(**KEYPAD_ONLY)
    _named_call(db, app)
    name = db.scalars(select(Utterance).where(Utterance.step == "org_name")).one()
    path = Path(config.recordings_dir) / name.audio_path
    assert path.is_file()
    done = recordings.purge(sessions, config.recordings_dir, config.recordings_keep_days,
                            now=utcnow() + dt.timedelta(days=config.recordings_keep_days - 1))
    assert done.recordings == 0 and path.is_file()
    done = recordings.purge(sessions, config.recordings_dir, config.recordings_keep_days,
                            now=utcnow() + dt.timedelta(days=config.recordings_keep_days + 1))
    assert done.recordings == 1 and not path.exists()
    db.expire_all()
    assert db.get(Utterance, name.id).audio_deleted_at is not None

    # Another call's name goes when the caller's number is erased.
    _named_call_again = dial(app)
    to_the_name(_named_call_again)
    name_said(_named_call_again)
    _named_call_again.hang_up()
    db.expire_all()
    second = db.scalars(select(Utterance).where(Utterance.step == "org_name", Utterance.audio_path.is_not(None))).one()
    path = Path(config.recordings_dir) / second.audio_path
    erased = privacy.erase(db, config.recordings_dir, STRANGER, now=utcnow() + dt.timedelta(hours=2))
    db.commit()
    assert erased.recordings == 1 and not path.exists()



def test_the_dashboard_funnel_shows_both_questions(db, line, app_with):
    from ivr.console import dashboard, labels

    _named_call(db, app_with(**KEYPAD_ONLY))
    now = utcnow()
    counts = dashboard.call_counts(db, dashboard.Scope(now - dt.timedelta(days=1), now + dt.timedelta(days=1)))
    rows = {r["code"]: (r["value"], r["inner"]) for r in dashboard.funnel(counts)}
    assert rows["org_name"] == (1, 1) and rows["meter_serial"] == (1, 1)
    codes = [r["code"] for r in dashboard.funnel(counts)]
    assert codes.index("account") < codes.index("org_name") < codes.index("meter_serial") < codes.index("value")
    assert labels.label("org_name", "step") == "organisation's name (recorded)"
