"""Real-time answers from telephone audio (speech.stream) with the real Korean model."""
from __future__ import annotations

import io
import wave

import pytest

import speech.stream as stream_mod
from speech.recognizer import recognize
from speech.stream import (FRAME_BYTES, StreamingUtterance, StreamSettings, pcm16_to_ulaw, pcm_to_wav,
                           ulaw_to_pcm16)
from tests.speech.conftest import FIXTURES
from tests.stream_harness import read_pcm8k, silence

pytestmark = pytest.mark.speech

KO_357 = FIXTURES / "ko_357_16k.wav"
KO_DIGITS = FIXTURES / "ko_digits_8k.wav"


def _phone(pcm: bytes) -> bytes:
    """What reaches the endpoint: the audio through μ-law and back."""
    return ulaw_to_pcm16(pcm16_to_ulaw(pcm))


def _run(utterance_factory, pcm: bytes, frame: int = FRAME_BYTES):
    """Feed *pcm* frame by frame through consecutive utterances; (frame index, utterance) per answer."""
    out, utt = [], utterance_factory(None)
    for i in range(0, len(pcm), frame):
        data = pcm[i:i + frame]
        while True:
            result = utt.feed(data)
            if result is None:
                break
            out.append((i // frame, utt))
            data, utt = utt.leftover, utterance_factory(utt)
    return out, utt


def test_ulaw_table_matches_g711_for_every_code(monkeypatch):
    codes = bytes(range(256))
    fast = ulaw_to_pcm16(codes)
    monkeypatch.setattr(stream_mod, "audioop", None)
    assert ulaw_to_pcm16(codes) == fast
    assert len(fast) == 512


@pytest.mark.parametrize("kwargs", [dict(sample_rate=11025), dict(trailing_silence_ms=50),
                                    dict(max_utterance_s=0.5), dict(stall_ms=100), dict(max_alternatives=-1),
                                    dict(pre_roll_ms=5000), dict(decoded_silence_ms=-20)])
def test_settings_refuse_bad_values(kwargs):
    with pytest.raises(ValueError):
        StreamSettings(**kwargs)


def test_silence_never_starts_the_recogniser(ko_model, ko_grammar):
    utt = StreamingUtterance(ko_model, ko_grammar)
    for _ in range(100):
        assert utt.feed(silence(20)) is None
    assert not utt.onset and not utt.listening and utt.finish() is None


def test_one_answer_matches_batch_recognition_of_its_audio(ko_model, ko_grammar):
    pcm = _phone(silence(500) + read_pcm8k(KO_357) + silence(1500))
    done, _ = _run(lambda prev: StreamingUtterance(ko_model, ko_grammar), pcm)
    assert len(done) == 1
    _, utt = done[0]
    rec = utt.result
    assert rec.words and set(rec.text.split()) <= set(ko_grammar) | {"[unk]"}
    assert utt.speech_started and utt.speech_started_at is not None
    # The same audio recognised in one go gives the same words (same decoders, same grammar).
    batch = recognize(ko_model, utt.audio, grammar=ko_grammar, sample_rate=8000)
    assert rec.text == batch.text
    assert rec.audio_seconds == pytest.approx(len(utt.audio) / 16000, abs=0.01)
    with wave.open(io.BytesIO(utt.wav())) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        assert w.readframes(w.getnframes()) == utt.audio
    with pytest.raises(RuntimeError):
        utt.feed(silence(20))


def test_answer_ends_after_the_configured_trailing_silence(ko_model, ko_grammar):
    speech = _phone(silence(300) + read_pcm8k(KO_357))
    ends = {}
    for ms in (300, 1200):
        settings = StreamSettings(trailing_silence_ms=ms, stall_ms=max(1500, ms))
        done, _ = _run(lambda prev: StreamingUtterance(ko_model, ko_grammar, settings), speech + silence(3000))
        assert len(done) == 1
        ends[ms] = done[0][0]
    # 900 ms more silence required = 45 more frames (± one 60 ms decoding step)
    assert 42 <= ends[1200] - ends[300] <= 48


def test_two_answers_and_pause_within_an_answer(ko_model, ko_grammar):
    part = read_pcm8k(KO_357)
    pcm = _phone(silence(300) + part + silence(900) + part + silence(1800))  # pause: 0.9 s + the clip's 0.44 s tail
    short = StreamSettings(trailing_silence_ms=600)
    done, _ = _run(lambda prev: StreamingUtterance(ko_model, ko_grammar, short,
                                                   detector=prev.detector if prev else None), pcm)
    assert len(done) == 2
    assert all(u.result.words for _, u in done)
    # With 1.5 s of trailing silence the 1.34 s pause is inside one answer: both parts, joined.
    long = StreamSettings(trailing_silence_ms=1500)
    joined, _ = _run(lambda prev: StreamingUtterance(ko_model, ko_grammar, long), pcm)
    assert len(joined) == 1
    words = joined[0][1].result.words
    second_part_starts = (300 + 81 * 20 + 900) / 1000 - 0.3  # seconds into the answer's audio (after pre-roll)
    assert words[0].end < second_part_starts < words[-1].start
    assert len(joined[0][1].audio) > 2 * len(part)


def _decoded_bytes(monkeypatch) -> list[int]:
    """Bytes the real recogniser is given, per chunk (the decoder is wrapped, not faked)."""
    fed: list[int] = []
    accept = stream_mod.StreamingRecognizer._accept

    def counting(self, chunk):
        fed.append(len(chunk))
        return accept(self, chunk)

    monkeypatch.setattr(stream_mod.StreamingRecognizer, "_accept", counting)
    return fed


@pytest.mark.parametrize("decoded_ms", [200, 600])
def test_the_silence_ending_an_answer_is_decoded_only_so_far(monkeypatch, ko_model, ko_grammar, decoded_ms):
    fed = _decoded_bytes(monkeypatch)
    settings = StreamSettings(trailing_silence_ms=600, decoded_silence_ms=decoded_ms)
    pcm = _phone(silence(300) + read_pcm8k(KO_357) + silence(1500))
    done, _ = _run(lambda prev: StreamingUtterance(ko_model, ko_grammar, settings), pcm)
    assert len(done) == 1 and done[0][1].result.words
    # The answer keeps all its audio (operators hear the silence); of the 600 ms of silence that
    # ended it, the decoder heard the first ``decoded_ms``.
    held = (600 - decoded_ms) // 20 * FRAME_BYTES
    assert sum(fed) == len(done[0][1].audio) - held


def test_a_pause_within_an_answer_is_decoded_whole(monkeypatch, ko_model, ko_grammar):
    fed = _decoded_bytes(monkeypatch)
    part = read_pcm8k(KO_357)
    pcm = _phone(silence(300) + part + silence(900) + part + silence(1800))
    settings = StreamSettings(trailing_silence_ms=1500, decoded_silence_ms=200)
    done, _ = _run(lambda prev: StreamingUtterance(ko_model, ko_grammar, settings), pcm)
    assert len(done) == 1
    # Everything but the ending silence's undecoded 1.3 s: the 1.34 s pause went to the decoder
    # when the caller spoke again, so the words keep their times (see the test above).
    assert sum(fed) == len(done[0][1].audio) - (1500 - 200) // 20 * FRAME_BYTES


def test_retarget_sets_the_grammar_at_the_voice_onset(ko_model):
    calls = []

    def retarget():
        calls.append(1)
        return ko_model, ["삼", "칠"]

    utt = StreamingUtterance(ko_model, ["일", "이"], retarget=retarget)
    pcm = _phone(silence(300) + read_pcm8k(KO_357) + silence(1500))
    done, _ = _run(lambda prev: utt if prev is None else StreamingUtterance(None, None), pcm)
    results = [u.result for _, u in done]
    assert len(calls) == 1 and len(results) == 1
    assert set(results[0].text.split()) <= {"삼", "칠", "[unk]"} and "삼" in results[0].text.split()


def test_without_a_question_voice_is_heard_but_not_recognised(ko_model):
    utt = StreamingUtterance(None, None)
    pcm = _phone(silence(300) + read_pcm8k(KO_357) + silence(1500))
    assert all(utt.feed(pcm[i:i + FRAME_BYTES]) is None for i in range(0, len(pcm), FRAME_BYTES))
    assert not utt.listening and not utt.onset  # back to idle after the burst
    assert utt.audio == b""


def test_upsampled_16k_input_gives_words(ko_model, ko_grammar):
    settings = StreamSettings(sample_rate=16000)
    pcm = _phone(silence(300) + read_pcm8k(KO_DIGITS) + silence(1500))
    done, _ = _run(lambda prev: StreamingUtterance(ko_model, ko_grammar, settings), pcm)
    assert len(done) == 1 and len(done[0][1].result.words) >= 5
    assert done[0][1].result.audio_seconds == pytest.approx(len(done[0][1].audio) / 16000, abs=0.01)


def test_finish_returns_an_answer_cut_by_the_end_of_the_stream(ko_model, ko_grammar):
    utt = StreamingUtterance(ko_model, ko_grammar)
    pcm = _phone(silence(300) + read_pcm8k(KO_DIGITS))
    assert utt.feed(pcm) is None
    rec = utt.finish()
    assert rec is not None and rec.words
    assert pcm_to_wav(b"\0\0")[:4] == b"RIFF"


def test_odd_byte_count_is_refused(ko_model, ko_grammar):
    with pytest.raises(ValueError):
        StreamingUtterance(ko_model, ko_grammar).feed(b"\0")
