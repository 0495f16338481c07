"""Recognition with the real Vosk model: grammar, batch vs streaming, 8 kHz, threads."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from speech.audio import decode_audio
from speech.recognizer import Partial, Recognition, StreamingRecognizer, prepare_grammar, recognize

pytestmark = pytest.mark.speech


def _allowed(grammar):
    return set(grammar) | {"[unk]"}


def test_grammar_always_has_unk(ko_model, ko_grammar):
    spec = json.loads(prepare_grammar(ko_model, ko_grammar))
    assert "<UNK>" in spec  # this model's spelling of [unk]
    assert spec[:len(ko_grammar)] == ko_grammar
    again = json.loads(prepare_grammar(ko_model, ko_grammar + ["[unk]"]))
    assert again == spec  # not added twice, never the unknown-to-this-model "[unk]"
    with pytest.raises(ValueError):
        prepare_grammar(ko_model, [])
    with pytest.raises(TypeError):
        prepare_grammar(ko_model, "일 이")


def test_output_only_from_grammar(lang_model, digits_audio):
    lang, model, grammar = lang_model
    pcm = decode_audio(digits_audio(lang))
    r = recognize(model, pcm, grammar=grammar)
    assert r.words, "expected some words from spoken digits"
    assert set(r.text.split()) <= _allowed(grammar)
    assert all(w.text in _allowed(grammar) for w in r.words)
    assert all(0.0 <= w.confidence <= 1.0 and w.start <= w.end for w in r.words)
    for text, share in r.alternatives:
        assert set(text.split()) <= _allowed(grammar)
        assert 0.0 <= share <= 1.0
    assert abs(sum(s for _, s in r.alternatives) - 1.0) < 1e-3
    assert r.audio_seconds == pytest.approx(len(pcm) / 32000, abs=0.01)
    assert r.min_confidence == min(w.confidence for w in r.words)


def test_narrow_grammar_forces_words(ko_model, digits_audio):
    """With a two-word grammar only those words (or [unk]) can come out."""
    pcm = decode_audio(digits_audio("ko"))
    r = recognize(ko_model, pcm, grammar=["삼", "칠"])
    assert set(r.text.split()) <= {"삼", "칠", "[unk]"}


def test_out_of_grammar_speech_gives_unk(ko_model, ko_grammar):
    """English speech against a Korean digit grammar: [unk] shows up somewhere in the n-best."""
    from conftest import SHARED_SAMPLES
    clip = SHARED_SAMPLES / "moshi-finetune-numbers" / "sample_001.wav"
    if not clip.exists():
        pytest.skip("shared speech samples missing")
    r = recognize(ko_model, decode_audio(clip.read_bytes()), grammar=ko_grammar, max_alternatives=10)
    texts = [r.text] + [t for t, _ in r.alternatives]
    assert all(set(t.split()) <= _allowed(ko_grammar) for t in texts)
    assert r.has_unk == ("[unk]" in r.text.split())


def test_silence_gives_empty_recognition(ko_model, ko_grammar):
    r = recognize(ko_model, b"\0\0" * 16000, grammar=ko_grammar)
    assert r.text == "" and r.words == () and r.min_confidence == 0.0 and r.is_empty
    assert r.audio_seconds == pytest.approx(1.0)


def test_batch_and_streaming_agree(lang_model, digits_audio):
    lang, model, grammar = lang_model
    pcm = decode_audio(digits_audio(lang))
    batch = recognize(model, pcm, grammar=grammar)
    stream = StreamingRecognizer(model, grammar)
    results, partials = [], []
    for i in range(0, len(pcm), 3200):  # 100 ms frames, as a media stream delivers them
        out = stream.feed(pcm[i:i + 3200])
        if isinstance(out, Recognition):
            results.append(out)
        elif isinstance(out, Partial):
            partials.append(out.text)
    results.append(stream.finish())
    text = " ".join(r.text for r in results if r.text)
    assert text == batch.text
    assert [w.text for r in results for w in r.words] == [w.text for w in batch.words]
    assert sum(r.audio_seconds for r in results) == pytest.approx(batch.audio_seconds, abs=0.01)
    assert partials and all(set(p.split()) <= _allowed(grammar) for p in partials)
    with pytest.raises(RuntimeError):
        stream.feed(b"\0\0")


def test_streaming_endpoint_splits_utterances(ko_model, ko_grammar, digits_audio):
    """Speech, 2 s of silence, speech: Vosk endpoints in the pause; batch joins both parts."""
    pcm = decode_audio(digits_audio("ko"))
    two = pcm + b"\0\0" * 32000 + pcm
    stream = StreamingRecognizer(ko_model, ko_grammar)
    done = [o for i in range(0, len(two), 8000) if isinstance(o := stream.feed(two[i:i + 8000]), Recognition)]
    done.append(stream.finish())
    spoken = [r for r in done if r.text]
    assert len(spoken) == 2
    batch = recognize(ko_model, two, grammar=ko_grammar)
    assert batch.text == " ".join(r.text for r in spoken)
    assert batch.alternatives[0][0]  # combined n-best across the pieces
    # Word times run on across utterances (stream time), so they stay increasing.
    starts = [w.start for w in batch.words]
    assert starts == sorted(starts)


def test_8khz_input_is_upsampled(ko_model, ko_grammar, digits_audio):
    wav8 = digits_audio("ko", 8000)
    pcm = decode_audio(wav8)  # to 16 kHz
    r = recognize(ko_model, pcm, grammar=ko_grammar)
    assert r.words and set(r.text.split()) <= _allowed(ko_grammar)
    assert r.audio_seconds > 3.0


def test_without_alternatives(ko_model, ko_grammar, digits_audio):
    pcm = decode_audio(digits_audio("ko"))
    r = recognize(ko_model, pcm, grammar=ko_grammar, max_alternatives=0)
    assert r.alternatives == () and r.words
    assert r.text == recognize(ko_model, pcm, grammar=ko_grammar).text


def test_free_form_without_grammar(ko_model, digits_audio):
    r = recognize(ko_model, decode_audio(digits_audio("ko")), grammar=None, max_alternatives=0)
    assert r.text  # the full vocabulary: anything goes, but something is heard


def test_twenty_parallel_recognizers_match_sequential(ko_model, ko_grammar, digits_audio):
    clips = [decode_audio(digits_audio("ko")), decode_audio(digits_audio("ko", 8000))]
    jobs = [clips[i % 2] for i in range(20)]
    sequential = [recognize(ko_model, pcm, grammar=ko_grammar) for pcm in clips]
    with ThreadPoolExecutor(20) as ex:
        parallel = list(ex.map(lambda pcm: recognize(ko_model, pcm, grammar=ko_grammar), jobs))
    for i, r in enumerate(parallel):
        assert r == sequential[i % 2]


def test_rejects_odd_pcm(ko_model, ko_grammar):
    with pytest.raises(ValueError):
        recognize(ko_model, b"\0\0\0", grammar=ko_grammar)
