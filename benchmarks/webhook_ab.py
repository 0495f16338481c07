"""Webhook A/B: the product's server CPU per keypad call in this checkout and another, at once.

    .venv/bin/python benchmarks/webhook_ab.py /path/to/other/checkout
    .venv/bin/python benchmarks/webhook_ab.py /path/to/other/checkout --database-url postgresql://postgres@127.0.0.1/postgres

On a shared machine the CPU per call of ``benchmarks/webhook_bench.py`` moves by a fifth from run
to run, as much as a change to a turn saves. So here both checkouts serve the same scripted keypad
call (``webhook_bench.product_call``, 7 signed webhooks through the app, in process) at the same
time, each in a process of its own on a scratch database of its own (``--accounts`` accounts,
filled by ``webhook_bench.fill``), in ``--blocks`` blocks of ``--calls`` calls after a warm-up:
whatever slows the machine slows both. Printed: each side's median CPU per call over its blocks,
the spread of its blocks, and the ratio of the medians.

The other checkout (e.g. ``git worktree add /tmp/before HEAD~1``) needs ``benchmarks/webhook_bench.py``
with ``fill``, ``product_call`` and ``Counter``; it runs with this checkout's virtual environment.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WARM_UP_CALLS = 10


def serve(checkout: Path, args) -> None:
    """One side: the checkout's app and bench helpers, its blocks' CPU per call as a JSON list."""
    sys.path[:0] = [str(checkout), str(checkout / "benchmarks")]
    sys.path.remove(str(Path(__file__).resolve().parent))
    import webhook_bench as bench
    from ivr.app import create_app
    from ivr.config import load_config
    from readings_store.db import make_engine, scratch_postgres_database, upgrade

    if not Path(bench.__file__).resolve().is_relative_to(checkout.resolve()):  # pragma: no cover - set-up error
        raise SystemExit(f"imported {bench.__file__}, not the checkout's {checkout}")

    def run(url: str, data_dir: str) -> list[float]:
        upgrade(url)
        engine = make_engine(url)
        bench.fill(engine, args.accounts)
        os.environ["IVR_DATA_DIR"] = data_dir
        config = load_config(database_url=url, twilio_auth_token=bench.TOKEN, secret_key="bench",
                             speech_engines={"ro": "off", "ru": "off", "uk": "off", "en": "off"})
        app = create_app(config, engine=engine)
        counter = bench.Counter(engine)
        counter.wrap(app)
        client = app.test_client()
        n = 0
        for n in range(WARM_UP_CALLS):
            bench.product_call(client, n)
        blocks = []
        for _ in range(args.blocks):
            counter.cpu = 0.0
            for _ in range(args.calls):
                n += 1
                bench.product_call(client, n)
            blocks.append(counter.cpu * 1000 / args.calls)
        engine.dispose()
        return blocks

    with tempfile.TemporaryDirectory() as tmp:
        if args.database_url:
            with scratch_postgres_database(args.database_url, f"ivr_webhook_ab_{os.getpid()}") as url:
                blocks = run(url, tmp)
        else:
            blocks = run(f"sqlite:///{Path(tmp) / 'ab.sqlite3'}", tmp)
    print(json.dumps(blocks))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("other", type=Path, help="the other checkout (a git worktree of another commit)")
    parser.add_argument("--database-url", help="PostgreSQL server URL (scratch databases are made); default SQLite")
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--blocks", type=int, default=15)
    parser.add_argument("--calls", type=int, default=20, help="calls per block")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # one side, run by main
    args = parser.parse_args(argv)
    if args.accounts < 2 or args.blocks < 1 or args.calls < 1:
        parser.error("--accounts must be at least 2, --blocks and --calls at least 1")
    if not (args.other / "benchmarks" / "webhook_bench.py").is_file():
        parser.error(f"{args.other} is not a checkout of this project (no benchmarks/webhook_bench.py)")
    if args.serve:
        serve(args.other, args)
        return
    sides = {"this checkout": ROOT, "other": args.other}
    passed = [a for a in (argv if argv is not None else sys.argv[1:]) if Path(a) != args.other]
    processes = {name: subprocess.Popen([sys.executable, __file__, str(path), *passed, "--serve"],
                                        stdout=subprocess.PIPE, text=True, cwd=path)
                 for name, path in sides.items()}
    medians = {}
    print(f"webhook A/B: {'PostgreSQL' if args.database_url else 'SQLite'}, {args.accounts:,} accounts, "
          f"{args.blocks} blocks of {args.calls} calls each side, at once; load {os.getloadavg()[0]:.2f}")
    for name, process in processes.items():
        out, _ = process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"{name} ({sides[name]}) failed")
        blocks = json.loads(out.strip().splitlines()[-1])
        medians[name] = statistics.median(blocks)
        print(f"{name:<14} {str(sides[name]):<40} CPU ms per call: median {medians[name]:.1f} "
              f"(blocks {min(blocks):.1f}-{max(blocks):.1f})")
    print(f"this checkout / other: {medians['this checkout'] / medians['other']:.2f}")


if __name__ == "__main__":
    main()
