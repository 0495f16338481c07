"""Webhook benchmark: what one keypad call costs the server, beside a lean floor and Flask "hello".

    .venv/bin/python benchmarks/webhook_bench.py                        # SQLite (a temporary file)
    .venv/bin/python benchmarks/webhook_bench.py --database-url postgresql://postgres@localhost/postgres

With PostgreSQL a scratch database is created next to the one named in the URL and dropped at the
end. The store gets ``--accounts`` accounts (one meter each, with last period's reading), inserted
with Core executemany. Then ``--calls`` calls are made ``--runs`` times (medians reported) three ways:

* product: the scripted keypad call of ``tests/integration/test_call_cost.py`` (opening, language,
  account, value, confirmation, finish, status callback: 7 signed webhooks) through the app, in
  process (Flask's test client); the CPU is the server's (thread CPU time inside the WSGI app);
* lean floor: the same turns by minimal hand-written SQL (claim, the reads the turn needs, one
  UPDATE holding the step, the steps' rows by one INSERT at the end, a TwiML string) on the same
  database, without Flask or the ORM (``LeanLine``, called in process);
* lean webhooks: the same ``LeanLine`` served as the product serves its turns: signed form posts
  through Flask's test client, the signature checked by the ``twilio`` library's
  ``RequestValidator``, TwiML built with the library: what the fixed stack costs at the least;
* hello: 7 requests to a Flask app that answers "hello", through the same test client.

Each line gives statements, commits and server CPU per call (ms), and the ratio to the floor; a
last line gives the product's ratio to the lean webhooks.
With ``--parts``, a last run of the product's calls prints where its server CPU goes (CPU per call
in the turn's parts: claiming a turn, judging values, flushing and committing, storing effects,
rendering TwiML, opening a call, the status callback; the rest is Flask, the signature check and
the other reads), each part counted once even when it calls another.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import importlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flask import Flask, Response, abort, request  # noqa: E402
from sqlalchemy import event, insert, select, text  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402
from twilio.twiml.voice_response import Gather, VoiceResponse  # noqa: E402

from ivr.app import create_app  # noqa: E402
from ivr.config import load_config  # noqa: E402
from ivr.voice.simulator import SimulatedCall, flask_transport  # noqa: E402
from readings_store.db import make_engine, scratch_postgres_database, upgrade  # noqa: E402
from readings_store.models import Account, Meter, Reading, Region  # noqa: E402

TOKEN = "bench-auth-token-0123456789abcdef"
TARGET = "100001"


def fill(engine, accounts: int) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    with engine.begin() as conn:
        conn.execute(insert(Region), [{"code": "CHI", "name": "North", "timezone": "Europe/Chisinau",
                                       "work_start": dt.time(8), "work_end": dt.time(8), "work_days": "",
                                       "menu_key": 1, "created_at": now}])
        region_id = conn.scalar(select(Region.id))
    chunk = 20_000
    numbers = [TARGET] + [f"9{i:07d}" for i in range(accounts - 1)]
    with engine.begin() as conn:
        for start in range(0, len(numbers), chunk):
            conn.execute(insert(Account), [{"region_id": region_id, "number": n, "keypad_key": n, "holder_name": "H",
                                            "kind": "person", "active": True, "created_at": now, "updated_at": now}
                                           for n in numbers[start:start + chunk]])
        ids = list(conn.scalars(select(Account.id).order_by(Account.id)))
        for start in range(0, len(ids), chunk):
            conn.execute(insert(Meter), [{"account_id": i, "serial": f"EL{i:07d}", "utility": "electricity",
                                          "registers": 1, "digits": 6, "decimals": 1, "active": True,
                                          "created_at": now} for i in ids[start:start + chunk]])
        meter_ids = list(conn.scalars(select(Meter.id).order_by(Meter.id)))
        taken = now - dt.timedelta(days=45)
        period = f"{taken.year:04d}-{taken.month:02d}"
        for start in range(0, len(meter_ids), chunk):
            conn.execute(insert(Reading), [{"meter_id": m, "register": "total", "value": 1000, "period": period,
                                            "taken_at": taken, "received_at": taken, "channel": "import",
                                            "status": "accepted", "trusted": True}
                                           for m in meter_ids[start:start + chunk]])


class Counter:
    """Statements and commits on an engine, and the server's CPU time."""

    def __init__(self, engine):
        self.engine = engine
        self.statements = self.commits = 0
        self.cpu = 0.0
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", self._commit)

    def _statement(self, *args):
        self.statements += 1

    def _commit(self, *args):
        self.commits += 1

    def stop(self) -> None:
        """Stop counting statements and commits."""
        event.remove(self.engine, "before_cursor_execute", self._statement)
        event.remove(self.engine, "commit", self._commit)

    def wrap(self, app):
        inner = app.wsgi_app

        def timed(environ, start_response):
            started = time.thread_time()
            try:
                return list(inner(environ, start_response))  # the body is made inside the timing
            finally:
                self.cpu += time.thread_time() - started

        app.wsgi_app = timed


