"""The media endpoint driven as Twilio drives it: signed handshake, JSON messages, μ-law audio."""
from __future__ import annotations

import asyncio
import base64
import json
import threading
import time

import pytest

from ivr.voice.media_server import Answer, MediaServer, Question, ServerClock
from speech.recognizer import Recognition, Word, recognize
from speech.stream import FRAME_BYTES, StreamSettings, frame_dbfs
from tests.speech.conftest import FIXTURES
from tests.stream_harness import Recorder, new_call_sid, play_stream, read_pcm8k, silence

TOKEN = "test-auth-token-0123456789abcdef"
KO_357 = read_pcm8k(FIXTURES / "ko_357_16k.wav")
KO_DIGITS = read_pcm8k(FIXTURES / "ko_digits_8k.wav")
DIGITS = tuple("영 일 이 삼 사 오 육 칠 팔 구".split())
Q_DIGITS = Question(language="ko", grammar=DIGITS, step="account", seq=3)
Q_37 = Question(language="ko", grammar=("삼", "칠"), step="confirm", seq=4)


def _serve(recorder: Recorder, scenario, **kwargs):
    """Run *scenario(url, server)* against a media server on a free port; returns its result."""
    async def main():
        server = MediaServer(recorder.handlers(), auth_token=TOKEN, **kwargs)
        await server.start("127.0.0.1", 0)
        try:
            return await scenario(f"ws://127.0.0.1:{server.port}/voice/stream", server)
        finally:
            await server.stop()
            server.close()
    return asyncio.run(main())


def _words_ok(recognition, grammar) -> bool:
    return bool(recognition.words) and set(recognition.text.split()) <= set(grammar) | {"[unk]"}


speech = pytest.mark.speech


@speech
def test_one_answer_one_callback_with_the_right_words(pool):
    rec = Recorder(Q_DIGITS, models=pool.get)
    sid = new_call_sid()

    async def scenario(url, server):
        return await play_stream(url, TOKEN, silence(400) + KO_357 + silence(1500), call_sid=sid, realtime=False)

    played = _serve(rec, scenario)
    assert played.status is None
    [event] = rec.utterances(sid)
    assert event.question == Q_DIGITS and _words_ok(event.recognition, DIGITS)
    assert rec.kinds(sid) == ["speech_started", "utterance"]  # barge-in signal first
    # The WAV handed over is the answer's audio; recognised in one go it gives the same words.
    assert event.wav[:4] == b"RIFF"
    batch = recognize(pool.get("ko"), event.wav[44:], grammar=list(DIGITS), sample_rate=8000)
    assert batch.text == event.recognition.text


@speech
def test_two_answers_separated_by_silence_give_two_callbacks(pool):
    rec = Recorder(Q_DIGITS, models=pool.get)
    sid = new_call_sid()

    async def scenario(url, server):
        audio = silence(300) + KO_357 + silence(1500) + KO_DIGITS + silence(1500)
        return await play_stream(url, TOKEN, audio, call_sid=sid, realtime=False)

    _serve(rec, scenario)
    events = rec.utterances(sid)
    assert len(events) == 2
    assert all(_words_ok(e.recognition, DIGITS) for e in events)
    assert len(events[1].recognition.words) > len(events[0].recognition.words)  # 10 digits vs 3
    assert rec.kinds(sid) == ["speech_started", "utterance"] * 2


@speech
def test_the_grammar_follows_the_question_between_answers(pool):
    sid = new_call_sid()

    def advance(call_sid, question, recognition, wav):  # the turn service moving the dialog on
        rec.questions[call_sid] = Q_37

    rec = Recorder(Q_DIGITS, models=pool.get, on_utterance=advance)

    async def scenario(url, server):
        audio = silence(300) + KO_DIGITS + silence(1500) + KO_357 + silence(1500)
        return await play_stream(url, TOKEN, audio, call_sid=sid, realtime=False)

    _serve(rec, scenario)
    first, second = rec.utterances(sid)
    assert first.question == Q_DIGITS and second.question == Q_37
    assert _words_ok(first.recognition, DIGITS) and not set(first.recognition.text.split()) <= {"삼", "칠", "[unk]"}
    assert _words_ok(second.recognition, ("삼", "칠"))


