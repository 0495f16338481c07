"""Yes/no/repeat/operator replies, utility names and day/night registers."""
import pytest

from grammars import classify_reply, match_register, match_utility


@pytest.mark.parametrize(
    "lang,text,label",
    [
        ("ru", "да", "yes"), ("ru", "Да, всё верно", "yes"), ("ru", "правильно", "yes"),
        ("ru", "нет", "no"), ("ru", "не верно", "no"), ("ru", "неправильно", "no"),
        ("ru", "да нет", "no"), ("ru", "нет... да, верно", "yes"),
        ("ru", "повторите пожалуйста", "repeat"), ("ru", "ещё раз", "repeat"),
        ("ru", "нет, соедините с оператором", "operator"),
        ("uk", "так", "yes"), ("uk", "так, правильно", "yes"), ("uk", "ні", "no"),
        ("uk", "не вірно", "no"), ("uk", "повторіть", "repeat"), ("uk", "оператор", "operator"),
        ("ro", "da", "yes"), ("ro", "da, corect", "yes"), ("ro", "nu", "no"),
        ("ro", "nu e corect", "no"), ("ro", "greşit", "no"), ("ro", "gresit", "no"),
        ("ro", "repetați vă rog", "repeat"), ("ro", "inca o data", "repeat"),
        ("ro", "vreau un operator", "operator"),
        ("en", "yes", "yes"), ("en", "Yeah, that's right.", "yes"), ("en", "no", "no"),
        ("en", "that's not right", "no"), ("en", "not correct", "no"),
        ("en", "could you repeat that", "repeat"), ("en", "I want to talk to a human", "operator"),
    ],
)
def test_classify_reply(lang, text, label):
    assert classify_reply(text, lang) == label


@pytest.mark.parametrize("lang,text", [("en", ""), ("en", "[unk]"), ("ru", "пять"), ("ro", "poate")])
def test_classify_reply_none(lang, text):
    assert classify_reply(text, lang) is None


@pytest.mark.parametrize(
    "lang,text,utility",
    [
        ("ru", "свет", "electricity"), ("ru", "электроэнергия", "electricity"),
        ("ru", "холодная вода", "cold_water"), ("ru", "счётчик холодной воды", "cold_water"),
        ("ru", "горячая вода", "hot_water"), ("ru", "газ", "gas"),
        ("ru", "отопление", "heat"), ("ru", "тепло", "heat"),
        ("uk", "світло", "electricity"), ("uk", "холодна вода", "cold_water"),
        ("uk", "гаряча вода", "hot_water"), ("uk", "газ", "gas"), ("uk", "опалення", "heat"),
        ("ro", "curent", "electricity"), ("ro", "energie electrică", "electricity"),
        ("ro", "apă rece", "cold_water"), ("ro", "apa rece", "cold_water"),
        ("ro", "apă caldă", "hot_water"), ("ro", "gaze naturale", "gas"),
        ("ro", "încălzire", "heat"), ("ro", "incalzire", "heat"), ("ro", "căldură", "heat"),
        ("en", "electricity", "electricity"), ("en", "the cold water meter", "cold_water"),
        ("en", "hot water", "hot_water"), ("en", "gas", "gas"), ("en", "heating", "heat"),
    ],
)
def test_match_utility(lang, text, utility):
    assert match_utility(text, lang) == utility


@pytest.mark.parametrize(
    "lang,text", [("ru", "вода"), ("ru", "холодная и горячая"), ("en", "water"), ("en", ""), ("ro", "apă")]
)
def test_match_utility_none_when_unclear(lang, text):
    assert match_utility(text, lang) is None


@pytest.mark.parametrize(
    "lang,text,register",
    [
        ("ru", "дневной", "day"), ("ru", "днём", "day"), ("ru", "ночной тариф", "night"),
        ("uk", "денний", "day"), ("uk", "вночі", "night"),
        ("ro", "zi", "day"), ("ro", "de noapte", "night"),
        ("en", "day", "day"), ("en", "night rate", "night"), ("en", "off peak", "night"),
        ("en", "peak", "day"),
    ],
)
def test_match_register(lang, text, register):
    assert match_register(text, lang) == register


def test_match_register_none():
    assert match_register("day and night", "en") is None
    assert match_register("пять", "ru") is None
