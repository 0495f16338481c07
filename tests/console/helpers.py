"""Console test helpers: operators, a pending reading with a real WAV recording, log-in."""
from __future__ import annotations

import datetime as dt
import math
import re
import struct
import wave
from decimal import Decimal
from pathlib import Path

from werkzeug.security import generate_password_hash

from readings_store import call_figures, service
from readings_store.models import Call, CallStep, Operator, ReviewTask, Utterance, utcnow
from tests import factories as f

PASSWORD = "correct-horse-battery"
# A cheap hash method keeps the suite fast; the CLI and production use werkzeug's default.
FAST_HASH = "pbkdf2:sha256:1000"


def make_operator(db, username="olga", role="operator", password=PASSWORD, active=True) -> Operator:
    op = Operator(username=username, password_hash=generate_password_hash(password, method=FAST_HASH), role=role,
                  active=active, failed_logins=0)
    db.add(op)
    db.flush()
    return op


def write_wav(path: Path, seconds: float = 1.0, rate: int = 8000) -> Path:
    """A small real WAV: a 440 Hz tone, 16-bit mono."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
                      for i in range(int(seconds * rate)))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return path


def seed_pending(db, config, *, value="1300", reason="low_confidence", previous=1000, previous_days_ago=30,
                 holder="Ion Popescu", transcript="one three zero zero", words=None, audio=True,
                 region=None, number="100001", serial="EL0001", utility="electricity", created_at=None) -> dict:
    """Region, account, meter with a previous reading, a call and an utterance with its WAV, and a
    reading stored by the service as pending review (which opens the ReviewTask)."""
    region = region or f.region(db)
    account = f.account(db, region, number=number, holder=holder, phones=("+37369123456",))
    meter = f.meter(db, account, serial=serial, utility=utility, previous=previous,
                    previous_days_ago=previous_days_ago)
    call = Call(call_sid=f"CA{account.id:032x}", from_number="+37369123456", language="en", region_id=region.id,
                account_id=account.id, outcome="completed")
    db.add(call)
    db.flush()
    log_steps(db, call, [{"at": utcnow().isoformat(), "step": "value",
                          "event": {"kind": "speech", "keys": 0, "decision": "confirm"}, "next": "confirm"}])
    audio_rel = f"{call.call_sid}/value.wav"
    if audio:
        write_wav(Path(config.recordings_dir) / audio_rel)
    words = words if words is not None else [
        {"text": "one", "confidence": 0.97, "start": 0.0, "end": 0.2},
        {"text": "three", "confidence": 0.41, "start": 0.2, "end": 0.5},
        {"text": "zero", "confidence": 0.93, "start": 0.5, "end": 0.7},
        {"text": "zero", "confidence": 0.9, "start": 0.7, "end": 0.9},
    ]
    utterance = Utterance(call_id=call.id, step="value", engine="vosk", audio_path=audio_rel if audio else None,
                          transcript=transcript, words=words,
                          alternatives=[{"text": "one two zero zero", "confidence": 0.3}], parsed_value=value,
                          confidence=0.6)
    db.add(utterance)
    db.flush()
    reading = service.store_reading(db, meter, "total", Decimal(value), channel="phone_speech",
                                    status="pending_review", reason=reason, call_id=call.id,
                                    utterance_id=utterance.id, now=created_at)
    db.flush()
    task = db.query(ReviewTask).filter_by(reading_id=reading.id).one()
    db.commit()
    return {"region": region, "account": account, "meter": meter, "call": call, "utterance": utterance,
            "reading": reading, "task": task}


def login(client, username="olga", password=PASSWORD, follow=False):
    page = client.get("/console/login")
    token = csrf_from(page.get_data(as_text=True))
    return client.post("/console/login", data={"username": username, "password": password, "csrf_token": token},
                       follow_redirects=follow)


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or \
        re.search(r'name="csrf_token" value="([^"]+)"', html)
    return match.group(1) if match else ""


def days_ago(n: float) -> dt.datetime:
    return utcnow() - dt.timedelta(days=n)


def add_tries(db, seeded: dict) -> list:
    """Two earlier values in the seeded item's call for the same meter and register, both refused:
    one typed on the keypad (below the previous reading), one spoken and not confirmed."""
    from readings_store.models import ValueRefusal

    call, meter = seeded["call"], seeded["meter"]
    start = seeded["reading"].received_at - dt.timedelta(minutes=2)
    rows = []
    for i, (value, engine, code) in enumerate([("750", "keypad", "below_previous"),
                                               ("13000", "vosk", "not_confirmed")]):
        at = start + dt.timedelta(seconds=30 * i)
        db.add(Utterance(call_id=call.id, step="value", engine=engine, transcript=None if engine == "keypad" else
                         "one three zero zero zero", parsed_value=value, created_at=at))
        refusal = ValueRefusal(account_id=meter.account_id, meter_id=meter.id, register="total",
                               period=seeded["reading"].period, value=value, code=code, call_id=call.id,
                               caller=call.from_number, created_at=at + dt.timedelta(seconds=1))
        db.add(refusal)
        rows.append(refusal)
    db.commit()
    return rows


def step_rows(call_id: int, entries: list[dict], language=None, region_id=None) -> list[dict]:
    """``call_steps`` rows for a call's logged steps, given as {at, step, event, next} entries
    (seq 0 first, as the phone line numbers them)."""
    rows = []
    for seq, e in enumerate(entries):
        event = e.get("event") or {}
        at = e["at"] if isinstance(e["at"], dt.datetime) else dt.datetime.fromisoformat(e["at"])
        rows.append({"call_id": call_id, "seq": seq, "at": at, "step": e["step"], "next": e.get("next"),
                     "kind": event.get("kind"), "keys": event.get("keys"), "decision": event.get("decision"),
                     "detail": event.get("from", event.get("answered_by")), "language": language,
                     "region_id": region_id})
    return rows


def log_steps(db, call: Call, entries: list[dict]) -> None:
    """Replace the steps ``call`` (flushed) logged with ``entries`` ({at, step, event, next})."""
    db.query(CallStep).filter(CallStep.call_id == call.id).delete()
    rows = step_rows(call.id, entries, call.language, call.region_id)
    db.add_all(CallStep(**row) for row in rows)
    # The call's dashboard figures, as its turns would have counted these steps.
    for name, value in call_figures.of_steps((r["step"], r["next"], r["kind"]) for r in rows).items():
        setattr(call, name, value)
    db.flush()
    db.expire(call, ["logged_steps"])


def steps(*pairs, at=None) -> list[dict]:
    """Logged steps as the phone line records them: (step, next) pairs, keys as the answer."""
    at = at or utcnow()
    return [{"at": (at + dt.timedelta(seconds=10 * i)).isoformat(), "step": step,
             "event": {"kind": "digits", "keys": 1, "decision": None}, "next": nxt}
            for i, (step, nxt) in enumerate(pairs)]


def seed_calls(db, region, now=None) -> list[Call]:
    """A day of calls in one region with the outcomes the phone line records."""
    now = now or utcnow()
    plans = [
        ("completed", "ro", [("language", "account"), ("account", "value"), ("value", "confirm"),
                             ("confirm", "hangup")]),
        ("completed", "ru", [("language", "account"), ("account", "account"), ("account", "value"),
                             ("value", "confirm"), ("confirm", "hangup")]),
        ("transferred", "ro", [("language", "account"), ("account", "account"), ("account", "account"),
                               ("account", "transfer")]),
        ("gave_up", "ru", [("language", "account"), ("account", "value"), ("value", "value"),
                           ("value", "hangup")]),
        ("hung_up", "ro", [("language", "account")]),
        (None, "ro", [("language", "account")]),
    ]
    calls = []
    for i, (outcome, lang, pairs) in enumerate(plans):
        started = now - dt.timedelta(hours=i % 3, minutes=5)
        call = Call(call_sid=f"CA{'f' * 30}{i:02d}", language=lang, region_id=region.id, outcome=outcome,
                    started_at=started)
        entries = steps(*pairs, at=started)
        if i < 2:  # the first two calls spoke their value (the utterances below); the rest used keys
            spoken = next(e for e in entries if e["step"] == "value")
            spoken["event"] = {"kind": "speech", "keys": 0, "decision": "accept"}
        db.add(call)
        db.flush()
        log_steps(db, call, entries)
        calls.append(call)
    db.flush()
    for call in calls[:2]:
        db.add(Utterance(call_id=call.id, step="value", engine="vosk", parsed_value="1", created_at=now))
    db.add(Utterance(call_id=calls[3].id, step="value", engine="keypad", parsed_value="2", created_at=now))
    db.commit()
    return calls
