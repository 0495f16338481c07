"""STOP, START and HELP on the SMS line: recognised however the word is typed, honoured always, and
a number that opted out hears nothing more from the line except to START and HELP."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from readings_store import sms as sms_store
from readings_store.models import Reading, SmsOptOut

from .test_sms_readings import home, message_text, post_sms  # noqa: F401 - home: a fixture

UK = "+447700900123"


@pytest.mark.parametrize("body", [
    "ＳＴＯＰ",  # fullwidth
    "S\u200bTOP",  # a zero-width space inside
    "\ufeffstop\u200d",  # BOM and zero-width joiner around
    "СТОП",
    "стоп\u2060",
    "Stop now",
    "STOP please!",
    "please stop",
    "Stop texting me",
    "Стоп, пожалуйста",
])
def test_stop_however_it_is_typed(body):
    assert sms_store.keyword(body) == "stop"


@pytest.mark.parametrize("body", [
    "1000003 12345", "stop 1000003 12345", "nonstop", "stopping by later today thanks", "ok",
    "the meter stopped at 12345",
])
def test_not_a_stop(body):
    assert sms_store.keyword(body) != "stop"


def test_start_and_help_stay_whole_words():
    assert sms_store.keyword("ＳＴＡＲＴ") == "start" and sms_store.keyword("help\u200b") == "help"
    assert sms_store.keyword("start now") is None  # a phrase opts out, never back in


def opted_out(db) -> list[str]:
    db.expire_all()
    return db.scalars(select(SmsOptOut.phone)).all()


def test_after_stop_only_start_and_help_get_an_answer(client, db, home):  # noqa: F811
    assert "no more messages" in message_text(post_sms(client, "СТОП", sender=UK))
    assert opted_out(db) == [UK]
    assert message_text(post_sms(client, "hello", sender=UK)) is None
    assert message_text(post_sms(client, "1000003 1001", sender=UK)) is None  # a reading: kept, unanswered
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(Reading).where(Reading.channel == "sms")) == 1
    assert message_text(post_sms(client, "STOP", sender=UK)) is None  # no second confirmation
    assert message_text(post_sms(client, "HELP", sender=UK)).startswith("To send meter readings")
    assert message_text(post_sms(client, "START", sender=UK))
    assert opted_out(db) == []
    assert message_text(post_sms(client, "hello", sender=UK))  # answered again


def test_a_phrase_with_stop_opts_out(client, db, home):  # noqa: F811
    assert "no more messages" in message_text(post_sms(client, "Stop now", sender=UK))
    assert opted_out(db) == [UK]


def test_fullwidth_or_hidden_characters_opt_out(client, db, home):  # noqa: F811
    assert message_text(post_sms(client, "ＳＴＯＰ", sender=UK))
    assert message_text(post_sms(client, "S\u200bTOP", sender="+447700900999"))
    assert sorted(opted_out(db)) == sorted([UK, "+447700900999"])


def test_stop_and_start_are_rate_limited_like_other_texts(client, db, home, app):  # noqa: F811
    app.extensions["ivr"].config.sms_per_hour = 4
    answers = [message_text(post_sms(client, word, sender=UK)) for word in ("STOP", "START") * 5]
    assert sum(a is not None for a in answers) == 4  # then silence, however often they alternate
    assert all(a is None for a in answers[4:])
    assert opted_out(db) == []  # the last word, START, still counts
    message_text(post_sms(client, "STOP", sender=UK))
    assert opted_out(db) == [UK]  # and so does a STOP past the limit
