"""Prompt packs: every prompt in every language, filled with every utility and register a call can
produce, reads cleanly and uses the grammatical forms its sentence needs."""
from __future__ import annotations

import json
import re

import pytest

from ivr import dialog
from ivr.config import LANGUAGES
from ivr.dialog import Ask, Say
from ivr.dialog.actions import Digits, Term
from ivr.dialog.ports import AccountInfo, MeterInfo, RegionInfo
from ivr.prompts import FORM_SEPARATOR, PACKAGE_DIR, PromptError, Prompts, parameter_samples
from readings_store.models import UTILITIES
from tests.dialog.test_engine import FakeRecords

PROMPTS = Prompts()
SAMPLES = parameter_samples()


def problems(lang: str, text: str, key: str = "") -> list[str]:
    """What a listener would notice: leftovers, empty slots, stray spaces or punctuation."""
    found = []
    if "{" in text or "}" in text:
        found.append("placeholder left")
    if text != text.strip() or "  " in text:
        found.append("stray space")
    if re.search(r"\s[,.;:!?]", text):
        found.append("space before punctuation")
    if re.search(r"[,.;:!?—]\s*[,.;:!?]", text):
        found.append("doubled punctuation")
    if re.search(r"[—-]\s*[—-]", text):
        found.append("doubled dash")
    if not re.search(r"[.!?]$", text):
        found.append("no full stop at the end")
    if "None" in text:
        found.append("None spoken")
    if lang != "en" and re.search(r"\d[.,]\d", text) and not key.startswith("sms_"):
        found.append("decimal number not spelled")  # a text message sends the numeral
    return found


def every_rendering():
    for lang in LANGUAGES:
        for key in PROMPTS.sentences(lang):
            for label, say in PROMPTS.examples(lang, key):
                yield lang, key, label, PROMPTS.render(say, lang)[1]
                if PROMPTS.variant(lang, key, True) != key:
                    yield lang, f"{key}.speech", label, PROMPTS.render(say, lang, listening=True)[1]


RENDERINGS = list(every_rendering())


def rendered(lang: str, key: str, **labels) -> str:
    """The rendering of a prompt for the given parameter labels (utility="gas", register="day")."""
    want = " ".join(f"{k}={v}" for k, v in labels.items())
    texts = [t for lg, k, label, t in RENDERINGS if lg == lang and k == key and all(
        part in label.split() for part in want.split())]
    assert texts, (lang, key, labels)
    return texts[0]


def test_every_prompt_with_every_parameter_reads_cleanly():
    bad = [(lang, key, label, text, problems(lang, text, key)) for lang, key, label, text in RENDERINGS
           if problems(lang, text, key)]
    assert bad == []
    # all the combinations are there: 5 utilities x 2 registers x 4 languages for the register question
    assert len([r for r in RENDERINGS if r[1] == "ask_value_register"]) == len(UTILITIES) * 2 * len(LANGUAGES)


def test_prompt_keys_and_parameters_match_in_all_languages():
    reference = {key: {name for name, _ in PROMPTS.fields("en", key)} for key in PROMPTS.keys("en")}
    for lang in LANGUAGES:
        keys = PROMPTS.keys(lang)
        assert set(keys) == set(reference), lang
        for key in keys:
            assert {name for name, _ in PROMPTS.fields(lang, key)} == reference[key], (lang, key)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_pack_is_well_formed(lang):
    pairs = json.loads((PACKAGE_DIR / lang / "prompts.json").read_text(encoding="utf-8"), object_pairs_hook=list)
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), "a key appears twice"
    for key, value in pairs:
        assert isinstance(value, str) and value.strip() == value and value, key
        if FORM_SEPARATOR in key:
            base, form = key.split(FORM_SEPARATOR)
            assert base in keys and form, f"form {key} of a word the pack does not have"


