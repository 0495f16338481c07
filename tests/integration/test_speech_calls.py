"""Speech answers in whole calls, through the Flask app exactly as Twilio calls it.

Vosk languages get ``<Gather input="dtmf" timeout="1">`` around the prompt, then ``<Record>``;
Twilio posts the recording's URL to the Record action and the app fetches and recognises it.
Here the fetch and the recognition are replaced by fakes (``fake_fetch`` and ``FakeRecognizer``)
so each answer's recognition can be scripted; everything else (signatures, turn claiming, the
confidence policy, the dialog, the database) is the real code. Romanian uses Twilio's recogniser
(``SpeechResult``/``Confidence`` posted to the Gather action).
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import deque

import pytest
from sqlalchemy import select

from ivr.app import create_app
from ivr.voice.simulator import SimulatedCall, flask_transport
from ivr.voice.recording_fetch import RecordingUnavailable
from ivr.voice.speech_steps import SpeechSteps
from readings_store.models import Call, Reading, ReviewTask, Utterance
from speech.recognizer import Recognition, Word
from tests import factories as f
from tests.conftest import AUTH_TOKEN

ENGINES = {"en": "vosk", "ru": "vosk", "uk": "vosk", "ro": "twilio"}
MEDIA = "https://api.twilio.com/2010-04-01/Accounts/AC" + "0" * 32 + "/Recordings/"
WAV = b"RIFF$\x00\x00\x00WAVEfmt fake audio for the fake recognizer"

EN = "+442079460000"
RU = "+74951234567"
RO = "+37369000001"


def rec(text: str, conf: float = 0.95, *, alternatives=(), confs=None) -> Recognition:
    """A scripted recognition: one Word per token, each with ``conf`` (or ``confs[i]``)."""
    tokens = text.split()
    confs = confs or [conf] * len(tokens)
    words = tuple(Word(t, c, 0.5 * i, 0.5 * i + 0.4) for i, (t, c) in enumerate(zip(tokens, confs)))
    return Recognition(text=" ".join(tokens), words=words, alternatives=tuple(alternatives),
                       has_unk="[unk]" in tokens, audio_seconds=0.5 * len(tokens) + 0.5)


SILENCE = Recognition(text="", words=(), alternatives=(), has_unk=False, audio_seconds=2.0)


class FakeRecognizer:
    """A fake standing in for Vosk: returns the Recognition scripted for each answer, in order,
    and remembers what it was asked (language, grammar words, audio bytes)."""

    def __init__(self, decode: bool = False):
        self.script: deque[Recognition] = deque()
        self.calls: list[tuple[str, list[str], bytes]] = []
        self.decode = decode  # run the real decoder first, as the Vosk path does

    def __call__(self, lang: str, grammar: list[str], audio: bytes) -> Recognition:
        self.calls.append((lang, list(grammar), audio))
        if self.decode:
            from speech.audio import decode_audio

            decode_audio(audio, 16000, max_seconds=60)  # AudioError (a ValueError) for bad audio
        if not self.script:
            raise AssertionError("FakeRecognizer: no recognition scripted for this answer")
        return self.script.popleft()


class FakeFetch:
    """Stands in for Twilio's media URL: returns WAV bytes, or raises what it is told to."""

    def __init__(self):
        self.urls: list[str] = []
        self.fail: Exception | None = None
        self.audio = WAV

    def __call__(self, url: str) -> bytes:
        self.urls.append(url)
        if self.fail is not None:
            raise self.fail
        return self.audio


@pytest.fixture
def records(db):
    north = f.region(db, code="N", name="North", menu_key=1, work=f.NEVER_OPEN)
    f.region(db, code="S", name="South", menu_key=2, work=f.NEVER_OPEN)
    one = f.account(db, north, number="100001")
    f.meter(db, one, serial="EL000123", previous=12000, decimals=1)
    two = f.account(db, north, number="300003")
    f.meter(db, two, serial="EL000555", registers=2, previous=5000, decimals=0)
    f.meter(db, two, serial="GA000999", utility="gas", previous=10, digits=6, decimals=3)
    db.commit()
    return {"north": north}


@pytest.fixture
def fake():
    return FakeRecognizer()


@pytest.fixture
def fetch():
    return FakeFetch()


