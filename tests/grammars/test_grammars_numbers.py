"""Hand-picked spoken numbers in every language, including the tricky inflections."""
import pytest

from grammars import LANGUAGES, NumberParse, UnknownLanguage, parse_number

# (lang, text, expected best)
CASES = [
    # --- Russian
    ("ru", "ноль ноль семь", "007"),
    ("ru", "нуль один", "01"),
    ("ru", "двенадцать тридцать четыре", "1234"),
    ("ru", "сто двадцать три тысячи четыреста", "123400"),
    ("ru", "четыре два сто пять", "42105"),
    ("ru", "одна тысяча", "1000"),
    ("ru", "тысяча двести", "1200"),
    ("ru", "тыща двести", "1200"),
    ("ru", "две тысячи двадцать два", "2022"),
    ("ru", "два тысячи", "2000"),  # wrong gender still means 2000
    ("ru", "двадцать одна тысяча", "21000"),
    ("ru", "двадцать один тысяча", "21000"),
    ("ru", "пять тысяч", "5000"),
    ("ru", "одну тысячу", "1000"),
    ("ru", "миллион", "1000000"),
    ("ru", "два миллиона", "2000000"),
    ("ru", "пять миллионов триста тысяч", "5300000"),
    ("ru", "девятьсот девяносто девять миллионов девятьсот девяносто девять тысяч девятьсот девяносто девять", "999999999"),
    ("ru", "двенадцать запятая пять", "12.5"),
    ("ru", "двенадцать точка пять", "12.5"),
    ("ru", "двенадцать целых пять десятых", "12.5"),
    ("ru", "двенадцать целых пять", "12.5"),
    ("ru", "ноль целых двадцать пять сотых", "0.25"),
    ("ru", "одна целая пять сотых", "1.05"),
    ("ru", "три целых семь тысячных", "3.007"),
    ("ru", "пять десятых", "0.5"),
    ("ru", "сто двадцать три и пять десятых", "123.5"),  # "и" where "целых" would be
    ("ru", "сто двадцать три целых пять десятых", "123.5"),
    ("ru", "три целых двадцать пять сотых", "3.25"),
    ("ru", "три и двадцать пять сотых", "3.25"),
    ("ru", "двадцать и пять сотых", "20.05"),
    ("ru", "двенадцать и семь тысячных", "12.007"),
    ("ru", "сто двадцать три пять десятых", "123.5"),  # the numerator is what fits the places
    ("ru", "три двадцать пять сотых", "3.25"),
    ("ru", "двадцать пять сотых", "0.25"),
    ("ru", "и пять десятых", "0.5"),
    ("ru", "сто и двадцать три и пять десятых", "123.5"),  # only the last "и" splits
    ("ru", "двенадцать и пять", "12.5"),  # no fraction word: "и" is most likely the decimal point
    ("ru", "ноль и пять десятых", "0.5"),
    ("ru", "ДВЕНАДЦАТЬ", "12"),
    ("ru", "12,5", "12.5"),
    ("ru", "42 317", "42317"),
    ("ru", "42 тысячи 317", "42317"),
    ("ru", "4 два 3", "423"),
    # --- Ukrainian
    ("uk", "нуль нуль сім", "007"),
    ("uk", "ноль один", "01"),
    ("uk", "дванадцять тридцять чотири", "1234"),
    ("uk", "сто двадцять три тисячі чотириста", "123400"),
    ("uk", "чотири два сто п'ять", "42105"),
    ("uk", "одна тисяча", "1000"),
    ("uk", "дві тисячі", "2000"),
    ("uk", "два тисячі", "2000"),
    ("uk", "двадцять одна тисяча", "21000"),
    ("uk", "п'ять тисяч", "5000"),
    ("uk", "п’ять тисяч", "5000"),  # typographic apostrophe
    ("uk", "пʼять тисяч", "5000"),  # modifier-letter apostrophe
    ("uk", "дев'ятсот дев'яносто дев'ять", "999"),
    ("uk", "мільйон", "1000000"),
    ("uk", "два мільйони", "2000000"),
    ("uk", "п'ять мільйонів", "5000000"),
    ("uk", "дванадцять кома п'ять", "12.5"),
    ("uk", "дванадцять цілих п'ять десятих", "12.5"),
    ("uk", "одна ціла двадцять п'ять сотих", "1.25"),
    ("uk", "12,5", "12.5"),
    ("uk", "сто двадцять три і п'ять десятих", "123.5"),
    ("uk", "сто двадцять три й п'ять десятих", "123.5"),
    ("uk", "три цілих двадцять п'ять сотих", "3.25"),
    ("uk", "три і двадцять п'ять сотих", "3.25"),
    ("uk", "двадцять і п'ять сотих", "20.05"),
    ("uk", "сто двадцять три п'ять десятих", "123.5"),
    # --- Romanian
    ("ro", "zero zero șapte", "007"),
    ("ro", "zero zero sapte", "007"),
    ("ro", "zero zero şapte", "007"),  # cedilla ş
    ("ro", "ZERO ZERO ŞAPTE", "007"),
    ("ro", "un doi trei", "123"),
    ("ro", "unu două trei", "123"),
    ("ro", "una doua trei", "123"),
    ("ro", "doisprezece treizeci și patru", "1234"),
    ("ro", "doisprezece treizeci si patru", "1234"),
    ("ro", "unșpe", "11"),
    ("ro", "unspe", "11"),
    ("ro", "o sută", "100"),
    ("ro", "două sute", "200"),
    ("ro", "doua sute", "200"),
    ("ro", "o mie", "1000"),
    ("ro", "două mii", "2000"),
    ("ro", "douăzeci de mii", "20000"),
    ("ro", "douăzeci și unu de mii", "21000"),
    ("ro", "douazeci si una de mii", "21000"),
    ("ro", "o sută de mii", "100000"),
    ("ro", "o sută douăzeci și trei de mii patru sute", "123400"),
    ("ro", "un milion", "1000000"),
    ("ro", "două milioane", "2000000"),
    ("ro", "patru doi o sută cinci", "42105"),
    ("ro", "doisprezece virgulă cinci", "12.5"),
    ("ro", "doisprezece virgula cinci", "12.5"),
    ("ro", "doisprezece întregi și cinci zecimi", "12.5"),
    ("ro", "doisprezece intregi si cinci zecimi", "12.5"),
    ("ro", "12,5", "12.5"),
    ("ro", "o sută douăzeci și trei și cinci zecimi", "123.5"),
    ("ro", "trei și douăzeci și cinci de sutimi", "3.25"),
    ("ro", "ţeapă 5", "5"),
    # --- English
    ("en", "oh oh seven", "007"),
    ("en", "zero zero seven", "007"),
    ("en", "o o seven", "007"),
    ("en", "double five", "55"),
    ("en", "triple five", "555"),
    ("en", "double oh seven", "007"),
    ("en", "four double two", "422"),
    ("en", "double 5", "55"),
    ("en", "nineteen eighty four", "1984"),
    ("en", "nineteen oh five", "1905"),
    ("en", "nineteen hundred", "1900"),
    ("en", "twelve hundred and five", "1205"),
    ("en", "a hundred and five", "105"),
    ("en", "one hundred and twenty-three thousand, four hundred", "123400"),
    ("en", "four two one hundred five", "42105"),
    ("en", "one two point five", "12.5"),
    ("en", "twelve dot five", "12.5"),
    ("en", "point five", "0.5"),
    ("en", "twelve point zero five", "12.05"),
    ("en", "42317", "42317"),
    ("en", "4 2 3", "423"),
    ("en", "4-2-3.", "423"),
    ("en", "4 two 3", "423"),
    ("en", "12,500", "12500"),
    ("en", "12.5", "12.5"),
    ("en", "1,234,567", "1234567"),
]


