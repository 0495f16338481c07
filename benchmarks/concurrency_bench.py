"""Concurrency benchmark: webhook latency with many keypad calls at once, through gunicorn.

    .venv/bin/python benchmarks/concurrency_bench.py                       # SQLite (a temporary file)
    .venv/bin/python benchmarks/concurrency_bench.py --database-url postgresql://postgres@127.0.0.1/postgres

The repository's ``gunicorn.conf.py`` serves the app (its workers and threads, ``IVR_QUEUE_WAIT``)
on a scratch database filled as ``benchmarks/webhook_bench.py`` fills it (``--accounts`` accounts,
each with a meter and last period's reading). For each level of ``--concurrency``, that many
callers each make ``--calls`` scripted keypad calls back to back with no think time (opening,
language, account, value, confirmation, finish, status callback: 7 signed webhooks per call, each
caller on an account of its own). The callers of a level start at random moments within about
one call's length (``--arrivals staggered``, the default: as people dial, each on their own) or
all at once (``--arrivals together``: they then go through the script in step, in waves). Every
webhook is timed from the client (staggered: those sent while every caller is calling); printed
per level: calls per second, webhook latency median / p99 / slowest, how many webhooks were
answered by the overload fallback (``IVR_QUEUE_WAIT``) or failed, the CPU per webhook of the callers (this
process), of the server (gunicorn's master and workers, restarted ones included) and of PostgreSQL
(its processes on this machine; 0 on SQLite, whose work is the server's), and how busy that kept
the cores.

The callers reach the app as Twilio does in production, through nginx (deploy/nginx-ivr.conf):
over a shared set of keep-alive connections of which at most 16 stay open idle
(``ProxyConnections``, ``--client proxy``). ``--client per-caller`` gives each caller a
connection of its own for the whole run instead (a ``requests.Session``, as every figure measured
before the proxy model was), which pins each caller to one worker however busy it is.
``--nginx`` puts a real nginx (on PATH) in front of gunicorn with the deployment's proxying
(``NGINX_CONF``, no TLS) to check that model: the callers then reach nginx.
The callers run on the same machine (threads in this process), so the figures are those of a
server sharing its cores with its callers: a lower bound of capacity.
"""
from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import random
import shutil
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
from typing import Callable
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import requests  # noqa: E402

from ivr.voice.simulator import SimulatedCall, Transport  # noqa: E402
from readings_store.db import make_engine, scratch_postgres_database, upgrade  # noqa: E402
from webhook_bench import TOKEN, fill  # noqa: E402

# The overload fallback's first words (the "technical_problem" prompt in English).
FALLBACK_MARK = "technical problem"


