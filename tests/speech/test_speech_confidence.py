"""The confidence policy, branch by branch (pure: no Vosk needed)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given, strategies as st

from speech.confidence import Decision, Thresholds, alternatives_disagree, decide

T = Thresholds()  # accept 0.85, review 0.5, 3 tries


def d(conf=0.95, *, disagree=False, unk=False, ambiguous=False, invalid=False, attempt=1, t=T):
    return decide(min_word_confidence=conf, alternatives_disagree=disagree, has_unk=unk,
                  parse_ambiguous=ambiguous, validation_failed=invalid, attempt=attempt, thresholds=t)


def test_module_is_pure():
    import speech.confidence as mod
    src = open(mod.__file__, encoding="utf-8").read()
    assert "import vosk" not in src and "from vosk" not in src


def test_confident_clean_speech_accepted():
    assert d(0.95) is Decision.ACCEPT
    assert d(0.85) is Decision.ACCEPT  # the threshold itself is enough


def test_keypad_always_accepted_unless_invalid():
    assert d(None, unk=True, ambiguous=True, disagree=True) is Decision.ACCEPT
    assert d(None, attempt=3) is Decision.ACCEPT
    assert d(None, invalid=True) is Decision.RETRY
    assert d(None, invalid=True, attempt=3) is Decision.REVIEW


def test_validation_failed_retries_then_review():
    assert d(0.99, invalid=True, attempt=1) is Decision.RETRY
    assert d(0.99, invalid=True, attempt=2) is Decision.RETRY
    assert d(0.99, invalid=True, attempt=3) is Decision.REVIEW


def test_nothing_usable_retries_then_review():
    assert d(0.0, attempt=1) is Decision.RETRY
    assert d(0.0, attempt=3) is Decision.REVIEW


def test_low_confidence_retries_then_review():
    assert d(0.49, attempt=1) is Decision.RETRY
    assert d(0.49, attempt=2) is Decision.RETRY
    assert d(0.49, attempt=3) is Decision.REVIEW
    assert d(0.49, attempt=5) is Decision.REVIEW  # past the limit too


def test_between_thresholds_confirm_on_any_attempt():
    assert d(0.5) is Decision.CONFIRM
    assert d(0.84) is Decision.CONFIRM
    assert d(0.7, attempt=3) is Decision.CONFIRM


@pytest.mark.parametrize("flag", ["disagree", "unk", "ambiguous"])
def test_doubt_confirms_then_review_on_last_attempt(flag):
    assert d(0.99, **{flag: True}) is Decision.CONFIRM
    assert d(0.6, **{flag: True}, attempt=2) is Decision.CONFIRM
    assert d(0.99, **{flag: True}, attempt=3) is Decision.REVIEW
    assert d(0.3, **{flag: True}) is Decision.RETRY  # too low beats doubt


def test_custom_thresholds_and_single_try():
    one = Thresholds(accept=0.9, review=0.2, max_tries=1)
    assert d(0.1, t=one) is Decision.REVIEW
    assert d(0.89, t=one) is Decision.CONFIRM
    assert d(0.9, t=one) is Decision.ACCEPT


def test_thresholds_validated():
    with pytest.raises(ValueError):
        Thresholds(accept=0.4, review=0.5)
    with pytest.raises(ValueError):
        Thresholds(max_tries=0)
    with pytest.raises(ValueError):
        d(0.9, attempt=0)


def test_thresholds_from_config():
    cfg = SimpleNamespace(confidence_accept=0.9, confidence_review=0.4, max_tries=2)
    assert Thresholds.from_config(cfg) == Thresholds(0.9, 0.4, 2)


@given(conf=st.one_of(st.none(), st.floats(0, 1)), disagree=st.booleans(), unk=st.booleans(),
       ambiguous=st.booleans(), invalid=st.booleans(), attempt=st.integers(1, 6))
def test_total_and_never_accepts_doubt(conf, disagree, unk, ambiguous, invalid, attempt):
    out = d(conf, disagree=disagree, unk=unk, ambiguous=ambiguous, invalid=invalid, attempt=attempt)
    assert isinstance(out, Decision)
    if invalid:
        assert out in (Decision.RETRY, Decision.REVIEW)
    if conf is not None and (disagree or unk or ambiguous or conf < T.accept):
        assert out is not Decision.ACCEPT
    if attempt >= T.max_tries:
        assert out is not Decision.RETRY  # nothing is lost on the last attempt


def _digits(text):
    words = {"one": "1", "two": "2", "three": "3"}
    if not text or any(w not in words for w in text.split()):
        return None
    return "".join(words[w] for w in text.split())


def R(text, *alts):
    return SimpleNamespace(text=text, alternatives=tuple(alts))


def test_alternatives_disagree():
    assert not alternatives_disagree(R("one two", ("one two", 0.7), ("one two", 0.3)), _digits)
    assert alternatives_disagree(R("one two", ("one two", 0.6), ("one three", 0.4)), _digits)
    # MBR text itself differs from the n-best top
    assert alternatives_disagree(R("one two", ("one", 0.6)), _digits)
    # only the top two alternatives count
    assert not alternatives_disagree(R("one", ("one", 0.5), ("one", 0.3), ("two", 0.2)), _digits)
    # weak alternatives can be ignored
    assert not alternatives_disagree(R("one", ("one", 0.9), ("two", 0.1)), _digits, min_share=0.2)
    # unparseable alternatives are not competing readings
    assert not alternatives_disagree(R("one", ("one", 0.6), ("[unk] one", 0.4)), _digits)
    assert not alternatives_disagree(R("", ), _digits)


def test_alternatives_disagree_parse_raising():
    def strict(text):
        if "x" in text:
            raise ValueError("no")
        return text
    assert not alternatives_disagree(R("a", ("x", 0.5)), strict)