@pytest.mark.parametrize("lang,text,best", CASES)
def test_best_reading(lang, text, best):
    r = parse_number(text, lang)
    assert r.best == best, r
    assert r.candidates[0] == best


@pytest.mark.parametrize(
    "lang,text,candidates",
    [
        ("ro", "douăzeci trei", ("23", "203")),  # without "și" a 2-digit group is plausible
        ("ro", "doisprezece și cinci", ("12.5", "125")),
        ("ro", "cinci și șase", ("56", "5.6")),
        ("ru", "тридцать шесть и шесть", ("36.6", "366", "306.6")),
        ("uk", "тридцять шість і шість", ("36.6", "366", "306.6")),
        ("ru", "две тысячи с половиной", ("2500", "2000.5")),
        ("ro", "o mie și jumătate", ("1500", "1000.5")),
    ],
)
def test_ambiguous_groupings_are_ranked(lang, text, candidates):
    """Where a listener would hesitate too, the reading is reported as ambiguous (and read back)."""
    r = parse_number(text, lang)
    assert r.ambiguous
    assert r.candidates == candidates


@pytest.mark.parametrize(
    "lang,text,candidates",
    [
        ("en", "twenty three", ("23", "203")),
        ("ru", "двадцать три", ("23", "203")),
        ("uk", "двадцять три", ("23", "203")),
        ("ru", "сорок пять", ("45", "405")),
        ("ru", "двадцать три сорок", ("2340", "20340")),
    ],
)
def test_a_tens_word_and_a_digit_are_one_number_to_a_listener(lang, text, candidates):
    """"сорок пять" is 45: the split reading stays a candidate, but nobody would hesitate."""
    r = parse_number(text, lang)
    assert r.candidates == candidates and not r.ambiguous


