"""Which form of a word goes with a whole number, per language of the line: the one rule for
plurals (CLDR's cardinal rules for integers).

* en: ``one`` (1), ``other`` (0, 2, 5, 21 ...): 1 reading, 2 readings.
* ro: ``one`` (1), ``few`` (0, 2-19, 101-119 ...), ``other`` (20-100, 120 ...):
  1 indice, 2 indici, 20 de indici.
* ru, uk: ``one`` (1, 21, 101, not 11), ``few`` (2-4, 22-24, not 12-14), ``many`` (0, 5-20, 25 ...):
  1 показание, 2 показания, 5 показаний.

Prompt packs give a counted word one text per category (``ivr.prompts``); the console and the
command line, written in English, use ``english``.
"""
from __future__ import annotations

CATEGORIES = {
    "en": ("one", "other"),
    "ro": ("one", "few", "other"),
    "ru": ("one", "few", "many"),
    "uk": ("one", "few", "many"),
}


def category(lang: str, n: int) -> str:
    """The plural category of ``n`` in ``lang`` (one, few, many or other)."""
    n = abs(int(n))
    if lang in ("ru", "uk"):
        if n % 10 == 1 and n % 100 != 11:
            return "one"
        if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
            return "few"
        return "many"
    if lang == "ro":
        if n == 1:
            return "one"
        if n == 0 or 1 <= n % 100 <= 19:
            return "few"
        return "other"
    return "one" if n == 1 else "other"


def english(n: int, one: str, other: str) -> str:
    """``one`` or ``other`` as English wants after ``n``: english(1, "day", "days") == "day"."""
    return one if category("en", n) == "one" else other
