"""A call's own figures for the manager's dashboard, kept on its row as its turns log their steps.

The dashboard counts, over the calls of a period, which questions each call reached and passed and
how its questions were answered. Counting that over the ``call_steps`` rows costs a read of every
step of every call in the period (700 000 rows in a month of 100 000 calls); so the turn that logs
a step also adds it to a few integers on the call's row (the turn writes that row anyway), and the
dashboard sums those over the calls, from an index that holds them (``ix_calls_figures``).

Per call:

* ``questions_reached``: a bit per question (``QUESTIONS``) the line asked at least once: a step
  at the question, or one that led to it;
* ``questions_passed``: a bit per question an answer moved on from, to another question or to
  "more" (the next reading);
* ``questions_left``: a bit per question an answer left for something that is not a question
  (saved and goodbye, transfer): passed if the call completed, which only its outcome says;
* ``answers_speech`` / ``answers_keypad``: steps answered by speech / on the keypad;
* ``questions_asked`` / ``questions_reasked``: steps at a question / whose next question was the
  same one (asked again);
* ``steps_logged``: the steps the call logged (a call with none answered nothing).

The bits follow the order of ``QUESTIONS``: a new question is added at the end, never in between,
or the bits of calls already counted would change meaning.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# The questions counted: bit i of a mask is QUESTIONS[i]. A new question is appended, never put in
# between (the bits of calls already counted keep their meaning): a company's meter by its serial and
# the organisation's name came later.
QUESTIONS = ("reminder", "language", "region", "offer_account", "account", "meter", "register", "value", "confirm",
             "meter_serial", "org_name")
BIT = {question: 1 << i for i, question in enumerate(QUESTIONS)}
# The same questions in the order a call asks them (a reminder call we placed starts at "reminder",
# then goes to the meter): the dashboard's funnel follows this order.
FUNNEL = ("reminder", "language", "region", "offer_account", "account", "org_name", "meter", "meter_serial",
          "register", "value", "confirm")
# How a caller answered a question, as the phone line logs it in the step's event (``ivr.calls``).
KEYPAD, SPEECH = "digits", "speech"
MASKS = ("questions_reached", "questions_passed", "questions_left")
COUNTS = ("answers_speech", "answers_keypad", "questions_asked", "questions_reasked", "steps_logged")
COLUMNS = MASKS + COUNTS


def of_step(step: str, next_: str | None, kind: str | None) -> dict[str, int]:
    """What one logged step adds to its call's figures (masks are OR-ed, counts added)."""
    at = BIT.get(step, 0)
    reached = at | BIT.get(next_ or "", 0)
    passed = left = 0
    if at and next_ is not None and next_ != step:  # a step without a next one went nowhere
        if next_ in BIT or next_ == "more":
            passed = at
        else:
            left = at
    return {"questions_reached": reached, "questions_passed": passed, "questions_left": left,
            "answers_speech": int(kind == SPEECH), "answers_keypad": int(kind == KEYPAD),
            "questions_asked": int(bool(at)), "questions_reasked": int(bool(at) and next_ == step),
            "steps_logged": 1}


def add_step(call: Any, step: str, next_: str | None, kind: str | None) -> None:
    """Count one logged step on ``call`` (a ``Call``, or anything with these attributes)."""
    for name, value in of_step(step, next_, kind).items():
        current = getattr(call, name, None) or 0
        setattr(call, name, current | value if name in MASKS else current + value)


def of_steps(steps: Iterable[tuple[str, str | None, str | None]]) -> dict[str, int]:
    """A call's figures for all its steps, each (step, next, kind): for rows written in bulk."""
    total = dict.fromkeys(COLUMNS, 0)
    for step, next_, kind in steps:
        for name, value in of_step(step, next_, kind).items():
            total[name] = total[name] | value if name in MASKS else total[name] + value
    return total
