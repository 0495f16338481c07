"""Property tests with num2words as an independent oracle of how numbers are spoken."""
from functools import lru_cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from num2words import num2words

from grammars import LANGUAGES, parse_number

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# our codes and num2words' happen to coincide; kept explicit in case one side changes
N2W = {"ro": "ro", "ru": "ru", "uk": "uk", "en": "en"}


@lru_cache(maxsize=None)
def spoken(n: int, lang: str) -> str:
    # num2words writes "twenty-one", "and", commas: callers say none of the punctuation
    text = num2words(n, lang=N2W[lang])
    return " ".join(text.replace("-", " ").replace(",", " ").split())


def grouped(digits: str, lang: str) -> str:
    """How a caller reads a long number in 2-digit groups: "19 84" / "20 03" → "twenty oh three"."""
    groups = [digits[i:i + 2] for i in range(0, len(digits), 2)]
    words = []
    for g in groups:
        if g.startswith("0"):
            words.extend(spoken(int(d), lang) for d in g)  # a leading zero is said as a digit
        else:
            words.append(spoken(int(g), lang))
    return " ".join(words)


def digit_by_digit(digits: str, lang: str) -> str:
    return " ".join(spoken(int(d), lang) for d in digits)


def _tens_then_lone_digit(digits: str) -> bool:
    # "…twenty | three" at the end: grouping makes "23" the natural reading, "203" the runner-up
    return len(digits) % 2 == 1 and len(digits) >= 3 and digits[-3] in "23456789" \
        and digits[-2] == "0" and digits[-1] != "0"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_number_below_ten_thousand(lang):
    wrong = []
    for n in range(10_000):
        r = parse_number(spoken(n, lang), lang)
        if r.best != str(n):
            wrong.append((n, spoken(n, lang), r.candidates))
    assert not wrong, wrong[:10]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_raw_num2words_output_with_punctuation(lang):
    for n in (21, 101, 1001, 123_400, 2_000_001, 999_999_999):
        assert parse_number(num2words(n, lang=N2W[lang]), lang).best == str(n)


@pytest.mark.parametrize("lang", LANGUAGES)
@settings(max_examples=300, deadline=None)
@given(n=st.integers(min_value=0, max_value=999_999_999))
def test_whole_numbers_up_to_a_billion(lang, n):
    r = parse_number(spoken(n, lang), lang)
    assert r.best == str(n), (spoken(n, lang), r)


@pytest.mark.parametrize("lang", LANGUAGES)
@settings(max_examples=300, deadline=None)
@given(digits=st.text(alphabet="0123456789", min_size=1, max_size=12))
def test_digit_by_digit(lang, digits):
    r = parse_number(digit_by_digit(digits, lang), lang)
    assert r.best == digits
    assert not r.ambiguous


@pytest.mark.parametrize("lang", LANGUAGES)
@settings(max_examples=300, deadline=None)
@given(digits=st.text(alphabet="0123456789", min_size=1, max_size=12))
def test_grouped_by_two(lang, digits):
    text = grouped(digits, lang)
    r = parse_number(text, lang)
    assert digits in r.candidates, (text, r)
    if not _tens_then_lone_digit(digits):
        assert r.best == digits, (text, r)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_grouped_by_two_systematic(lang):
    # every 4- and 3-digit account tail once, in the style of "nineteen eighty four"
    wrong = []
    for n in range(0, 10_000, 7):
        for digits in (f"{n:04d}", f"{n % 1000:03d}"):
            r = parse_number(grouped(digits, lang), lang)
            ok = digits in r.candidates and (r.best == digits or _tens_then_lone_digit(digits))
            if not ok:
                wrong.append((digits, grouped(digits, lang), r.candidates))
    assert not wrong, wrong[:10]


@pytest.mark.parametrize("lang", LANGUAGES)
@settings(max_examples=200, deadline=None)
@given(
    whole=st.integers(min_value=0, max_value=999_999),
    frac=st.text(alphabet="0123456789", min_size=1, max_size=3),
)
def test_decimal_with_point_word(lang, whole, frac):
    point = {"ro": "virgulă", "ru": "запятая", "uk": "кома", "en": "point"}[lang]
    text = f"{spoken(whole, lang)} {point} {digit_by_digit(frac, lang)}"
    assert parse_number(text, lang).best == f"{whole}.{frac}"