@pytest.fixture
def speech_config(config):
    config.speech_engines = dict(ENGINES)
    config.recording_url_prefixes = ("https://api.twilio.com/",)
    return config


@pytest.fixture
def speech_client(speech_config, engine, fake, fetch):
    app = create_app(speech_config, engine=engine, speech=SpeechSteps(speech_config, recognizer=fake, fetcher=fetch))
    app.config.update(TESTING=True)
    return app.test_client()


@pytest.fixture
def dial(speech_client):
    def make(caller: str = EN) -> SimulatedCall:
        return SimulatedCall("http://localhost", AUTH_TOKEN, flask_transport(speech_client), caller=caller)

    return make


_counter = iter(range(1, 10**6))


def recording_params(digits: str | None = "#", url: str | None = None) -> dict:
    n = next(_counter)
    sid = f"RE{n:032x}"
    params = {"RecordingUrl": url or MEDIA + sid, "RecordingSid": sid, "RecordingDuration": "3"}
    if digits is not None:
        params["Digits"] = digits
    return params


def say(call: SimulatedCall, fake: FakeRecognizer, recognition: Recognition | None, **params):
    """The caller speaks after the prompt: Twilio posts the recording to the Record action (the
    same URL as the Gather action); the TwiML answer is followed like Twilio does."""
    if recognition is not None:
        fake.script.append(recognition)
    extra = recording_params(**params)
    return call._follow(call.last.gather["action"], extra)  # noqa: SLF001 - the simulator's TwiML follower


def last_twiml(db) -> ET.Element:
    db.expire_all()
    return ET.fromstring(db.scalars(select(Call)).one().last_twiml)


def stored(db):
    db.expire_all()
    return [(r.meter.serial, r.register, format(r.value.normalize(), "f"), r.status, r.channel)
            for r in db.scalars(select(Reading).where(Reading.channel.like("phone%")).order_by(Reading.id))]


def to_account(call: SimulatedCall, lang_key: str = "4"):
    call.start()
    call.press(lang_key)
    return call.press("1")  # region North, by key


def utterances(db) -> list[Utterance]:
    db.expire_all()
    return list(db.scalars(select(Utterance).order_by(Utterance.id)))


# --- TwiML shape -------------------------------------------------------------------------------

def test_account_step_twiml_gathers_keys_then_records(db, records, dial):
    call = dial()
    p = to_account(call)
    assert p.gather["input"] == "dtmf" and p.gather["timeout"] == "1"
    verbs = list(last_twiml(db))
    assert [v.tag for v in verbs] == ["Gather", "Record", "Redirect"]
    gather, record, redirect = verbs
    action = gather.get("action")
    assert "/voice/step/account?seq=" in action
    assert "actionOnEmptyResult" not in gather.attrib  # no keys: fall through to <Record>
    assert record.get("action") == action and record.get("method") == "POST"
    assert record.get("recordingStatusCallback") == "http://localhost/voice/recording-status"
    assert record.get("finishOnKey") == "0123456789*#" and record.get("playBeep") == "false"
    assert redirect.text == action + "&timeout=1"


def test_language_without_model_is_keypad_only(db, records, config, engine, tmp_path):
    """Engine vosk but no model installed and no recognizer injected: the keypad TwiML, no <Record>."""
    config.speech_engines = dict(ENGINES)
    config.models_dir = tmp_path / "no-models"
    config.models_dir.mkdir()
    client = create_app(config, engine=engine).test_client()
    call = SimulatedCall("http://localhost", AUTH_TOKEN, flask_transport(client), caller=EN)
    p = to_account(call)
    assert p.gather["input"] == "dtmf" and p.gather["timeout"] == "10"
    assert p.gather["actionOnEmptyResult"] == "true"
    root = last_twiml(db)
    assert root.find("Record") is None
    p = call.press("100001#")
    p = call.press("12100#")
    call.press("1")
    assert stored(db) == [("EL000123", "total", "12100", "accepted", "phone_keypad")]


# --- clear, ambiguous, unknown words, silence, low confidence ----------------------------------

