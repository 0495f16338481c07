"""Prompt texts per language from ``audio_prompts/<lang>/prompts.json``, and recorded prompt files.

A prompt names its parameters in braces: ``{value}``, ``{utility}``. A parameter that is a word
from the prompt file (a ``Term`` such as ``utility_gas``) may name the grammatical form the
sentence needs after a colon, ``{utility:gen}``; the form is the key ``utility_gas.gen`` of the
same file. So the Russian pack says ``"utility_gas.gen": "газа"`` and ``"Введите показания
счётчика {utility:gen}..."``, while English needs no forms and uses ``{utility}``. Form names are
the language's own grammar (``gen`` genitive, ``dat`` dative, ``ins`` instrumental, ...).

A number may name a counted word after a colon, ``{count} {count:reading}``: the word is the key
``count_reading``, and the form is the number's plural category in that language
(``grammars.plural``: ``count_reading.one``, ``.few``, ``.many``, ``.other``), so Russian says
"1 показание", "3 показания", "5 показаний" and Romanian "1 indice", "2 indici", "20 de indici".

Working hours (an ``Hours`` parameter) are put together from the pack's ``hours_*`` phrases and
``weekday_1``..``weekday_7`` words, in the forms each phrase asks for: "Monday to Friday, from
8:00 to 17:00", "с понедельника по пятницу с 8:00 до 17:00".

A sentence may have a ``speech`` form (``ask_account.speech``): what is said instead while the
question also listens for speech ("say the number digit by digit, or enter it..."). Where speech
is off, the sentence itself is said, keypad only.

A day (a ``Day`` parameter) is said by the pack's ``date_day_month`` phrase with the month's word
``month_1``..``month_12`` in the form it asks for: "December 20", "20 декабря".

Robot speech is estimated at ``WORDS_PER_SECOND`` (every word spoken, digits read one by one
included), the rate the prompts are budgeted at.
"""
from __future__ import annotations

import datetime as dt
import functools
import itertools
import json
import re
import string
from pathlib import Path

import audio_prompts
from grammars import plural

from .dialog.actions import Day, Digits, Hours, Say, Term

PACKAGE_DIR = Path(audio_prompts.__file__).parent
AUDIO_EXTENSIONS = (".wav", ".mp3")
FORM_SEPARATOR = "."
SPEECH_FORM = "speech"
WORDS_PER_SECOND = 2.5
_SPOKEN_WORD = re.compile(r"\w")
# Keys that are words spoken inside other prompts (``Term``s, counted words, the decimal point),
# not sentences.
COUNTED_PREFIX = "count_"
WORD_PREFIXES = ("utility_", "register_", "weekday_", "month_", COUNTED_PREFIX)
WORDS = ("point",)
# Texts sent as text messages, not spoken: their numbers are written as numerals.
SMS_PREFIX = "sms_"
# A region's name as a call in each language says it (``ivr regions set --name-ru ...``).
SAMPLE_REGION_NAMES = {"ro": "Chișinău", "ru": "Кишинёв", "uk": "Кишинів", "en": "Chisinau"}
# Keys that are pieces of a parameter's words (working hours), neither sentences nor words: they
# are reviewed inside the sentences that say them.
PIECE_PREFIXES = ("hours_", "date_")


def _clock(hhmm: str) -> str:
    """"08:00" as said: "8:00"."""
    hour, _, minute = hhmm.partition(":")
    return f"{int(hour)}:{minute}"


