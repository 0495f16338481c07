"""Records import benchmark: ``ivr import`` of a whole utility's accounts file, first import and re-import.

    .venv/bin/python benchmarks/import_bench.py                                                   # SQLite only
    .venv/bin/python benchmarks/import_bench.py --database-url postgresql://postgres@127.0.0.1/postgres

The file is generated deterministically in the import's CSV format: ``--accounts`` accounts
(default 213 377, the size of the Chișinău utility's register) on ``--rows`` meter rows (default
330 046) in three regions none of which exists yet (so the first import creates them and gives
them menu keys). Two thirds of the accounts have one meter, the rest two or three; a quarter of
the electricity meters are two-register (day/night); two thirds of the accounts have a phone,
some two, some written with spaces; a few account numbers have a separator; names are Romanian
and Russian, with diacritics.

Each run imports the file into a fresh SQLite database and (with ``--database-url``) a fresh
PostgreSQL database created next to the one named in the URL and dropped at the end: first
import, then the same file again. Every import is the real command (``ivr import FILE``) in a
child process, so its wall time, CPU time and peak RSS (``ru_maxrss`` from ``wait4``) are the
command's own, start-up included (CPU time tells how much of the wall time a busy machine added). The stored counts are checked after each import. Medians over ``--runs``.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, select  # noqa: E402

from readings_store.db import make_engine, scratch_postgres_database, upgrade  # noqa: E402
from readings_store.importer import COLUMNS  # noqa: E402
from readings_store.models import Account, AccountPhone, Meter, Region  # noqa: E402

REGIONS = (("CHI", 0.65), ("BAL", 0.25), ("CAH", 0.10))
FIRST = ("Ion", "Maria", "Vasile", "Ana", "Gheorghe", "Elena", "Ștefan", "Tatiana", "Олег", "Ирина",
         "Наталья", "Сергей", "Mihai", "Natalia", "Petru", "Aurelia")
LAST = ("Popescu", "Rusu", "Ceban", "Lungu", "Morari", "Țurcan", "Răileanu", "Munteanu", "Иванов", "Петрова",
        "Коваленко", "Сорокин", "Bălan", "Cojocaru", "Ciobanu", "Guțu")
COMPANIES = ("SRL Apă-Canal", "SA Moldtelecom", "II Grădina", "SRL Vinăria", "ООО Север", "SRL Brutăria")


def generate(path: Path, n_accounts: int, n_rows: int, seed: int = 2026) -> dict[str, int]:
    """Write the accounts file; returns the counts the store must hold after importing it."""
    rnd = random.Random(seed)
    extra = n_rows - n_accounts
    if extra < 0:
        raise SystemExit("--rows must be at least --accounts")
    # One row (meter) per account, one more for `two`, another for `three` of them.
    three = extra // 7
    two = extra - three
    multi = rnd.sample(range(n_accounts), two)
    meters_of = [1] * n_accounts
    for i in multi:
        meters_of[i] = 2
    for i in rnd.sample(multi, three):
        meters_of[i] = 3
    phones: set[tuple[int, str]] = set()
    serial = 0
    per_region = {code: 0 for code, _ in REGIONS}
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        for i in range(n_accounts):
            roll = rnd.random()
            code = REGIONS[0][0] if roll < REGIONS[0][1] else REGIONS[1][0] if roll < REGIONS[0][1] + REGIONS[1][1] \
                else REGIONS[2][0]
            seq = per_region[code]
            per_region[code] += 1
            number = f"{seq // 100 + 1000}-{seq % 100:02d}" if seq % 15 == 7 else f"{1_000_000 + seq}"
            company = rnd.random() < 0.04
            holder = f"{rnd.choice(COMPANIES)} {seq}" if company else f"{rnd.choice(FIRST)} {rnd.choice(LAST)}"
            kind = "company" if company else "person"
            account_phones = []
            if rnd.random() < 0.66:
                account_phones.append(_phone(rnd))
                if meters_of[i] > 1 and rnd.random() < 0.25:
                    account_phones.append(_phone(rnd))
            for m in range(meters_of[i]):
                serial += 1
                if m == 0:
                    registers = 2 if rnd.random() < 0.25 else 1
                    meter = (f"EL{serial:08d}", "electricity", registers, 6, 1)
                elif m == 1:
                    meter = (f"CW{serial:08d}", "cold_water", 1, 5, 3)
                else:
                    meter = (f"HW{serial:08d}", "hot_water", 1, 5, 3) if not company or rnd.random() < 0.5 else \
                        (f"HT{serial:08d}", "heat", 1, 7, 2)
                phone = account_phones[m] if m < len(account_phones) else ""
                if phone:
                    phones.add((i, phone.replace(" ", "")))
                writer.writerow((code, number, holder, kind, phone) + meter)
    return {"regions": len(REGIONS), "accounts": n_accounts, "meters": n_rows, "phones": len(phones)}


def _phone(rnd: random.Random) -> str:
    if rnd.random() < 0.8:
        prefix = rnd.choice(("60", "67", "68", "69", "78", "79"))
    else:
        prefix = "22"
    digits = f"{rnd.randrange(1_000_000):06d}"
    if rnd.random() < 0.1:
        return f"+373 {prefix} {digits[:3]} {digits[3:]}"
    return f"+373{prefix}{digits}"


def counts(url: str) -> dict[str, int]:
    engine = make_engine(url)
    with engine.connect() as conn:
        found = {name: conn.scalar(select(func.count()).select_from(model))
                 for name, model in (("regions", Region), ("accounts", Account), ("meters", Meter),
                                     ("phones", AccountPhone))}
        keys = sorted(conn.scalars(select(Region.menu_key)))
    engine.dispose()
    if keys != list(range(1, len(REGIONS) + 1)):
        raise SystemExit(f"regions got menu keys {keys}")
    return found


def run_import(csv_path: Path, url: str, data_dir: str) -> tuple[float, float, float, str]:
    """``ivr import`` in a child process: wall seconds, CPU seconds, peak RSS in MB, its summary line."""
    env = {**os.environ, "IVR_DATABASE_URL": url, "IVR_DATA_DIR": data_dir}
    command = [str(Path(sys.executable).parent / "ivr"), "import", str(csv_path)]
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(command, env=env, stdout=out, stderr=err, text=True)
        # Reaped with os.wait4 (not child.wait) to get the child's own resource usage.
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        out, err = out.read(), err.read()
    if child.returncode != 0:
        raise SystemExit(f"ivr import failed ({child.returncode}):\n{out}\n{err[-3000:]}")
    summary = [line for line in out.splitlines() if line.startswith("imported")]
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, summary[-1] if summary else out.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="PostgreSQL server URL (a scratch database is made); SQLite always runs")
    parser.add_argument("--accounts", type=int, default=213_377)
    parser.add_argument("--rows", type=int, default=330_046)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory()
    csv_path = Path(tmp.name) / "accounts.csv"
    started = time.perf_counter()
    expected = generate(csv_path, args.accounts, args.rows)
    print(f"file: {args.rows:,} rows, {args.accounts:,} accounts, {expected['phones']:,} phones, "
          f"{len(REGIONS)} new regions, {csv_path.stat().st_size / 1e6:.1f} MB (generated in "
          f"{time.perf_counter() - started:.1f} s)")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")

    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    try:
        for run in range(1, args.runs + 1):
            backends = [("SQLite", None)] + ([("PostgreSQL", args.database_url)] if args.database_url else [])
            for backend, server_url in backends:
                with contextlib.ExitStack() as stack:
                    if server_url:
                        url = stack.enter_context(scratch_postgres_database(server_url, "ivr_bench"))
                    else:
                        url = f"sqlite:///{Path(tmp.name) / f'run{run}.sqlite3'}"
                        stack.callback(lambda path=url.split("///", 1)[1]: [
                            Path(path + suffix).unlink(missing_ok=True) for suffix in ("", "-wal", "-shm")])
                    upgrade(url)
                    for phase in ("first import", "re-import"):
                        seconds, cpu, rss, summary = run_import(csv_path, url, tmp.name)
                        found = counts(url)
                        if found != expected:
                            raise SystemExit(f"{backend} {phase}: stored {found}, expected {expected}")
                        results.setdefault((backend, phase), []).append((seconds, cpu, rss))
                        print(f"run {run} {backend:<10} {phase:<12} {seconds:6.1f} s {args.rows / seconds:8,.0f} rows/s "
                              f"CPU {cpu:5.1f} s peak RSS {rss:4.0f} MB load {os.getloadavg()[0]:.1f} | {summary}",
                              flush=True)
    finally:
        tmp.cleanup()
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"\n{'backend':<11} {'import':<13} {'median s':>9} {'rows/s':>9} {'CPU s':>6} {'peak RSS MB':>12}   runs (s)")
    for (backend, phase), runs in results.items():
        med = statistics.median(s for s, _, _ in runs)
        cpu = statistics.median(c for _, c, _ in runs)
        rss = max(r for _, _, r in runs)
        print(f"{backend:<11} {phase:<13} {med:>9.1f} {args.rows / med:>9,.0f} {cpu:>6.1f} {rss:>12.0f}   "
              f"{', '.join(f'{s:.1f}' for s, _, _ in runs)}")


if __name__ == "__main__":
    main()
