"""Short non-numeric answers: yes/no/repeat/operator, utility names, day/night registers, and the
choices a number question also takes by name ("all meters", "last reading")."""
from __future__ import annotations

from ._lexicon import check_language, find_phrases, key, load, tokenize

# When a caller says several things ("нет, повторите"), the more specific request wins:
# asking for a person or a repeat must not be swallowed by a yes/no in the same sentence.
_PRIORITY = ("operator", "repeat")
# Words allowed between a negator and the word it negates ("not right", "nu e corect",
# "не совсем верно").
_BETWEEN = {"en": {"that's", "is", "it", "quite", "that"}, "ro": {"e", "este", "prea"},
            "ru": {"совсем", "это"}, "uk": {"зовсім", "це"}}


def _keys(text: str, lang: str) -> list[str]:
    return [key(t, lang) for t in tokenize(text, lang) if not t[0].isdigit()]


def classify_reply(text: str, lang: str) -> str | None:
    """"yes", "no", "repeat", "operator", or None if the reply is none of these or unclear.

    A negated yes-word ("не верно", "not right", "nu e corect") counts as no. If both yes and
    no are heard, the last one wins: callers correct themselves ("нет... да, верно"), and
    Russian "да нет" means no.
    """
    pack = load(check_language(lang))
    toks = _keys(text, lang)
    found = find_phrases(toks, pack.replies)
    labels = {label for _, _, label in found}
    for label in _PRIORITY:
        if label in labels:
            return label
    between = _BETWEEN.get(lang, set())
    last = None
    for start, _end, label in found:
        if label == "yes":
            j = start - 1
            while j >= 0 and toks[j] in between:
                j -= 1
            if j >= 0 and toks[j] in pack.negators:
                label = "no"
        last = label
    return last


def _unique(text: str, lang: str, table: dict) -> str | None:
    labels = {label for _, _, label in find_phrases(_keys(text, lang), table)}
    # "холодная и горячая" names two utilities: better to ask again than to guess
    return labels.pop() if len(labels) == 1 else None


def match_utility(text: str, lang: str) -> str | None:
    """"electricity", "cold_water", "hot_water", "gas", "heat", or None (none or several)."""
    return _unique(text, lang, load(check_language(lang)).utilities)


def match_register(text: str, lang: str) -> str | None:
    """"day", "night", or None (neither, or both named)."""
    return _unique(text, lang, load(check_language(lang)).registers)


def match_phrase(text: str, lang: str, phrases) -> str | None:
    """The one of ``phrases`` (names offered by the question, e.g. regions) said in ``text``, as
    given; None if none, or several, are heard."""
    table = {}
    for phrase in phrases:
        keys = tuple(key(t, lang) for t in tokenize(phrase, lang))
        if keys:
            table.setdefault(keys, set()).add(phrase)
    found = {p for _, _, label in find_phrases([key(t, lang) for t in tokenize(text, lang)],
                                               {k: frozenset(v) for k, v in table.items()}) for p in label}
    return found.pop() if len(found) == 1 else None


def match_choice(text: str, lang: str, choices) -> str | None:
    """The one of ``choices`` (labels of the pack's ``choices``: "all_meters", "last_reading") named
    in ``text``; None if none, or several, are heard."""
    table = {k: label for k, label in load(check_language(lang)).choices.items() if label in choices}
    return _unique(text, lang, table) if table else None