def processes_cpu(chosen: Callable[[int, str, int], bool]) -> float:
    """CPU seconds (user and system) used so far by the processes ``chosen(pid, name, parent pid)``
    picks, with their children that ended and were waited for (a restarted gunicorn worker in its
    master's figures, a closed connection's backend in the PostgreSQL server's): Linux /proc."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # the process ended meanwhile
            continue
        name, fields = stat[stat.index("(") + 1:stat.rindex(")")], stat.rsplit(")", 1)[1].split()
        if chosen(int(entry), name, int(fields[1])):
            total += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return total / os.sysconf("SC_CLK_TCK")


def server_cpu(master: int) -> float:
    """``processes_cpu`` of a gunicorn master and its workers, those restarted included."""
    return processes_cpu(lambda pid, name, parent: master in (pid, parent))


def postgres_cpu() -> float:
    """``processes_cpu`` of the PostgreSQL server on this machine (every database's backends)."""
    return processes_cpu(lambda pid, name, parent: name == "postgres")


@dataclass(frozen=True)
class Server:
    base: str  # the URL it answers on
    pid: int  # gunicorn's master (its workers are its children)


def _await_health(base: str, proc: subprocess.Popen, seconds: float, failure: Callable[[], str]) -> None:
    """Wait until ``GET base/healthz`` answers 200; ``failure()`` says why not, when ``proc`` exits
    or ``seconds`` pass first."""
    until = time.monotonic() + seconds
    while True:
        try:
            if requests.get(base + "/healthz", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.monotonic() > until:
            raise SystemExit(failure())
        time.sleep(0.1)


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
        _await_health(base, proc, 180, lambda: f"gunicorn did not start; its log:\n{log_path.read_text()[-3000:]}")
        yield Server(base, proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        sock.close()


# Idle keep-alive connections to the app that deploy/nginx-ivr.conf keeps (``keepalive 16``).
PROXY_KEEPALIVE = 16


class ProxyConnections:
    """The callers' way to the app as it is in production (deploy/nginx-ivr.conf: Twilio reaches
    nginx, nginx reaches gunicorn): a webhook goes over whichever keep-alive connection is idle
    (the last one freed first), or over a new one when none is; at most ``PROXY_KEEPALIVE`` stay
    open idle. A worker that answers sooner frees its connections sooner and so gets more of the
    webhooks, and new connections go to whichever worker accepts them first; a connection held
    by one caller for the whole run would instead pin it to one worker, however busy."""

    def __init__(self, base: str, keepalive: int = PROXY_KEEPALIVE):
        parts = urlsplit(base)
        self.host, self.port, self.keepalive = parts.hostname, parts.port, keepalive
        self.lock = threading.Lock()
        self.idle: list[http.client.HTTPConnection] = []

    def post(self, url: str, params: dict, headers: dict) -> tuple[int, str]:
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        body = urlencode(params)
        headers = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
        while True:
            with self.lock:
                connection = self.idle.pop() if self.idle else None
            reused = connection is not None
            connection = connection or http.client.HTTPConnection(self.host, self.port, timeout=60)
            try:
                connection.request("POST", path, body, headers)
                response = connection.getresponse()
                answer = response.status, response.read().decode()
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                if reused and isinstance(exc, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
                    continue  # the app closed an idle connection (its keep-alive timeout): as nginx, retry
                return 599, str(exc)
            with self.lock:
                if len(self.idle) < self.keepalive and not response.will_close:
                    self.idle.append(connection)
                    connection = None
            if connection is not None:
                connection.close()
            return answer

    def close(self) -> None:
        with self.lock:
            for connection in self.idle:
                connection.close()
            self.idle.clear()


# deploy/nginx-ivr.conf's proxying of the app, without TLS (the Host header with its port: the
# callers sign http://127.0.0.1:<port>/...).
NGINX_CONF = """daemon off; worker_processes auto; pid {folder}/nginx.pid; error_log {folder}/error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {folder}/body; proxy_temp_path {folder}/proxy;
    upstream ivr_app {{ server 127.0.0.1:{app_port}; keepalive {keepalive}; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://ivr_app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_connect_timeout 3s;
            proxy_read_timeout 15s;
        }}
    }}
}}
"""


@contextmanager
def behind_nginx(server: Server, folder: Path):
    """``server`` behind nginx (``NGINX_CONF``), as deploy/nginx-ivr.conf puts it: the same
    server, answering at nginx's address (nginx's own CPU is not counted in the figures)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "nginx.conf").write_text(NGINX_CONF.format(folder=folder, app_port=urlsplit(server.base).port,
                                                         keepalive=PROXY_KEEPALIVE, port=port))
    proc = subprocess.Popen(["nginx", "-p", str(folder), "-c", str(folder / "nginx.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    log = folder / "error.log"
    try:
        _await_health(base, proc, 30,
                      lambda: f"nginx did not start: {log.read_text()[-2000:] if log.exists() else 'no log'}")
        yield Server(base, server.pid)
    finally:
        proc.terminate()
        proc.wait(30)


class Timings:
    def __init__(self, client: str, base: str) -> None:
        self.lock = threading.Lock()
        self.latencies: list[tuple[float, float]] = []  # (when it was sent, how long it took), monotonic s
        self.fallbacks = self.failures = self.calls = 0
        self.proxy = ProxyConnections(base) if client == "proxy" else None

    def _count(self, started: float, status: int, body: str) -> None:
        elapsed = time.monotonic() - started
        with self.lock:
            self.latencies.append((started, elapsed))
            if status not in (200, 204):  # the status callback answers 204
                self.failures += 1
            elif FALLBACK_MARK in body:
                self.fallbacks += 1

    def transport(self) -> Transport:
        """A caller's HTTP client, which times each webhook: with ``--client proxy`` (the default)
        the callers share ``ProxyConnections``; with ``--client per-caller`` each has a
        ``requests.Session`` of its own, one keep-alive connection pinned to one worker for the
        whole run."""
        return self._proxied(self.proxy) if self.proxy is not None else self._per_caller()

    def _per_caller(self) -> Transport:
        session = requests.Session()

        def post(url: str, params: dict, headers: dict) -> tuple[int, str]:
            started = time.monotonic()
            try:
                response = session.post(url, data=params, headers=headers, timeout=60, allow_redirects=False)
                status, body = response.status_code, response.text
            except requests.RequestException as exc:
                status, body = 599, str(exc)
            self._count(started, status, body)
            return status, body

        return Transport(post)

    def _proxied(self, proxy: ProxyConnections) -> Transport:
        def post(url: str, params: dict, headers: dict) -> tuple[int, str]:
            started = time.monotonic()
            status, body = proxy.post(url, params, headers)
            self._count(started, status, body)
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


WEBHOOKS_PER_CALL = 7  # one_call's
WARM_CALLERS = 16  # twice the threads of gunicorn.conf.py on 2 cores

# Whose CPU ``level`` reports, per webhook.
CPU_PARTS = ("callers", "server", "database")


def while_all_call(latencies: list[tuple[float, float]], started_at: list[float],
                   finished_at: list[float]) -> tuple[list[float], float]:
    """(the latencies of the webhooks sent while every caller was calling: after the last caller
    started and before the first one finished, how long that lasted in seconds)."""
    opens, closes = max(started_at), min(finished_at)
    return [elapsed for sent, elapsed in latencies if opens <= sent < closes], max(closes - opens, 0.0)


# How long one call lasts at a level, per caller, to spread the callers' starts over (``level``):
# its webhooks, each waiting for every other caller's, at about 400 webhooks a second on 2 cores.
CALL_SECONDS_PER_CALLER = WEBHOOKS_PER_CALL / 400


def level(server: Server, callers: int, calls: int, first: int, client: str, postgres: bool,
          arrivals: str = "staggered") -> dict:
    """One run of ``callers`` callers; with the CPU per webhook of the callers (this process), of
    the server (gunicorn's processes) and of PostgreSQL (its processes; 0 on SQLite, whose work
    is the server's), all on the same cores.

    ``arrivals``: ``together``, every caller starts its first call at once; ``staggered``, each
    starts at a random moment within about one call's length (``CALL_SECONDS_PER_CALLER``), as
    callers who dial independently do, and only the webhooks sent while every caller is calling
    (after the last one started, before the first one finished) are timed and counted in calls
    per second. Callers who start together go through the script in step, the whole run long, so
    that the load comes in waves of the same question (measured: README, concurrency)."""
    timings = Timings(client, server.base)
    spread = callers * CALL_SECONDS_PER_CALLER if arrivals == "staggered" else 0.0
    rng = random.Random(first)
    delays = [rng.uniform(0, spread) for _ in range(callers)]
    started_at, finished_at = [0.0] * callers, [0.0] * callers

    def caller(i: int) -> None:
        time.sleep(delays[i])
        started_at[i] = time.monotonic()
        transport = timings.transport()
        account = f"9{i:07d}"  # fill()'s accounts: one per caller
        for k in range(calls):
            one_call(server.base, account, first + i * calls + k, timings, transport)
        finished_at[i] = time.monotonic()

    def cpu_so_far() -> tuple[float, ...]:  # in the order of CPU_PARTS
        return time.process_time(), server_cpu(server.pid), postgres_cpu() if postgres else 0.0

    before = cpu_so_far()
    started = time.monotonic()
    with ThreadPoolExecutor(callers) as pool:
        list(pool.map(caller, range(callers)))
    wall = time.monotonic() - started
    if timings.proxy is not None:
        timings.proxy.close()
    used = [after - earlier for earlier, after in zip(before, cpu_so_far())]
    calls_per_s = timings.calls / wall
    timed = [elapsed for _, elapsed in timings.latencies]
    if spread:
        steady, seconds = while_all_call(timings.latencies, started_at, finished_at)
        if steady:  # else no moment had every caller calling (a tiny level): every webhook is timed
            timed, calls_per_s = steady, len(steady) / WEBHOOKS_PER_CALL / seconds
    ordered = sorted(timed)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {"callers": callers, "calls": timings.calls, "webhooks": len(timings.latencies), "calls_per_s": calls_per_s,
            "median": statistics.median(ordered), "p99": p99, "slowest": ordered[-1],
            "fallbacks": timings.fallbacks, "failures": timings.failures,
            **{f"{part}_ms": seconds * 1000 / len(timings.latencies) for part, seconds in zip(CPU_PARTS, used)},
            "busy": sum(used) / (wall * (os.cpu_count() or 1))}


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
    parser.add_argument("--client", choices=("proxy", "per-caller"), default="proxy",
                        help="how the callers reach the app (Timings.transport)")
    parser.add_argument("--arrivals", choices=("staggered", "together"), default="staggered",
                        help="how the callers of a level start their first call (``level``)")
    parser.add_argument("--nginx", action="store_true",
                        help="put nginx (on PATH) in front of gunicorn as deploy/nginx-ivr.conf does, without TLS")
    args = parser.parse_args(argv)
    if args.nginx and not shutil.which("nginx"):
        parser.error("--nginx needs nginx on PATH (Debian: apt-get install nginx-light)")
    levels = [int(n) for n in args.concurrency.split(",")]
    if max(*levels, WARM_CALLERS) > args.accounts - 1:
        parser.error("--accounts must exceed the highest concurrency (a caller per account)")
    with database(args.database_url) as url, tempfile.TemporaryDirectory() as tmp:
        upgrade(url)
        engine = make_engine(url)
        fill(engine, args.accounts)
        engine.dispose()
        dialect = "PostgreSQL" if args.database_url else "SQLite"
        print(f"concurrency bench: {dialect}, {args.accounts} accounts, {args.calls} calls per caller, "
              f"{args.runs} runs per level, callers starting {args.arrivals}, {os.cpu_count()} cores, "
              f"load {os.getloadavg()[0]:.1f}")
        print(f"{'callers':>7} | {'calls/s':>7} | {'median':>8} | {'p99':>8} | {'slowest':>8} | fallbacks | failures "
              f"| CPU ms per webhook: callers / server / database | cores busy")
        n = 0
        with contextlib.ExitStack() as stack:
            server = stack.enter_context(gunicorn(url, Path(tmp) / "data", Path(tmp) / "gunicorn.log"))
            if args.nginx:
                server = stack.enter_context(behind_nginx(server, Path(tmp) / "nginx"))
            postgres = bool(args.database_url)
            # Every worker and thread warm (its connection, its compiled statements) before timing.
            level(server, WARM_CALLERS, 1, n, args.client, postgres, "together")
            n += WARM_CALLERS
            for callers in levels:
                runs = []
                for _ in range(args.runs):
                    runs.append(level(server, callers, args.calls, n, args.client, postgres, args.arrivals))
                    n += callers * args.calls
                med = {key: statistics.median(r[key] for r in runs)
                       for key in ("calls_per_s", "median", "p99", "slowest", "busy",
                                   *(f"{part}_ms" for part in CPU_PARTS))}
                fallbacks = sum(r["fallbacks"] for r in runs)
                failures = sum(r["failures"] for r in runs)
                print(f"{callers:>7} | {med['calls_per_s']:>7.1f} | {med['median'] * 1000:>6.0f} ms | "
                      f"{med['p99'] * 1000:>6.0f} ms | {med['slowest'] * 1000:>6.0f} ms | {fallbacks:>9} | {failures:>8} | "
                      f"{med['callers_ms']:>27.2f} / {med['server_ms']:>6.2f} / {med['database_ms']:>8.2f} | "
                      f"{med['busy']:>10.0%}",
                      flush=True)
        print(f"load after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
