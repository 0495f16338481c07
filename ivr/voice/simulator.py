"""Plays a phone call against the voice webhooks exactly as Twilio does.

Requests are form posts signed with the auth token (``X-Twilio-Signature``); the TwiML answer is
parsed, its ``<Say>`` texts collected, and its ``<Gather>``/``<Redirect>`` followed. Used by
``ivr call`` and by the integration tests (through Flask's test client).
"""
from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urlsplit

from twilio.request_validator import RequestValidator


@dataclass
class Prompt:
    """What the caller hears before answering one question."""

    texts: list[str]
    gather: dict | None  # the <Gather> attributes, None when the call ends
    ended: str | None = None  # "hangup" | "dial:<number>" | None
    record: dict | None = None  # the <Record> attributes, when one follows the <Gather>


@dataclass
class Transport:
    """Sends one signed POST; returns (status, body)."""

    post: Callable[[str, dict, dict], tuple[int, str]]


def flask_transport(client) -> Transport:
    def post(url: str, params: dict, headers: dict) -> tuple[int, str]:
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        response = client.post(path, data=params, headers=headers, base_url=f"{parts.scheme}://{parts.netloc}")
        return response.status_code, response.get_data(as_text=True)

    return Transport(post)


def http_transport() -> Transport:
    import requests

    session = requests.Session()

    def post(url: str, params: dict, headers: dict) -> tuple[int, str]:
        try:
            response = session.post(url, data=params, headers=headers, timeout=30, allow_redirects=False)
        except requests.ConnectionError:
            raise CallError(f"no server answers at {url}: is `ivr serve` running there?") from None
        except requests.Timeout:
            raise CallError(f"{url} did not answer within 30 s") from None
        return response.status_code, response.text

    return Transport(post)


class CallError(RuntimeError):
    pass


@dataclass
class SimulatedCall:
    base_url: str
    auth_token: str
    transport: Transport
    caller: str = "+37360000000"
    call_sid: str = field(default_factory=lambda: "CA" + uuid.uuid4().hex)
    called: str = "+37322000000"  # Twilio's To: the line's number, or the callee of a call we placed
    direction: str = "inbound"  # "outbound-api" for a call we placed through the REST API
    heard: list[str] = field(default_factory=list)
    last: Prompt | None = None
    # The media stream a <Start><Stream> asked for: {"url", "parameters", "status_callback"}.
    stream: dict | None = None

    def _params(self, extra: dict | None = None) -> dict:
        params = {"CallSid": self.call_sid, "AccountSid": "AC" + "0" * 32, "From": self.caller,
                  "To": self.called, "Direction": self.direction, "CallStatus": "in-progress"}
        params.update(extra or {})
        return params

    def post(self, url: str, extra: dict | None = None) -> tuple[int, str]:
        params = self._params(extra)
        signature = RequestValidator(self.auth_token).compute_signature(url, params)
        return self.transport.post(url, params, {"X-Twilio-Signature": signature})

    def _follow(self, url: str, extra: dict | None = None) -> Prompt:
        texts: list[str] = []
        for _hop in range(20):
            status, body = self.post(url, extra)
            if status == 403:
                raise CallError(f"{url} refused the call's signature (HTTP 403): the server's "
                                "IVR_TWILIO_AUTH_TOKEN differs from this one")
            if status != 200:
                raise CallError(f"{url} answered HTTP {status}")
            root = ET.fromstring(body)
            if root.tag != "Response":
                raise CallError(f"not TwiML: {body[:200]}")
            redirect = None
            for verb in root:
                if verb.tag == "Start":
                    self._start_stream(verb)
                elif verb.tag == "Say":
                    texts.append(verb.text or "")
                elif verb.tag == "Play":
                    texts.append(f"[audio {verb.text}]")
                elif verb.tag == "Gather":
                    texts.extend((c.text or "") if c.tag == "Say" else f"[audio {c.text}]" for c in verb)
                    after = list(root)[list(root).index(verb) + 1:]
                    record = after[0] if after and after[0].tag == "Record" else None
                    self.last = Prompt(texts, dict(verb.attrib), record=dict(record.attrib) if record is not None else None)
                    self.heard.extend(texts)
                    return self.last
                elif verb.tag == "Dial":
                    self.last = Prompt(texts, None, ended=f"dial:{(verb.text or '').strip()}")
                    self.heard.extend(texts)
                    return self.last
                elif verb.tag == "Hangup":
                    self.last = Prompt(texts, None, ended="hangup")
                    self.heard.extend(texts)
                    return self.last
                elif verb.tag == "Redirect":
                    redirect = verb.text
                    break
            if redirect is None:
                self.last = Prompt(texts, None, ended="hangup")  # end of TwiML ends the call
                self.heard.extend(texts)
                return self.last
            url, extra = redirect, None
        raise CallError("too many redirects")

    def _start_stream(self, start: ET.Element) -> None:
        for stream in start.iter("Stream"):
            self.stream = {"url": stream.get("url"), "status_callback": stream.get("statusCallback"),
                           "parameters": {p.get("name"): p.get("value") for p in stream.iter("Parameter")}}

    def start(self) -> Prompt:
        return self._follow(self.base_url.rstrip("/") + "/voice/incoming")

    def answer(self, url: str, answered_by: str = "human") -> Prompt:
        """A call we placed is answered: Twilio fetches its ``url`` with ``AnsweredBy`` (answering
        machine detection: ``human``, ``machine_start``, ``fax``, ``unknown``)."""
        return self._follow(url, {"AnsweredBy": answered_by})

    def press(self, keys: str) -> Prompt:
        """Answer the current <Gather> with keys ("" for silence: Twilio posts empty Digits)."""
        if self.last is None or self.last.gather is None:
            raise CallError("the call is not waiting for input")
        gather = self.last.gather
        finish = gather.get("finishOnKey", "#")
        digits = keys
        if finish and digits.endswith(finish):
            digits = digits[: -len(finish)]  # Twilio leaves out the finishing key
        return self._follow(gather["action"], {"Digits": digits} if keys else {"Digits": ""})

    def type_late(self, keys: str) -> Prompt:
        """The caller lets the keypad <Gather> give way to <Record>, then types ``keys``. As Twilio
        does, a key in the Record's ``finishOnKey`` ends the recording and is posted as ``Digits``
        with it (keys before it are lost in the recording); the keys after it go to the TwiML
        that answers."""
        if self.last is None or self.last.record is None:
            raise CallError("the call is not recording an answer")
        record = self.last.record
        finish = record.get("finishOnKey", "1234567890*#")
        at = next((i for i, key in enumerate(keys) if key in finish), None)
        if at is None:
            raise CallError(f"no key of {keys!r} ends the recording (finishOnKey {finish!r})")
        sid = "RE" + uuid.uuid4().hex
        prompt = self._follow(record["action"], {
            "Digits": keys[at], "RecordingSid": sid, "RecordingDuration": "1",
            "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/AC{'0' * 32}/Recordings/{sid}"})
        rest = keys[at + 1:]
        return self.press(rest) if rest else prompt

    def moved_to(self, url: str) -> Prompt:
        """Twilio moves the live call to ``url`` (a REST ``calls(sid).update(url=...)``): the
        TwiML playing stops, and the call goes on with the answer fetched from ``url``."""
        return self._follow(url)

    def hang_up(self, status: str = "completed", duration: int = 42) -> int:
        code, _ = self.post(self.base_url.rstrip("/") + "/voice/status",
                            {"CallStatus": status, "CallDuration": str(duration)})
        return code
