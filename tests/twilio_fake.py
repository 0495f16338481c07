"""``FakeTwilioRest``: a fake of Twilio's REST API on a local port, for tests that use the real
``twilio.rest.Client`` (``fake.client()`` points it here)."""
from __future__ import annotations

import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from twilio.rest import Client

from tests.conftest import AUTH_TOKEN

ACCOUNT_SID = "AC" + "0" * 32


class FakeTwilioRest:
    """A fake of Twilio's REST API on a local port, answering as ``api.twilio.com`` would:

    * a call update (``POST .../Calls/CA....json``) is recorded (call SID, the form posted) and
      answered with a call resource. With ``call`` set (or, for several live calls, ``live_calls``:
      call SID -> simulated call), Twilio's part follows: the simulated call is moved to the new
      URL at once (``fetched``);
    * a new message (``POST .../Messages.json``) is recorded in ``messages`` (the form posted) and
      answered with a queued message resource with a new SID; while ``fail_messages`` is above
      zero, a message is refused instead with Twilio's error 500 body (and the count goes down);
    * a new call (``POST .../Calls.json``) is recorded in ``calls`` (the form posted: ``To``,
      ``From``, ``Url``, ``StatusCallback``, ``MachineDetection`` ...) and answered with a queued
      call resource with a new CA SID (``placed``: the SIDs in order); ``fail_calls`` refuses calls
      as ``fail_messages`` refuses messages. Nobody answers: a test plays the callee by posting to
      the recorded ``Url`` as Twilio would.
    """

    def __init__(self):
        self.updates: list[tuple[str, dict]] = []
        self.messages: list[dict] = []
        self.fail_messages = 0
        self.calls: list[dict] = []
        self.placed: list[str] = []
        self.fail_calls = 0
        self.call = None
        self.live_calls: dict = {}  # call SID -> simulated call, for several live calls
        self.fetched: list = []
        self.lock = threading.Lock()
        self._sids = itertools.count(1)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", "0"))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if self.path.endswith("/Messages.json"):
                    status, body = fake._message(form)
                elif self.path.endswith("/Calls.json"):
                    status, body = fake._new_call(form)
                else:
                    status, body = 200, fake._call_update(self.path, form)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def _call_update(self, path: str, form: dict) -> dict:
        sid = path.rsplit("/", 1)[-1].removesuffix(".json")
        with self.lock:
            self.updates.append((sid, form))
            call = self.live_calls.get(sid, self.call)
            if call is not None:
                self.fetched.append(call.moved_to(form["Url"]))
        return {"sid": sid, "account_sid": ACCOUNT_SID, "status": "in-progress"}

    def _message(self, form: dict) -> tuple[int, dict]:
        with self.lock:
            if self.fail_messages > 0:
                self.fail_messages -= 1
                return 500, {"code": 20500, "message": "Internal Server Error", "status": 500,
                             "more_info": "https://www.twilio.com/docs/errors/20500"}
            self.messages.append(form)
            sid = f"SM{next(self._sids):032x}"
        return 201, {"sid": sid, "account_sid": ACCOUNT_SID, "to": form.get("To"), "from": form.get("From"),
                     "body": form.get("Body"), "status": "queued", "num_segments": "1"}

    def _new_call(self, form: dict) -> tuple[int, dict]:
        with self.lock:
            if self.fail_calls > 0:
                self.fail_calls -= 1
                return 500, {"code": 20500, "message": "Internal Server Error", "status": 500,
                             "more_info": "https://www.twilio.com/docs/errors/20500"}
            self.calls.append(form)
            sid = f"CA{next(self._sids):032x}"
            self.placed.append(sid)
        return 201, {"sid": sid, "account_sid": ACCOUNT_SID, "to": form.get("To"), "from": form.get("From"),
                     "status": "queued", "direction": "outbound-api"}

    def client(self) -> Client:
        client = Client(ACCOUNT_SID, AUTH_TOKEN)
        client.api.base_url = self.url  # the real client, talking to this fake
        return client

    def urls(self) -> list[str]:
        with self.lock:
            return [form["Url"] for _sid, form in self.updates]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