def test_clear_speech_read_back_confirmed_by_speech(db, records, dial, fake, fetch, speech_config):
    call = dial()
    to_account(call)
    p = say(call, fake, rec("one zero zero zero zero one"))
    assert "Say or enter the electricity reading and press hash. Decimal point: star or 'point'." in p.texts
    p = say(call, fake, rec("one two one zero zero"))
    assert "That's 1 2 1 0 0." in p.texts
    p = say(call, fake, rec("yes"))
    assert "Reading saved." in p.texts
    assert stored(db) == [("EL000123", "total", "12100", "accepted", "phone_speech")]
    # the recognizer got the call's language and each step's grammar (always with [unk])
    assert [c[0] for c in fake.calls] == ["en", "en", "en"]
    assert "one" in fake.calls[0][1] and "[unk]" in fake.calls[0][1]
    assert "yes" in fake.calls[2][1]
    assert all(u.startswith(MEDIA) for u in fetch.urls) and len(fetch.urls) == 3

    reading = db.scalars(select(Reading).where(Reading.channel == "phone_speech")).one()
    utt = db.get(Utterance, reading.utterance_id)
    assert utt.step == "value" and utt.engine == "vosk" and utt.decision == "accept"
    assert utt.transcript == "one two one zero zero" and utt.parsed_value == "12100"
    assert [w["text"] for w in utt.words] == ["one", "two", "one", "zero", "zero"]
    assert utt.words[0] == {"text": "one", "confidence": 0.95, "start": 0.0, "end": 0.4}
    assert utt.candidates == ["12100"] and utt.confidence == 0.95
    assert utt.recording_sid and utt.recording_sid.startswith("RE")
    audio = speech_config.recordings_dir / utt.audio_path
    assert audio.read_bytes() == WAV
    assert utt.audio_path.startswith(call.call_sid + "/")
    assert [u.step for u in utterances(db)] == ["account", "value", "confirm"]


def test_alternatives_are_kept_and_disagreement_asks_to_confirm(db, records, dial, fake):
    call = dial()
    to_account(call)
    say(call, fake, rec("one zero zero zero zero one"))
    p = say(call, fake, rec("one two one zero zero", alternatives=[("one two one zero zero", 0.6),
                                                                  ("one two one zero", 0.4)]))
    assert "That's 1 2 1 0 0." in p.texts
    utt = utterances(db)[-1]
    assert utt.decision == "confirm"
    assert utt.alternatives == [{"text": "one two one zero zero", "confidence": 0.6},
                                {"text": "one two one zero", "confidence": 0.4}]


def test_ambiguous_number_is_confirmed_and_on_last_try_goes_to_review(db, records, dial, fake):
    """"тридцать шесть и шесть" is 36.6 to a listener, or 366: read back, and kept for an operator
    when it is still doubtful on the last try."""
    call = dial(RU)
    to_account(call, lang_key="2")
    say(call, fake, rec("три ноль ноль ноль ноль три"))
    p = say(call, fake, rec("газ"))  # the meter menu, by speech
    assert any("показания счётчика газа" in t for t in p.texts)
    p = say(call, fake, rec("тридцать шесть и шесть"))
    assert "Показания: 3 6 запятая 6." in p.texts
    assert utterances(db)[-1].decision == "confirm"
    assert utterances(db)[-1].candidates == ["36.6", "366", "306.6"]
    p = say(call, fake, rec("нет"))  # asked again: a "no" uses no try up
    p = say(call, fake, SILENCE)  # try 1 fails: nothing heard
    assert "Извините, не удалось разобрать ваш ответ." in p.texts
    p = say(call, fake, SILENCE)  # try 2 fails
    p = say(call, fake, rec("тридцать шесть и шесть"))  # the last try
    assert "Показания: 3 6 запятая 6." in p.texts
    assert utterances(db)[-1].decision == "review"
    p = say(call, fake, rec("да"))
    assert "Показания записаны, их проверит оператор." in p.texts
    assert stored(db) == [("GA000999", "total", "36.6", "pending_review", "phone_speech")]
    task = db.scalars(select(ReviewTask)).one()
    assert task.kind == "reading" and task.reason == "low_confidence"
    assert task.utterance_id == utterances(db)[-2].id  # the value answer, with its audio