@pytest.mark.parametrize(
    "lang,text",
    [
        ("ru", "сто двадцать"),
        ("ru", "сто двадцать три"),
        ("uk", "сто двадцять"),
        ("en", "one hundred twenty"),
        ("ro", "o sută douăzeci"),
        ("ro", "douăzeci și trei"),  # "și" says it is one number
        ("en", "twenty three thousand"),
        ("ru", "ноль ноль семь"),
        ("ru", "четыре два сто пять"),
        ("en", "double five"),
    ],
)
def test_unambiguous(lang, text):
    r = parse_number(text, lang)
    assert not r.ambiguous
    assert len(r.candidates) == 1


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("text", ["", "   ", "[unk]", "[unk] [unk]", "hello мир", "?!"])
def test_nothing_numeric(lang, text):
    r = parse_number(text, lang)
    assert r == NumberParse(None, (), False, r.unknown)


def test_unknown_words_are_reported_and_skipped():
    r = parse_number("ну пять [unk] шесть ёжик", "ru")
    assert r.best == "56"
    assert r.unknown == ("[unk]", "ежик")  # "ну" is a known filler; ё folded to е


def test_double_without_digit_is_unknown():
    r = parse_number("double twenty", "en")
    assert r.best == "20"
    assert "double" in r.unknown


def test_fraction_denominator_fixes_places():
    r = parse_number("двенадцать целых двадцать пять сотых", "ru")
    assert r.best == "12.25"
    assert "12.205" not in r.candidates


def test_candidates_are_unique_and_best_first():
    r = parse_number("twenty three twenty four", "en")
    assert r.best == "2324"
    assert len(set(r.candidates)) == len(r.candidates)
    assert set(r.candidates) <= {"2324", "20324", "23204"}


def test_unsupported_language():
    with pytest.raises(UnknownLanguage, match="unsupported language 'de'"):
        parse_number("eins", "de")
    assert issubclass(UnknownLanguage, ValueError)


def test_result_is_frozen():
    r = parse_number("one", "en")
    with pytest.raises(Exception):
        r.best = "2"


@pytest.mark.parametrize("lang,text,best", [
    ("ro", "12.345", "12345"), ("ru", "1.234.567", "1234567"), ("uk", "12,345", "12.345"),
    ("ro", "12,5", "12.5"), ("en", "12.345", "12.345"), ("en", "12,345", "12345"),
])
def test_locale_separators_in_numerals(lang, text, best):
    """A recogniser writes numbers the locale's way: "." groups thousands in ro/ru/uk, "," in en."""
    assert parse_number(text, lang).best == best


# --- numbers as people say them ---------------------------------------------------------------

from grammars import parse_account  # noqa: E402


@pytest.mark.parametrize("lang,text,best", [
    ("ru", "двенадцать тире триста сорок пять", "12-345"),
    ("ru", "один два три дефис четыре пять шесть черточка семь", "123-456-7"),
    ("ru", "один два точка три", "12-3"),  # the decimal-point word the keypad's star stands for too
    ("ru", "123 тире 456", "123-456"),
    ("uk", "один два дефіс три", "12-3"),
    ("uk", "один два тире три риска чотири", "12-3-4"),
    ("uk", "дванадцять крапка тридцять чотири", "12-34"),
    ("ro", "unu doi liniuță trei cratimă patru", "12-3-4"),
    ("ro", "doisprezece liniuta treizeci și patru", "12-34"),
    ("en", "one two three dash four five six hyphen seven", "123-456-7"),
    ("en", "123-456", "123-456"),
    ("en", "oh oh seven", "007"),
])
def test_account_numbers_with_separators(lang, text, best):
    r = parse_account(text, lang)
    assert r.best == best and not r.unknown, r


