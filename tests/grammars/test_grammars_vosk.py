"""Vosk grammars, vocabulary and Twilio hints agree with what the parsers understand."""
import json
import unicodedata

import pytest

import grammars
from hypothesis import given, settings
from hypothesis import strategies as st

from grammars import (
    LANGUAGES, UnknownLanguage, build_grammar, classify_reply, grammar_json, hints,
    match_register, match_utility, parse_account, parse_number, vocabulary,
)
from grammars._lexicon import load

KINDS = grammars.KINDS  # every grammar a question listens with
NUMBER_SECTIONS = ("digits", "teens", "tens", "hundreds", "hundred", "thousand", "million",
                   "one_before_scale", "connectors", "decimal_point", "integer_part",
                   "fraction_and", "fraction", "repeat_next")


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_grammar_shape(lang, kind):
    g = build_grammar(lang, kind)
    assert g[-1] == "[unk]" and g.count("[unk]") == 1
    assert len(g) == len(set(g)), "no duplicates"
    for item in g:
        assert item == item.strip().lower() and "  " not in item and item
    assert json.loads(grammar_json(lang, kind)) == g


def sounds(lang, phrases):
    """What the phrases sound like: one spelling of a sound stands for all of them."""
    return {load(lang).sound(p) for p in phrases}


@pytest.mark.parametrize("lang", LANGUAGES)
def test_grammar_contents(lang):
    raw = load(lang).raw["numbers"]
    digits = sounds(lang, build_grammar(lang, "digits"))
    number = sounds(lang, build_grammar(lang, "number"))
    menu = sounds(lang, build_grammar(lang, "menu"))
    for ws in raw["digits"].values():
        assert sounds(lang, ws) <= digits and sounds(lang, ws) <= number and sounds(lang, ws) <= menu
    assert sounds(lang, raw["decimal_point"]) <= digits
    for sec in ("teens", "tens", "thousand", "million", "integer_part", "fraction_and"):
        words = raw[sec] if isinstance(raw[sec], list) else [w for v in raw[sec].values() for w in v]
        assert sounds(lang, words) <= number
        assert not sounds(lang, words) & digits or sec == "thousand"
    for ws in load(lang).raw["utilities"].values():
        assert sounds(lang, ws) <= menu
    yes_no = sounds(lang, build_grammar(lang, "yes_no"))
    replies = load(lang).raw["replies"]
    always = sounds(lang, replies["repeat"] + replies["operator"])
    assert always <= menu and always <= yes_no
    # a menu is answered by digits or names: yes and no would be confused with digit words
    assert not sounds(lang, replies["yes"] + replies["no"]) & menu
    for phrase in load(lang).raw["replies"]["yes"]:
        # "ok" is sent as "okay"; "неверно" as the "не" + "верно" the grammar allows anyway
        assert load(lang).sound(phrase) in yes_no or phrase in SEQUENCES.get(lang, ()), phrase


# one-word replies the grammars leave out because they sound exactly like two grammar words
SEQUENCES = {"ru": ("неверно", "неправильно"), "uk": ("невірно", "неправильно", "не так")}


def test_english_double_triple_in_number_grammar():
    assert {"double", "triple", "hundred", "and", "point"} <= set(build_grammar("en", "number"))


@pytest.mark.parametrize("lang", LANGUAGES)
def test_vocabulary_has_every_understood_word(lang):
    vocab = vocabulary(lang)
    assert "[unk]" not in vocab
    assert all(" " not in w for w in vocab)
    pack = load(lang)
    heard = {pack.sound(w) for w in vocab}
    for word in pack.surface(*NUMBER_SECTIONS):
        assert pack.sound(word) in heard, word
    for kind in KINDS:
        for item in build_grammar(lang, kind)[:-1]:
            assert set(item.split()) <= vocab


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_number_grammar_word_is_understood(lang):
    numbers = load(lang).raw["numbers"]
    # words that mean something only next to another: "double five", "a hundred", "două sute"
    leaning = {"double", "triple", *numbers["one_before_scale"], *numbers.get("rules", {}).get("plural_needs_count", [])}
    for word in build_grammar(lang, "number"):
        if classify_reply(word, lang) == "operator":
            continue  # a request for a person, heard at every question
        r = parse_number(word, lang)
        assert word == "[unk]" or word not in r.unknown or word in leaning, word
    for word in build_grammar(lang, "digits"):
        if classify_reply(word, lang) == "operator":
            continue
        r = parse_account(word, lang)
        # a separator alone separates nothing
        assert word == "[unk]" or word not in r.unknown or word in leaning or r.best is None, word