def test_a_number_a_listener_would_not_hesitate_over_is_accepted(db, records, dial, fake):
    """"twenty three" is 23: the reading in two-digit groups (203) is no reason to doubt it."""
    call = dial()
    to_account(call)
    say(call, fake, rec("three zero zero zero zero three"))
    say(call, fake, rec("gas"))
    p = say(call, fake, rec("twenty three"))
    assert "That's 2 3." in p.texts
    assert (utterances(db)[-1].decision, utterances(db)[-1].candidates) == ("accept", ["23", "203"])


def test_unknown_word_in_result_asks_to_confirm(db, records, dial, fake):
    call = dial()
    to_account(call)
    say(call, fake, rec("one zero zero zero zero one"))
    p = say(call, fake, rec("one two [unk] one zero zero"))
    assert "That's 1 2 1 0 0." in p.texts
    utt = utterances(db)[-1]
    assert utt.decision == "confirm" and utt.transcript == "one two [unk] one zero zero"
    p = say(call, fake, rec("no"))
    assert any("the electricity reading" in t for t in p.texts)
    assert stored(db) == []


def test_silence_asks_again(db, records, dial, fake):
    call = dial()
    p = to_account(call)
    p = say(call, fake, SILENCE)
    assert "Sorry, I did not catch that." in p.texts
    assert p.gather and "/voice/step/account" in p.gather["action"]
    utt = utterances(db)[-1]
    assert (utt.transcript, utt.parsed_value, utt.decision, utt.confidence) == ("", None, "retry", 0.0)
    # and the "no recording at all" path: <Record> got nothing, Twilio follows the <Redirect>
    status, body = call.post(call.last.gather["action"] + "&timeout=1")
    assert status == 200 and "Sorry, we did not receive your answer." in body


def test_low_confidence_retries_then_last_attempt_stored_for_review(db, records, dial, fake):
    call = dial()
    to_account(call)
    say(call, fake, rec("one zero zero zero zero one"))
    p = say(call, fake, rec("one two one zero zero", 0.3))
    assert "Sorry, I did not catch that." in p.texts
    assert utterances(db)[-1].decision == "retry"
    p = say(call, fake, rec("one two one zero zero", 0.3))
    assert "Sorry, I did not catch that." in p.texts
    p = say(call, fake, rec("one two one zero zero", 0.3))  # the last attempt: keep it for review
    assert "That's 1 2 1 0 0." in p.texts
    assert utterances(db)[-1].decision == "review"
    p = call.press("1")  # confirmed by key
    assert "Your reading has been recorded and will be checked by an operator." in p.texts
    assert stored(db) == [("EL000123", "total", "12100", "pending_review", "phone_speech")]
    task = db.scalars(select(ReviewTask)).one()
    assert task.reason == "low_confidence"
    reading = db.scalars(select(Reading).where(Reading.channel == "phone_speech")).one()
    assert task.reading_id == reading.id and reading.utterance_id == utterances(db)[-1].id


def test_middling_confidence_is_read_back(db, records, dial, fake):
    call = dial()
    to_account(call)
    say(call, fake, rec("one zero zero zero zero one"))
    p = say(call, fake, rec("one two one zero zero", 0.7))
    assert "That's 1 2 1 0 0." in p.texts
    assert utterances(db)[-1].decision == "confirm"
    say(call, fake, rec("yes"))
    assert stored(db) == [("EL000123", "total", "12100", "accepted", "phone_speech")]


def test_low_confidence_yes_does_not_confirm(db, records, dial, fake):
    """A mumbled "yes" the recogniser barely heard must not store the reading."""
    call = dial()
    to_account(call)
    say(call, fake, rec("one zero zero zero zero one"))
    say(call, fake, rec("one two one zero zero"))
    p = say(call, fake, rec("yes", 0.2))
    assert "Reading saved." not in p.texts
    assert "That's 1 2 1 0 0." in p.texts  # asked again
    assert stored(db) == []
    p = say(call, fake, rec("yes"))
    assert "Reading saved." in p.texts
    assert len(stored(db)) == 1


# --- keys at a speech step, menus by speech ------------------------------------------------------

