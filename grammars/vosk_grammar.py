"""Vosk grammars and Twilio hints for each speech step.

A grammar restricted to the step's words makes a small Vosk model far more accurate on a bad
line; "[unk]" is always included so that out-of-grammar speech comes out as "[unk]" instead of
being forced onto the nearest number word.

A grammar holds one spelling per sound. A recogniser scores each grammar word separately, so
two spellings of one sound ("oh"/"o", "două"/"doua", "неверно"/"не верно") share the
probability of that sound between them: each stays near 0.5 however clearly the caller spoke,
and the confidence policy asks again. The parser still understands every spelling.

The number grammars (digits, number) also hold the word for an operator in its forms ("operator",
"оператора"): a caller may ask for a person at any question. The menu grammars hold every reply.
Two number grammars also hold a choice by name (``CHOICES``): ``serial`` (a meter's serial digits,
or "all meters" in turn) and ``number_last`` (a reading, or "last reading" for a caller offered it).
"""
from __future__ import annotations

import functools
import json

from ._lexicon import UNK, Pack, check_language, key, load, normalize, tokenize

KINDS: tuple[str, ...] = ("digits", "number", "yes_no", "menu", "serial", "number_last")
# The grammars that add choices said by name (the pack's ``choices``) to a number grammar's words.
CHOICES: dict[str, tuple[str, tuple[str, ...]]] = {"serial": ("digits", ("all_meters",)),
                                                   "number_last": ("number", ("last_reading",))}

# An account number: digits one by one, and the words for a dash (or the decimal point, which a
# keypad's "*" stands for too).
_DIGIT_SECTIONS = ("digits", "separator", "decimal_point", "repeat_next")
_NUMBER_SECTIONS = (
    "digits", "teens", "tens", "hundreds", "hundred", "thousand", "million",
    "one_before_scale", "connectors", "decimal_point", "integer_part", "fraction_and", "fraction",
    "one_and_a_half", "half", "repeat_next",
)
# What any question hears besides its own answers: a request to repeat or for a person.
_ALWAYS = ("repeat", "operator")


def _phrases(pack: Pack, section: dict, labels=None) -> list[str]:
    return [
        normalize(p, pack.lang)
        for label, ps in section.items()
        if labels is None or label in labels
        for p in ps
    ]


def _reply_phrases(pack: Pack, labels=None) -> list[str]:
    # negators are listed so that "не верно" / "not right" can be heard as a whole
    return _phrases(pack, pack.raw["replies"], labels)


def operator_words(lang: str) -> list[str]:
    """The word for an operator in its forms ("оператор", "оператора", ...): the first operator
    reply of the language pack and the replies built on it, not the looser "person", "someone"
    that a number grammar would hear in digits."""
    pack = load(check_language(lang))
    replies = [normalize(p, pack.lang) for p in pack.raw["replies"]["operator"]]
    return [p for p in replies if p.startswith(replies[0])]


def _items(lang: str, kind: str) -> list[str]:
    return list(_items_cached(check_language(lang), kind))


# The language packs do not change while a process runs, and a grammar is built for every spoken
# answer: each kind's phrases are worked out once.
@functools.lru_cache(maxsize=64)
def _items_cached(lang: str, kind: str) -> tuple[str, ...]:
    pack = load(lang)
    if kind == "digits":
        items = pack.surface(*_DIGIT_SECTIONS) + operator_words(lang)
    elif kind == "number":
        items = pack.surface(*_NUMBER_SECTIONS) + operator_words(lang)
    elif kind == "yes_no":
        items = _reply_phrases(pack)
    elif kind in CHOICES:
        base, labels = CHOICES[kind]
        items = list(_items_cached(lang, base)) + _phrases(pack, pack.raw.get("choices", {}), labels)
    elif kind == "menu":
        # A menu is answered by its keys' digits or by name; yes/no words have no place in it,
        # and would be confused with digit words ("да" with "два", "nu" with "unu").
        items = (
            pack.surface("digits")
            + _phrases(pack, pack.raw["utilities"])
            + _phrases(pack, pack.raw["registers"])
            + _reply_phrases(pack, _ALWAYS)
        )
    else:
        raise ValueError(f"unknown grammar kind {kind!r}: expected one of {', '.join(KINDS)}")
    return tuple(_one_per_sound(pack, list(dict.fromkeys(items))))


