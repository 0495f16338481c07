"""Spoken numbers → digit strings.

Callers read meters and account numbers in many styles, often mixed in one breath:
digit by digit ("ноль ноль семь"), in groups ("nineteen eighty four"), as one whole number
("сто двадцать три тысячи четыреста"), or with a decimal part. The recogniser may also hand us
numerals ("42 317", "12,5"). We therefore do not parse "a number" but segment the words into
*chunks*, each a well-formed number (or a single digit or numeral), and concatenate the chunks'
digits. Several segmentations are usually possible; each has a cost, so the natural reading
ranks first and close runners-up make the result ``ambiguous``.

Cost model (the whole point of this module, tuned on the examples in the tests):
  * a boundary between two chunks that could not form one number is free
    ("nineteen | eighty four", "four | two");
  * splitting a bare tens word from a following bare digit costs ``_COST_TENS_DIGIT``:
    "twenty three" is 23 but a caller dictating 2-digit groups may have meant "20 3" → 203,
    so that reading stays a candidate;
  * any other split of something that would form one number costs ``_COST_UNNATURAL``
    ("сто | двадцать" = 10020 is not a reasonable reading of "сто двадцать");
  * splitting across an explicit connector ("twenty and three", "douăzeci și trei") costs more.
Candidates within ``_REASONABLE`` of the best are reported; more than one means ambiguous.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache

from ._lexicon import UNK, Pack, Word, check_language, key, load, tokenize

_COST_TENS_DIGIT = 1.0
_COST_UNNATURAL = 3.0
_COST_GLUED = 5.0
_TIE_EARLY = 0.001  # far below any real cost difference; orders otherwise equal readings
_REASONABLE = 1.5
_MAX_CANDIDATES = 5
_KBEST = 8  # partial segmentations kept per DP state; only the top few can end up reported
_MAX_CHUNK = 16  # longest well-formed number: "nine hundred ninety nine million nine hundred …"


@dataclass(frozen=True)
class NumberParse:
    """Result of :func:`parse_number`.

    ``best`` is a digit string (leading zeros kept, at most one ".") or None if nothing numeric
    was heard; ``candidates`` are the reasonable readings, best first; ``unknown`` lists the
    words that were not understood (including the recogniser's "[unk]").
    """

    best: str | None
    candidates: tuple[str, ...]
    ambiguous: bool
    unknown: tuple[str, ...]


@dataclass(frozen=True)
class _Tok:
    kind: str  # D digit, T teen, X tens, H hundreds word, MH/MK/MM multipliers, N numeral, ...
    value: int = 0
    text: str = ""
    glued: bool = False  # an explicit connector joined it to the previous word


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
    for raw in tokenize(text, pack.lang):
        if raw == UNK:
            unknown.append(raw)
        elif raw[0].isdigit():
            toks.extend(_numeral_tokens(raw, pack.lang))
        else:
            w: Word | None = pack.words.get(key(raw, pack.lang))
            if w is None:
                unknown.append(raw)
            elif w.kind != "FILL":
                toks.append(_Tok(w.kind, w.value, raw))
    return toks, unknown


def _fraction_and(toks: list[_Tok]) -> list[_Tok]:
    """Russian "сто двадцать три и пять десятых": an "и" before a fraction's numerator marks
    where the whole part ends (like "целых"). Anywhere else it is only a filler."""
    frac_at = next((k for k, t in enumerate(toks) if t.kind == "FRAC"), None)
    mark = None
    if frac_at is not None and not any(t.kind in ("DEC", "INT") for t in toks[:frac_at]):
        mark = next((k for k in range(frac_at - 1, -1, -1) if toks[k].kind == "FAND"), None)
    return [replace(t, kind="DEC") if k == mark else t for k, t in enumerate(toks) if t.kind != "FAND" or k == mark]


def _expand_repeats(toks: list[_Tok], unknown: list[str]) -> list[_Tok]:
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
    return out


_MULT = ("MH", "MK", "MM")
_NUMERIC = ("D", "T", "X", "H", "N")


def _resolve_articles_and_connectors(toks: list[_Tok], weak: frozenset[str], lang: str):
    """Turn articles into 1 and drop connectors, marking what they joined.

    Returns a list of (tokens, extra_cost) variants: Romanian "și" is usually the "and" inside
    "douăzeci și trei", but "doisprezece și cinci" reads as 12.5, so it may fork the parse.
    """
    variants: list[tuple[list[_Tok], float]] = [([], 0.0)]
    has_strong_decimal = any(t.kind in ("DEC", "INT") for t in toks)
    for i, t in enumerate(toks):
        prev = toks[i - 1] if i else None
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        if t.kind == "ART":
            # "a hundred", "o sută", "o mie": the article is the multiplier's one; elsewhere noise.
            if nxt is not None and nxt.kind in _MULT:
                for v, _ in variants:
                    v.extend([_Tok("D", 1, t.text), _Tok("GLUE")])  # never split from it
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
                dec_cost, join_cost = (1.0, 0.0) if prev.kind == "D" else (0.0, 1.0)
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
            # "hundred" alone is 100; "nineteen hundred" (1900) is common in English
            mult = 1 if p == 0 else _below_hundred(ts[:p])
            if mult is None:
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
    # A bare "тысяча"/"million" means one of it.
    mult = 1 if p == 0 else _below_thousand(ts[:p])
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


def _segment(toks: list[_Tok]) -> list[tuple[float, str]]:
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
            return _COST_TENS_DIGIT + _TIE_EARLY * (n - i)
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
    unknown.extend(t.text for t in before if t.kind in ("DEC", "INT", "FRAC"))
    before = [t for t in before if t.kind not in ("DEC", "INT", "FRAC")]
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


def _readings(toks: list[_Tok], unknown: list[str]) -> list[tuple[float, str]]:
    splits = _split_decimal(toks, unknown)
    fitting, first = [], []
    for n, (int_toks, frac_toks, denom, cut) in enumerate(splits):
        ints = _segment(int_toks)
        if frac_toks is None:
            return ints
        fracs = _segment(frac_toks)
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


def parse_number(text: str, lang: str) -> NumberParse:
    """Parse what a caller said (or the recogniser wrote) into ranked digit strings.

    >>> parse_number("двенадцать тридцать четыре", "ru").best
    '1234'
    >>> parse_number("twenty three", "en").candidates
    ('23', '203')
    """
    pack = load(check_language(lang))
    if not isinstance(text, str):
        raise TypeError("text must be a str")
    toks, unknown = _classify(text, pack)
    toks = _expand_repeats(_fraction_and(toks), unknown)
    scored: dict[str, float] = {}
    variants = _resolve_articles_and_connectors(toks, pack.weak_decimal, lang)
    for n, (variant, extra) in enumerate(variants):
        # variants differ only in one connector, so report leftovers once
        for cost, s in _readings(variant, unknown if n == 0 else []):
            if cost + extra < scored.get(s, float("inf")):
                scored[s] = cost + extra
    if not scored:
        return NumberParse(None, (), False, tuple(unknown))
    ranked = sorted(scored.items(), key=lambda kv: kv[1])  # stable: DP order breaks ties
    top = ranked[0][1]
    cands = tuple(s for s, c in ranked if c <= top + _REASONABLE)[:_MAX_CANDIDATES]
    return NumberParse(cands[0], cands, len(cands) > 1, tuple(unknown))