def test_keys_still_work_at_a_speech_step(db, records, dial, fake, fetch):
    call = dial()
    to_account(call)
    p = call.press("100001#")  # Digits to the same action, from the <Gather>
    p = call.press("12100#")
    assert "That's 1 2 1 0 0." in p.texts
    p = call.press("1")
    assert stored(db) == [("EL000123", "total", "12100", "accepted", "phone_keypad")]
    assert fake.calls == [] and fetch.urls == [] and utterances(db) == []


def test_digits_with_a_recording_are_keys(db, records, dial, fake, fetch):
    """Keys pressed during <Record> other than # come as Digits with the recording: not speech."""
    call = dial()
    to_account(call)
    p = say(call, fake, None, digits="100001")
    assert any("Please enter the electricity meter reading" in t for t in p.texts)  # keypad only from now on
    assert fetch.urls == [] and utterances(db) == []


def test_menus_by_speech_meter_register_confirm_and_next(db, records, dial, fake):
    call = dial()
    to_account(call)
    p = say(call, fake, rec("three zero zero zero zero three"))
    assert "Say which meter, or press its number." in p.texts
    p = say(call, fake, rec("electricity"))
    assert "For the day reading, say 'day' or press 1. For the night reading, say 'night' or press 2." in p.texts
    p = say(call, fake, rec("night"))
    assert any("night reading of the electricity meter" in t for t in p.texts)
    p = say(call, fake, rec("five one zero zero"))
    p = say(call, fake, rec("yes"))
    assert "Reading saved." in p.texts
    assert any("day reading of the electricity meter" in t for t in p.texts)  # the other register next
    p = say(call, fake, rec("five two zero zero"))
    p = say(call, fake, rec("no"))  # not right: say it again
    assert any("day reading of the electricity meter" in t for t in p.texts)
    p = say(call, fake, rec("five two zero one"))
    assert "That's 5 2 0 1." in p.texts
    p = say(call, fake, rec("yes"))
    assert "Another meter: press 1." in p.texts
    p = call.press("3")
    assert p.ended == "hangup" and "Saved: 2 readings." in p.texts
    assert stored(db) == [("EL000555", "night", "5100", "accepted", "phone_speech"),
                          ("EL000555", "day", "5201", "accepted", "phone_speech")]


def test_region_by_speech(db, records, dial, fake):
    call = dial()
    call.start()
    p = call.press("4")
    assert "Say your region, or press its number." in p.texts
    p = say(call, fake, rec("two"))
    assert any("account number digit by digit" in t for t in p.texts)
    db.expire_all()
    assert db.scalars(select(Call)).one().region_id == db.scalars(select(Call)).one().state["region_id"]
    assert db.scalars(select(Call)).one().state["region_id"] != records["north"].id


def test_russian_digits(db, records, dial, fake):
    call = dial(RU)
    to_account(call, lang_key="2")
    p = say(call, fake, rec("один ноль ноль ноль ноль один"))
    assert any("показания" in t.lower() for t in p.texts)
    p = say(call, fake, rec("один два три четыре пять"))
    assert any("1 2 3 4 5" in t for t in p.texts)
    p = say(call, fake, rec("да"))
    assert stored(db) == [("EL000123", "total", "12345", "accepted", "phone_speech")]
    assert {c[0] for c in fake.calls} == {"ru"}
    assert "один" in fake.calls[0][1] and "да" in fake.calls[-1][1]
    assert last_twiml(db).find(".//Say").get("language") == "ru-RU"


# --- Romanian: Twilio's recogniser ---------------------------------------------------------------

def test_romanian_call_uses_twilio_speech(db, records, dial, fake, fetch):
    call = dial(RO)
    p = to_account(call, lang_key="1")
    assert p.gather["input"] == "dtmf speech" and p.gather["language"] == "ro-RO"
    assert "unu" in p.gather["hints"] and "zero" in p.gather["hints"]
    assert p.gather["speechTimeout"] == "auto" and p.gather["actionOnEmptyResult"] == "true"
    assert last_twiml(db).find("Record") is None
    action = p.gather["action"]
    p = call._follow(action, {"SpeechResult": "100001", "Confidence": "0.92"})  # noqa: SLF001
    p = call._follow(p.gather["action"], {"SpeechResult": "12345", "Confidence": "0.92"})  # noqa: SLF001
    assert any("1 2 3 4 5" in t for t in p.texts)
    p = call._follow(p.gather["action"], {"SpeechResult": "Da.", "Confidence": "0.9"})  # noqa: SLF001
    assert stored(db) == [("EL000123", "total", "12345", "accepted", "phone_speech")]
    utt = utterances(db)[1]
    assert (utt.engine, utt.transcript, utt.parsed_value, utt.confidence, utt.audio_path) == \
        ("twilio", "12345", "12345", 0.92, None)
    assert fake.calls == [] and fetch.urls == []


