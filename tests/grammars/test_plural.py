"""Plural forms: the one rule (grammars.plural) and the counted words of every prompt pack."""
from __future__ import annotations

import pytest

from grammars import plural
from ivr.config import LANGUAGES
from ivr.dialog import Say
from ivr.prompts import COUNTED_PREFIX, Prompts

PROMPTS = Prompts()


@pytest.mark.parametrize("lang, expected", [
    ("ru", {1: "one", 21: "one", 101: "one", 2: "few", 3: "few", 4: "few", 22: "few", 34: "few", 0: "many",
            5: "many", 11: "many", 12: "many", 14: "many", 19: "many", 20: "many", 25: "many", 111: "many"}),
    ("uk", {1: "one", 31: "one", 2: "few", 24: "few", 11: "many", 13: "many", 5: "many", 100: "many"}),
    ("ro", {1: "one", 0: "few", 2: "few", 19: "few", 101: "few", 119: "few", 20: "other", 21: "other",
            100: "other", 120: "other"}),
    ("en", {1: "one", 0: "other", 2: "other", 11: "other", 21: "other"}),
])
def test_categories(lang, expected):
    assert {n: plural.category(lang, n) for n in expected} == expected
    assert set(expected.values()) == set(plural.CATEGORIES[lang])


def test_english_words():
    assert [f"{n} {plural.english(n, 'reminder', 'reminders')}" for n in (0, 1, 2)] == [
        "0 reminders", "1 reminder", "2 reminders"]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_counted_word_has_every_form_its_language_needs(lang):
    words = {k: forms for k, forms in PROMPTS.words(lang).items() if k.startswith(COUNTED_PREFIX)}
    assert words
    for key, forms in words.items():
        assert set(forms) == set(plural.CATEGORIES[lang]), (lang, key)


@pytest.mark.parametrize("lang, n, text", [
    ("en", 1, "Your account has 1 reading to give; your message has more values."),
    ("en", 3, "Your account has 3 readings to give; your message has more values."),
    ("ro", 1, "Contul dumneavoastră are 1 indice de transmis, iar mesajul conține mai multe valori."),
    ("ro", 3, "Contul dumneavoastră are 3 indici de transmis, iar mesajul conține mai multe valori."),
    ("ro", 20, "Contul dumneavoastră are 20 de indici de transmis, iar mesajul conține mai multe valori."),
    ("ru", 1, "По вашему счёту нужно передать 1 показание, а в сообщении значений больше."),
    ("ru", 3, "По вашему счёту нужно передать 3 показания, а в сообщении значений больше."),
    ("ru", 5, "По вашему счёту нужно передать 5 показаний, а в сообщении значений больше."),
    ("ru", 11, "По вашему счёту нужно передать 11 показаний, а в сообщении значений больше."),
    ("uk", 1, "За вашим рахунком потрібно передати 1 показання, а в повідомленні значень більше."),
    ("uk", 2, "За вашим рахунком потрібно передати 2 показання, а в повідомленні значень більше."),
    ("uk", 5, "За вашим рахунком потрібно передати 5 показань, а в повідомленні значень більше."),
])
def test_counts_in_texts_take_the_right_form(lang, n, text):
    assert PROMPTS.render(Say("sms_too_many_values", {"count": n}), lang)[1] == text


@pytest.mark.parametrize("lang, counts", [
    ("ro", {1: "Am salvat 1 indice.", 2: "Am salvat 2 indici.", 21: "Am salvat 21 de indici."}),
    ("ru", {1: "Сохранено 1 показание.", 2: "Сохранено 2 показания.", 5: "Сохранено 5 показаний.",
            21: "Сохранено 21 показание."}),
    ("uk", {1: "Збережено 1 показання.", 4: "Збережено 4 показання.", 12: "Збережено 12 показань."}),
    ("en", {1: "Saved: 1 reading.", 2: "Saved: 2 readings."}),
])
def test_saved_count_at_the_end_of_a_call(lang, counts):
    assert {n: PROMPTS.render(Say("saved_count", {"count": n}), lang)[1] for n in counts} == counts