# The forms a native speaker expects after "счётчик" / "лічильник" / "contorul de", and for tariffs.
METER_OF = {
    "ru": {"electricity": "счётчика электроэнергии", "cold_water": "счётчика холодной воды",
           "hot_water": "счётчика горячей воды", "gas": "счётчика газа", "heat": "счётчика тепла"},
    "uk": {"electricity": "лічильника електроенергії", "cold_water": "лічильника холодної води",
           "hot_water": "лічильника гарячої води", "gas": "лічильника газу", "heat": "лічильника тепла"},
    "ro": {"electricity": "contorului de energie electrică", "cold_water": "contorului de apă rece",
           "hot_water": "contorului de apă caldă", "gas": "contorului de gaze",
           "heat": "contorului de energie termică"},
}
MENU_METER = {
    "ru": "Счётчик {}",
    "uk": "Лічильник {}",
    "ro": "Contorul {}",
}
TARIFF = {
    "ru": {"day": "по дневному тарифу", "night": "по ночному тарифу"},
    "uk": {"day": "за денним тарифом", "night": "за нічним тарифом"},
    "ro": {"day": "pentru tariful de zi", "night": "pentru tariful de noapte"},
}
# Dictionary forms that must not stand where the sentence needs another case.
NOMINATIVE = {
    "ru": {"electricity": "электроэнергия", "cold_water": "холодная вода", "hot_water": "горячая вода",
           "gas": "газ", "heat": "тепло"},
    "uk": {"electricity": "електроенергія", "cold_water": "холодна вода", "hot_water": "гаряча вода",
           "gas": "газ", "heat": "тепло"},
}


@pytest.mark.parametrize("lang", ["ru", "uk", "ro"])
@pytest.mark.parametrize("utility", UTILITIES)
def test_utility_and_register_in_the_case_the_sentence_needs(lang, utility):
    meter_of = METER_OF[lang][utility]
    value = rendered(lang, "ask_value", utility=utility)
    assert meter_of in value
    for register, phrase in TARIFF[lang].items():
        text = rendered(lang, "ask_value_register", utility=utility, register=register)
        assert meter_of in text and phrase in text, text
    words = meter_of.split(" ", 1)[1]
    menu = rendered(lang, "meter_option", utility=utility)
    assert MENU_METER[lang].format(words) in menu, menu
    for text in (value, menu):
        nominative = NOMINATIVE.get(lang, {}).get(utility)
        assert not nominative or not re.search(rf"\b{nominative}\b", text), text


def test_the_russian_value_question_reads_as_a_native_sentence():
    assert rendered("ru", "ask_value_register", utility="electricity", register="day") == (
        "Введите показания счётчика электроэнергии по дневному тарифу и нажмите решётку. "
        "Вместо запятой нажмите звёздочку.")
    assert rendered("ru", "read_back", value="1234.5") == "Показания: 1 2 3 4 запятая 5."


def walk_engine_says() -> list[Say]:
    """Every Say the engine produces on the way through a call with meters of every utility, one-
    and two-register, two regions and a known caller."""
    meters_one = [MeterInfo(100 + i, u, f"00{i}1", ("total",)) for i, u in enumerate(UTILITIES)]
    meters_two = [MeterInfo(200 + i, u, f"00{i}2", ("day", "night")) for i, u in enumerate(UTILITIES)]
    records = FakeRecords(
        regions_list=[RegionInfo(1, 1, "North"), RegionInfo(2, 12, "South")],
        phones={"+37360000001": [AccountInfo(20, 2, "2002", True)]},
        accounts={(1, "1001"): AccountInfo(10, 1, "1001", True), (1, "1002"): AccountInfo(11, 1, "1002", True),
                  (2, "2002"): AccountInfo(20, 2, "2002", True)},
        meter_table={10: meters_one, 11: meters_two, 20: [meters_one[0]]},
    )
    says: list[Say] = []

    def collect(turn):
        for action in turn.actions:
            if isinstance(action, Say):
                says.append(action)
            elif isinstance(action, Ask):
                says.extend(action.prompts)
        return turn

    turn = collect(dialog.start(records, call_sid="CA1", caller="+37360000001", language="ro"))

    def send(keys: str):
        nonlocal turn
        turn = collect(dialog.handle(records, turn.state, dialog.Event("digits", digits=keys)))
        records.apply(turn.effects)

    send("1"); send("2")  # refuse the offered account
    send("1")  # region North
    for account, meters, then in (("1001#", meters_one, "2"), ("1002#", meters_two, "3")):
        send(account)
        for index, meter in enumerate(meters):
            send(str(index + 1))
            if len(meter.registers) > 1:
                send("1")
            for _ in meter.registers:
                send("600*5#"); send("1")
            send("1" if index + 1 < len(meters) else then)  # another meter, another account, finish
    assert turn.state.step == "ended" and len(records.saved) == 3 * len(UTILITIES)
    return says