@speech
def test_no_question_means_nothing_is_recognised(pool):
    rec = Recorder(None, models=pool.get)

    async def scenario(url, server):
        return await play_stream(url, TOKEN, silence(300) + KO_357 + silence(1500), realtime=False)

    _serve(rec, scenario)
    assert rec.events == []


@pytest.mark.parametrize("case", ["wrong token", "missing", "other url"])
def test_handshake_with_a_bad_signature_is_refused(case):
    rec = Recorder(Q_DIGITS, models=lambda lang: pytest.fail("no model may be loaded"))

    async def scenario(url, server):
        kwargs = {"wrong token": dict(signature=None, auth_token="not-the-token"),
                  "missing": dict(signature="", auth_token=TOKEN),
                  "other url": dict(signature=None, auth_token=TOKEN,
                                    signed_url=url.replace("ws://", "wss://").replace("stream", "other"))}[case]
        token = kwargs.pop("auth_token")
        played = await play_stream(url, token, silence(200), realtime=False, **kwargs)
        return played, server.stats.rejected_handshakes, server.stats.streams

    played, rejected, streams = _serve(rec, scenario)
    assert played.status == 403 and rejected == 1 and streams == 0
    assert rec.events == []


def test_handshake_signed_for_the_public_url_behind_a_proxy_is_accepted():
    rec = Recorder(None, models=lambda lang: None)

    async def scenario(url, server):
        played = await play_stream(url, TOKEN, silence(100), realtime=False,
                                   signed_url="wss://ivr.example.com/voice/stream")
        wrong = await play_stream(url, TOKEN, silence(100), realtime=False)  # signed for the inner host
        return played.status, wrong.status, server.stats.streams

    assert _serve(rec, scenario, public_url="https://ivr.example.com") == (None, 403, 1)


def test_other_paths_are_not_found():
    async def scenario(url, server):
        return (await play_stream(url.replace("/voice/stream", "/elsewhere"), TOKEN, b"", realtime=False)).status

    assert _serve(Recorder(None, models=lambda lang: None), scenario) == 404


class FakeListener:
    """Stands in for the Vosk listener: one answer per burst of loud audio followed by 300 ms of
    quiet, with a made-up recognition naming the burst's length in frames."""

    def __init__(self, call_sid, questions, models, settings):
        self.call_sid, self.questions = call_sid, questions
        self.voiced = self.quiet = 0
        self.rest = b""

    def feed(self, pcm):
        started = False
        for i in range(0, len(pcm), FRAME_BYTES):
            if frame_dbfs(pcm[i:i + FRAME_BYTES]) > -45:
                started = started or self.voiced == 0
                self.voiced, self.quiet = self.voiced + 1, 0
            elif self.voiced:
                self.quiet += 1
                if self.quiet == 15:
                    text = str(self.voiced)
                    rec = Recognition(text, (Word(text, 1.0, 0.0, 0.1),), (), False, self.voiced / 50)
                    self.voiced, self.rest = 0, pcm[i + FRAME_BYTES:]
                    return started, Answer(self.questions(self.call_sid), rec, b"RIFF", None)
        return started, None

    def resume(self):
        rest, self.rest = self.rest, b""
        return self.feed(rest)