class PromptError(KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


@functools.lru_cache(maxsize=32)
def _load(base: str, lang: str) -> dict[str, str]:
    path = Path(base) / lang / "prompts.json"
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _is_word(key: str) -> bool:
    return key in WORDS or key.startswith(WORD_PREFIXES)


def speaking_seconds(text: str) -> float:
    """How long a robot voice takes to say ``text``, at ``WORDS_PER_SECOND`` (dashes and other
    punctuation are not words; each spelled digit is one)."""
    return sum(1 for word in text.split() if _SPOKEN_WORD.search(word)) / WORDS_PER_SECOND


def _label(value) -> str:
    """How a parameter value is named for a reviewer: ``gas``, ``1234.5``, ``3``."""
    if isinstance(value, Term):
        return value.key.split("_", 1)[-1]
    if isinstance(value, Digits):
        return value.value
    if isinstance(value, Hours):
        return f"{value.days}/{value.start}-{value.end}"
    if isinstance(value, Day):
        return value.value.isoformat()
    return str(value)


def parameter_samples() -> dict[str, tuple]:
    """Values each prompt parameter takes in a call: every utility and register the records know,
    and representative numbers. Used to render every prompt for review and in tests."""
    from readings_store.models import REGISTERS, UTILITIES

    # A tariff is named only for meters with several registers (a single register is not spoken).
    registers = sorted({r for names in REGISTERS.values() if len(names) > 1 for r in names})
    return {
        "utility": tuple(Term(f"utility_{u}") for u in UTILITIES),
        "register": tuple(Term(f"register_{r}") for r in registers),
        "value": (Digits("1234"), Digits("1234.5")),
        "count": (1, 2, 5, 21),  # every plural category of every language (grammars.plural)
        "tail": (Digits("0427"),),
        "name": ("Chișinău",),
        "key": (1,),
        "keys": (Digits("07"), Digits("12")),  # a two-digit menu key, said digit by digit
        # weekdays, every day, a single day, days apart; whole hours and half hours
        "hours": (Hours("12345", "08:00", "17:00"), Hours("1234567", "00:00", "23:59"), Hours("6", "09:30", "13:00"),
                  Hours("1356", "07:00", "15:30")),
        # a window that wraps into the next month, and a day in a month of each form
        "opens": (Day(dt.date(2026, 12, 20)),),
        "closes": (Day(dt.date(2027, 1, 5)),),
        "date": (Day(dt.date(2026, 3, 1)), Day(dt.date(2026, 11, 28))),
        "skipped": (0, 1, 5),
    }


class _Filler(string.Formatter):
    """Fills a prompt's parameters: numbers spelled, words from the file in the form asked for."""

    def __init__(self, prompts: "Prompts", lang: str, key: str):
        self.prompts, self.lang, self.key = prompts, lang, key

    def get_value(self, name, args, kwargs):
        try:
            return kwargs[name]
        except KeyError:
            raise PromptError(f"prompt {self.key!r} in {self.lang!r} needs parameter {name!r}") from None

    def format_field(self, value, form: str) -> str:
        if isinstance(value, Term):
            return self.prompts.term(self.lang, value.key, form or None)
        if form and type(value) is int and f"{COUNTED_PREFIX}{form}" in self.prompts.texts(self.lang):
            return self.prompts.counted(self.lang, form, value)
        if form:
            raise PromptError(f"prompt {self.key!r} in {self.lang!r} asks form {form!r} of a parameter "
                              f"that is not a word ({value!r})")
        if isinstance(value, Digits):
            return self.prompts.spell(self.lang, value.value)
        if isinstance(value, Hours):
            return self.prompts.hours(self.lang, value)
        if isinstance(value, Day):
            return self.prompts.day(self.lang, value)
        return str(value)


class Prompts:
    def __init__(self, base: Path | None = None):
        self.base = Path(base or PACKAGE_DIR)

    def texts(self, lang: str) -> dict[str, str]:
        return _load(str(self.base), lang)

    def text(self, lang: str, key: str) -> str:
        try:
            return self.texts(lang)[key]
        except KeyError:
            raise PromptError(f"prompt {key!r} missing for language {lang!r}") from None

    def keys(self, lang: str) -> list[str]:
        """The prompts of a language, in file order (without the grammatical forms of words)."""
        return [k for k in self.texts(lang) if FORM_SEPARATOR not in k]

    def sentences(self, lang: str) -> list[str]:
        """The prompts spoken as sentences, in file order."""
        return [k for k in self.keys(lang) if not _is_word(k) and not k.startswith(PIECE_PREFIXES)]

    def words(self, lang: str) -> dict[str, dict[str, str]]:
        """Words spoken inside sentences, each with its grammatical forms: {key: {form: text}}."""
        out: dict[str, dict[str, str]] = {k: {} for k in self.keys(lang) if _is_word(k)}
        for key, text in self.texts(lang).items():
            base, _, form = key.partition(FORM_SEPARATOR)
            if form and base in out:
                out[base][form] = text
        return out

    def fields(self, lang: str, key: str) -> list[tuple[str, str | None]]:
        """(parameter, form or None) in the order a prompt uses them."""
        return [(name, spec or None) for _, name, spec, _ in string.Formatter().parse(self.text(lang, key))
                if name is not None]

    def term(self, lang: str, key: str, form: str | None = None) -> str:
        """A word from the prompt file, in a grammatical form when one is named."""
        word = self.text(lang, f"{key}{FORM_SEPARATOR}{form}" if form else key)
        if not word.strip():
            raise PromptError(f"word {key!r}{f' ({form})' if form else ''} is empty for language {lang!r}")
        return word

    def counted(self, lang: str, word: str, n: int) -> str:
        """The form of a counted word (``count_<word>`` in the pack) that goes with the number ``n``
        in ``lang``: its form named by the plural category (``grammars.plural``)."""
        return self.term(lang, f"{COUNTED_PREFIX}{word}", plural.category(lang, n))

    def spell(self, lang: str, value: str) -> str:
        """Digits one by one, with the language's word for the decimal point."""
        point = self.text(lang, "point")
        return " ".join(point if c in ".*" else c for c in value)

    def _phrase(self, lang: str, key: str, **params) -> str:
        return _Filler(self, lang, key).vformat(self.text(lang, key), (), params)

    def hours(self, lang: str, hours: Hours) -> str:
        """Working hours in words: runs of consecutive days ("Monday to Friday", "on Saturday"),
        joined, then the times ("8:00", "17:30")."""
        days = sorted({int(d) for d in hours.days})
        if not days:
            raise PromptError(f"working hours without a working day cannot be said ({hours})")
        if len(days) == 7:
            said = self.text(lang, "hours_every_day")
        else:
            runs: list[list[int]] = []
            for day in days:
                if runs and day == runs[-1][-1] + 1:
                    runs[-1].append(day)
                else:
                    runs.append([day])
            parts = [self._phrase(lang, "hours_day", day=Term(f"weekday_{run[0]}")) if len(run) == 1 else
                     self._phrase(lang, "hours_range", first=Term(f"weekday_{run[0]}"), last=Term(f"weekday_{run[-1]}"))
                     for run in runs]
            said = parts[0] if len(parts) == 1 else \
                f"{', '.join(parts[:-1])} {self.text(lang, 'hours_and')} {parts[-1]}"
        return self._phrase(lang, "hours_times", days=said, start=_clock(hours.start), end=_clock(hours.end))

    def day(self, lang: str, day: Day) -> str:
        """A day by its day of the month and its month's word ("December 20", "20 декабря")."""
        return self._phrase(lang, "date_day_month", day=day.value.day, month=Term(f"month_{day.value.month}"))

    def variant(self, lang: str, key: str, listening: bool) -> str:
        """The key of what is said for prompt ``key``: its ``speech`` form while the question
        listens for speech (when it has one), else the prompt itself."""
        spoken = f"{key}{FORM_SEPARATOR}{SPEECH_FORM}"
        return spoken if listening and spoken in self.texts(lang) else key

    def speech_forms(self, lang: str) -> list[str]:
        """The sentences that have a ``speech`` form, in file order."""
        return [k for k in self.sentences(lang) if self.variant(lang, k, True) != k]

    def render(self, say: Say, call_lang: str, *, listening: bool = False) -> tuple[str, str]:
        """(language, text) of a prompt with its parameters filled in; ``listening``: the
        question also takes a spoken answer, so a ``speech`` form is said where there is one."""
        lang = say.lang or call_lang
        key = self.variant(lang, say.key, listening)
        text = self.text(lang, key)
        return lang, _Filler(self, lang, key).vformat(text, (), dict(say.params))

    def examples(self, lang: str, key: str, samples: dict[str, tuple] | None = None) -> list[tuple[str, Say]]:
        """Every way a call can fill a prompt's parameters: (label, Say) pairs, one per combination.

        With the default samples, a ``{key}`` is a digit the prompt does not already say (a
        reviewer must not hear "press 1 ... press 1" where a call says "press 1 ... press 9"), and
        a text message gets its numbers as the numerals it sends."""
        if samples is None:
            samples = parameter_samples()
            text = self.text(lang, key)
            samples["key"] = (next(d for d in "9876543210" if d not in text),)
            samples["name"] = (SAMPLE_REGION_NAMES.get(lang, samples["name"][0]),)
            if key.startswith(SMS_PREFIX):
                samples = {n: tuple(v.value if isinstance(v, Digits) else v for v in vs) for n, vs in samples.items()}
        names = set(name for name, _ in self.fields(lang, key))
        missing = sorted(names - set(samples))
        if missing:
            raise PromptError(f"prompt {key!r} has parameters with no sample values: {', '.join(missing)}")
        names = [n for n in samples if n in names]  # the same order in every language
        out = []
        for values in itertools.product(*(samples[n] for n in names)):
            params = dict(zip(names, values))
            label = " ".join(f"{n}={_label(v)}" for n, v in params.items())
            out.append((label, Say(key, params)))
        return out

    def recording(self, lang: str, key: str) -> Path | None:
        """A recorded file for a prompt without parameters, if one was put beside the texts."""
        for ext in AUDIO_EXTENSIONS:
            path = self.base / lang / f"{key}{ext}"
            if path.is_file():
                return path
        return None
