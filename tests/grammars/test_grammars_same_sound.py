"""One spelling per sound in every grammar a recogniser gets; the parsers still take them all.

A recogniser scores grammar words separately, so two spellings of one sound split its
confidence: with both "oh" and "o" in the grammar a clearly spoken "oh" scored under 0.5 with a
real English acoustic model, and every answer containing it was asked again.
"""
import dataclasses
import unicodedata

import pytest

import grammars

from grammars import (
    LANGUAGES, build_grammar, classify_reply, hints, match_register, match_utility,
    parse_number, vocabulary,
)
from grammars._lexicon import _same_sound, load

KINDS = grammars.KINDS  # every grammar a question listens with

# Spellings of one sound, written out here rather than taken from the packs.
HOMOPHONES = {
    "en": [("oh", "o"), ("nought", "naught"), ("forty", "fourty"), ("okay", "ok")],
    "uk": [("вдень", "удень"), ("вночі", "уночі")],
}
# A word heard exactly as two grammar words said together (unstressed "не" joins the next word).
SEQUENCES = {
    "ru": [("неверно", "не верно"), ("неправильно", "не правильно")],
    "uk": [("невірно", "не вірно"), ("неправильно", "не правильно"), ("не так", "не так")],
}


def _plain(phrase: str, lang: str) -> str:
    """Spelling differences no ear hears: case, ё, apostrophe forms, Romanian diacritics."""
    text = unicodedata.normalize("NFC", phrase).lower().replace("ё", "е").replace("\u2019", "'")
    if lang == "ro":
        text = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    return text


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_no_two_spellings_of_one_sound(lang, kind):
    grammar = build_grammar(lang, kind)
    plain = [_plain(p, lang) for p in grammar]
    assert len(plain) == len(set(plain)), sorted(p for p in plain if plain.count(p) > 1)
    for pair in HOMOPHONES.get(lang, []):
        assert len(set(pair) & set(grammar)) <= 1, pair


@pytest.mark.parametrize("lang", LANGUAGES)
def test_no_word_that_sounds_like_two_grammar_words(lang):
    for kind in KINDS:
        grammar = set(build_grammar(lang, kind))
        for one, two in SEQUENCES.get(lang, []):
            if set(two.split()) <= grammar:
                assert one not in grammar, (kind, one)


def test_the_reported_english_split_is_gone():
    for kind in ("digits", "number", "menu"):
        g = build_grammar("en", kind)
        assert "oh" in g and "o" not in g
        assert "nought" in g and "naught" not in g
        assert "zero" in g  # another word for the same digit, not another spelling: kept
    assert "forty" in build_grammar("en", "number") and "fourty" not in build_grammar("en", "number")
    assert "okay" in build_grammar("en", "yes_no") and "ok" not in build_grammar("en", "yes_no")


def test_romanian_gets_the_spelling_with_diacritics():
    g = build_grammar("ro", "number")
    for word in ("nouă", "șase", "șapte", "douăzeci", "unșpe", "virgulă", "întregi"):
        assert word in g and _plain(word, "ro") not in g, word


def test_vocabulary_and_hints_follow_the_grammar():
    assert {"o", "naught", "fourty", "ok"}.isdisjoint(vocabulary("en"))
    assert {"oh", "nought", "forty", "okay"} <= vocabulary("en")
    assert "noua" not in vocabulary("ro") and "nouă" in vocabulary("ro")
    phrases = hints("en", "number").split(", ")
    assert "oh" in phrases and "o" not in phrases


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_left_out_spelling_means_what_the_kept_one_means(lang):
    pack = load(lang)
    kept = {pack.sound(p): p for kind in KINDS for p in build_grammar(lang, kind)}
    raw = pack.raw
    spoken = pack.surface(*raw["numbers"].keys() - {"fillers", "decimal_weak", "rules"})
    for table in (raw["replies"], raw["utilities"], raw["registers"]):
        spoken += [p for ps in table.values() for p in ps]
    checked = 0
    for phrase in spoken:
        same = kept.get(pack.sound(phrase))
        if same is None or same == phrase:
            continue
        checked += 1
        for fn in (classify_reply, match_utility, match_register):
            assert fn(phrase, lang) == fn(same, lang), (phrase, same, fn.__name__)
        assert parse_number(phrase, lang).candidates == parse_number(same, lang).candidates, (phrase, same)
    assert checked or lang == "ru"


@pytest.mark.parametrize("lang", ["ru", "uk"])
def test_left_out_words_mean_what_the_two_words_mean(lang):
    for one, two in SEQUENCES[lang]:
        assert classify_reply(one, lang) == classify_reply(two, lang) == "no"


