"""Loading of the language packs (``grammars/data/<lang>.json``) and text normalisation.

The JSON files are the single source of truth for words; this module only indexes them.
Both parsing and grammar building go through here so that the words Vosk may emit and the
words the parser understands cannot drift apart.
"""
from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

LANGUAGES: tuple[str, ...] = ("ro", "ru", "uk", "en")

UNK = "[unk]"
NEEDS_COUNT = 2  # the value of a multiplier word that needs a count before it ("sute", "mii")


class UnknownLanguage(ValueError):
    """Raised for a language code that has no language pack."""

    def __init__(self, lang: object) -> None:
        super().__init__(
            f"unsupported language {lang!r}: expected one of {', '.join(LANGUAGES)}"
        )
        self.lang = lang


def check_language(lang: object) -> str:
    if not isinstance(lang, str) or lang not in LANGUAGES:
        raise UnknownLanguage(lang)
    return lang


# Apostrophe look-alikes: Ukrainian words (п'ять) reach us with any of these depending on the
# keyboard or recogniser, so they are folded into the ASCII one the language pack uses.
_APOSTROPHES = str.maketrans({c: "'" for c in "\u2019\u2018\u02bc\u02b9`\u00b4\u2032"})
# Romanian: the legacy cedilla letters are still common in typed and recognised text.
_RO_CEDILLA = str.maketrans({"ş": "ș", "ţ": "ț", "Ş": "ș", "Ţ": "ț"})


def normalize(text: str, lang: str) -> str:
    """Lower-case display form: NFC, ё→е, one apostrophe, Romanian comma-below letters."""
    text = unicodedata.normalize("NFC", text).lower().translate(_APOSTROPHES)
    if lang == "ro":
        text = text.translate(_RO_CEDILLA)
    elif lang in ("ru", "uk"):
        text = text.replace("ё", "е")
    return text


def key(word: str, lang: str) -> str:
    """Lookup key of an already split word.

    Romanian callers and recognisers drop diacritics freely ("doua", "sapte"), so Romanian keys
    have no diacritics at all. Cyrillic must keep them: stripping would turn й into и, ї into і.
    """
    word = normalize(word, lang)
    if lang == "ro":
        word = "".join(
            c for c in unicodedata.normalize("NFD", word) if not unicodedata.combining(c)
        )
    return word


# A recogniser's "[unk]", numerals with inner separators (12,5 / 42.317 / 123-456), or words with
# inner apostrophes. Between words, hyphens and other punctuation separate tokens ("twenty-one" →
# two words); between digits a hyphen stays, since an account number may have one ("123-456").
_TOKEN_RE = re.compile(r"\[unk\]|\d+(?:[.,]\d+)*(?:-\d+(?:[.,]\d+)*)*|[^\W\d_]+(?:'[^\W\d_]+)*")


def tokenize(text: str, lang: str) -> list[str]:
    return _TOKEN_RE.findall(normalize(text, lang))


@dataclass(frozen=True)
class Word:
    """What a single number-related word means."""

    kind: str  # D T X H MH MK MM ART CONN DEC INT FAND FRAC REP FILL SEP HALF1
    value: int = 0


@dataclass
class Pack:
    """One language's words, indexed for lookup."""

    lang: str
    raw: dict
    words: dict[str, Word] = field(default_factory=dict)  # key -> meaning (number words)
    weak_decimal: frozenset[str] = frozenset()
    # reply/utility/register phrases as tuples of keys -> label, longest first when matching
    replies: dict[tuple[str, ...], str] = field(default_factory=dict)
    negators: frozenset[str] = frozenset()
    utilities: dict[tuple[str, ...], str] = field(default_factory=dict)
    registers: dict[tuple[str, ...], str] = field(default_factory=dict)
    # choices a number question also takes by name ("all meters", "last reading")
    choices: dict[tuple[str, ...], str] = field(default_factory=dict)
    # "… and a half" phrases ("с половиной", "și jumătate") as tuples of keys
    halves: dict[tuple[str, ...], str] = field(default_factory=dict)
    # key of a spelling that sounds like another -> key of the spelling recognisers get
    same_sound: dict[str, str] = field(default_factory=dict)
    # the same for whole phrases ("холодной воды" -> "холодная вода")
    same_sound_phrases: dict[tuple[str, ...], tuple[str, ...]] = field(default_factory=dict)
    # key(s) of the spelling recognisers get -> that spelling as written
    spelling: dict = field(default_factory=dict)

    def sound(self, phrase: str) -> tuple[str, ...]:
        """What a phrase sounds like: its keys, with same-sounding spellings made one."""
        keys = tuple(key(w, self.lang) for w in phrase.split())
        keys = self.same_sound_phrases.get(keys, keys)
        return tuple(self.same_sound.get(k, k) for k in keys)

    def spelled(self, phrase: str) -> str:
        """A phrase as recognisers get it: each word (or the whole phrase) in the spelling its
        ``same_sound`` group puts first ("gaze naturale" -> "gaz naturale")."""
        words = phrase.split()
        keys = tuple(key(w, self.lang) for w in words)
        if keys in self.same_sound_phrases:
            return self.spelling[self.same_sound_phrases[keys]]
        return " ".join(self.spelling.get(self.same_sound.get(k, k), normalize(w, self.lang))
                        for k, w in zip(keys, words))

    def rule(self, name: str, default=False):
        """A property of how the language builds numbers (``numbers.rules`` in the pack)."""
        return self.raw["numbers"].get("rules", {}).get(name, default)

    def surface(self, *sections: str) -> list[str]:
        """Surface forms (as written in the pack) of the given ``numbers`` sections, in order."""
        out: list[str] = []
        nums = self.raw["numbers"]
        for name in sections:
            sec = nums.get(name, [])
            items = [w for ws in sec.values() for w in ws] if isinstance(sec, dict) else sec
            out.extend(normalize(w, self.lang) for w in items)
        return list(dict.fromkeys(out))


