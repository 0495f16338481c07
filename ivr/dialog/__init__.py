"""The call dialog, pure: events and state in, next state and actions out.

Nothing here imports Flask, Twilio, Vosk or the database; records are reached through the
``Records`` protocol the transport passes in, so the engine is tested with a plain fake.
"""
from .actions import Ask, Digits, Hangup, Say, Term, Transfer
from .engine import Event, SpeechInput, Turn, handle, start
from .ports import AccountInfo, MeterInfo, Records, RegionInfo

__all__ = [
    "Ask", "Digits", "Hangup", "Say", "Term", "Transfer", "Event", "SpeechInput", "Turn",
    "handle", "start", "AccountInfo", "MeterInfo", "Records", "RegionInfo",
]