@pytest.mark.parametrize("lang,variant,kept", [
    ("en", "o o seven", "007"), ("en", "naught point five", "0.5"), ("en", "fourty two", "42"),
    ("ro", "doua sute", "200"), ("ro", "sase", "6"), ("uk", "пʼять", "5"),
])
def test_parser_still_understands_every_spelling(lang, variant, kept):
    assert parse_number(variant, lang).best == kept


def test_replies_still_understood_in_every_spelling():
    assert classify_reply("ok", "en") == classify_reply("okay", "en") == "yes"
    assert match_register("удень", "uk") == match_register("вдень", "uk") == "day"
    assert match_register("уночі", "uk") == "night"
    assert classify_reply("всё верно", "ru") == "yes"


def test_same_sound_groups_must_share_one_meaning():
    pack = dataclasses.replace(load("en"), same_sound={})
    for group in (["one", "two"], ["oh", "yes"], ["oh", "ohh"], ["oh"]):
        with pytest.raises(ValueError, match="same_sound"):
            _same_sound(pack, [group], "test")
    assert pack.same_sound == {}
    _same_sound(pack, [["oh", "o"]], "test")
    assert pack.same_sound == {"o": "oh"}


# --- no two words of one grammar sound alike ---------------------------------------------------

_VOWELS = set("aeiouyăâîаеёиоуыэюяіїєьъ'")


def _skeleton(word: str) -> str:
    """A word's consonants: forms of one word (один/одна/одну, doi/două, тысяча/тысячи) share them."""
    return "".join(c for c in _plain(word, "ro" if word.isascii() else "ru") if c not in _VOWELS)


def _distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _alike(a: str, b: str) -> bool:
    sa, sb = _skeleton(a), _skeleton(b)
    if min(len(sa), len(sb)) <= 1:  # short words are told apart by their one consonant
        return sa == sb
    return sa == sb or (_distance(sa, sb) <= 1 and _distance(a, b) <= 2)


def _sound_alike_pairs(lang: str, kind: str) -> list[tuple[str, str]]:
    """Phrases of one meaning whose words, one by one, sound alike ("ноль"/"нуль", "холодная вода"/
    "холодной воды"): a recogniser splits its confidence between them for nothing."""
    pack = load(lang)
    from grammars._lexicon import key, meanings
    phrases = [p for p in build_grammar(lang, kind) if p != "[unk]"]
    found = []
    for i, a in enumerate(phrases):
        for b in phrases[i + 1:]:
            wa, wb = a.split(), b.split()
            if len(wa) != len(wb):
                continue
            ma = meanings(pack, tuple(key(w, lang) for w in wa))
            if not ma or ma != meanings(pack, tuple(key(w, lang) for w in wb)):
                continue
            if all(x == y or _alike(x, y) for x, y in zip(wa, wb)):
                found.append((a, b))
    return found


# Words of different meanings that a recogniser confuses on a phone line: no grammar may hold both.
CLASHES = {
    "ru": [("да", "два"), ("нет", "ноль")],
    "uk": [("так", "два"), ("ні", "ніч")],
    "ro": [("nu", "unu"), ("da", "doi")],
    "en": [("no", "oh"), ("no", "nine")],
}
# The forms named by the native-speaker review, one of each kept.
NAMED_FORMS = {
    "ru": [("ноль", "нуль"), ("один", "одна", "одно", "одну"), ("два", "две")],
    "uk": [("нуль", "ноль"), ("один", "одна", "одне", "одно", "одну"), ("два", "дві")],
    "ro": [("doi", "două"), ("cincisprezece", "cinsprezece"), ("unu", "una", "un")],
    "en": [("nine", "niner")],
}


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_no_two_words_of_one_grammar_sound_alike(lang, kind):
    assert _sound_alike_pairs(lang, kind) == []
    grammar = set(build_grammar(lang, kind))
    for forms in NAMED_FORMS[lang]:
        assert len(grammar & set(forms)) <= 1, forms
    for pair in CLASHES[lang]:
        assert not set(pair) <= grammar, (kind, pair)


@pytest.mark.parametrize("lang,said,best", [
    ("ru", "нуль одна одно одну две", "01112"), ("uk", "ноль одна одне одно одну дві", "011112"),
    ("ro", "una un două cinsprezece", "11215"), ("en", "niner", "9"),
    ("ru", "две тысячи", "2000"), ("ru", "одну тысячу", "1000"), ("ro", "două sute", "200"),
])
def test_forms_left_out_of_the_grammars_are_still_understood(lang, said, best):
    assert parse_number(said, lang).best == best


def test_the_checker_sees_the_forms_it_must():
    assert _alike("один", "одну") and _alike("ноль", "нуль") and _alike("doi", "două")
    assert _alike("cincisprezece", "cinsprezece") and _alike("nine", "niner") and _alike("тысяча", "тысячи")
    assert not _alike("да", "ага") and not _alike("один", "два") and not _alike("сорок", "сто")