def test_every_say_the_engine_makes_is_covered_and_renders_cleanly():
    says = walk_engine_says()
    seen = set()
    for say in says:
        for lang in LANGUAGES:
            target = say.lang or lang
            assert {n for n, _ in PROMPTS.fields(target, say.key)} == set(say.params), (say, target)
            text = PROMPTS.render(say, lang)[1]
            assert problems(target, text) == [], (say, text)
        for name, value in say.params.items():
            if isinstance(value, Term):
                assert value in SAMPLES[name], f"{say.key}: {value} is not among the reviewed samples"
                seen.add(value.key)
            else:
                spelled = {isinstance(v, Digits) for v in SAMPLES[name]}
                assert spelled == {isinstance(value, Digits)}, (say.key, name, value)
    # the walk reached every utility and both tariffs
    assert seen == {f"utility_{u}" for u in UTILITIES} | {"register_day", "register_night"}
    keys = {say.key for say in says}
    assert {"meter_option", "ask_value", "ask_value_register", "read_back", "saved_count",
            "offer_account", "region_option_two_digits", "language_option"} <= keys  # region keys 1 and 12


def test_render_errors_name_the_prompt_and_language(tmp_path):
    (tmp_path / "xx").mkdir()
    (tmp_path / "xx" / "prompts.json").write_text(json.dumps({
        "ask": "Counter of {utility:gen}.",
        "bad": "Number {count:gen}.",
        "utility_gas": "gas",
        "point": "point",
    }), encoding="utf-8")
    prompts = Prompts(tmp_path)
    with pytest.raises(PromptError, match="'utility_gas.gen' missing for language 'xx'"):
        prompts.render(Say("ask", {"utility": Term("utility_gas")}), "xx")
    with pytest.raises(PromptError, match="'ask' in 'xx' needs parameter 'utility'"):
        prompts.render(Say("ask"), "xx")
    with pytest.raises(PromptError, match="asks form 'gen' of a parameter that is not a word"):
        prompts.render(Say("bad", {"count": 3}), "xx")
    with pytest.raises(PromptError, match="no sample values: count"):
        prompts.examples("xx", "bad", {})


def test_plain_word_and_digits_fill_without_forms():
    assert PROMPTS.render(Say("meter_option", {"key": 2, "utility": Term("utility_gas"), "tail": Digits("07")}),
                          "en") == ("en", "The gas meter ending in 0 7: press 2.")


def walk_paths_says() -> list[Say]:
    """Every Say of the paths besides the happy one: the hint about 0, the operators' hours (closed,
    none, after a failed call), a spoken account number read back, a meter whose serial ends in
    letters, speech not understood."""
    from ivr.dialog import Event, Hours, SpeechInput

    says: list[Say] = []

    def collect(turn):
        for action in turn.actions:
            says.extend([action] if isinstance(action, Say) else action.prompts if isinstance(action, Ask) else [])
        return turn

    meters = [MeterInfo(100, "electricity", "0427", ("day", "night")), MeterInfo(101, "gas", "", ("total",))]
    for hours in (Hours("12345", "08:00", "17:00"), None):
        records = FakeRecords(hours=hours, meter_table={10: meters})
        turn = collect(dialog.start(records, call_sid="CA1", caller=None, language="en"))
        for event in (Event("digits", digits="0"), Event("digits", digits="4"), Event("digits", digits="1"),
                      Event("speech", speech=SpeechInput("", decision="retry")),
                      Event("speech", speech=SpeechInput("one zero zero one", value="1001", decision="confirm")),
                      Event("digits", digits="1"), Event("digits", digits="1"), Event("timeout"),
                      Event("timeout"), Event("timeout")):
            turn = collect(dialog.handle(records, turn.state, event))
            records.apply(turn.effects)
        assert turn.state.over
    return says


