"""Concurrency benchmark: webhook latency with many keypad calls at once, through gunicorn.

    .venv/bin/python benchmarks/concurrency_bench.py                       # SQLite (a temporary file)
    .venv/bin/python benchmarks/concurrency_bench.py --database-url postgresql://postgres@127.0.0.1/postgres

The repository's ``gunicorn.conf.py`` serves the app (its workers and threads, ``IVR_QUEUE_WAIT``)
on a scratch database filled as ``benchmarks/webhook_bench.py`` fills it (``--accounts`` accounts,
each with a meter and last period's reading). For each level of ``--concurrency``, that many
callers each make ``--calls`` scripted keypad calls back to back with no think time (opening,
language, account, value, confirmation, finish, status callback: 7 signed webhooks per call, each
caller on an account of its own). Every webhook is timed from the client; printed per level: calls
per second, webhook latency median / p99 / slowest, and how many webhooks were answered by the
overload fallback (``IVR_QUEUE_WAIT``) or failed.

The client runs on the same machine (threads in this process, a few ms of CPU per webhook), so
the figures are those of a server sharing its cores with its callers: a lower bound of capacity.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import requests  # noqa: E402

from ivr.voice.simulator import SimulatedCall, Transport  # noqa: E402
from readings_store.db import make_engine, scratch_postgres_database, upgrade  # noqa: E402
from webhook_bench import TOKEN, fill  # noqa: E402

# The overload fallback's first words (the "technical_problem" prompt in English).
FALLBACK_MARK = "technical problem"


@dataclass(frozen=True)
class Server:
    base: str  # the URL it answers on
    pid: int  # gunicorn's master (its workers are its children)


@contextmanager
def gunicorn(database_url: str, data_dir: Path, log_path: Path, app: str | None = None, options: tuple[str, ...] = ()):
    """The repository's gunicorn.conf.py on a socket this process holds (no port race), serving
    the product, or ``app`` (``module:variable`` of ``benchmarks/``), which must answer
    ``GET /healthz``; ``options``: gunicorn's, over the file's."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    sock.set_inheritable(True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    env.update(IVR_DATABASE_URL=database_url, IVR_DATA_DIR=str(data_dir), IVR_TWILIO_AUTH_TOKEN=TOKEN,
               IVR_SECRET_KEY="concurrency-bench-secret", IVR_LOG_FORMAT="text",
               IVR_SPEECH_ENGINES='{"ro": "off", "ru": "off", "uk": "off", "en": "off"}')
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"),
                                 "--bind", f"fd://{sock.fileno()}", "--access-logfile", "/dev/null",
                                 *options, *(["--pythonpath", str(ROOT / "benchmarks"), app] if app else [])],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, pass_fds=(sock.fileno(),))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        until = time.monotonic() + 180
        while True:
            try:
                if requests.get(base + "/healthz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.monotonic() > until:
                raise SystemExit(f"gunicorn did not start; its log:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        yield Server(base, proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        sock.close()


class Timings:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.fallbacks = self.failures = self.calls = 0

    def transport(self) -> Transport:
        session = requests.Session()

        def post(url: str, params: dict, headers: dict) -> tuple[int, str]:
            started = time.monotonic()
            try:
                response = session.post(url, data=params, headers=headers, timeout=60, allow_redirects=False)
                status, body = response.status_code, response.text
            except requests.RequestException as exc:
                status, body = 599, str(exc)
            elapsed = time.monotonic() - started
            with self.lock:
                self.latencies.append(elapsed)
                if status not in (200, 204):  # the status callback answers 204
                    self.failures += 1
                elif FALLBACK_MARK in body:
                    self.fallbacks += 1
            return status, body

        return Transport(post)


def one_call(base: str, account: str, n: int, timings: Timings, transport: Transport) -> None:
    call = SimulatedCall(base, TOKEN, transport, caller="+447700900123", call_sid=f"CA{n:032x}")
    try:
        call.start()
        call.press("4")
        call.press(f"{account}#")
        call.press(f"{1100 + n % 100}#")
        call.press("1")
        call.press("3")
        call.hang_up()
    except Exception:  # counted by the transport (a fallback's TwiML or an HTTP error ends the script)
        return
    with timings.lock:
        timings.calls += 1


def level(base: str, callers: int, calls: int, first: int) -> dict:
    timings = Timings()

    def caller(i: int) -> None:
        transport = timings.transport()
        account = f"9{i:07d}"  # fill()'s accounts: one per caller
        for k in range(calls):
            one_call(base, account, first + i * calls + k, timings, transport)

    started = time.monotonic()
    with ThreadPoolExecutor(callers) as pool:
        list(pool.map(caller, range(callers)))
    wall = time.monotonic() - started
    ordered = sorted(timings.latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {"callers": callers, "calls": timings.calls, "webhooks": len(ordered), "calls_per_s": timings.calls / wall,
            "median": statistics.median(ordered), "p99": p99, "slowest": ordered[-1],
            "fallbacks": timings.fallbacks, "failures": timings.failures}


@contextmanager
def database(url: str | None):
    if url:
        with scratch_postgres_database(url, "ivr_concurrency_bench") as scratch:
            yield scratch
    else:
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.sqlite3"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="PostgreSQL server URL (a scratch database is made); default SQLite")
    parser.add_argument("--accounts", type=int, default=213_000)
    parser.add_argument("--concurrency", default="5,25,50,100,200", help="levels, comma-separated")
    parser.add_argument("--calls", type=int, default=3, help="calls per caller at each level")
    parser.add_argument("--runs", type=int, default=3, help="runs of each level (medians printed)")
    args = parser.parse_args(argv)
    levels = [int(n) for n in args.concurrency.split(",")]
    if max(levels) > args.accounts - 1:
        parser.error("--accounts must exceed the highest concurrency (a caller per account)")
    with database(args.database_url) as url, tempfile.TemporaryDirectory() as tmp:
        upgrade(url)
        engine = make_engine(url)
        fill(engine, args.accounts)
        engine.dispose()
        dialect = "PostgreSQL" if args.database_url else "SQLite"
        print(f"concurrency bench: {dialect}, {args.accounts} accounts, {args.calls} calls per caller, "
              f"{args.runs} runs per level, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
        print(f"{'callers':>7} | {'calls/s':>7} | {'median':>8} | {'p99':>8} | {'slowest':>8} | fallbacks | failures")
        n = 0
        with gunicorn(url, Path(tmp) / "data", Path(tmp) / "gunicorn.log") as server:
            base = server.base
            level(base, 1, 1, n)  # warm every worker up
            n += 10
            for callers in levels:
                runs = []
                for _ in range(args.runs):
                    runs.append(level(base, callers, args.calls, n))
                    n += callers * args.calls
                med = {key: statistics.median(r[key] for r in runs)
                       for key in ("calls_per_s", "median", "p99", "slowest")}
                fallbacks = sum(r["fallbacks"] for r in runs)
                failures = sum(r["failures"] for r in runs)
                print(f"{callers:>7} | {med['calls_per_s']:>7.1f} | {med['median'] * 1000:>6.0f} ms | "
                      f"{med['p99'] * 1000:>6.0f} ms | {med['slowest'] * 1000:>6.0f} ms | {fallbacks:>9} | {failures:>8}",
                      flush=True)
        print(f"load after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