@pytest.mark.parametrize("reported", ["", "abc", "nan", "NaN", "-1"])
def test_twilio_confidence_that_is_not_a_probability_is_not_trusted(db, records, dial, reported):
    call = dial(RO)
    p = to_account(call, lang_key="1")
    call._follow(p.gather["action"], {"SpeechResult": "100001", "Confidence": reported})  # noqa: SLF001
    utt = utterances(db)[0]
    assert utt.decision == "retry" and utt.confidence == 0.0


# --- failures: URL, fetch, audio, repeats ------------------------------------------------------

def test_recording_url_outside_allowed_prefixes_is_not_fetched(db, records, dial, fake, fetch):
    call = dial()
    to_account(call)
    for url in ("https://evil.example.org/rec.wav", "http://api.twilio.com/2010-04-01/x",
                "https://api.twilio.com.evil.org/x", "file:///etc/passwd"):
        p = say(call, fake, None, url=url)
        if p.ended:
            break
        assert "Sorry, I did not catch that." in p.texts
    assert fetch.urls == [] and fake.calls == []
    assert stored(db) == []
    assert all(u.audio_path is None for u in utterances(db))


def test_fetch_failure_asks_again_and_stores_nothing(db, records, dial, fake, fetch):
    call = dial()
    to_account(call)
    say(call, fake, rec("one zero zero zero zero one"))
    fetch.fail = RecordingUnavailable("recording not available within 8.0 s (HTTP 404)")
    p = say(call, fake, None)
    assert "Sorry, I did not catch that." in p.texts
    assert stored(db) == []
    utt = utterances(db)[-1]
    assert (utt.step, utt.audio_path, utt.decision) == ("value", None, "retry")
    assert len(fake.script) == 0 and len(fake.calls) == 1  # nothing recognised without audio


def test_audio_that_is_not_audio_asks_again(db, records, dial, fake, fetch, config):
    """The real decoder (speech.audio.decode_audio) refuses it; the step asks again."""
    call = dial()
    to_account(call)
    fake.decode = True
    fetch.audio = b"<html>this is not audio</html>"
    p = say(call, fake, None)
    assert "Sorry, I did not catch that." in p.texts
    utt = utterances(db)[-1]
    assert utt.decision == "retry"
    # what Twilio sent is kept for an operator even though it could not be decoded
    assert (config.recordings_dir / utt.audio_path).read_bytes() == b"<html>this is not audio</html>"
    fetch.audio = b"RIFF\x10\x00\x00\x00WAVEfmt "  # truncated WAV header
    p = say(call, fake, None)
    assert "Sorry, I did not catch that." in p.texts
    assert stored(db) == [] and fake.calls and len(fake.script) == 0


def test_repeated_record_webhook_stores_once(db, records, dial, fake, fetch):
    call = dial()
    to_account(call)
    say(call, fake, rec("one zero zero zero zero one"))
    say(call, fake, rec("one two one zero zero"))
    action = call.last.gather["action"]
    params = recording_params()
    fake.script.append(rec("yes"))
    first = call.post(action, params)
    again = call.post(action, params)  # Twilio retried the webhook
    assert first == again and first[0] == 200
    assert "Reading saved." in first[1]
    assert len(stored(db)) == 1
    assert len(fetch.urls) == 3 and len(fake.calls) == 3  # the repeat was not fetched or recognised
    assert [u.step for u in utterances(db)] == ["account", "value", "confirm"]


def test_hangup_during_recording_still_keeps_the_answer(db, records, dial, fake):
    call = dial()
    to_account(call)
    p = say(call, fake, rec("one zero zero zero zero one"), digits="hangup")
    assert any("the electricity reading" in t for t in p.texts)
    p = say(call, fake, rec("one two one zero zero"), digits=None)  # no Digits at all
    assert "That's 1 2 1 0 0." in p.texts