def _add(index: dict, k, meaning, where: str) -> None:
    # Two meanings for one key would make parsing depend on file order; fail loudly instead.
    if k in index and index[k] != meaning:
        raise ValueError(f"language pack conflict for {k!r} in {where}: {index[k]} vs {meaning}")
    index[k] = meaning


def _phrases(pack: Pack, section: dict, target: dict, where: str) -> None:
    for label, phrases in section.items():
        for phrase in phrases:
            _add(target, tuple(key(w, pack.lang) for w in phrase.split()), label, where)


@lru_cache(maxsize=None)
def load(lang: str) -> Pack:
    check_language(lang)
    raw = json.loads(resources.files("grammars").joinpath(f"data/{lang}.json").read_text("utf-8"))
    pack = Pack(lang=lang, raw=raw)
    nums = raw["numbers"]
    where = f"{lang}.json"

    def add(word: str, meaning: Word) -> None:
        _add(pack.words, key(word, lang), meaning, where)

    for kind, sec in (("D", "digits"), ("T", "teens"), ("X", "tens"), ("H", "hundreds")):
        for value, ws in nums.get(sec, {}).items():
            for w in ws:
                add(w, Word(kind, int(value)))
    # A plural scale word ("sute", "mii") is not the number alone that its singular is.
    plurals = {key(w, lang) for w in nums.get("rules", {}).get("plural_needs_count", [])}
    for kind, sec in (("MH", "hundred"), ("MK", "thousand"), ("MM", "million")):
        for w in nums.get(sec, []):
            add(w, Word(kind, NEEDS_COUNT if key(w, lang) in plurals else 0))
    for kind, sec in (
        ("ART", "one_before_scale"),
        ("CONN", "connectors"), ("DEC", "decimal_point"), ("INT", "integer_part"),
        ("FAND", "fraction_and"), ("FILL", "fillers"), ("SEP", "separator"), ("HALF1", "one_and_a_half"),
    ):
        for w in nums.get(sec, []):
            add(w, Word(kind))
    for value, ws in nums.get("fraction", {}).items():
        for w in ws:
            add(w, Word("FRAC", int(value)))
    for value, ws in nums.get("repeat_next", {}).items():
        for w in ws:
            add(w, Word("REP", int(value)))
    pack.weak_decimal = frozenset(key(w, lang) for w in nums.get("decimal_weak", []))
    _phrases(pack, {"half": nums.get("half", [])}, pack.halves, where)

    replies = raw["replies"]
    _phrases(pack, {k: v for k, v in replies.items() if k != "negators"}, pack.replies, where)
    pack.negators = frozenset(key(w, lang) for w in replies.get("negators", []))
    _phrases(pack, raw["utilities"], pack.utilities, where)
    _phrases(pack, raw["registers"], pack.registers, where)
    _phrases(pack, raw.get("choices", {}), pack.choices, where)
    _same_sound(pack, raw.get("same_sound", []), where)
    return pack


def meanings(pack: Pack, keys: tuple[str, ...]) -> set:
    """Every meaning a word or phrase (as a tuple of keys) has in the pack: a number word's, a
    reply's, a utility's, a register's, an "… and a half"."""
    found = {pack.words[keys[0]]} if len(keys) == 1 and keys[0] in pack.words else set()
    for name, table in (("reply", pack.replies), ("utility", pack.utilities), ("register", pack.registers),
                        ("choice", pack.choices), ("half", pack.halves)):
        if keys in table:
            found.add((name, table[keys]))
    return found


def _same_sound(pack: Pack, groups: list, where: str) -> None:
    # Only forms of one word (or phrase) with one meaning may be merged: anything else would make a
    # recogniser unable to tell apart words the caller means differently.
    for group in groups:
        keys = [tuple(key(w, pack.lang) for w in phrase.split()) for phrase in group]
        found = [meanings(pack, k) for k in keys]
        if len(keys) < 2 or not all(found) or any(m != found[0] for m in found):
            raise ValueError(f"same_sound group {group!r} in {where}: every spelling must be a listed "
                             f"word with the same meaning")
        head = keys[0][0] if len(keys[0]) == 1 else keys[0]
        pack.spelling[head] = normalize(group[0], pack.lang)
        for k in keys[1:]:
            if len(k) == 1 and len(keys[0]) == 1:
                _add(pack.same_sound, k[0], keys[0][0], where)
            else:
                _add(pack.same_sound_phrases, k, keys[0], where)


def find_phrases(tokens: list[str], table: dict[tuple[str, ...], str]) -> list[tuple[int, int, str]]:
    """Greedy longest-first phrase spotting: (start, end, label) for each match, left to right.

    Longest first so that "off peak" is one night phrase rather than "peak" (day), and
    "горячая вода" is one match rather than a stray "вода".
    """
    longest = max((len(p) for p in table), default=0)
    found = []
    i = 0
    while i < len(tokens):
        for n in range(min(longest, len(tokens) - i), 0, -1):
            label = table.get(tuple(tokens[i:i + n]))
            if label is not None:
                found.append((i, i + n, label))
                i += n
                break
        else:
            i += 1
    return found
