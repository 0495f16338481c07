"""What the decoder is given of an answer, whatever the caller's pauses (``speech.stream``,
``StreamSettings.decoded_silence_ms``): a property test over generated patterns of voice and
silence. The decoder is a fake (``FakeDecoder``): the property is about which frames reach it, not
about what it recognises (the tests in test_speech_stream.py run the real Korean model)."""
from __future__ import annotations

from array import array
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

import speech.stream as stream_mod
from speech.recognizer import Word, _Segment
from speech.stream import FRAME_BYTES, FRAME_MS, StreamingUtterance, StreamSettings

VOICE = array("h", [8000, -8000] * (FRAME_BYTES // 4)).tobytes()  # a loud 20 ms frame: voiced
SILENCE = bytes(FRAME_BYTES)
TRAILING_MS = 600


class FakeDecoder:
    """Stands in for ``speech.recognizer.StreamingRecognizer``: keeps every chunk it is fed, and
    "hears" a word once it has been fed a voiced frame."""

    last: FakeDecoder | None = None

    def __init__(self, model, grammar, sample_rate, max_alternatives=0):
        self.fed: list[bytes] = []
        FakeDecoder.last = self

    def _accept(self, chunk: bytes):
        self.fed.append(chunk)
        return None

    def partial(self) -> str:
        return "일" if any(VOICE[:2] in chunk for chunk in self.fed) else ""

    def _final(self) -> _Segment:
        return _Segment(words=[Word("일", 1.0, 0.0, 0.1)], text="일")


# Runs of voice and of silence, voice first (two frames at least: the voice onset), after half a
# second of silence.
runs = st.builds(lambda first, rest: [first, *rest], st.tuples(st.integers(2, 30), st.integers(1, 60)),
                 st.lists(st.tuples(st.integers(1, 30), st.integers(1, 60)), max_size=7))


@settings(max_examples=200, deadline=None)
@given(runs=runs, decoded_ms=st.sampled_from([0, 20, 100, 200, 400, 600, 1000]))
def test_the_decoder_gets_the_answer_in_order_up_to_its_undecoded_silence(runs, decoded_ms):
    stream = [SILENCE] * 25 + [frame for voiced, silent in runs for frame in [VOICE] * voiced + [SILENCE] * silent]
    # Stalls and length never end this answer: only its trailing silence or the end of the stream.
    config = StreamSettings(trailing_silence_ms=TRAILING_MS, decoded_silence_ms=decoded_ms, stall_ms=10**7,
                            max_utterance_s=120)
    with mock.patch.object(stream_mod, "StreamingRecognizer", FakeDecoder):
        utt = StreamingUtterance(object(), ["일"], config)
        ended = next((i for i, frame in enumerate(stream) if utt.feed(frame) is not None), None)
        if ended is None:
            assert utt.finish() is not None
    audio, decoded = utt.audio, b"".join(FakeDecoder.last.fed)
    # In order and without a gap: every voiced frame and every pause between them was decoded...
    assert audio.startswith(decoded)
    # ...and what was not is the silence after the last voice beyond ``decoded_ms`` of it.
    kept = len(audio) // FRAME_BYTES
    last_voice = max(i for i in range(kept) if audio[i * FRAME_BYTES:(i + 1) * FRAME_BYTES] == VOICE)
    silent_at_end = kept - 1 - last_voice
    assert audio[len(decoded):] == SILENCE * max(0, silent_at_end - decoded_ms // FRAME_MS)
    if ended is not None:  # the answer ended by its trailing silence
        assert silent_at_end == TRAILING_MS // FRAME_MS