def test_recording_status_attaches_late_audio(db, records, dial, fake, fetch, speech_config):
    call = dial()
    to_account(call)
    say(call, fake, rec("one zero zero zero zero one"))
    fetch.fail = RecordingUnavailable("recording not available within 8.0 s (HTTP 404)")
    params = recording_params()
    p = call._follow(call.last.gather["action"], params)  # noqa: SLF001
    assert "Sorry, I did not catch that." in p.texts
    utt = utterances(db)[-1]
    assert utt.audio_path is None and utt.recording_sid == params["RecordingSid"]

    status_url = "http://localhost/voice/recording-status"
    late = {"RecordingSid": params["RecordingSid"], "RecordingUrl": params["RecordingUrl"],
            "RecordingStatus": "completed", "RecordingDuration": "3"}
    # still failing: nothing attached, Twilio gets a 204 all the same
    assert call.post(status_url, late)[0] == 204
    assert utterances(db)[-1].audio_path is None
    fetch.fail = None
    assert call.post(status_url, {**late, "RecordingStatus": "in-progress"})[0] == 204
    assert utterances(db)[-1].audio_path is None
    assert call.post(status_url, late)[0] == 204
    utt = utterances(db)[-1]
    assert utt.audio_path == f"{call.call_sid}/late-{params['RecordingSid']}.wav"
    assert (speech_config.recordings_dir / utt.audio_path).read_bytes() == WAV
    # a status for a recording we know nothing of, or one already attached: nothing happens
    n = len(fetch.urls)
    assert call.post(status_url, {**late, "RecordingSid": "RE" + "f" * 32})[0] == 204
    assert call.post(status_url, late)[0] == 204
    assert len(fetch.urls) == n
    # outside the allowed prefixes: never fetched
    other = recording_params(url="https://evil.example.org/x.wav")
    assert call.post(status_url, {**late, **other})[0] == 204
    assert len(fetch.urls) == n


def test_recording_status_must_be_signed(records, speech_client):
    r = speech_client.post("/voice/recording-status", data={"CallSid": "CA" + "0" * 32, "RecordingSid": "RE1"})
    assert r.status_code == 403


@pytest.mark.parametrize("sid", ["../../etc/passwd", "RE" + "0" * 100, "RE<script>"])
def test_malformed_recording_sid_changes_nothing(db, records, dial, fake, sid):
    call = dial()
    to_account(call)
    fake.script.append(rec("one zero zero zero zero one"))
    status, body = call.post(call.last.gather["action"], {**recording_params(), "RecordingSid": sid})
    assert status in (200, 400)
    for u in utterances(db):
        assert u.recording_sid is None or u.recording_sid.startswith("RE") and len(u.recording_sid) == 34
    status, _ = call.post("http://localhost/voice/recording-status",
                          {"RecordingSid": sid, "RecordingUrl": MEDIA + "x", "RecordingStatus": "completed"})
    assert status in (204, 400)


def test_very_long_spoken_number_is_refused_cleanly(db, records, dial, fake):
    """20 s of digits gives a number far longer than any meter: asked again, no server error."""
    call = dial()
    to_account(call)
    say(call, fake, rec("one zero zero zero zero one"))
    p = say(call, fake, rec(" ".join(["one"] * 80)))
    assert "That is not a valid number." in p.texts
    romanian = dial(RO)
    p = to_account(romanian, lang_key="1")
    p = romanian._follow(p.gather["action"], {"SpeechResult": "1" * 200, "Confidence": "0.9"})  # noqa: SLF001
    assert p.gather is not None and "/voice/step/account" in p.gather["action"]  # asked again
    assert stored(db) == []
    assert [u.parsed_value for u in utterances(db)] == ["100001", None, None]
    assert utterances(db)[1].candidates == ["1" * 80]


def test_recording_status_ignores_recording_of_another_call(db, records, dial, fake, fetch, config):
    """A recording id is attached only to an utterance of the call named in the request."""
    from readings_store.models import Utterance

    call = dial()
    to_account(call)
    fetch.fail = RecordingUnavailable("not yet")
    say(call, fake, None)
    utt = utterances(db)[-1]
    assert utt.audio_path is None and utt.recording_sid
    other = dial()
    other.start()
    fetch.fail = None
    status, _ = other.post("http://localhost/voice/recording-status", {
        "RecordingSid": utt.recording_sid, "RecordingStatus": "completed",
        "RecordingUrl": "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/" + utt.recording_sid})
    assert status == 204
    db.expire_all()
    assert db.get(Utterance, utt.id).audio_path is None