def product_call(client, n: int) -> None:
    scripted_call("http://localhost", TOKEN, flask_transport(client), n)


def scripted_call(base: str, token: str, transport, n: int) -> None:
    """The scripted keypad call ``n`` (it saves a reading) to the app at ``base``."""
    call = SimulatedCall(base, token, transport, caller="+447700900123", call_sid=f"CA{n:032x}")
    call.start()
    call.press("4")
    call.press(f"{TARGET}#")
    call.press(f"{1100 + n % 100}#")  # a plausible month since last period's 1000
    assert "Reading saved." in call.press("1").texts, "the product call did not save its reading"
    call.press("3")
    call.hang_up()


GATHER = ('<?xml version="1.0" encoding="UTF-8"?><Response><Gather action="/voice/step/{}?seq={}">'
          '<Say>{}</Say></Gather></Response>')


def string_twiml(step: str, seq: int, words: str) -> str:
    return GATHER.format(step, seq, words)


def library_twiml(step: str, seq: int, words: str) -> str:
    """The same answer built with the ``twilio`` library, as the product builds its TwiML."""
    response = VoiceResponse()
    gather = Gather(input="dtmf", action=f"/voice/step/{step}?seq={seq}", method="POST", finish_on_key="#")
    gather.say(words, language="en-US")
    response.append(gather)
    return str(response)


