"""Per-language words for the phone robot's speech steps (ro, ru, uk, en).

Word lists live in ``grammars/data/<lang>.json``; this package turns them into Vosk grammars,
Twilio hints, and parsers for what callers say. It imports nothing else of the project.
"""
from ._lexicon import LANGUAGES, UnknownLanguage
from .numbers import SEPARATOR, NumberParse, parse_account, parse_number
from .replies import classify_reply, match_choice, match_phrase, match_register, match_utility
from .vosk_grammar import CHOICES, KINDS, build_grammar, grammar_json, hints, phrase_words, vocabulary

__all__ = [
    "CHOICES",
    "KINDS",
    "LANGUAGES",
    "NumberParse",
    "SEPARATOR",
    "UnknownLanguage",
    "build_grammar",
    "classify_reply",
    "grammar_json",
    "hints",
    "match_choice",
    "match_phrase",
    "match_register",
    "match_utility",
    "parse_account",
    "parse_number",
    "phrase_words",
    "vocabulary",
]
