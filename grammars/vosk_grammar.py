"""Vosk grammars and Twilio hints for each speech step.

A grammar restricted to the step's words makes a small Vosk model far more accurate on a bad
line; "[unk]" is always included so that out-of-grammar speech comes out as "[unk]" instead of
being forced onto the nearest number word.
"""
from __future__ import annotations

import json

from ._lexicon import UNK, Pack, check_language, key, load, normalize, tokenize

KINDS: tuple[str, ...] = ("digits", "number", "yes_no", "menu")

_DIGIT_SECTIONS = ("digits", "decimal_point", "repeat_next")
_NUMBER_SECTIONS = (
    "digits", "teens", "tens", "hundreds", "hundred", "thousand", "million",
    "one_before_scale", "connectors", "decimal_point", "integer_part", "fraction", "repeat_next",
)


def _phrases(pack: Pack, section: dict, labels=None) -> list[str]:
    return [
        normalize(p, pack.lang)
        for label, ps in section.items()
        if labels is None or label in labels
        for p in ps
    ]


def _reply_phrases(pack: Pack) -> list[str]:
    replies = pack.raw["replies"]
    # negators are listed so that "не верно" / "not right" can be heard as a whole
    return _phrases(pack, {k: v for k, v in replies.items()})


def _items(lang: str, kind: str) -> list[str]:
    pack = load(check_language(lang))
    if kind == "digits":
        items = pack.surface(*_DIGIT_SECTIONS)
    elif kind == "number":
        items = pack.surface(*_NUMBER_SECTIONS)
    elif kind == "yes_no":
        items = _reply_phrases(pack)
    elif kind == "menu":
        items = (
            pack.surface(*_DIGIT_SECTIONS)
            + _phrases(pack, pack.raw["utilities"])
            + _phrases(pack, pack.raw["registers"])
            + _reply_phrases(pack)
        )
    else:
        raise ValueError(f"unknown grammar kind {kind!r}: expected one of {', '.join(KINDS)}")
    return list(dict.fromkeys(items))


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


def hints(lang: str, kind: str, extra=()) -> str:
    """Comma-separated phrases for Twilio ``<Gather hints=...>``.

    Spelling variants that only differ in Romanian diacritics are given once: they are the
    same sound to Twilio's recogniser and hints are limited in number.
    """
    seen: set[str] = set()
    out: list[str] = []
    # The question's own phrases first: Twilio weighs hints, and these are the rarest words.
    for phrase in [*(p.strip() for p in extra if p.strip()), *_items(lang, kind)]:
        k = " ".join(key(w, lang) for w in phrase.split())
        if k not in seen:
            seen.add(k)
            out.append(phrase)
    return ", ".join(out)