class LeanLine:
    """The seven webhooks of the product's keypad call by minimal hand-written SQL: what any
    implementation must read and write, in the product's shape (a turn claimed by one UPDATE that
    returns the call's state, a turn's step held on the call's row, all of them written by one
    INSERT when the call ends; an account with its meter by one query; a value's baseline and
    count by one). Each webhook reads what it needs from the database, so the same handlers serve
    the in-process floor and the Flask one (``lean_app``); ``render`` makes the TwiML."""

    def __init__(self, engine, postgres: bool, render=string_twiml):
        self.engine, self.postgres, self.render = engine, postgres, render

    @staticmethod
    def _json(value):
        return json.loads(value) if isinstance(value, str) else value

    def _claim(self, conn, sid: str, seq: int):
        row = conn.execute(text("UPDATE calls SET seq = seq + 1 WHERE call_sid = :sid AND seq = :seq "
                                "RETURNING id, state, steps"), {"sid": sid, "seq": seq}).first()
        return row.id, self._json(row.state), self._json(row.steps)

    @staticmethod
    def _step(steps: list, seq: int, name: str, now: dt.datetime) -> None:
        steps.append({"seq": seq, "at": now.isoformat(), "step": name})

    @staticmethod
    def _write(conn, call_id, state, steps, body, now, **columns):
        sets = "".join(f", {k} = :{k}" for k in columns)
        conn.execute(text(f"UPDATE calls SET state = :state, steps = :steps, last_twiml = :body, "
                          f"last_activity_at = :at{sets} WHERE id = :id"),
                     {"state": json.dumps(state), "steps": json.dumps(steps), "body": body, "at": now, "id": call_id,
                      **columns})

    def incoming(self, sid: str, caller: str) -> str:
        now = dt.datetime.now(dt.timezone.utc)
        with self.engine.begin() as conn:
            conn.execute(text("SELECT a.id FROM accounts a JOIN account_phones p ON p.account_id = a.id "
                              "WHERE p.phone = :p"), {"p": caller}).all()
            conn.execute(text("SELECT id, name FROM regions WHERE menu_key IS NOT NULL ORDER BY menu_key")).all()
            steps: list[dict] = []
            self._step(steps, 0, "incoming", now)
            body = self.render("language", 1, "hi")
            conn.execute(text("INSERT INTO calls (call_sid, seq, state, steps, last_twiml, started_at) "
                              "VALUES (:sid, 1, :st, :steps, :body, :at)"),
                         {"sid": sid, "st": json.dumps({"step": "language"}), "steps": json.dumps(steps), "body": body,
                          "at": now})
        return body

    def turn(self, sid: str, name: str, seq: int, digits: str) -> str:
        now = dt.datetime.now(dt.timezone.utc)
        with self.engine.begin() as conn:
            call_id, state, steps = self._claim(conn, sid, seq)
            columns: dict = {}
            if name == "language":
                regions = conn.execute(text("SELECT id FROM regions WHERE menu_key IS NOT NULL")).all()
                state.update(step="account", lang="en", region_id=regions[0].id)
                columns["region_id"], next_, words = regions[0].id, "account", "account?"
            elif name == "account":
                account = conn.execute(text("SELECT a.id, a.active, m.id AS meter_id, m.serial, m.digits FROM accounts a "
                                            "JOIN meters m ON m.account_id = a.id AND m.active "
                                            "WHERE a.region_id = :r AND a.keypad_key = :k LIMIT 2"),
                                       {"r": state["region_id"], "k": digits.rstrip("#")}).first()
                state.update(step="value", account=account.id, meter=account.meter_id)
                columns["account_id"], next_, words = account.id, "value", "value?"
            elif name in ("value", "confirm"):
                account_id, meter_id = state["account"], state["meter"]
                value = state["value"] if name == "confirm" else digits.rstrip("#")
                if self.postgres:
                    conn.execute(text("SELECT id FROM accounts WHERE id = :a FOR NO KEY UPDATE"), {"a": account_id})
                base = conn.execute(text("SELECT r.value, (SELECT count(*) FROM value_refusals WHERE account_id = :a) "
                                         "AS answers FROM readings r WHERE r.meter_id = :m AND r.trusted "
                                         "ORDER BY r.taken_at DESC LIMIT 1"), {"a": account_id, "m": meter_id}).first()
                assert base is not None and Decimal(value) >= Decimal(str(base.value))
                if name == "value":
                    conn.execute(text("INSERT INTO value_refusals (account_id, meter_id, register, period, value, "
                                      "code, call_id, created_at) VALUES (:a, :m, 'total', '2026-01', :v, "
                                      "'not_confirmed', :c, :at)"),
                                 {"a": account_id, "m": meter_id, "v": value, "c": call_id, "at": now})
                    state.update(step="confirm", value=value)
                    next_, words = "confirm", f"That's {value}. Press 1."
                else:
                    conn.execute(text("INSERT INTO readings (meter_id, register, value, period, taken_at, received_at, "
                                      "channel, status, trusted, out_of_window, call_id) VALUES (:m, 'total', :v, "
                                      "'2026-01', :at, :at, 'phone_keypad', 'accepted', false, false, :c)"),
                                 {"m": meter_id, "v": int(value), "at": now, "c": call_id})
                    conn.execute(text("DELETE FROM value_refusals WHERE call_id = :c AND code = 'not_confirmed'"),
                                 {"c": call_id})
                    state.update(step="next")
                    next_, words = "next", "Reading saved."
            else:  # finish: the call's steps as rows, by one INSERT
                state.update(step="ended", outcome="completed")
                self._step(steps, seq, name, now)
                conn.execute(text("INSERT INTO call_steps (call_id, seq, at, step) VALUES (:c, :seq, :at, :step)"),
                             [{**s, "c": call_id, "at": now} for s in steps])
                steps = []
                body = self.render("ended", seq + 1, "goodbye")
                self._write(conn, call_id, state, steps, body, now, outcome="completed")
                return body
            self._step(steps, seq, name, now)
            body = self.render(next_, seq + 1, words)
            self._write(conn, call_id, state, steps, body, now, **columns)
        return body

    def status(self, sid: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(text("UPDATE calls SET twilio_status = 'completed', ended_at = :at WHERE call_sid = :sid"),
                         {"at": dt.datetime.now(dt.timezone.utc), "sid": sid})


# The lean call's webhooks after the opening: (step, keys pressed); the value is that of the product's call.
def lean_turns(n: int) -> list[tuple[str, str]]:
    return [("language", "4"), ("account", f"{TARGET}#"), ("value", f"{1100 + n % 100}#"), ("confirm", "1"),
            ("next", "3")]


def lean_call(line: LeanLine, n: int, counter: Counter) -> None:
    """The seven webhooks by hand, in process: no Flask, no signature check, TwiML as a string."""
    sid = f"CB{n:031x}"
    started = time.thread_time()
    line.incoming(sid, "+447700900123")
    for seq, (name, keys) in enumerate(lean_turns(n), start=1):
        line.turn(sid, name, seq, keys)
    line.status(sid)
    counter.cpu += time.thread_time() - started


def lean_app(line: LeanLine) -> Flask:
    """The lean line served as webhooks: Flask routes, Twilio's signature checked by the ``twilio``
    library's ``RequestValidator`` (as the product does), TwiML built with the library."""
    app = Flask("lean")
    validator = RequestValidator(TOKEN)

    def form() -> dict:
        if not validator.validate(request.url, request.form, request.headers.get("X-Twilio-Signature", "")):
            abort(403)
        return request.form

    def xml(body: str) -> Response:
        return Response(body, mimetype="text/xml")

    @app.post("/voice/incoming")
    def incoming():
        data = form()
        return xml(line.incoming(data["CallSid"], data["From"]))

    @app.post("/voice/step/<name>")
    def step(name):
        data = form()
        return xml(line.turn(data["CallSid"], name, int(request.args["seq"]), data.get("Digits", "")))

    @app.post("/voice/status")
    def status():
        line.status(form()["CallSid"])
        return "", 204

    return app


def lean_webhooks_call(client, n: int) -> None:
    """The lean line's seven webhooks posted as Twilio posts them: signed forms."""
    sid = f"CW{n:031x}"
    signer = RequestValidator(TOKEN)

    def post(path: str, **params) -> None:
        params = {"CallSid": sid, "AccountSid": "AC" + "0" * 32, "From": "+447700900123", "To": "+37322000000",
                  **params}
        signature = signer.compute_signature("http://localhost" + path, params)
        response = client.post(path, data=params, headers={"X-Twilio-Signature": signature})
        assert response.status_code in (200, 204), response.status_code

    post("/voice/incoming", CallStatus="ringing")
    for seq, (name, keys) in enumerate(lean_turns(n), start=1):
        post(f"/voice/step/{name}?seq={seq}", Digits=keys)
    post("/voice/status", CallStatus="completed", CallDuration="40")


# (label, module or class, function): the parts ``--parts`` times, outermost first.
PARTS = (
    ("opening a call (incoming)", "ivr.calls", "open_call"),
    ("status callback", "ivr.calls", "end_call"),
    ("claiming a turn", "ivr.calls", "_claim"),
    ("judging a value", "ivr.records:SqlRecords", "judge_value"),
    ("storing effects", "ivr.calls", "persist_effects"),
    ("writing the turn (its call row and steps)", "ivr.calls", "_write_turn"),
    ("flush and commit", "sqlalchemy.orm:Session", "commit"),
    ("rendering TwiML", "ivr.voice.twiml:TwimlRenderer", "render"),
)


def product_parts(app, engine, calls: int, first: int) -> None:
    """Time the product's calls once more with its parts wrapped (``PARTS``), and print them."""
    spent: dict[str, float] = dict.fromkeys([label for label, _, _ in PARTS], 0.0)
    inside = threading.local()
    undo = []
    for label, where, name in PARTS:
        module_name, _, class_name = where.partition(":")
        owner = importlib.import_module(module_name)
        owner = getattr(owner, class_name) if class_name else owner
        original = getattr(owner, name)

        def timed(*args, _original=original, _label=label, **kwargs):
            if getattr(inside, "part", None):
                return _original(*args, **kwargs)  # counted in the part that called it
            inside.part, started = _label, time.thread_time()
            try:
                return _original(*args, **kwargs)
            finally:
                spent[_label] += time.thread_time() - started
                inside.part = None

        setattr(owner, name, functools.wraps(original)(timed))
        undo.append((owner, name, original))
    counter = Counter(engine)
    inner = app.wsgi_app
    counter.wrap(app)
    try:
        client = app.test_client()
        for n in range(calls):
            product_call(client, first + n)
    finally:
        app.wsgi_app = inner
        for owner, name, original in undo:
            setattr(owner, name, original)
        counter.stop()
    total = counter.cpu * 1000 / calls
    print(f"where the product's server CPU goes ({calls} calls, one run, parts wrapped): {total:.1f} ms per call")
    for label, seconds in [*spent.items(), ("the rest (Flask, signature, other reads)",
                                            counter.cpu - sum(spent.values()))]:
        print(f"  {label:<44}{seconds * 1000 / calls:>7.2f} ms  {100 * seconds / counter.cpu:>5.1f} %")


def hello_call(client, n: int) -> None:
    """Seven requests to Flask "hello", as many as a keypad call's webhooks."""
    for _ in range(7):
        client.post("/hello")


def hello_app():
    app = Flask("hello")

    @app.post("/hello")
    def hello():
        return "hello"

    return app


def measure(what: str, calls: int, runs: int, once) -> list[tuple[float, float, float]]:
    """[(statements, commits, CPU ms) per call] for each run."""
    results = []
    for run in range(runs):
        counter = once(run)
        results.append((counter.statements / calls, counter.commits / calls, counter.cpu * 1000 / calls))
    return results


def run(url: str, data_dir: str, args, *, postgres: bool) -> None:
    upgrade(url)
    engine = make_engine(url)
    started = time.monotonic()
    fill(engine, args.accounts)
    print(f"# {args.accounts:,} accounts loaded in {time.monotonic() - started:.1f} s; "
          f"{args.calls} calls x {args.runs} runs; load {os.getloadavg()[0]:.2f}", flush=True)
    os.environ["IVR_DATA_DIR"] = data_dir
    config = load_config(database_url=url, twilio_auth_token=TOKEN, secret_key="bench",
                         speech_engines={"ro": "off", "ru": "off", "uk": "off", "en": "off"})
    app = create_app(config, engine=engine)
    hello = hello_app()
    rows = {}
    counters: list[Counter] = []

    def fresh() -> Counter:
        for old in counters:
            old.stop()
        counters[:] = [Counter(engine)]
        return counters[0]

    originals: dict[int, object] = {}

    def served(flask_app, one_call, run_no: int) -> Counter:
        """A run of ``args.calls`` calls through a Flask app's test client, its server CPU counted."""
        counter = fresh()
        flask_app.wsgi_app = originals.setdefault(id(flask_app), flask_app.wsgi_app)
        counter.wrap(flask_app)
        client = flask_app.test_client()
        for n in range(args.calls):
            one_call(client, (run_no + 1) * args.calls + n)
        return counter

    line = LeanLine(engine, postgres)

    def lean(run_no: int) -> Counter:
        counter = fresh()
        for n in range(args.calls):
            lean_call(line, (run_no + 1) * args.calls + n, counter)
        return counter

    product = functools.partial(served, app, product_call)
    lean_webhooks = functools.partial(served, lean_app(LeanLine(engine, postgres, render=library_twiml)),
                                      lean_webhooks_call)
    hi = functools.partial(served, hello, hello_call)
    product(-1)  # warm up (imports, prompts, first connections)
    lean(-1)
    lean_webhooks(-1)
    rows["product"] = measure("product", args.calls, args.runs, product)
    rows["lean floor"] = measure("lean", args.calls, args.runs, lean)
    rows["lean webhooks"] = measure("lean webhooks", args.calls, args.runs, lean_webhooks)
    rows["flask hello"] = measure("hello", args.calls, args.runs, hi)
    floor = statistics.median(r[2] for r in rows["lean floor"])
    print(f"{'per keypad call':<16}{'statements':>11}{'commits':>9}{'CPU ms':>9}{'x floor':>9}")
    for name, results in rows.items():
        statements = statistics.median(r[0] for r in results)
        commits = statistics.median(r[1] for r in results)
        cpu = statistics.median(r[2] for r in results)
        print(f"{name:<16}{statements:>11.1f}{commits:>9.1f}{cpu:>9.1f}{cpu / floor:>9.2f}")
    medians = {name: statistics.median(r[2] for r in results) for name, results in rows.items()}
    print(f"product / lean webhooks (the floor with Flask, the signature check and the twilio library's "
          f"TwiML): {medians['product'] / medians['lean webhooks']:.2f}x")
    if args.parts:
        product_parts(app, engine, args.calls, (args.runs + 2) * args.calls)
    engine.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="PostgreSQL server URL (a scratch database is made); default SQLite")
    parser.add_argument("--accounts", type=int, default=213_000)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--parts", action="store_true", help="then print where the product's server CPU goes")
    args = parser.parse_args(argv)
    if args.accounts < 1 or args.calls < 1 or args.runs < 1:
        parser.error("--accounts, --calls and --runs must be at least 1")
    with tempfile.TemporaryDirectory() as tmp:
        if args.database_url:
            with scratch_postgres_database(args.database_url, "ivr_webhook_bench") as url:
                run(url, tmp, args, postgres=True)
        else:
            run(f"sqlite:///{Path(tmp) / 'bench.sqlite3'}", tmp, args, postgres=False)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