@pytest.mark.parametrize("lang", LANGUAGES)
@settings(max_examples=200, deadline=None)
@given(parts=st.lists(st.integers(min_value=0, max_value=999_999), min_size=1, max_size=4))
def test_numerals_as_twilio_writes_them(lang, parts):
    # Twilio may return "42 317" or "4 2 3": plain numerals are concatenated as written
    text = " ".join(str(p) for p in parts)
    assert parse_number(text, lang).best == "".join(str(p) for p in parts)


# Decimal readings num2words writes: "сто двадцать три целых пять десятых" (ru), "сто двадцять три
# кома п'ять" (uk), "one hundred and twenty-three point five", "o sută ... virgulă cinci".
_fraction_digits = st.text(alphabet="0123456789", min_size=1, max_size=3).filter(lambda f: not f.endswith("0"))


@pytest.mark.parametrize("lang", LANGUAGES)
@settings(max_examples=200, deadline=None)
@given(whole=st.integers(min_value=0, max_value=999_999), frac=_fraction_digits)
def test_decimals_as_num2words_says_them(lang, whole, frac):
    text = " ".join(num2words(float(f"{whole}.{frac}"), lang=N2W[lang]).replace("-", " ").replace(",", " ").split())
    assert parse_number(text, lang).best == f"{whole}.{frac}", text


DENOMINATORS = {"ru": ("десятых", "сотых", "тысячных"), "uk": ("десятих", "сотих", "тисячних")}


@pytest.mark.parametrize("lang,joiner", [("ru", "и"), ("ru", ""), ("uk", "і"), ("uk", "й"), ("uk", "")])
@settings(max_examples=200, deadline=None)
@given(whole=st.integers(min_value=0, max_value=999_999), frac=_fraction_digits)
def test_decimals_with_and_instead_of_whole_word(lang, joiner, whole, frac):
    # "сто двадцать три и пять десятых": "и" (or nothing) where num2words says "целых"
    text = f"{spoken(whole, lang)} {joiner} {spoken(int(frac), lang)} {DENOMINATORS[lang][len(frac) - 1]}"
    r = parse_number(text, lang)
    if joiner:
        assert r.best == f"{whole}.{frac}", (text, r)
    elif whole == 0 or whole % 10 or 10 <= whole % 100 <= 19:
        # With nothing between the parts "один один сотых" is 1.01 or 0.11: both are offered.
        # (Were the whole part to end in a tens or hundreds word, "двести двадцать один
        # тысячных" is 0.221 to anyone: such words run on into the numerator.)
        assert f"{whole}.{frac}" in r.candidates, (text, r)


# --- numbers as people say them, beyond what num2words writes ------------------------------------

from grammars import SEPARATOR, parse_account  # noqa: E402

SEPARATORS = {
    "ru": ("тире", "дефис", "черточка"), "uk": ("дефіс", "тире", "риска"),
    "ro": ("liniuță", "cratimă", "liniuta"), "en": ("dash", "hyphen"),
}
_groups = st.lists(st.text(alphabet="0123456789", min_size=1, max_size=6), min_size=1, max_size=3)


@pytest.mark.parametrize("lang", LANGUAGES)
@settings(max_examples=200, deadline=None)
@given(groups=_groups, data=st.data())
def test_account_groups_between_separator_words(lang, groups, data):
    """Each group said digit by digit, in pairs or as num2words reads it, a dash word between: each
    group is read as it is read alone."""
    said, expected = [], []
    for g in groups:
        style = data.draw(st.sampled_from(["digits", "pairs", "whole"]))
        if style == "whole" and not g.startswith("0"):
            words = spoken(int(g), lang)
        elif style == "pairs":
            words = grouped(g, lang)
        else:
            words = digit_by_digit(g, lang)
        # "201" in pairs is "twenty one" to anyone: 21 (see test_grouped_by_two)
        expected.append(parse_account(words, lang).best if style == "pairs" and _tens_then_lone_digit(g) else g)
        said += [words, data.draw(st.sampled_from(SEPARATORS[lang]))]
    text = " ".join(said[:-1])
    r = parse_account(text, lang)
    assert r.best == SEPARATOR.join(expected) and not r.unknown, (text, r)


@pytest.mark.parametrize("lang", LANGUAGES)
@settings(max_examples=100, deadline=None)
@given(groups=st.lists(st.integers(min_value=0, max_value=99_999), min_size=2, max_size=3))
def test_recogniser_numerals_keep_their_hyphen(lang, groups):
    text = "-".join(str(g) for g in groups)
    assert parse_account(text, lang).best == text
    assert parse_number(text, lang).best == text.replace("-", "")  # a reading has no dash