# --- numbers and menus as people say them --------------------------------------------------------

def test_a_spoken_account_number_with_its_dashes(db, records, dial, fake):
    """"один два тире три четыре пять тире шесть": the dash said by its name finds 12-345-6."""
    account = f.account(db, records["north"], number="12-345-6")
    f.meter(db, account, serial="EL000246", previous=100, decimals=0)
    db.commit()
    call = dial(RU)
    p = to_account(call, lang_key="2")
    assert any("по одной цифре" in t and "«дефис»" in t for t in p.texts)  # the caller is told how
    p = say(call, fake, rec("один два тире три четыре пять дефис шесть"))
    assert any("показания счётчика электроэнергии" in t for t in p.texts), p.texts
    assert "тире" in fake.calls[-1][1] and "дефис" in fake.calls[-1][1]  # the account grammar hears them
    utt = utterances(db)[-1]
    assert (utt.parsed_value, utt.candidates, utt.decision) == ("12*345*6", ["12-345-6"], "accept")


def test_a_menu_is_not_answered_by_yes(db, records, dial, fake):
    """At the meter menu "да" is no choice (and not in the grammar, where it would be heard for
    "два"); "два" is meter 2."""
    call = dial(RU)
    to_account(call, lang_key="2")
    p = say(call, fake, rec("три ноль ноль ноль ноль три"))
    assert "Назовите счётчик или нажмите его номер." in p.texts
    p = say(call, fake, rec("да"))
    assert "Такого варианта нет." in p.texts and "/voice/step/meter" in p.gather["action"]
    grammar = fake.calls[-1][1]
    assert "два" in grammar and "да" not in grammar and "нет" not in grammar
    p = say(call, fake, rec("два"))
    assert any("показания счётчика газа" in t for t in p.texts)


def test_a_menu_choice_barely_heard_is_confirmed_by_its_key(db, records, dial, fake):
    call = dial(RU)
    to_account(call, lang_key="2")
    say(call, fake, rec("один ноль ноль ноль ноль один"))
    p = say(call, fake, rec("один два один ноль ноль"))
    assert "Показания: 1 2 1 0 0." in p.texts
    p = say(call, fake, rec("да", 0.7))  # between the re-ask and the accept thresholds
    assert p.texts == ["Чтобы подтвердить свой ответ, нажмите 1."] and p.record is None  # keys only
    assert stored(db) == []
    p = call.press("1")
    assert "Показания сохранены." in p.texts and len(stored(db)) == 1


def test_a_recorded_speech_wording_is_played_where_speech_is_heard(db, records, speech_config, engine, fake, tmp_path):
    """``ask_account.speech.wav`` beside the texts is played at a question heard by speech; the
    keypad wording's recording (or text) where it is not."""
    import shutil

    from ivr.prompts import PACKAGE_DIR

    base = tmp_path / "prompts"
    shutil.copytree(PACKAGE_DIR, base, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (base / "en" / "ask_account.speech.wav").write_bytes(b"RIFF....WAVE")
    speech_config.prompts_dir = base
    client = create_app(speech_config, engine=engine, speech=SpeechSteps(speech_config, recognizer=fake)).test_client()
    call = SimulatedCall("http://localhost", AUTH_TOKEN, flask_transport(client), caller=EN)
    p = to_account(call)
    assert p.texts == ["[audio http://localhost/voice/prompts/en/ask_account.speech]"]
    assert client.get("/voice/prompts/en/ask_account.speech").status_code == 200
    assert client.get("/voice/prompts/en/ask_account.other").status_code == 404
    speech_config.speech_engines = {**ENGINES, "en": "off"}
    call = SimulatedCall("http://localhost", AUTH_TOKEN, flask_transport(client), caller=EN)
    p = to_account(call)
    assert p.texts == ["Please key in your account number and press the hash key. For a dash, press star."]