@pytest.mark.parametrize("lang", LANGUAGES)
def test_number_grammars_hear_the_word_operator(lang):
    words = load(lang).raw["replies"]["operator"]
    for kind in ("digits", "number"):
        grammar = build_grammar(lang, kind)
        assert words[0] in grammar
        assert all(classify_reply(w, lang) == "operator" for w in grammar if w.startswith(words[0]))
    # the looser words for a person stay out of the number grammars: digits would be heard as them
    assert {"someone", "person", "human"}.isdisjoint(build_grammar("en", "digits"))


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_reply_phrase_is_classified(lang):
    replies = load(lang).raw["replies"]
    for label in ("yes", "no", "repeat", "operator"):
        for phrase in replies[label]:
            assert classify_reply(phrase, lang) == label, phrase


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_utility_and_register_phrase_matches(lang):
    raw = load(lang).raw
    for label, phrases in raw["utilities"].items():
        for p in phrases:
            assert match_utility(p, lang) == label, p
            assert match_utility(p.upper(), lang) == label, p
    for label, phrases in raw["registers"].items():
        for p in phrases:
            assert match_register(p, lang) == label, p


def _strip(s):
    return "".join(c for c in unicodedata.normalize("NFD", s) if not unicodedata.combining(c))


def test_romanian_without_diacritics_and_with_cedillas():
    for word in build_grammar("ro", "number")[:-1] + build_grammar("ro", "menu")[:-1]:
        base = parse_number(word, "ro")
        cedilla = word.replace("ș", "ş").replace("ț", "ţ")
        for variant in (_strip(word), cedilla):
            r = parse_number(variant, "ro")
            # unknown words are reported as spoken, so only the readings must agree
            assert (r.candidates, len(r.unknown)) == (base.candidates, len(base.unknown)), word
        assert match_utility(_strip(word), "ro") == match_utility(word, "ro")
        assert classify_reply(cedilla, "ro") == classify_reply(word, "ro")


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_hints(lang, kind):
    h = hints(lang, kind)
    phrases = h.split(", ")
    assert "[unk]" not in phrases
    assert len(phrases) == len(set(phrases)) and all(phrases)
    assert len(phrases) <= 500 and all(len(p) <= 100 for p in phrases)  # Twilio's limits
    assert set(phrases) <= set(build_grammar(lang, kind))


def test_romanian_hints_skip_diacritic_free_duplicates():
    phrases = hints("ro", "digits").split(", ")
    assert "nouă" in phrases and "noua" not in phrases


@pytest.mark.parametrize("fn", [build_grammar, grammar_json, hints])
def test_bad_language_or_kind(fn):
    with pytest.raises(UnknownLanguage):
        fn("fr", "digits")
    with pytest.raises(ValueError, match="kind"):
        fn("en", "letters")
    with pytest.raises(UnknownLanguage):
        vocabulary("xx")


@st.composite
def grammar_utterance(draw):
    lang = draw(st.sampled_from(LANGUAGES))
    kind = draw(st.sampled_from(KINDS))
    words = draw(st.lists(st.sampled_from(build_grammar(lang, kind)), max_size=14))
    return lang, " ".join(words)


@settings(max_examples=500, deadline=None)
@given(grammar_utterance())
def test_grammar_only_words_never_break_the_parsers(case):
    lang, text = case
    r = parse_number(text, lang)
    if r.best is None:
        assert r.candidates == () and not r.ambiguous
    else:
        assert r.best == r.candidates[0]
        assert len(set(r.candidates)) == len(r.candidates)
        for c in r.candidates:
            assert c.count(".") <= 1 and c.replace(".", "").isdigit()
        assert not r.ambiguous or len(r.candidates) > 1
    assert classify_reply(text, lang) in (None, "yes", "no", "repeat", "operator")
    assert match_utility(text, lang) in (None, "electricity", "cold_water", "hot_water", "gas", "heat")
    assert match_register(text, lang) in (None, "day", "night")