def _one_per_sound(pack: Pack, items: list[str]) -> list[str]:
    """One phrase per sound, in the spelling recognisers get; without phrases that sound like a
    sequence of other phrases.

    Same sound: the spellings of a ``same_sound`` group (forms of one word: "одна"/"одну" are
    heard as "один", "gaze naturale" as "gaz naturale"), and (through the lookup key) a Romanian
    spelling without diacritics. A sequence: "неверно" is heard exactly as "не" + "верно", which
    the grammar already allows.
    """
    kept: dict[tuple[str, ...], str] = {}
    for phrase in items:
        kept.setdefault(pack.sound(phrase), pack.spelled(phrase))
    joined = {"".join(s): s for s in kept}
    return [p for s, p in kept.items() if not _sequence_of_others("".join(s), joined, s)]


def _sequence_of_others(sound: str, phrases: dict[str, tuple[str, ...]], own: tuple[str, ...]) -> bool:
    """Whether ``sound`` (spaces removed) splits into two or more other phrases' sounds."""
    # One-letter words are left out: "тысячи" is not "тысяч" + "и" in anybody's ears.
    parts = [p for p, s in phrases.items() if s != own and len(p) > 1]
    # ends[i]: the fewest phrases that spell sound[:i] (0 for the empty prefix)
    ends = {0: 0}
    for i in range(len(sound)):
        if i in ends:
            for p in parts:
                if sound.startswith(p, i):
                    ends[i + len(p)] = max(ends.get(i + len(p), 0), ends[i] + 1)
    return ends.get(len(sound), 0) >= 2


def _extra(lang: str, phrases) -> list[str]:
    """A question's own phrases (region names) in the grammar's written form: lower case, words only."""
    return [" ".join(tokenize(p, lang)) for p in phrases if tokenize(p, lang)]


def build_grammar(lang: str, kind: str, extra=()) -> list[str]:
    """Phrase list for ``KaldiRecognizer(model, rate, json.dumps(list))``; ends with "[unk]".
    ``extra``: phrases only this question offers (names of regions), added to the kind's words."""
    return list(dict.fromkeys(_items(lang, kind) + _extra(check_language(lang), extra))) + [UNK]


def grammar_json(lang: str, kind: str) -> str:
    """:func:`build_grammar` as the JSON string Vosk takes (UTF-8 kept readable)."""
    return json.dumps(build_grammar(lang, kind), ensure_ascii=False)


def vocabulary(lang: str) -> set[str]:
    """Every single word any grammar of ``lang`` may emit (without "[unk]").

    The speech layer compares this with the model's word list: Vosk silently drops grammar
    words the model does not know, which would make those words impossible to recognise.
    """
    return {w for kind in KINDS for phrase in _items(lang, kind) for w in phrase.split()}


def phrase_words(lang: str, phrases) -> set[str]:
    """The words a grammar holds for a question's own phrases (region names), as the recogniser
    must know them: a model that lacks one can never hear that name."""
    return {w for phrase in _extra(check_language(lang), phrases) for w in phrase.split()}


def hints(lang: str, kind: str, extra=()) -> str:
    """Comma-separated phrases for Twilio ``<Gather hints=...>``: the grammar's phrases, so each
    sound once (hints are limited in number, and spelling variants would only repeat it)."""
    seen: set[str] = set()
    out: list[str] = []
    # The question's own phrases first: Twilio weighs hints, and these are the rarest words.
    for phrase in [*(p.strip() for p in extra if p.strip()), *_items(lang, kind)]:
        k = " ".join(key(w, lang) for w in phrase.split())
        if k not in seen:
            seen.add(k)
            out.append(phrase)
    return ", ".join(out)