@pytest.mark.parametrize("lang", LANGUAGES)
@settings(max_examples=200, deadline=None)
@given(digits=st.text(alphabet="0123456789", min_size=2, max_size=12))
def test_accounts_read_in_pairs_are_not_ambiguous(lang, digits):
    r = parse_account(grouped(digits, lang), lang)
    assert r.best == digits or _tens_then_lone_digit(digits)
    if not (lang == "ro" and _tens_then_lone_digit(digits)):  # "douăzeci trei" without "și": a real doubt
        assert not r.ambiguous, (grouped(digits, lang), r)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_no_number_num2words_writes_is_ambiguous(lang):
    """Every tens-and-units number, and every other below ten thousand, is heard one way only."""
    flagged = [n for n in range(10_000) if parse_number(spoken(n, lang), lang).ambiguous]
    assert flagged == []


HALF = {"ru": "с половиной", "uk": "з половиною", "ro": "și jumătate", "en": "and a half"}
ONE_AND_A_HALF = {"ru": ("полтора", "полторы"), "uk": ("півтора", "півтори"), "ro": ("unu și jumătate",),
                  "en": ("one and a half",)}


@pytest.mark.parametrize("lang", LANGUAGES)
@settings(max_examples=200, deadline=None)
@given(n=st.integers(min_value=0, max_value=999_999).filter(lambda n: n < 1000 or n % 1000))
def test_and_a_half(lang, n):
    # (a whole number of thousands "и с половиной" is 2500 or 2000.5: see the unit tests)
    text = f"{spoken(n, lang)} {HALF[lang]}"
    r = parse_number(text, lang)
    assert r.best == f"{n}.5" and not r.unknown, (text, r)


@pytest.mark.parametrize("lang", LANGUAGES)
@settings(max_examples=100, deadline=None)
@given(n=st.integers(min_value=1, max_value=999))
def test_and_a_half_of_thousands(lang, n):
    """"две с половиной тысячи", "two and a half thousand": (n + ½) thousand."""
    thousand = {"ru": "тысячи", "uk": "тисячі", "ro": "de mii", "en": "thousand"}[lang]
    text = f"{spoken(n, lang)} {HALF[lang]} {thousand}"
    assert parse_number(text, lang).best == str(n * 1000 + 500), text


@pytest.mark.parametrize("lang", LANGUAGES)
def test_one_and_a_half(lang):
    for word in ONE_AND_A_HALF[lang]:
        assert parse_number(word, lang).best == "1.5", word
    thousand = {"ru": "тысячи", "uk": "тисячі", "ro": "mii", "en": "thousand"}[lang]
    if lang in ("ru", "uk"):
        assert parse_number(f"{ONE_AND_A_HALF[lang][1]} {thousand}", lang).best == "1500"


@pytest.mark.parametrize("lang,joiner", [("ru", "и"), ("uk", "і"), ("uk", "й")])
@settings(max_examples=200, deadline=None)
@given(whole=st.integers(min_value=1, max_value=999_999), frac=st.integers(min_value=1, max_value=99))
def test_and_instead_of_the_decimal_point(lang, joiner, whole, frac):
    """"тридцать шесть и шесть": 36.6 first, and doubtful enough to be read back."""
    text = f"{spoken(whole, lang)} {joiner} {spoken(frac, lang)}"
    r = parse_number(text, lang)
    assert r.best == f"{whole}.{frac}" and r.ambiguous, (text, r)


@settings(max_examples=200, deadline=None)
@given(whole=st.integers(min_value=0, max_value=999_999), places=st.sampled_from(["zecime", "sutime", "miime"]))
def test_romanian_one_tenth_hundredth_thousandth(whole, places):
    """"cinci întregi și o zecime" is 5.1: the article is the fraction's one."""
    text = f"{spoken(whole, 'ro')} întregi și o {places}"
    fraction = {"zecime": "1", "sutime": "01", "miime": "001"}[places]
    r = parse_number(text, "ro")
    assert r.best == f"{whole}.{fraction}" and not r.unknown, (text, r)


@settings(max_examples=200, deadline=None)
@given(tens=st.integers(min_value=1, max_value=99), hundreds=st.integers(min_value=1, max_value=9),
       rest=st.integers(min_value=0, max_value=99))
def test_romanian_hundreds_take_a_single_digit(tens, hundreds, rest):
    """"douăzeci cinci sute" is 20 500 read in groups of three: "N sute" with N ≥ 10 is not Romanian."""
    n = hundreds * 100 + rest
    text = f"{spoken(tens, 'ro')} {spoken(n, 'ro')}"
    assert parse_number(text, "ro").best == f"{tens}{n}", text
