"""How much of the silence after an answer a decoder needs, on real voices (a script, not a test).

    .venv/bin/python benchmarks/answer_tail_bench.py [--tails 600,200,100] [--limit N]

The media endpoint decodes, of the silence that ends a streamed answer, only the first
``StreamSettings.decoded_silence_ms`` (``speech/stream.py``); until 4 December 2026 it decoded all
600 ms of it. ``stream_turn_bench.py --only silence`` compares the two with Vosk, but only on
espeak-ng's synthetic Korean: no English, Russian or Ukrainian Vosk model can be had here. This
benchmark uses real human recordings instead, with pocketsphinx's English model (a test
dependency, ``speech_accuracy.PocketsphinxRecognizer``) standing in for the decoder.

Each English recording of the samples (``speech_accuracy.SAMPLES``: ``manifest.csv``; CI and
``IVR_TEST_SPEECH_SAMPLES`` point it at ``../shared/speech-samples``) goes through μ-law at 8 kHz
with 0.5 s of silence before and 1.5 s after it. The product's voice detector
(``speech.stream.EnergyDetector``, with the endpoint's onset rule: ``ONSET_VOICED`` voiced frames
of ``ONSET_FRAMES``) finds the onset and the last voiced frame; the audio from the pre-roll
(300 ms before the onset) to ``--tails`` ms after the last voiced frame is recognised with the
English digits grammar, parsed as an account number (``grammars.parse_account``) and compared with
what was said. For each tail it prints the answers right, and against the first tail the answers
lost and won.
"""
from __future__ import annotations

import argparse
import csv
import sys
import wave
from collections import deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import speech_accuracy as sa  # noqa: E402
from grammars import build_grammar, parse_account  # noqa: E402
from speech.stream import (FRAME_BYTES, FRAME_MS, ONSET_FRAMES, ONSET_VOICED, EnergyDetector,  # noqa: E402
                           StreamSettings, audioop, pcm16_to_ulaw, pcm_to_wav, ulaw_to_pcm16)

RATE = 8000
BYTES_PER_MS = RATE * 2 // 1000


def as_the_endpoint_hears(path: Path) -> bytes:
    """The recording at 8 kHz through μ-law, with 0.5 s of silence before it and 1.5 s after."""
    with wave.open(str(path)) as w:
        pcm, rate = w.readframes(w.getnframes()), w.getframerate()
    if rate != RATE:
        pcm, _ = audioop.ratecv(pcm, 2, 1, rate, RATE, None)
    return ulaw_to_pcm16(pcm16_to_ulaw(bytes(500 * BYTES_PER_MS) + pcm + bytes(1500 * BYTES_PER_MS)))


def onset_and_last_voice(audio: bytes, settings: StreamSettings) -> tuple[int, int] | None:
    """(byte offset of the voice onset, byte offset just after the last voiced frame), or None."""
    detector = EnergyDetector(settings.voice_margin_db, settings.voice_min_dbfs)
    recent: deque[bool] = deque(maxlen=ONSET_FRAMES)
    onset = last = None
    for pos in range(0, len(audio) - FRAME_BYTES + 1, FRAME_BYTES):
        voiced = detector.voiced(audio[pos:pos + FRAME_BYTES])
        recent.append(voiced)
        if onset is None and sum(recent) >= ONSET_VOICED:
            onset = pos + FRAME_BYTES
        if voiced:
            last = pos + FRAME_BYTES
    return (onset, last) if onset is not None and last is not None else None


def heard_right(recognizer, grammar: list[str], audio: bytes, expected: str) -> bool:
    text = recognizer("en", grammar, pcm_to_wav(audio, RATE)).text
    try:
        return bool(text) and parse_account(text, "en").best == expected
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tails", default="600,200,100",
                        help="ms decoded after the last voiced frame, comma-separated; the first is the reference")
    parser.add_argument("--limit", type=int, default=0, help="at most this many recordings (0: all)")
    args = parser.parse_args(argv)
    try:
        tails = [int(t) for t in args.tails.split(",")]
    except ValueError:
        parser.error("--tails takes whole milliseconds, comma-separated")
    if not tails or any(t < 0 or t % FRAME_MS for t in tails):
        parser.error(f"--tails must be multiples of {FRAME_MS} ms, not negative")
    manifest = sa.SAMPLES / "manifest.csv"
    if not manifest.is_file():
        sys.exit(f"no speech samples at {sa.SAMPLES} (set IVR_TEST_SPEECH_SAMPLES)")
    with open(manifest, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["language"] == "en"]
    if args.limit:
        rows = rows[:args.limit]
    settings = StreamSettings()
    recognizer = sa.PocketsphinxRecognizer(pad_ms=0)  # the cut is the point: no padding after it
    grammar = build_grammar("en", "digits")
    right = dict.fromkeys(tails, 0)
    lost = dict.fromkeys(tails, 0)
    won = dict.fromkeys(tails, 0)
    heard = 0
    for row in rows:
        audio = as_the_endpoint_hears(sa.SAMPLES / row["path"])
        found = onset_and_last_voice(audio, settings)
        if found is None:
            continue
        onset, last = found
        start = max(0, onset - settings.pre_roll_ms * BYTES_PER_MS)
        ok = {t: heard_right(recognizer, grammar, audio[start:last + t * BYTES_PER_MS], row["expected"])
              for t in tails}
        heard += 1
        for t in tails:
            right[t] += ok[t]
            lost[t] += ok[tails[0]] and not ok[t]
            won[t] += ok[t] and not ok[tails[0]]
    print(f"{heard} of {len(rows)} English recordings with a voice onset; pocketsphinx (en-us), digits grammar; "
          f"decoded from {settings.pre_roll_ms} ms before the onset to the tail after the last voiced frame")
    print(f"{'tail':>8} {'right':>13}   against {tails[0]} ms: lost  won")
    for t in tails:
        share = right[t] / heard if heard else 0.0
        print(f"{t:>5} ms {right[t]:>5} ({share:5.1%})   {lost[t]:>21}  {won[t]:>3}")


if __name__ == "__main__":
    main()
