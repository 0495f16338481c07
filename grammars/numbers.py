"""Spoken numbers → digit strings.

Callers read meters and account numbers in many styles, often mixed in one breath:
digit by digit ("ноль ноль семь"), in groups ("nineteen eighty four"), as one whole number
("сто двадцать три тысячи четыреста"), with a decimal part ("двенадцать и пять", "twelve and a
half", "полторы тысячи"). The recogniser may also hand us numerals ("42 317", "12,5", "123-456").
We therefore do not parse "a number" but segment the words into *chunks*, each a well-formed
number (or a single digit or numeral), and concatenate the chunks' digits. Several segmentations
are usually possible; each has a cost, so the natural reading ranks first.

Cost model (the whole point of this module, tuned on the examples in the tests):
  * a boundary between two chunks that could not form one number is free
    ("nineteen | eighty four", "four | two");
  * splitting a bare tens word from a following bare digit costs ``_COST_TENS_DIGIT``:
    "twenty three" is 23, but a caller dictating 2-digit groups may have meant "20 3" → 203,
    so that reading stays a candidate. In Romanian, where tens and units are joined by "și"
    ("douăzeci și trei"), "douăzeci trei" without it is a real doubt (``_COST_TENS_DIGIT_HESITANT``);
  * any other split of something that would form one number costs ``_COST_UNNATURAL``
    ("сто | двадцать" = 10020 is not a reasonable reading of "сто двадцать");
  * splitting across an explicit connector ("twenty and three", "douăzeci și trei") costs more;
  * a word that may mean two things takes its likelier meaning free and the other at
    ``_COST_OTHER_READING``: "тридцать шесть и шесть" is 36.6 (or 366), "doisprezece și cinci"
    12.5 (or 125), "две тысячи с половиной" 2500 (or 2000.5).
Candidates within ``_REASONABLE`` of the best are reported; the result is ``ambiguous`` only when a
runner-up is within ``_HESITATE``, i.e. where a listener would hesitate too: "сорок пять" is 45,
whatever a caller dictating groups might have meant, and an account read in pairs is clear.

Account numbers (:func:`parse_account`) are read the same way, group by group, between the
caller's words for a dash ("тире", "дефис", "liniuță", "hyphen") or a decimal-point word, and a
numeral's own hyphen ("123-456") is kept: ``SEPARATOR`` marks each.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import product

from ._lexicon import NEEDS_COUNT, UNK, Pack, Word, check_language, find_phrases, key, load, tokenize

_COST_TENS_DIGIT = 1.0
_COST_TENS_DIGIT_HESITANT = 0.4
_COST_UNNATURAL = 3.0
_COST_GLUED = 5.0
_COST_OTHER_READING = 0.5
_TIE_EARLY = 0.001  # far below any real cost difference; orders otherwise equal readings
_REASONABLE = 1.5
_HESITATE = 0.5
_MAX_CANDIDATES = 5
_KBEST = 8  # partial segmentations kept per DP state; only the top few can end up reported
_MAX_CHUNK = 16  # longest well-formed number: "nine hundred ninety nine million nine hundred …"

SEPARATOR = "-"  # between the groups of an account number (parse_account)


@dataclass(frozen=True)
class NumberParse:
    """Result of :func:`parse_number` (or :func:`parse_account`).

    ``best`` is a digit string (leading zeros kept; at most one "." for a number, ``SEPARATOR``
    between the groups of an account number) or None if nothing numeric was heard; ``candidates``
    are the reasonable readings, best first; ``ambiguous`` says a runner-up is close enough that a
    listener would hesitate too; ``unknown`` lists the words that were not understood or did not
    fit a reading (including the recogniser's "[unk]").
    """

    best: str | None
    candidates: tuple[str, ...]
    ambiguous: bool
    unknown: tuple[str, ...]


@dataclass(frozen=True)
class _Tok:
    kind: str  # D digit, T teen, X tens, H hundreds word, MH/MK/MM multipliers, N numeral, ...
    value: int = 0  # a digit's value; on a multiplier, the _ONLY_DIGIT / _NEEDS_COUNT bits
    text: str = ""
    glued: bool = False  # an explicit connector joined it to the previous word


_MULT = ("MH", "MK", "MM")
_ONLY_DIGIT = 1  # Romanian "sute": only a single digit multiplies it
_NEEDS_COUNT = NEEDS_COUNT  # a plural ("sute", "mii"): never alone at the start of a number
_SCALES = {"MK": 1000, "MM": 1_000_000}
_NUMERIC = ("D", "T", "X", "H", "N")
_MARKS = ("DEC", "INT", "FRAC")


# --------------------------------------------------------------------------- tokens


def _numeral_tokens(tok: str, lang: str) -> list[_Tok]:
    """Digits as the recogniser writes them; a separator is decimal unless it groups thousands."""
    parts = re.split(r"([.,])", tok)
    if len(parts) == 1:
        return [_Tok("N", text=tok)]
    digits, seps = parts[0::2], parts[1::2]
    # "1,234,567" / "12,500" in English are thousands groups; in ro/ru/uk "," is the decimal mark
    # and "." groups thousands ("12.345" from a ro-RO recogniser is 12345). Several separators
    # that all group by three are thousands in any language.
    grouped = all(len(d) == 3 for d in digits[1:]) and len(set(seps)) == 1
    thousands_mark = "," if lang == "en" else "."
    if grouped and (len(seps) > 1 or seps[0] == thousands_mark):
        return [_Tok("N", text="".join(digits))]
    whole = "".join(digits[:-1])
    return [_Tok("N", text=whole), _Tok("DEC", text=seps[-1]), _Tok("N", text=digits[-1])]


def _classify(text: str, pack: Pack) -> tuple[list[_Tok], list[str]]:
    toks: list[_Tok] = []
    unknown: list[str] = []
    raw = tokenize(text, pack.lang)
    keys = [key(t, pack.lang) for t in raw]
    halves = {start: end for start, end, _ in find_phrases(keys, pack.halves)}
    only_digit = _ONLY_DIGIT if pack.rule("hundred_after_digit") else 0
    i = 0
    while i < len(raw):
        word = raw[i]
        if i in halves:  # "с половиной", "and a half", "și jumătate": one meaning, several words
            toks.append(_Tok("HALF", text=" ".join(raw[i:halves[i]])))
            i = halves[i]
            continue
        i += 1
        if word == UNK:
            unknown.append(word)
        elif word[0].isdigit():
            for n, part in enumerate(word.split("-")):
                if n:
                    toks.append(_Tok("SEP", text="-"))
                toks.extend(_numeral_tokens(part, pack.lang))
        else:
            w: Word | None = pack.words.get(key(word, pack.lang))
            if w is None:
                unknown.append(word)
            elif w.kind in _MULT:
                toks.append(_Tok(w.kind, (only_digit if w.kind == "MH" else 0) | w.value, word))
            elif w.kind != "FILL":
                toks.append(_Tok(w.kind, w.value, word))
    # An article means one only before a multiplier or a fraction ("a hundred", "o mie",
    # "o zecime"); anywhere else it is not part of a number, and is said so.
    out = []
    for k, t in enumerate(toks):
        nxt = toks[k + 1] if k + 1 < len(toks) else None
        if t.kind == "ART" and not (nxt is not None and nxt.kind in (*_MULT, "FRAC")):
            unknown.append(t.text)
        else:
            out.append(t)
    return out, unknown


Variants = list[tuple[list[_Tok], float]]


def _each(variants: Variants, step, unknown: list[str]) -> Variants:
    """Apply a step that may fork a reading to every variant. Variants differ only in how one
    word is read, so what does not fit is reported once, from the first."""
    out: Variants = []
    for n, (toks, cost) in enumerate(variants):
        out.extend((v, cost + c) for v, c in step(toks, unknown if n == 0 else []))
    return out


def _below_thousand_suffix(toks: list[_Tok]) -> tuple[int, int] | None:
    """(value, length) of the longest run at the end of ``toks`` that is one number below 1000
    (connectors inside it allowed: "one hundred and one"; an article is its one: "o sută")."""
    for n in range(min(len(toks), 6), 0, -1):
        run = tuple(_Tok("D", 1) if t.kind == "ART" else t for t in toks[-n:] if t.kind != "CONN")
        if toks[-n].kind == "CONN" or any(t.kind not in (*_NUMERIC, "MH") for t in run):
            continue
        value = _below_thousand(run)
        if value is not None:
            return value, n
    return None


def _halves(toks: list[_Tok], unknown: list[str]) -> Variants:
    """"полтора/півтора" (1.5; before a scale word, one and a half of it) and "… and a half"."""
    variants: Variants = [([], 0.0)]
    i = 0
    seen_half = False
    while i < len(toks):
        t = toks[i]
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        if t.kind == "HALF1":
            if nxt is not None and nxt.kind in _SCALES:  # "полторы тысячи" = 1500
                for v, _ in variants:
                    v.append(_Tok("N", text=str(_SCALES[nxt.kind] * 3 // 2)))
                i += 2
                continue
            for v, _ in variants:
                v.extend([_Tok("D", 1, t.text), _Tok("DEC", text=t.text), _Tok("N", text="5")])
        elif t.kind == "HALF":
            if seen_half or any(x.kind in _MARKS for x in toks):
                unknown.append(t.text)  # one number has one fractional part
                i += 1
                continue
            seen_half = True
            prev = variants[0][0][-1] if variants[0][0] else None
            if nxt is not None and nxt.kind == "CONN" and i + 2 < len(toks) and toks[i + 2].kind in _SCALES:
                i, nxt = i + 1, toks[i + 2]  # "două și jumătate de mii"
            if nxt is not None and nxt.kind in _SCALES:
                # "две с половиной тысячи", "two and a half thousand": (X + ½) × the scale
                forked: Variants = []
                for v, c in variants:
                    found = _below_thousand_suffix(v)
                    if found is None:
                        unknown.append(t.text)
                        forked.append((v, c))
                        continue
                    value, n = found
                    scale = _SCALES[nxt.kind]
                    forked.append((v[:-n] + [_Tok("N", text=str(value * scale + scale // 2))], c))
                variants = forked
                i += 2
                continue
            if prev is not None and prev.kind in _SCALES:
                # "две тысячи с половиной", "o mie și jumătate": 2500 to a listener, 2000.5 possibly
                half_of = [_Tok("H", 500)] if prev.kind == "MK" else [_Tok("H", 500), _Tok("MK")]
                variants = [(v + half_of, c) for v, c in variants] + \
                           [(v + [_Tok("DEC", text=t.text), _Tok("N", text="5")], c + _COST_OTHER_READING)
                            for v, c in variants]
            else:
                for v, _ in variants:
                    v.extend([_Tok("DEC", text=t.text), _Tok("N", text="5")])
        else:
            for v, _ in variants:
                v.append(t)
        i += 1
    return variants


def _fraction_and(toks: list[_Tok], unknown: list[str]) -> Variants:
    """Russian "и" (Ukrainian "і"/"й") between a whole part and what follows.

    Before a fraction's numerator ("сто двадцать три и пять десятых") it marks where the whole
    part ends, like "целых". With no fraction word and no decimal point at all, the last one
    between two numbers is most likely the decimal point a caller leaves out of "и пять десятых"
    ("тридцать шесть и шесть" is 36.6), but may be a mere "and" (366). Anywhere else it is a filler.
    """
    frac_at = next((k for k, t in enumerate(toks) if t.kind == "FRAC"), None)
    marked = any(t.kind in ("DEC", "INT") for t in toks)
    mark, fork = None, False
    if frac_at is not None and not any(t.kind in ("DEC", "INT") for t in toks[:frac_at]):
        mark = next((k for k in range(frac_at - 1, -1, -1) if toks[k].kind == "FAND"), None)
    elif frac_at is None and not marked:
        mark = next((k for k in range(len(toks) - 2, 0, -1) if toks[k].kind == "FAND"
                     and toks[k - 1].kind in (*_NUMERIC, *_MULT) and toks[k + 1].kind in _NUMERIC), None)
        fork = mark is not None
    decimal = [replace(t, kind="DEC") if k == mark else t for k, t in enumerate(toks)
               if t.kind != "FAND" or k == mark]
    if not fork:
        return [(decimal, 0.0)]
    return [(decimal, 0.0), ([t for t in toks if t.kind != "FAND"], _COST_OTHER_READING)]


def _expand_repeats(toks: list[_Tok], unknown: list[str]) -> Variants:
    """English "double five" → 5 5. A "double" with no digit after it was not understood."""
    out: list[_Tok] = []
    i = 0
    while i < len(toks):
        t = toks[i]
        if t.kind == "REP":
            nxt = toks[i + 1] if i + 1 < len(toks) else None
            if nxt is not None and (nxt.kind == "D" or (nxt.kind == "N" and len(nxt.text) == 1)):
                out.extend([replace(nxt, glued=False)] * t.value)
                i += 2
                continue
            unknown.append(t.text)
        else:
            out.append(t)
        i += 1
    return [(out, 0.0)]


def _resolve_articles_and_connectors(toks: list[_Tok], weak: frozenset[str], lang: str) -> Variants:
    """Turn articles into 1 and drop connectors, marking what they joined.

    Returns a list of (tokens, extra_cost) variants: Romanian "și" is usually the "and" inside
    "douăzeci și trei", but "doisprezece și cinci" reads as 12.5, so it may fork the parse.
    """
    variants: Variants = [([], 0.0)]
    has_strong_decimal = any(t.kind in ("DEC", "INT") for t in toks)
    for i, t in enumerate(toks):
        prev = toks[i - 1] if i else None
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        if t.kind == "ART":
            # "a hundred", "o sută", "o mie": the article is the multiplier's one (never split from
            # it); "o zecime": the fraction's one.
            glue = [_Tok("GLUE")] if nxt is not None and nxt.kind in _MULT else []
            for v, _ in variants:
                v.extend([_Tok("D", 1, t.text), *glue])
            continue
        if t.kind == "CONN":
            if prev is not None and prev.kind == "INT":
                continue  # "întregi și cinci zecimi": "și" only links the parts
            # one number has one decimal mark: only the first weak "și" may become it
            is_weak = key(t.text, lang) in weak and not has_strong_decimal and len(variants) == 1
            tens_and_digit = prev is not None and prev.kind == "X" and nxt is not None and nxt.kind == "D"
            if is_weak and not tens_and_digit and prev is not None and nxt is not None \
                    and prev.kind in _NUMERIC and nxt.kind in _NUMERIC:
                # After a whole group ("doisprezece și cinci") the decimal reading comes first;
                # between single digits ("cinci și șase") it is the less likely one.
                dec_cost, join_cost = (_COST_OTHER_READING, 0.0) if prev.kind == "D" else (0.0, _COST_OTHER_READING)
                forked = []
                for v, c in variants:
                    forked.append((v + [_Tok("DEC", text=t.text)], c + dec_cost))
                    forked.append((v + [_Tok("GLUE")], c + join_cost))
                variants = forked
            else:
                for v, _ in variants:
                    v.append(_Tok("GLUE"))
            continue
        for v, _ in variants:
            v.append(t)
    out = []
    for v, c in variants:
        res: list[_Tok] = []
        glue = False
        for t in v:
            if t.kind == "GLUE":
                glue = bool(res)
                continue
            res.append(replace(t, glued=True) if glue else t)
            glue = False
        out.append((res, c))
    return out


# --------------------------------------------------------------------------- one chunk


def _below_hundred(ts: tuple[_Tok, ...]) -> int | None:
    if len(ts) == 1:
        t = ts[0]
        if t.kind == "D" and t.value > 0 or t.kind in ("T", "X"):
            return t.value
        if t.kind == "N" and not t.text.startswith("0") and int(t.text) < 100:
            return int(t.text)
        return None
    if len(ts) == 2 and ts[0].kind == "X" and ts[1].kind == "D" and ts[1].value > 0:
        return ts[0].value + ts[1].value
    return None


def _bare(mult: _Tok) -> int | None:
    """A bare "тысяча"/"million"/"sută" means one of it; a bare plural ("sute") means nothing."""
    return None if mult.value & _NEEDS_COUNT else 1


def _below_thousand(ts: tuple[_Tok, ...]) -> int | None:
    if not ts:
        return None
    if len(ts) == 1 and ts[0].kind == "N":
        n = ts[0].text
        return int(n) if not n.startswith("0") and int(n) < 1000 else None
    hundreds, rest = 0, ts
    if ts[0].kind == "H":
        hundreds, rest = ts[0].value, ts[1:]
    else:
        p = next((k for k, t in enumerate(ts) if t.kind == "MH"), None)
        if p is not None:
            # "hundred" alone is 100; "nineteen hundred" (1900) is common in English, while in
            # Romanian only a digit multiplies "sute" ("douăzeci cinci sute" is 20 500, not 2 500)
            mult = _bare(ts[p]) if p == 0 else _below_hundred(ts[:p])
            if mult is None or (ts[p].value & _ONLY_DIGIT and mult > 9):
                return None
            hundreds, rest = mult * 100, ts[p + 1:]
    if not rest:
        return hundreds or None
    below = _below_hundred(rest)
    return None if below is None else hundreds + below


def _scaled(ts: tuple[_Tok, ...], kind: str, scale: int, lower) -> int | None:
    idx = [k for k, t in enumerate(ts) if t.kind == kind]
    if not idx:
        return lower(ts)
    if len(idx) > 1:
        return None
    p = idx[0]
    mult = _bare(ts[p]) if p == 0 else _below_thousand(ts[:p])
    if mult is None:
        return None
    rest = ts[p + 1:]
    below = lower(rest) if rest else 0
    return None if below is None else mult * scale + below


def _below_million(ts):
    return _scaled(ts, "MK", 1000, _below_thousand)


def _whole(ts):
    return _scaled(ts, "MM", 1_000_000, _below_million)


def _chunk(ts: tuple[_Tok, ...]) -> str | None:
    """Digits of one chunk, or None if these words do not form one number."""
    if len(ts) == 1 and ts[0].kind == "N":
        return ts[0].text  # as written, leading zeros included
    if len(ts) == 1 and ts[0].kind == "D":
        return str(ts[0].value)  # the only place a spoken zero is allowed
    if any(t.kind not in ("D", "T", "X", "H", "N", "MH", "MK", "MM") for t in ts):
        return None
    v = _whole(ts)
    return None if v is None else str(v)


# --------------------------------------------------------------------------- segmentation


def _segment(toks: list[_Tok], tens_digit: float = _COST_TENS_DIGIT) -> list[tuple[float, str]]:
    """All reasonable segmentations of ``toks`` into chunks, as (cost, digits), cheapest first.

    DP over (end, start of last chunk): the cost of a boundary depends on both chunks around it.
    """
    n = len(toks)
    if n == 0:
        return []
    tt = tuple(toks)

    @lru_cache(maxsize=None)
    def chunk(i: int, j: int) -> str | None:
        return _chunk(tt[i:j]) if j - i <= _MAX_CHUNK else None

    def boundary(k: int, i: int, j: int) -> float:
        if chunk(k, j) is None:
            return 0.0
        if tt[i].glued:
            return _COST_GLUED
        if i - k == 1 and j - i == 1 and tt[k].kind == "X" and tt[i].kind == "D":
            # Among equal readings prefer the split nearer the end: grouping a long number by
            # two leaves the odd lone digit last ("…twenty one" = "…20 1").
            return tens_digit + _TIE_EARLY * (n - i)
        return _COST_UNNATURAL

    # states[(i, j)]: best partial results for toks[:j] whose last chunk is toks[i:j]
    states: dict[tuple[int, int], list[tuple[float, str]]] = {}
    for j in range(1, n + 1):
        for i in range(max(0, j - _MAX_CHUNK), j):
            c = chunk(i, j)
            if c is None:
                continue
            if i == 0:
                states[(i, j)] = [(0.0, c)]
                continue
            acc: dict[str, float] = {}
            for k in range(max(0, i - _MAX_CHUNK), i):
                prev = states.get((k, i))
                if not prev:
                    continue
                b = boundary(k, i, j)
                for cost, s in prev:
                    total = cost + b
                    if total < acc.get(s + c, float("inf")):
                        acc[s + c] = total
            if acc:
                states[(i, j)] = sorted(((v, s) for s, v in acc.items()), key=lambda x: x[0])[:_KBEST]
    final: dict[str, float] = {}
    for i in range(n):
        for cost, s in states.get((i, n), []):
            if cost < final.get(s, float("inf")):
                final[s] = cost
    return sorted(((v, s) for s, v in final.items()), key=lambda x: x[0])


def _segment_known(toks: list[_Tok], tens_digit: float, unknown: list[str]) -> list[tuple[float, str]]:
    """:func:`_segment`, leaving out (and reporting) words no number can hold where they stand
    ("sute" with nothing to multiply it)."""
    found = _segment(toks, tens_digit)
    if found or not toks:
        return found
    covered: set[int] = set()
    for i in range(len(toks)):
        for j in range(i + 1, min(len(toks), i + _MAX_CHUNK) + 1):
            if _chunk(tuple(toks[i:j])) is not None:
                covered.update(range(i, j))
    if len(covered) == len(toks):
        return []
    unknown.extend(t.text for k, t in enumerate(toks) if k not in covered)
    return _segment([t for k, t in enumerate(toks) if k in covered], tens_digit)


# --------------------------------------------------------------------------- decimals


def _split_decimal(toks: list[_Tok], unknown: list[str]):
    """Ways to read ``toks`` as a whole and a fractional part:
    (integer tokens, fraction tokens or None, denominator or None, cost) each."""
    mark = next((k for k, t in enumerate(toks) if t.kind in ("DEC", "INT")), None)
    frac_at = next((k for k, t in enumerate(toks) if t.kind == "FRAC"), None)
    if mark is None and frac_at is None:
        return [(toks, None, None, 0.0)]
    unmarked = mark is None or (frac_at is not None and frac_at < mark)
    if unmarked:
        # "пять десятых", or "сто двадцать три пять десятых" with the whole part unmarked
        before, tail, denom = toks[:frac_at], toks[frac_at + 1:], toks[frac_at].value
    else:
        int_toks, after = toks[:mark], toks[mark + 1:]
        f = next((k for k, t in enumerate(after) if t.kind == "FRAC"), None)
        before, tail, denom = (after, [], None) if f is None else (after[:f], after[f + 1:], after[f].value)
    # words after the fraction, or a second decimal mark, do not fit a reading: report them
    unknown.extend(t.text for t in tail)
    unknown.extend(t.text for t in before if t.kind in _MARKS)
    before = [t for t in before if t.kind not in _MARKS]
    if not unmarked:
        return [(int_toks, before, denom, 0.0)]
    # The numerator is some tail of the words before the fraction word; the whole part is the
    # rest. Cutting between two words that belong together ("двадцать | пять сотых") is as
    # unnatural as anywhere else.
    return [([], before, denom, 0.0)] + [
        (before[:k], before[k:], denom,
         _COST_UNNATURAL if _chunk((before[k - 1], before[k])) is not None else 0.0)
        for k in range(1, len(before))
    ]


def _pad(frac: str, denom: int | None) -> str:
    # "пять сотых" is .05: the denominator fixes how many places the spoken number fills.
    if denom:
        places = len(str(denom)) - 1
        if len(frac) < places:
            return frac.zfill(places)
    return frac


def _readings(toks: list[_Tok], unknown: list[str], tens_digit: float) -> list[tuple[float, str]]:
    splits = _split_decimal(toks, unknown)
    fitting, first = [], []
    for n, (int_toks, frac_toks, denom, cut) in enumerate(splits):
        ints = _segment_known(int_toks, tens_digit, unknown if n == 0 else [])
        if frac_toks is None:
            return ints
        fracs = _segment_known(frac_toks, tens_digit, unknown if n == 0 else [])
        if not fracs:
            if n == 0:
                first = ints  # "twelve point": the decimal part never came
            continue
        if not ints:
            ints = [(0.0, "0")]
        readings = [(cut + ci + cf, f"{si}.{_pad(sf, denom)}", denom is None or len(sf) < len(str(denom)))
                    for ci, si in ints for cf, sf in fracs]
        # "двадцать пять сотых" has two places: readings that overflow them are not meant
        fitting += [(c, s) for c, s, fits in readings if fits]
        if n == 0:
            first = [(c, s) for c, s, _ in readings]
    return fitting or first


# --------------------------------------------------------------------------- public


def _tens_digit_cost(pack: Pack) -> float:
    return _COST_TENS_DIGIT_HESITANT if pack.rule("tens_take_connector") else _COST_TENS_DIGIT


def _scored(variants: Variants, pack: Pack, unknown: list[str], *, decimals: bool) -> dict[str, float]:
    """Every reading of the token variants with its cost (cheapest per digit string)."""
    variants = _each(variants, _expand_repeats, unknown)
    variants = _each(variants, lambda toks, _: _resolve_articles_and_connectors(toks, pack.weak_decimal, pack.lang),
                     unknown)
    scored: dict[str, float] = {}
    for n, (toks, extra) in enumerate(variants):
        sink = unknown if n == 0 else []
        readings = _readings(toks, sink, _tens_digit_cost(pack)) if decimals \
            else _segment_known(toks, _tens_digit_cost(pack), sink)
        for cost, s in readings:
            if cost + extra < scored.get(s, float("inf")):
                scored[s] = cost + extra
    return scored


def _result(scored: dict[str, float], unknown: list[str]) -> NumberParse:
    if not scored:
        return NumberParse(None, (), False, tuple(unknown))
    ranked = sorted(scored.items(), key=lambda kv: kv[1])  # stable: DP order breaks ties
    top = ranked[0][1]
    close = [(s, c) for s, c in ranked if c <= top + _REASONABLE][:_MAX_CANDIDATES]
    cands = tuple(s for s, _ in close)
    hesitant = any(c <= top + _HESITATE for _, c in close[1:])
    return NumberParse(cands[0], cands, hesitant, tuple(unknown))


def parse_number(text: str, lang: str) -> NumberParse:
    """Parse what a caller said (or the recogniser wrote) into ranked digit strings.

    >>> parse_number("двенадцать тридцать четыре", "ru").best
    '1234'
    >>> parse_number("twenty three", "en").candidates
    ('23', '203')
    >>> parse_number("тридцать шесть и шесть", "ru")[:3]
    ('36.6', ('36.6', '366'), True)
    """
    pack = load(check_language(lang))
    if not isinstance(text, str):
        raise TypeError("text must be a str")
    toks, unknown = _classify(text, pack)
    kept = []
    for t in toks:
        if t.kind == "SEP":
            if t.text != "-":
                unknown.append(t.text)  # a dash has no place in a reading; a numeral's hyphen is formatting
        else:
            kept.append(t)
    variants = _each([(kept, 0.0)], _halves, unknown)
    variants = _each(variants, _fraction_and, unknown)
    return _result(_scored(variants, pack, unknown, decimals=True), unknown)


def parse_account(text: str, lang: str) -> NumberParse:
    """An account number as a caller says it: digits in any grouping (as :func:`parse_number`
    reads them), with ``SEPARATOR`` wherever the caller said a dash or a decimal-point word, or
    the recogniser wrote a numeral with a hyphen.

    >>> parse_account("двенадцать тире триста сорок пять", "ru").best
    '12-345'
    >>> parse_account("one two three dash four five six dash seven", "en").best
    '123-456-7'
    """
    pack = load(check_language(lang))
    if not isinstance(text, str):
        raise TypeError("text must be a str")
    toks, unknown = _classify(text, pack)
    groups: list[list[_Tok]] = [[]]
    marks: list[str] = []
    for t in toks:
        if t.kind in ("SEP", "DEC"):
            groups.append([])
            marks.append(t.text)
        elif t.kind in ("INT", "FRAC", "HALF", "HALF1"):
            unknown.append(t.text)  # an account number has no fractions
        elif t.kind != "FAND":  # "и" is only a filler between the digits of an account
            groups[-1].append(t)
    # A dash with no digits on one side (said first, last, or twice) is no separator.
    for n in range(len(groups) - 1, 0, -1):
        if not groups[n] or not groups[n - 1]:
            unknown.append(marks[n - 1])
            groups[n - 1:n + 1] = [groups[n - 1] + groups[n]]
    readings: list[dict[str, float]] = []
    for n, group in enumerate(groups):
        scored = _scored([(group, 0.0)], pack, unknown, decimals=False)
        if not scored:
            return NumberParse(None, (), False, tuple(unknown))
        readings.append(dict(sorted(scored.items(), key=lambda kv: kv[1])[:_KBEST]))
    whole: dict[str, float] = {}
    for combo in product(*(r.items() for r in readings)):
        whole[SEPARATOR.join(s for s, _ in combo)] = sum(c for _, c in combo)
    return _result(whole, unknown)
