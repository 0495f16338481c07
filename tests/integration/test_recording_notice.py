"""Whole calls: a caller who may be recorded hears once, at the start, in the call's language, that
spoken answers are recorded to check readings; nobody hears it where nothing is recorded."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ivr.prompts import PACKAGE_DIR
from tests import factories as f

NOTICES = {lang: json.loads((Path(PACKAGE_DIR) / lang / "prompts.json").read_text())["recording_notice"]
           for lang in ("ro", "ru", "uk", "en")}


@pytest.fixture
def records(db):
    north = f.region(db, code="N", name="North", menu_key=1, work=f.NEVER_OPEN)
    account = f.account(db, north, number="100001")
    f.meter(db, account, serial="EL000123", previous=1000, decimals=1)
    db.commit()


def _whole_call(phone, caller: str) -> list[str]:
    call = phone(caller=caller)
    heard = list(call.start().texts)
    for typed in ("", "100001#", "1100*5#", "1", "3"):  # the caller ID's language, one region, …
        heard += call.press(typed).texts
    return heard


@pytest.mark.parametrize("caller, lang", [("+37369000001", "ro"), ("+74951234567", "ru"),
                                          ("+380441234567", "uk"), ("+442079460000", "en")])
def test_callers_hear_the_notice_once_in_their_language(records, phone, config, caller, lang):
    assert config.may_record()  # Vosk listens in ru, uk and en by default; a Romanian caller may switch
    heard = _whole_call(phone, caller)
    # Right after the greeting (and the hint that 0 reaches a person), before the first question.
    assert NOTICES[lang] in heard[1:3]
    assert sum(text in NOTICES.values() for text in heard) == 1


def test_nobody_hears_it_where_no_language_is_recorded(records, phone, config):
    config.speech_engines = {"ro": "twilio", "ru": "off", "uk": "off", "en": "off"}
    heard = _whole_call(phone, "+442079460000")
    assert not any(text in NOTICES.values() for text in heard)
    assert not config.may_record("ro") and not config.may_record()


def test_the_notice_is_said_in_all_four_languages():
    assert len(set(NOTICES.values())) == 4 and all(text.endswith(".") for text in NOTICES.values())
