"""Server floor: what gunicorn itself costs per webhook, with the repository's gunicorn.conf.py.

    .venv/bin/python benchmarks/server_floor_bench.py

The repository's gunicorn.conf.py (its workers, threads, worker class and JSON logs) serves a Flask
app that answers every POST with a fixed TwiML (``app``, below) instead of the product, through
``concurrency_bench.gunicorn``. ``--clients`` keep-alive clients each post ``--requests``
Twilio-like forms, all at once. Workers are not restarted after ``max_requests`` here
(``--max-requests 0``), so that each worker's CPU counter covers the whole benchmark. Printed for each run and as medians of ``--runs``: the workers'
CPU per request (read from /proc) and the requests per second. ``webhook_bench.py``'s Flask
"hello" is the app alone, in process; this is what the server adds to every webhook of any app
under it, before the app's own work.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from flask import Flask, Response

sys.path.insert(0, str(Path(__file__).resolve().parent))

app = Flask(__name__)
FORM = {"CallSid": "CA" + "0" * 32, "AccountSid": "AC" + "0" * 32, "From": "+37369000000", "To": "+37322000000",
        "CallStatus": "in-progress", "Digits": "1234#"}


@app.post("/voice/step/value")
def answer() -> Response:
    return Response('<?xml version="1.0" encoding="UTF-8"?><Response><Say>hello</Say></Response>',
                    mimetype="application/xml")


@app.get("/healthz")
def healthz() -> str:
    return "ok"


def _workers_cpu(master: int) -> float:
    """CPU seconds (user and system) used so far by the children of ``master``."""
    from concurrency_bench import processes_cpu

    return processes_cpu(lambda pid, name, parent: parent == master)


def one_run(base: str, master: int, clients: int, requests_each: int) -> tuple[float, float]:
    """(workers' CPU ms per request, requests per second)."""
    import requests

    def client(_: int) -> None:
        with requests.Session() as session:
            for _ in range(requests_each):
                response = session.post(base + "/voice/step/value", data=FORM, timeout=60)
                response.raise_for_status()

    client(0)  # every keep-alive path warm
    cpu, started = _workers_cpu(master), time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    wall = time.perf_counter() - started
    done = clients * requests_each
    return (_workers_cpu(master) - cpu) * 1000 / done, done / wall


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--requests", type=int, default=20, help="requests per client")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    if args.clients < 1 or args.requests < 1 or args.runs < 1:
        parser.error("--clients, --requests and --runs must be at least 1")
    from concurrency_bench import gunicorn

    with tempfile.TemporaryDirectory() as tmp:
        print(f"server floor: the repository's gunicorn.conf.py serving a fixed TwiML, {args.clients} clients x "
              f"{args.requests} requests, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
        with gunicorn("sqlite://", Path(tmp) / "data", Path(tmp) / "gunicorn.log",
                      app="server_floor_bench:app", options=("--max-requests", "0")) as server:
            runs = [one_run(server.base, server.pid, args.clients, args.requests) for _ in range(args.runs)]
    for n, (cpu, rate) in enumerate(runs, 1):
        print(f"run {n}: workers' CPU {cpu:.2f} ms per request, {rate:.0f} requests/s")
    print(f"median: workers' CPU {statistics.median(r[0] for r in runs):.2f} ms per request, "
          f"{statistics.median(r[1] for r in runs):.0f} requests/s")


if __name__ == "__main__":
    main()