def test_every_say_of_the_other_paths_renders_in_every_language():
    says = walk_paths_says()
    keys = {say.key for say in says}
    assert {"operator_hint", "operator_closed", "no_operator", "reason_not_understood", "account_read_back",
            "ask_confirm_account", "meter_option", "meter_option_no_tail", "not_completed", "operator_hours"} <= keys
    for say in says:
        for lang in LANGUAGES:
            assert {n for n, _ in PROMPTS.fields(lang, say.key)} == set(say.params), (say, lang)
            text = PROMPTS.render(say, lang)[1]
            assert problems(lang, text) == [], (say, lang, text)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_hours_read_as_a_sentence_in_every_language(lang):
    from ivr.dialog import Hours

    expected = {
        "en": "Operators are not available now. They answer calls Monday to Friday, from 8:00 to 17:30.",
        "ru": "Сейчас операторы не работают. Они отвечают на звонки с понедельника по пятницу с 8:00 до 17:30.",
        "uk": "Зараз оператори не працюють. Вони відповідають на дзвінки з понеділка по п'ятницю з 8:00 до 17:30.",
        "ro": "Acum operatorii nu sunt disponibili. Ei răspund la apeluri de luni până vineri, de la 8:00 la 17:30.",
    }[lang]
    assert PROMPTS.render(Say("operator_closed", {"hours": Hours("12345", "08:00", "17:30")}), lang)[1] == expected
    saturday = PROMPTS.render(Say("operator_hours", {"hours": Hours("6", "09:00", "13:00")}), lang)[1]
    assert {"en": "on Saturday", "ru": "по субботам", "uk": "по суботах", "ro": "sâmbăta"}[lang] in saturday
    assert "Sorry, I did not catch that." == PROMPTS.text("en", "reason_not_understood")


# --- what callers are told where speech is on ----------------------------------------------------

import grammars  # noqa: E402
from ivr.dialog.engine import LAST_READING, LAST_READING_KIND, SPEECH_KINDS, WALK  # noqa: E402
from ivr.prompt_paths import BUDGET_SECONDS, PATHS, total, walk  # noqa: E402
from ivr.prompts import speaking_seconds  # noqa: E402

# The prompt that asks each question heard by speech, and the question's step.
SPEECH_QUESTIONS = {
    "reminder_call": "reminder", "ask_region": "region", "offer_account": "offer_account",
    "ask_account": "account", "ask_meter": "meter", "ask_register": "register", "ask_value": "value",
    "ask_value_register": "value", "ask_confirm": "confirm", "next_finish": "next",
    "ask_confirm_account": "confirm_account", "ask_meter_serial": "meter_serial",
    "last_reading_offer": "value",
}
# A question whose grammar depends on the call: the value question of a caller offered the last
# reading hears "last reading" too (the prompt that offers it says so).
KIND_OF_PROMPT = {"last_reading_offer": LAST_READING_KIND}
DIGIT_BY_DIGIT = {"ru": "по одной цифре", "uk": "по одній цифрі", "ro": "cifră cu cifră", "en": "digit by digit"}
QUOTED = re.compile(r"«([^»]+)»|'([^']+)'")