def test_garbage_messages_do_not_break_the_stream_or_the_server():
    rec = Recorder(Q_DIGITS, models=lambda lang: None)
    tone = b"".join(int(8000 if (i // 10) % 2 else -8000).to_bytes(2, "little", signed=True) for i in range(8000))
    garbage = [
        "not json at all", "[1, 2, 3]", json.dumps({"event": "party"}), json.dumps({"no": "event"}),
        json.dumps({"event": "media", "media": {"payload": "!!!not base64!!!"}}),
        json.dumps({"event": "media", "media": {"payload": base64.b64encode(b"\xff" * 5000).decode()}}),
        json.dumps({"event": "media", "media": "nope"}),
        json.dumps({"event": "start", "start": {"callSid": "CAxyz"}}),  # second start: ignored
        json.dumps({"event": "mark", "mark": {"name": "prompt-1"}}),
        json.dumps({"event": "dtmf", "dtmf": {"track": "inbound_track", "digit": "5"}}),
        b"\x00\x01binary",
    ]
    sids = [new_call_sid(), new_call_sid()]

    async def scenario(url, server):
        a = await play_stream(url, TOKEN, silence(200) + tone + silence(800), call_sid=sids[0],
                              realtime=False, extra=garbage)
        # A message over the size limit closes that connection only; the server serves the next call.
        big = await play_stream(url, TOKEN, silence(100), realtime=False, extra=["x" * 100_000])
        b = await play_stream(url, TOKEN, silence(200) + tone + silence(800), call_sid=sids[1], realtime=False)
        return a, big, b, server.stats

    a, big, b, stats = _serve(rec, scenario, listener_factory=FakeListener)
    assert stats.bad_messages == 9  # everything but mark and dtmf
    assert [e.recognition.text for e in rec.utterances(sids[0])] == ["50"]
    assert [e.recognition.text for e in rec.utterances(sids[1])] == ["50"]
    assert stats.callback_errors == 0


def test_media_before_start_and_bad_call_sid_are_ignored():
    rec = Recorder(Q_DIGITS, models=lambda lang: None)

    async def scenario(url, server):
        await play_stream(url, TOKEN, silence(100), call_sid="CA-not-a-sid", realtime=False)
        return server.stats

    stats = _serve(rec, scenario, listener_factory=FakeListener)
    assert stats.streams == 0 and stats.bad_messages == 1 + 5  # the bad start, then 5 media frames
    assert rec.events == []


def test_a_failing_callback_is_contained():
    def boom(*args):
        raise RuntimeError("database down")

    rec = Recorder(Q_DIGITS, models=lambda lang: None, on_utterance=boom)
    tone = b"".join(int(8000 if (i // 10) % 2 else -8000).to_bytes(2, "little", signed=True) for i in range(4000))
    sid = new_call_sid()

    async def scenario(url, server):
        await play_stream(url, TOKEN, (tone + silence(600)) * 2, call_sid=sid, realtime=False)
        return server.stats

    stats = _serve(rec, scenario, listener_factory=FakeListener)
    assert stats.callback_errors == 2 and len(rec.utterances(sid)) == 2


def test_many_concurrent_realtime_streams_with_a_fake_listener():
    rec = Recorder(Q_DIGITS, models=lambda lang: None)
    tone = b"".join(int(8000 if (i // 10) % 2 else -8000).to_bytes(2, "little", signed=True) for i in range(4000))
    sids = [new_call_sid() for _ in range(60)]

    async def scenario(url, server):
        audio = silence(100) + tone + silence(600) + tone + tone + silence(600)
        await asyncio.gather(*(play_stream(url, TOKEN, audio, call_sid=s) for s in sids))
        return server.stats

    stats = _serve(rec, scenario, listener_factory=FakeListener)
    assert stats.streams == 60 and stats.bad_messages == 0
    for sid in sids:
        assert [e.recognition.text for e in rec.utterances(sid)] == ["25", "50"]


@speech
def test_many_concurrent_streams_with_the_real_model(pool):
    rec = Recorder(Q_DIGITS, models=pool.get)
    sids = [new_call_sid() for _ in range(12)]
    audio = silence(300) + KO_357 + silence(1200)

    async def scenario(url, server):
        await asyncio.gather(*(play_stream(url, TOKEN, audio, call_sid=s, realtime=False) for s in sids))
        return server.stats

    stats = _serve(rec, scenario, settings=StreamSettings())
    texts = {e.recognition.text for e in rec.utterances()}
    assert stats.streams == 12 and len(rec.utterances()) == 12
    assert len(texts) == 1  # same audio, same words, whichever thread decoded it
    assert all(len(rec.utterances(s)) == 1 for s in sids)


# --- load shedding ---------------------------------------------------------------------------------

TONE = b"".join(int(8000 if (i // 10) % 2 else -8000).to_bytes(2, "little", signed=True) for i in range(8000))


async def _until(condition, what: str):
    """Wait (bounded) for the server to reach a state; the test asserts order, not speed."""
    for _ in range(3000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the server never got to: {what}")


def test_a_stream_beyond_the_limit_is_refused_and_handed_to_on_refused():
    rec = Recorder(Q_DIGITS, models=lambda lang: None)
    first, second, third = new_call_sid(), new_call_sid(), new_call_sid()

    async def scenario(url, server):
        release = asyncio.Event()
        audio = silence(100) + TONE + silence(600)
        a = asyncio.create_task(play_stream(url, TOKEN, audio, call_sid=first, realtime=False, hold=release))
        await _until(lambda: len(rec.utterances(first)) == 1, "the first call's answer")
        # The second call speaks too, but the server holds its one stream: refused at the start.
        b = await play_stream(url, TOKEN, audio, call_sid=second, realtime=False, hold=asyncio.Event())
        refused = (server.stats.active_streams, server.stats.refused_streams)
        release.set()
        a = await a
        await _until(lambda: server.stats.active_streams == 0, "the first stream's end")
        c = await play_stream(url, TOKEN, audio, call_sid=third, realtime=False)  # a slot is free again
        return a, b, c, refused, server.stats

    a, b, c, refused, stats = _serve(rec, scenario, listener_factory=FakeListener, max_streams=1)
    assert refused == (1, 1)
    assert b.close_code == 1013 and a.close_code == c.close_code == 1000
    assert rec.kinds(second) == ["refused"]  # nothing recognised, no question asked
    assert [e.recognition.text for e in rec.utterances(first)] == ["50"]
    assert [e.recognition.text for e in rec.utterances(third)] == ["50"]
    assert (stats.streams, stats.refused_streams, stats.shed_streams, stats.callback_errors) == (2, 1, 0, 0)


def test_a_refused_stream_without_on_refused_is_still_closed():
    rec = Recorder(Q_DIGITS, models=lambda lang: None)
    handlers = rec.handlers()
    handlers.on_refused = None

    async def main():
        server = MediaServer(handlers, auth_token=TOKEN, listener_factory=FakeListener, max_streams=1)
        server.stats.active_streams = 1  # as if another call held the one stream
        await server.start("127.0.0.1", 0)
        try:
            return await play_stream(f"ws://127.0.0.1:{server.port}/voice/stream", TOKEN, silence(100) + TONE,
                                     realtime=False, hold=asyncio.Event()), server.stats
        finally:
            await server.stop()
            server.close()

    played, stats = asyncio.run(main())
    assert played.close_code == 1013 and stats.refused_streams == 1 and rec.events == []


def _slow_listeners(slow_sids: set, seconds: float, stuck: threading.Event | None = None):
    """FakeListeners whose calls in *slow_sids* take *seconds* (or until *stuck* is set) to decode
    each batch of an answer: a server short of CPU, for those calls."""
    class SlowListener(FakeListener):
        @property
        def listening(self) -> bool:
            return self.voiced > 0

        def feed(self, pcm):
            if self.voiced and self.call_sid in slow_sids:
                if stuck is not None:
                    stuck.wait(60)
                else:
                    time.sleep(seconds)
            return super().feed(pcm)

    return SlowListener


class HandClock(ServerClock):
    """A fake of the server's clock: time moves only when the test advances it, so a shedding
    test asserts the rule, not how fast a loaded machine runs."""

    def __init__(self):
        self.now = 1000.0
        self._sleepers: list[tuple[float, asyncio.Future]] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        wake = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.now + seconds, wake))
        await wake

    def waiting(self) -> int:
        return sum(not wake.done() for _, wake in self._sleepers)

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for until, wake in self._sleepers:
            if until <= self.now and not wake.done():
                wake.set_result(None)


def test_a_stream_whose_recognition_falls_behind_is_shed_at_once_and_the_others_go_on():
    rec = Recorder(Q_DIGITS, models=lambda lang: None)
    slow, fast = new_call_sid(), new_call_sid()
    clock, stuck = HandClock(), threading.Event()

    async def scenario(url, server):
        audio = silence(200) + TONE + silence(600)
        slow_play = asyncio.create_task(play_stream(url, TOKEN, audio, call_sid=slow,
                                                    hold=asyncio.Event()))
        await _until(lambda: rec.kinds(slow) == ["speech_started"] and clock.waiting() == 1,
                     "the slow call's answer stuck in recognition")
        # The other call is recognised meanwhile, on the other thread, however long that takes.
        kept = await play_stream(url, TOKEN, audio, call_sid=fast, realtime=False)
        await _until(lambda: rec.kinds(fast) == ["speech_started", "utterance"], "the other call's answer")
        assert clock.waiting() == 1 and not slow_play.done()  # nothing was shed before its time
        clock.advance(1.001)  # the stuck batch has now waited longer than shed_after
        shed = await slow_play
        stuck.set()
        return (shed, kept), server.stats

    (shed, kept), stats = _serve(rec, scenario, listener_factory=_slow_listeners({slow}, 0, stuck), workers=2,
                                 shed_after_ms=1000, clock=clock)
    assert shed.close_code == 1013 and kept.close_code == 1000
    assert rec.kinds(slow) == ["speech_started", "refused"]  # the answer it was hearing is dropped
    assert rec.kinds(fast) == ["speech_started", "utterance"]
    assert (stats.shed_streams, stats.refused_streams, stats.streams, stats.callback_errors) == (1, 0, 2, 0)
    assert stats.active_streams == 0


def test_no_shedding_when_it_is_off():
    rec = Recorder(Q_DIGITS, models=lambda lang: None)
    sid = new_call_sid()

    async def scenario(url, server):
        return await play_stream(url, TOKEN, silence(200) + TONE[:3200] + silence(400), call_sid=sid), server.stats

    played, stats = _serve(rec, scenario, listener_factory=_slow_listeners({sid}, 0.2))
    assert played.close_code == 1000 and stats.shed_streams == 0
    assert rec.kinds(sid) == ["speech_started", "utterance"]  # late, but heard


def test_a_late_batch_marks_the_server_behind_and_new_streams_wait():
    clock = HandClock()
    server = MediaServer(Recorder(None, models=lambda lang: None).handlers(), auth_token=TOKEN,
                         shed_after_ms=60_000, clock=clock)
    server.recognised(59.0)  # within the bound
    assert server.refusal() is None
    server.recognised(61.0)
    assert server.refusal() == "recognition is behind"
    clock.advance(59.9)
    assert server.refusal() == "recognition is behind"
    clock.advance(0.2)  # as long as the bound has passed since: new streams are welcome again
    assert server.refusal() is None
    off = MediaServer(Recorder(None, models=lambda lang: None).handlers(), auth_token=TOKEN)
    off.recognised(3600.0)  # shedding off: never behind
    assert off.refusal() is None


def test_with_shedding_the_oldest_stream_is_recognised_first():
    handlers = Recorder(None, models=lambda lang: None).handlers()
    shedding = MediaServer(handlers, auth_token=TOKEN, shed_after_ms=1000)
    assert [shedding.admitted() for _ in range(3)] == [1, 2, 3]
    assert {MediaServer(handlers, auth_token=TOKEN).admitted() for _ in range(3)} == {0}  # off: first come first served


def test_the_recognition_pool_takes_work_by_priority():
    from ivr.voice.media_server import RecognitionPool

    pool = RecognitionPool(1)
    gate, ran = threading.Event(), []
    busy = pool.submit(0, gate.wait)  # holds the one thread while the rest queue up
    work = [pool.submit(priority, ran.append, name) for priority, name in
            ((3, "newest"), (1, "oldest"), (2, "middle"), (1, "oldest again"))]
    skipped = pool.submit(1, ran.append, "cancelled")
    assert skipped.cancel()
    gate.set()
    for future in [busy, *work]:
        future.result(timeout=30)
    assert ran == ["oldest", "oldest again", "middle", "newest"]
    failing = pool.submit(0, int, "not a number")
    with pytest.raises(ValueError):
        failing.result(timeout=30)
    gate.clear()
    pool.submit(0, gate.wait)
    pending = pool.submit(0, ran.append, "never")
    threading.Timer(0.2, gate.set).start()
    pool.shutdown()  # the running work finishes, the waiting work is cancelled
    assert pending.cancelled() and "never" not in ran


def test_the_limits_are_checked():
    handlers = Recorder(None, models=lambda lang: None).handlers()
    with pytest.raises(ValueError, match="max_streams"):
        MediaServer(handlers, auth_token=TOKEN, max_streams=-1)
    with pytest.raises(ValueError, match="shed_after_ms"):
        MediaServer(handlers, auth_token=TOKEN, shed_after_ms=50)
    server = MediaServer(handlers, auth_token=TOKEN, max_streams=2)
    server.stats.active_streams = 1
    assert server.refusal() is None
    server.stats.active_streams = 2
    assert server.refusal() == "2 streams, the limit"
    assert MediaServer(handlers, auth_token=TOKEN).refusal() is None  # no limit by default


def fake_handlers_factory(config):
    """A handlers factory as IVR_MEDIA_HANDLERS names it (module:factory)."""
    return Recorder(None, models=lambda lang: None).handlers()


def not_handlers_factory(config):
    return {"questions": None}


@pytest.mark.parametrize("env, message", [
    ({"IVR_MEDIA_HANDLERS": "no-colon"}, "module:factory"),
    ({"IVR_MEDIA_HANDLERS": "tests.speech.test_media_server:not_handlers_factory"}, "not ivr.voice.media_server.Handlers"),
    ({"IVR_MEDIA_HANDLERS": "tests.speech.test_media_server:fake_handlers_factory",
      "IVR_STREAM_TRAILING_SILENCE_MS": "20"}, "IVR_STREAM_TRAILING_SILENCE_MS must be an integer from 100 to 5000"),
    ({"IVR_MEDIA_HANDLERS": "tests.speech.test_media_server:fake_handlers_factory",
      "IVR_STREAM_ALTERNATIVES": "many"}, "IVR_STREAM_ALTERNATIVES must be an integer"),
    ({"IVR_MEDIA_HANDLERS": "tests.speech.test_media_server:fake_handlers_factory",
      "IVR_STREAM_DECODED_SILENCE_MS": "-20"}, "IVR_STREAM_DECODED_SILENCE_MS must be an integer from 0 to 5000"),
    ({"IVR_MEDIA_HANDLERS": "tests.speech.test_media_server:fake_handlers_factory",
      "IVR_STREAM_DECODED_SILENCE_MS": "0.2s"}, "IVR_STREAM_DECODED_SILENCE_MS must be an integer"),
    ({"IVR_MEDIA_MAX_STREAMS": "-1"}, "IVR_MEDIA_MAX_STREAMS must be an integer from 0"),
    ({"IVR_MEDIA_MAX_STREAMS": "lots"}, "IVR_MEDIA_MAX_STREAMS must be an integer"),
    ({"IVR_MEDIA_SHED_AFTER_MS": "50"}, "IVR_MEDIA_SHED_AFTER_MS must be 0 (never) or from 100 to 60000"),
    ({"IVR_MEDIA_SHED_AFTER_MS": "1.5s"}, "IVR_MEDIA_SHED_AFTER_MS must be an integer"),
])
def test_media_server_command_refuses_bad_settings(env, message, monkeypatch, tmp_path):
    from click.testing import CliRunner

    from ivr.cli import cli

    monkeypatch.setenv("IVR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("IVR_TWILIO_AUTH_TOKEN", TOKEN)
    for key in ("IVR_MEDIA_HANDLERS", "IVR_STREAM_TRAILING_SILENCE_MS", "IVR_STREAM_ALTERNATIVES",
                "IVR_STREAM_DECODED_SILENCE_MS", "IVR_MEDIA_MAX_STREAMS", "IVR_MEDIA_SHED_AFTER_MS"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(cli, ["media-server", "--port", "0"])
    assert result.exit_code != 0
    assert message in result.output


def test_media_server_settings_come_from_the_configuration(monkeypatch, tmp_path):
    from ivr.config import load_config
    from ivr.voice.media_server import load_handlers, settings_from_config

    monkeypatch.setenv("IVR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("IVR_STREAM_TRAILING_SILENCE_MS", "900")
    monkeypatch.setenv("IVR_STREAM_ALTERNATIVES", "0")
    monkeypatch.setenv("IVR_STREAM_DECODED_SILENCE_MS", "600")
    monkeypatch.setenv("IVR_MEDIA_PORT", "9001")
    config = load_config()
    settings = settings_from_config(config)
    assert (settings.trailing_silence_ms, settings.max_alternatives, settings.decoded_silence_ms,
            config.media_port) == (900, 0, 600, 9001)
    monkeypatch.delenv("IVR_STREAM_DECODED_SILENCE_MS")
    assert settings_from_config(load_config()).decoded_silence_ms == StreamSettings().decoded_silence_ms == 200
    handlers = load_handlers("tests.speech.test_media_server:fake_handlers_factory", config)
    assert handlers.questions("CA" + "0" * 32) is None


def test_the_load_settings_and_their_defaults(monkeypatch, tmp_path):
    from ivr.config import load_config
    from ivr.voice.media_server import STREAMS_PER_CORE, max_streams_from_config

    monkeypatch.setenv("IVR_DATA_DIR", str(tmp_path))
    for key in ("IVR_MEDIA_MAX_STREAMS", "IVR_MEDIA_SHED_AFTER_MS"):
        monkeypatch.delenv(key, raising=False)
    config = load_config()
    assert config.media_shed_after_ms == 1000
    assert max_streams_from_config(config, workers=2) == 2 * STREAMS_PER_CORE == 50  # per core
    monkeypatch.setenv("IVR_MEDIA_MAX_STREAMS", "0")
    monkeypatch.setenv("IVR_MEDIA_SHED_AFTER_MS", "0")
    config = load_config()
    assert (max_streams_from_config(config, workers=2), config.media_shed_after_ms) == (0, 0)  # no limit, no shedding
    monkeypatch.setenv("IVR_MEDIA_MAX_STREAMS", "7")
    assert max_streams_from_config(load_config(), workers=2) == 7


@speech
def test_question_moved_on_before_the_caller_spoke_is_followed(pool):
    """The dialog moved on (keys pressed, webhook) after the stream started: the question read at
    the voice onset is the one the answer is recognised and reported with."""
    asked = []

    def questions(call_sid):
        asked.append(call_sid)
        return Q_DIGITS if len(asked) == 1 else Q_37

    rec = Recorder(models=pool.get)
    rec.question = questions
    sid = new_call_sid()

    async def scenario(url, server):
        return await play_stream(url, TOKEN, silence(400) + KO_357 + silence(1500), call_sid=sid, realtime=False)

    _serve(rec, scenario)
    [event] = rec.utterances(sid)
    assert event.question == Q_37 and _words_ok(event.recognition, ("삼", "칠"))
    assert len(asked) >= 2


def test_a_question_needs_a_grammar():
    with pytest.raises(ValueError):
        Question(language="ko", grammar=(), step="value", seq=1)


def test_signature_check_can_be_turned_off_for_development():
    rec = Recorder(Q_DIGITS, models=lambda lang: None)

    async def main():
        server = MediaServer(rec.handlers(), auth_token=None, validate_signatures=False,
                             listener_factory=FakeListener)
        await server.start("127.0.0.1", 0)
        try:
            played = await play_stream(f"ws://127.0.0.1:{server.port}/voice/stream", None, silence(100),
                                       realtime=False, signature="")
            return played.status, server.stats.streams
        finally:
            await server.stop()
            server.close()

    assert asyncio.run(main()) == (None, 1)
    with pytest.raises(ValueError, match="auth token"):
        MediaServer(rec.handlers(), auth_token=None)
