"""The call dialog, pure: events and state in, next state and actions out.

Nothing here imports Flask, Twilio, Vosk or the database; records are reached through the
``Records`` protocol the transport passes in (reads only), so the engine is tested with a plain
fake; what a turn writes comes back as effects, persisted by the turn service (``ivr/calls.py``).
"""
from .actions import RECORDS, Ask, Day, Digits, Hangup, Hours, Say, Term, Transfer
from .effects import NoteRefusal, ReportFailedIdentification, SaveReading
from .engine import Event, SpeechInput, Turn, handle, reask, start, start_reminder
from .ports import AccountInfo, MeterInfo, Records, RegionInfo
from .state import CallState, Decision, Outcome, Step

__all__ = [
    "RECORDS", "Ask", "Day", "Digits", "Hangup", "Hours", "Say", "Term", "Transfer", "Event", "SpeechInput", "Turn",
    "handle", "reask", "start", "start_reminder", "AccountInfo", "MeterInfo", "Records", "RegionInfo", "CallState",
    "Decision", "Outcome",
    "Step", "NoteRefusal", "ReportFailedIdentification", "SaveReading",
]
