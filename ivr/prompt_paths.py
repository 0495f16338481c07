"""What a caller hears on the common ways through a call, and how long the robot speaks on them.

The dialog engine is walked over sample records (four regions named in every language, one
account with one single-register meter), answering each question as a caller would, and every
prompt is rendered as a call renders it: its ``speech`` form where the question listens for
speech. Used by ``ivr prompts render`` and by the test that keeps a first-time caller's call
within ``BUDGET_SECONDS`` of robot speech in every language.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from . import dialog
from .dialog.actions import Hours
from .dialog.engine import LANGUAGE_KEYS
from .dialog.ports import AccountInfo, LastReading, MeterInfo, RegionInfo, ValueVerdict, Window
from .prompts import Prompts, speaking_seconds

BUDGET_SECONDS = 45.0  # robot speech for a first-time caller giving one reading

# Four regions named in every call language (as ``ivr regions set --name-<lang>`` names them).
SAMPLE_REGIONS = (
    RegionInfo(1, 1, "Chișinău", {"ro": "Chișinău", "ru": "Кишинёв", "uk": "Кишинів", "en": "Chisinau"}),
    RegionInfo(2, 2, "Bălți", {"ro": "Bălți", "ru": "Бельцы", "uk": "Бєльці", "en": "Balti"}),
    RegionInfo(3, 3, "Київ", {"ro": "Kiev", "ru": "Киев", "uk": "Київ", "en": "Kyiv"}),
    RegionInfo(4, 4, "Новосибирск", {"ro": "Novosibirsk", "ru": "Новосибирск", "uk": "Новосибірськ",
                                     "en": "Novosibirsk"}),
)
KNOWN_PHONE = "+37360000001"
ACCOUNT = "1001"
VALUE = "1234.5"


@dataclass
class SampleRecords:
    """The records port over one account with one meter, in four regions; every value passes."""

    utility: str = "electricity"

    def regions(self):
        return list(SAMPLE_REGIONS)

    def region_for_caller(self, phone):
        return None

    def _account(self) -> AccountInfo:
        return AccountInfo(10, 1, "0427", True)

    def accounts_for_phone(self, phone):
        return [self._account()] if phone == KNOWN_PHONE else []

    def find_account(self, region_id, typed):
        return self._account() if typed == ACCOUNT else None

    def account(self, account_id):
        return self._account() if account_id == 10 else None

    def meters(self, account_id):
        return [MeterInfo(100, self.utility, "0815", ("total",))]

    def window(self, meter_id):
        return Window(True, dt.date(2026, 3, 20), dt.date(2026, 4, 5))  # open: the common path says nothing of it

    def given_this_period(self, account_id):
        return set()

    def on_file(self, account_id, phone):
        return phone == KNOWN_PHONE

    def last_reading(self, meter_id, register):
        # The meter has a reading: a caller on file is offered it (the engine asks only for them).
        return LastReading("1180.5", dt.date(2026, 2, 24))

    def find_account_by_serial(self, region_id, typed):
        return None

    def asks_org_name(self, region_id):
        return False  # a household's path: the account is a person's

    def judge_value(self, meter_id, register, value):
        return ValueVerdict("accepted")

    def operator_number(self, region_id):
        return None

    def operator_hours(self, region_id):
        # An operator line answers on weekdays, so the welcome tells the caller 0 reaches a person.
        return Hours("12345", "08:00", "17:00")


# The answer a caller gives at each question: keys, or what the recogniser understood.
_KEYS = {"region": "1", "offer_account": "1", "reminder": "1", "account": f"{ACCOUNT}#",
         "value": VALUE.replace(".", "*") + "#", "confirm": "1", "next": "3"}
_SPOKEN = {"region": {"value": "1"}, "offer_account": {"intent": "yes"}, "reminder": {"intent": "yes"},
           "account": {"value": ACCOUNT}, "value": {"value": VALUE}, "confirm": {"intent": "yes"},
           "next": {"value": "3"}}


@dataclass(frozen=True)
class Heard:
    key: str  # the prompt key said (its speech form: "ask_account.speech")
    text: str
    seconds: float


@dataclass(frozen=True)
class Path:
    name: str
    description: str
    caller: str | None = None
    reminder: bool = False


PATHS = (
    Path("first_time", "first-time caller, one meter"),
    Path("on_file", "caller whose phone is on file, one meter", caller=KNOWN_PHONE),
    Path("reminder", "reminder call answered, one meter", reminder=True),
)


def walk(prompts: Prompts, lang: str, path: Path, *, speech: bool, utility: str = "electricity") -> list[Heard]:
    """Every prompt the caller hears on ``path``, in order, answering by voice where the question
    listens for speech (``speech``) or by keys."""
    records = SampleRecords(utility)
    # Where speech is heard its audio may be kept, and the caller is told so at the start.
    if path.reminder:
        turn = dialog.start_reminder(records, call_sid="CA-path", callee=KNOWN_PHONE, language=lang, account_id=10,
                                     may_record=speech)
    else:
        turn = dialog.start(records, call_sid="CA-path", caller=path.caller, language=lang, may_record=speech)
    heard: list[Heard] = []
    for _ in range(20):
        for action in turn.actions:
            if isinstance(action, dialog.Say):
                heard.append(_heard(prompts, action, lang, False))
            elif isinstance(action, dialog.Ask):
                listening = speech and action.speech is not None
                heard.extend(_heard(prompts, say, lang, listening) for say in action.prompts)
        last = turn.actions[-1]
        if not isinstance(last, dialog.Ask):
            return heard
        step = last.step
        if step == "language":
            event = dialog.Event("digits", digits=next(k for k, v in LANGUAGE_KEYS.items() if v == lang))
        elif speech and last.speech is not None:
            event = dialog.Event("speech", speech=dialog.SpeechInput(text="", decision="accept", **_SPOKEN[step]))
        else:
            event = dialog.Event("digits", digits=_KEYS[step])
        turn = dialog.handle(records, turn.state, event)
    raise RuntimeError(f"the {path.name} path did not end within 20 questions")


def _heard(prompts: Prompts, say: dialog.Say, lang: str, listening: bool) -> Heard:
    target = say.lang or lang
    key = prompts.variant(target, say.key, listening)
    text = prompts.render(say, lang, listening=listening)[1]
    return Heard(key, text, speaking_seconds(text))


def total(heard: list[Heard]) -> float:
    return sum(h.seconds for h in heard)