@pytest.mark.parametrize("lang,text,best,unknown", [
    ("ru", "тире один два", "12", ("тире",)),  # a dash with nothing before it separates nothing
    ("ru", "один два тире тире три", "12-3", ("тире",)),
    ("en", "one two dash", "12", ("dash",)),
    ("ru", "один два три целых", "123", ("целых",)),  # an account has no fractions
])
def test_account_number_words_that_do_not_fit_are_reported(lang, text, best, unknown):
    r = parse_account(text, lang)
    assert (r.best, r.unknown) == (best, unknown)


@pytest.mark.parametrize("lang,text", [
    ("ru", "двенадцать тире пять"), ("uk", "дванадцять дефіс п'ять"), ("ro", "doisprezece cratimă cinci"),
    ("en", "twelve dash five"),
])
def test_a_dash_in_a_reading_is_not_understood(lang, text):
    r = parse_number(text, lang)
    assert r.best == "125" and len(r.unknown) == 1


@pytest.mark.parametrize("lang,text,best", [
    ("ru", "полтора", "1.5"), ("ru", "полторы тысячи", "1500"), ("ru", "полтора миллиона", "1500000"),
    ("ru", "двенадцать с половиной", "12.5"), ("ru", "две с половиной тысячи", "2500"),
    ("ru", "сто двадцать три с половиной", "123.5"),
    ("uk", "півтора", "1.5"), ("uk", "півтори тисячі", "1500"), ("uk", "дванадцять з половиною", "12.5"),
    ("uk", "дві з половиною тисячі", "2500"), ("uk", "дванадцять із половиною", "12.5"),
    ("ro", "doisprezece și jumătate", "12.5"), ("ro", "unu și jumătate", "1.5"), ("ro", "o jumătate", "0.5"),
    ("ro", "două și jumătate de mii", "2500"),
    ("en", "twelve and a half", "12.5"), ("en", "one and a half", "1.5"), ("en", "a half", "0.5"),
    ("en", "two and a half thousand", "2500"),
])
def test_halves(lang, text, best):
    r = parse_number(text, lang)
    assert r.best == best and not r.unknown and not r.ambiguous, r


@pytest.mark.parametrize("lang,text,candidates", [
    ("ru", "две тысячи с половиной", ("2500", "2000.5")),
    ("uk", "дві тисячі з половиною", ("2500", "2000.5")),
    ("ro", "un milion și jumătate", ("1500000", "1000000.5")),
    ("en", "a thousand and a half", ("1500", "1000.5")),
])
def test_a_half_after_thousands_is_read_back(lang, text, candidates):
    r = parse_number(text, lang)
    assert r.candidates == candidates and r.ambiguous


@pytest.mark.parametrize("text,best", [
    ("cinci întregi și o zecime", "5.1"), ("o sutime", "0.01"), ("zero întregi și o miime", "0.001"),
    ("douăzeci și trei întregi și o sutime", "23.01"), ("douășpe", "12"), ("douaspe virgulă cinci", "12.5"),
    ("douăzeci cinci sute", "20500"), ("o sută douăzeci și trei patru sute cincizeci și șase", "123456"),
])
def test_romanian_as_people_say_it(text, best):
    r = parse_number(text, "ro")
    assert r.best == best and not r.unknown, r


def test_romanian_hundreds_need_a_digit_before_them():
    assert parse_number("unsprezece sute", "ro") == NumberParse("11", ("11",), False, ("sute",))
    assert parse_number("două sute", "ro").best == "200" and parse_number("o sută", "ro").best == "100"


@pytest.mark.parametrize("lang,text", [("ro", "o cinci"), ("en", "a five")])
def test_an_article_that_is_no_number_is_reported(lang, text):
    """Dropped silently, "cinci întregi și o zecime" came out as 5 and could have been accepted."""
    r = parse_number(text, lang)
    assert r.best == "5" and r.unknown == (text.split()[0],)