def quoted(text: str) -> list[str]:
    return [a or b for a, b in QUOTED.findall(text)]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_question_heard_by_speech_says_so_and_keypad_questions_do_not(lang):
    assert set(PROMPTS.speech_forms(lang)) == set(SPEECH_QUESTIONS)
    for key in PROMPTS.sentences(lang):
        assert not quoted(PROMPTS.text(lang, key)), f"{key}: the keypad wording names words to say"
        if key in SPEECH_QUESTIONS:
            spoken = PROMPTS.text(lang, f"{key}.speech")
            assert {n for n, _ in PROMPTS.fields(lang, f"{key}.speech")} == {n for n, _ in PROMPTS.fields(lang, key)}
            assert spoken != PROMPTS.text(lang, key)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_speech_prompts_name_words_the_question_hears(lang):
    """Every word a prompt tells the caller to say is one the recogniser listens for at that question
    (in the grammar, for the Vosk languages) and the parser understands as the prompt means it."""
    pack = grammars._lexicon.load(lang)
    for key, step in SPEECH_QUESTIONS.items():
        kind = KIND_OF_PROMPT.get(key, SPEECH_KINDS[step])
        heard = set(grammars.build_grammar(lang, kind))
        for word in quoted(PROMPTS.text(lang, f"{key}.speech")):
            assert word in heard or lang == "ro", (key, word)  # ro: Twilio, not limited to a grammar
            assert pack.sound(word) in {pack.sound(p) for p in heard}, (key, word)
    account = PROMPTS.text(lang, "ask_account.speech")
    assert DIGIT_BY_DIGIT[lang] in account
    assert grammars.parse_account(f"1 2 {quoted(account)[0]} 3", lang).best == "12-3"
    point = quoted(PROMPTS.text(lang, "ask_value.speech"))[0]
    assert point == PROMPTS.text(lang, "point") and grammars.parse_number(f"12 {point} 5", lang).best == "12.5"
    for key in ("ask_confirm", "offer_account", "ask_confirm_account"):
        yes, no = quoted(PROMPTS.text(lang, f"{key}.speech"))
        assert (grammars.classify_reply(yes, lang), grammars.classify_reply(no, lang)) == ("yes", "no")
    assert [grammars.classify_reply(w, lang) for w in quoted(PROMPTS.text(lang, "reminder_call.speech"))] == ["yes"]
    # The company's choices by name: parsed into the choice the key makes, and said only where speech is on.
    (walk,) = quoted(PROMPTS.text(lang, "ask_meter_serial.speech"))
    assert grammars.match_choice(walk, lang, grammars.CHOICES[SPEECH_KINDS["meter_serial"]][1]) == WALK
    (last,) = quoted(PROMPTS.text(lang, "last_reading_offer.speech"))
    assert grammars.match_choice(last, lang, grammars.CHOICES[LAST_READING_KIND][1]) == LAST_READING
    assert grammars.parse_account(walk, lang).best is None and grammars.parse_number(last, lang).best is None
    day, night = quoted(PROMPTS.text(lang, "ask_register.speech"))
    assert (grammars.match_register(day, lang), grammars.match_register(night, lang)) == ("day", "night")


NOT_NEUTRAL = {"ru": "ввели", "uk": "ввели", "ro": "introdus", "en": "entered"}


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_read_back_is_neutral_after_keys_or_speech(lang):
    """"Вы ввели" is untrue after a spoken answer: the read-back names the value only."""
    text = rendered(lang, "read_back", value="1234.5")
    assert NOT_NEUTRAL[lang] not in text.lower() and "1 2 3 4" in text


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("speech", [True, False], ids=["speech", "keypad"])
def test_a_first_time_caller_hears_at_most_45_seconds_of_robot_speech(lang, speech):
    """Language menu, four regions, account, one single-register meter's value, read-back and
    confirmation, goodbye: at 2.5 words a second, for whichever utility's prompts are longest."""
    path = next(p for p in PATHS if p.name == "first_time")
    for utility in UTILITIES:
        heard = walk(PROMPTS, lang, path, speech=speech, utility=utility)
        keys = [h.key.split(".")[0] for h in heard]
        assert keys[:1] == ["welcome"] and keys.count("language_option") == 4 and keys.count("region_option") == 4
        assert ("recording_notice" in keys) == speech  # spoken answers may be kept: the caller is told
        assert {"ask_account", "ask_value", "read_back", "ask_confirm", "saved", "goodbye"} <= set(keys)
        assert all(h.key.endswith(".speech") for h in heard if h.key.split(".")[0] in SPEECH_QUESTIONS) == speech
        assert total(heard) <= BUDGET_SECONDS, (utility, [(h.key, h.seconds) for h in heard])


def test_speaking_time_counts_words_and_spelled_digits():
    assert speaking_seconds("Показания: 1 2 3 4 запятая 5.") == 7 / 2.5
    assert speaking_seconds("Кишинёв — 1.") == 2 / 2.5  # a dash is not a word
