"""The confidence policy: what to do with one answer of the caller. Pure (no Vosk), so the
dialog engine and its tests use it directly.

Inputs: the lowest word confidence of the recognised words (``None`` for keypad input,
``0.0`` when speech gave nothing), whether the n-best alternatives parse to different values,
whether an unknown word was heard, whether the words parse to more than one number, whether
the value failed validation against the records, and the attempt number (1-based).

Rules, first match wins (``last`` = attempt >= max_tries):

1. validation failed (or nothing parsed)  -> RETRY; on the last attempt REVIEW.
   (Applies to keypad input as well: a wrong account number typed is asked again.)
2. keypad input                            -> ACCEPT.
3. min confidence < ``review``             -> RETRY; on the last attempt REVIEW.
   (Includes "nothing usable": no words, confidence 0.)
4. doubt: ``[unk]`` heard, parse ambiguous, or alternatives disagree
                                           -> CONFIRM; on the last attempt REVIEW.
   (A confirmation "yes" from the caller cannot settle what the robot misheard twice.)
5. min confidence < ``accept``             -> CONFIRM (read back, ask yes/no), on any attempt:
   the caller's yes settles a merely low-confidence reading.
6. otherwise                               -> ACCEPT.

REVIEW means: store the reading as *pending review* with its audio; an operator decides.
Nothing the caller said is dropped. Vosk's per-word confidences are optimistic with a small
grammar (few competing words), which is why the doubt signals in rule 4 exist and why the
grammar always contains ``[unk]``.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Callable


class Decision(enum.Enum):
    ACCEPT = "accept"  # store it
    CONFIRM = "confirm"  # read it back and ask the caller to confirm
    RETRY = "retry"  # ask again
    REVIEW = "review"  # store as pending review, with the audio, for an operator


@dataclass(frozen=True)
class Thresholds:
    accept: float = 0.85
    review: float = 0.5
    max_tries: int = 3

    def __post_init__(self):
        if not (0.0 <= self.review <= self.accept <= 1.0):
            raise ValueError(f"need 0 <= review ({self.review}) <= accept ({self.accept}) <= 1")
        if self.max_tries < 1:
            raise ValueError("max_tries must be at least 1")

    @classmethod
    def from_config(cls, cfg: Any) -> "Thresholds":
        """From ``ivr.config.Config`` (duck-typed: speech must not import ivr)."""
        return cls(accept=cfg.confidence_accept, review=cfg.confidence_review, max_tries=cfg.max_tries)


def decide(*, min_word_confidence: float | None, alternatives_disagree: bool, has_unk: bool,
           parse_ambiguous: bool, validation_failed: bool, attempt: int,
           thresholds: Thresholds = Thresholds()) -> Decision:
    """Apply the policy in the module docstring to one answer."""
    if attempt < 1:
        raise ValueError("attempt numbers start at 1")
    last = attempt >= thresholds.max_tries
    if validation_failed:
        return Decision.REVIEW if last else Decision.RETRY
    if min_word_confidence is None:  # keypad
        return Decision.ACCEPT
    if min_word_confidence < thresholds.review:
        return Decision.REVIEW if last else Decision.RETRY
    if has_unk or parse_ambiguous or alternatives_disagree:
        return Decision.REVIEW if last else Decision.CONFIRM
    if min_word_confidence < thresholds.accept:
        return Decision.CONFIRM
    return Decision.ACCEPT


def alternatives_disagree(recognition: Any, parse_fn: Callable[[str], Any], *, top: int = 2,
                          min_share: float = 0.0) -> bool:
    """Whether the recognised text and the top n-best alternatives parse to different values.

    *recognition* is a ``speech.recognizer.Recognition`` (duck-typed: ``text`` and
    ``alternatives`` as (text, share) pairs). Alternatives below *min_share* are ignored, as
    are alternatives that do not parse (``None`` or ValueError): they are not a competing
    reading. The MBR text is always one of the candidates.
    """
    def parse(text: str):
        try:
            return parse_fn(text)
        except ValueError:
            return None

    values = []
    first = parse(recognition.text)
    if first is not None:
        values.append(first)
    for text, share in list(recognition.alternatives)[:top]:
        if share < min_share:
            continue
        value = parse(text)
        if value is not None and value not in values:
            values.append(value)
    return len(values) > 1
