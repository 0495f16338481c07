"""The state of one call between two turns, typed, and its JSON form in the ``Call.state`` column.

The JSON keys are the ones the dialog has always stored (``step``, ``tries``, ``region_id``,
``account``, ``meters``, ...), so a call that was in progress when this version was deployed
loads as it was. The value under confirmation carries a ``decision`` (read from ``status`` in
older rows); the call's ``outcome`` is one of ``Outcome`` (older rows' outcome strings, such as
``account_account_not_found``, load as the outcome and ``end_reason`` they stand for).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Step(str, Enum):
    """The question the caller was last asked (``ENDED``/``TRANSFERRED``: the call is over)."""

    LANGUAGE = "language"
    REMINDER = "reminder"  # a reminder call we placed: give the readings now?
    REGION = "region"
    REGION_ASSUMED = "region_assumed"
    OFFER_ACCOUNT = "offer_account"
    ACCOUNT = "account"
    ORG_NAME = "org_name"  # a company's caller says the organisation's name, recorded (nothing recognised)
    METER = "meter"
    METER_SERIAL = "meter_serial"  # a company's meter, by the last digits of its serial (or all in turn)
    REGISTER = "register"
    VALUE = "value"
    CONFIRM = "confirm"
    CONFIRM_ACCOUNT = "confirm_account"  # a spoken account number read back by its last digits
    NEXT = "next"
    ENDED = "ended"
    TRANSFERRED = "transferred"

    def __str__(self) -> str:
        return self.value


class Decision(str, Enum):
    """What becomes of the value being confirmed once the caller confirms it."""

    ACCEPTED = "accepted"
    PENDING_REVIEW = "pending_review"

    def __str__(self) -> str:
        return self.value


class Outcome(str, Enum):
    """How a call ended (``Call.outcome``; NULL while in progress)."""

    COMPLETED = "completed"  # the caller finished with at least one reading saved
    NO_READING = "no_reading"  # the caller finished without saving a reading
    TRANSFERRED = "transferred"  # put through to an operator
    GAVE_UP = "gave_up"  # out of tries (or asked for an operator) with nobody on duty: ended politely
    HUNG_UP = "hung_up"  # the caller hung up before the call ended
    SERVICE_NOT_READY = "service_not_ready"  # no region to offer and no operator on duty

    def __str__(self) -> str:
        return self.value


@dataclass
class AccountRef:
    id: int
    region_id: int
    tail: str  # last digits only

    def to_json(self) -> dict:
        return {"id": self.id, "region_id": self.region_id, "tail": self.tail}

    @classmethod
    def from_json(cls, data: dict | None) -> AccountRef | None:
        return cls(int(data["id"]), int(data["region_id"]), str(data["tail"])) if data else None


@dataclass
class MeterRef:
    id: int
    utility: str
    tail: str
    registers: list[str]
    serial: str = ""  # the serial's digits, for a meter picked by their end

    def to_json(self) -> dict:
        return {"id": self.id, "utility": self.utility, "tail": self.tail, "registers": list(self.registers),
                "serial": self.serial}

    @classmethod
    def from_json(cls, data: dict) -> MeterRef:
        return cls(int(data["id"]), str(data["utility"]), str(data["tail"]), [str(r) for r in data["registers"]],
                   str(data.get("serial") or ""))


def _count(saved) -> int:
    """The readings saved, from this version's count or an older row's list of them."""
    return len(saved) if isinstance(saved, list) else int(saved or 0)


# Steps a give-up reason of an older row may start with, longest first ("offer_account_no_input").
_STEP_PREFIXES = sorted((s.value for s in Step), key=len, reverse=True)


def legacy_outcome(outcome: str, step: str | None) -> tuple[Outcome, str | None]:
    """The (outcome, end_reason) an outcome string of an older row stands for; ``step`` is the
    step its state had reached (``transferred`` tells a transfer from a polite end)."""
    try:
        return Outcome(outcome), None
    except ValueError:
        pass
    if outcome.startswith("hung_up_at_"):
        return Outcome.HUNG_UP, f"{outcome[len('hung_up_at_'):]}:hung_up"
    transferred = step == Step.TRANSFERRED.value
    if outcome == "no_regions" and not transferred:
        return Outcome.SERVICE_NOT_READY, None
    prefix = next((p for p in _STEP_PREFIXES if outcome.startswith(p + "_")), None)
    reason = f"{prefix}:{outcome[len(prefix) + 1:]}" if prefix else outcome
    return (Outcome.TRANSFERRED if transferred else Outcome.GAVE_UP), reason


@dataclass
class CallState:
    call_sid: str
    caller: str | None  # E.164, None when withheld
    lang: str
    max_tries: int = 3
    step: Step = Step.LANGUAGE
    tries: int = 0
    seq: int = 0  # turns taken; names the idempotency key of a write made in a turn
    region_id: int | None = None
    offered: AccountRef | None = None  # the account the caller ID suggests, while offered
    # The first account the caller's number is on file for, read once, at the opening (``looked_up``)
    caller_account: AccountRef | None = None
    looked_up: bool = False
    account: AccountRef | None = None
    meters: list[MeterRef] = field(default_factory=list)
    meter: int | None = None  # index into meters
    register: str | None = None
    value: str | None = None  # the value read back, awaiting confirmation
    decision: Decision = Decision.ACCEPTED
    reason: str | None = None  # why the value goes to review
    utterance_id: int | None = None
    saved: int = 0  # readings saved in this call (older rows stored a list of them: its length)
    done: list[tuple[int, str]] = field(default_factory=list)  # (meter id, register) saved this account
    attempts: list[str] = field(default_factory=list)  # account numbers not found
    # Spoken answers to the account question since the account was last identified (utterance ids),
    # and the account a spoken number named, while it is read back for the caller to confirm.
    account_utterances: list[int] = field(default_factory=list)
    heard_account: AccountRef | None = None
    keypad_only: bool = False
    choice_to_confirm: str | None = None  # a menu key heard by speech but not surely, to be pressed
    windows_told: list[str] = field(default_factory=list)  # closed windows said ("<opens>/<closes>")
    last_offered: bool = False  # a caller on file was told the key that says a meter's last reading
    last_heard: list[tuple[int, str]] = field(default_factory=list)  # (meter id, register) whose last reading was said
    by_serial: bool = False  # the account's meters are picked by their serials' last digits
    walk: list[int] | None = None  # going through the meters in turn: the indexes still to come
    walk_from: int = 0  # readings saved before the walk began
    walk_skipped: int = 0
    extra_turns: int = 0  # turns allowed beyond MAX_TURNS: a walk through many meters takes many
    notice_said: bool = False  # the caller heard that spoken answers are recorded
    outcome: Outcome | None = None
    end_reason: str | None = None  # "<step>:<reason>" for a transferred, gave_up or hung_up call

    @property
    def over(self) -> bool:
        return self.step in (Step.ENDED, Step.TRANSFERRED)

    def to_json(self) -> dict:
        return {
            "call_sid": self.call_sid, "caller": self.caller, "lang": self.lang, "max_tries": self.max_tries,
            "step": self.step.value, "tries": self.tries, "seq": self.seq, "region_id": self.region_id,
            "offered": self.offered.to_json() if self.offered else None,
            "caller_account": self.caller_account.to_json() if self.caller_account else None,
            "looked_up": self.looked_up,
            "account": self.account.to_json() if self.account else None,
            "meters": [m.to_json() for m in self.meters], "meter": self.meter, "register": self.register,
            "value": self.value, "decision": self.decision.value, "reason": self.reason,
            "utterance_id": self.utterance_id, "saved": self.saved,
            "done": [[m, r] for m, r in self.done], "attempts": list(self.attempts),
            "account_utterances": list(self.account_utterances),
            "heard_account": self.heard_account.to_json() if self.heard_account else None,
            "keypad_only": self.keypad_only, "choice_to_confirm": self.choice_to_confirm,
            "windows_told": list(self.windows_told), "last_offered": self.last_offered,
            "last_heard": [[m, r] for m, r in self.last_heard], "by_serial": self.by_serial,
            "walk": list(self.walk) if self.walk is not None else None, "walk_from": self.walk_from,
            "walk_skipped": self.walk_skipped, "extra_turns": self.extra_turns, "notice_said": self.notice_said,
            "outcome": self.outcome.value if self.outcome else None,
            "end_reason": self.end_reason,
        }

    @classmethod
    def from_json(cls, data: dict) -> CallState:
        """Load the JSON of this version or of an older one (a plain dict with ``status`` and an
        outcome string); raises ``ValueError`` for something that is no call state."""
        try:
            step = Step(data.get("step", Step.LANGUAGE.value))
            outcome, end_reason = None, data.get("end_reason")
            if data.get("outcome"):
                outcome, legacy_reason = legacy_outcome(str(data["outcome"]), step.value)
                end_reason = end_reason or legacy_reason
            return cls(
                call_sid=str(data["call_sid"]), caller=data.get("caller"), lang=str(data["lang"]),
                max_tries=int(data.get("max_tries", 3)), step=step, tries=int(data.get("tries", 0)),
                seq=int(data.get("seq", 0)), region_id=data.get("region_id"),
                offered=AccountRef.from_json(data.get("offered")), account=AccountRef.from_json(data.get("account")),
                caller_account=AccountRef.from_json(data.get("caller_account")),
                looked_up=bool(data.get("looked_up", False)),
                meters=[MeterRef.from_json(m) for m in data.get("meters") or []], meter=data.get("meter"),
                register=data.get("register"), value=data.get("value"),
                decision=Decision(data.get("decision") or data.get("status") or Decision.ACCEPTED.value),
                reason=data.get("reason"), utterance_id=data.get("utterance_id"),
                saved=_count(data.get("saved")),
                done=[(int(m), str(r)) for m, r in data.get("done") or []],
                attempts=[str(a) for a in data.get("attempts") or []],
                account_utterances=[int(u) for u in data.get("account_utterances") or []],
                heard_account=AccountRef.from_json(data.get("heard_account")),
                keypad_only=bool(data.get("keypad_only", False)), choice_to_confirm=data.get("choice_to_confirm"),
                windows_told=[str(w) for w in data.get("windows_told") or []],
                last_offered=bool(data.get("last_offered", False)),
                last_heard=[(int(m), str(r)) for m, r in data.get("last_heard") or []],
                by_serial=bool(data.get("by_serial", False)),
                walk=[int(i) for i in data["walk"]] if data.get("walk") is not None else None,
                walk_from=int(data.get("walk_from", 0)), walk_skipped=int(data.get("walk_skipped", 0)),
                extra_turns=int(data.get("extra_turns", 0)), notice_said=bool(data.get("notice_said", False)),
                outcome=outcome, end_reason=end_reason,
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a call state: {exc}") from exc
