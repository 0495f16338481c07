"""Audio decoding: formats, resampling, normalisation, and refusal of bad input."""
from __future__ import annotations

import io
import math
import shutil
import struct
import subprocess
import wave

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from speech.audio import AudioError, decode_audio, parse_wav_header, pcm_seconds, pcm_to_wav

import warnings
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop


def tone_pcm(seconds=1.0, rate=8000, amp=8000, freq=440.0) -> bytes:
    n = int(seconds * rate)
    return b"".join(struct.pack("<h", int(amp * math.sin(2 * math.pi * freq * i / rate))) for i in range(n))


def wav_bytes(pcm: bytes, rate=8000, width=2, channels=1) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(pcm)
    return buf.getvalue()


def mulaw_wav(pcm16: bytes, rate=8000) -> bytes:
    """A WAVE_FORMAT_MULAW file, as Twilio/telephony recorders write it."""
    data = audioop.lin2ulaw(pcm16, 2)
    fmt = struct.pack("<HHIIHHH", 7, 1, rate, rate, 1, 8, 0)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"fact" + struct.pack("<II", 4, len(data)) + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def peak(pcm: bytes) -> int:
    return audioop.max(pcm, 2)


def test_pcm16_8k_upsampled_and_padded():
    pcm = decode_audio(wav_bytes(tone_pcm(1.0)))
    assert pcm_seconds(pcm) == pytest.approx(1.0 + 0.6, abs=0.01)
    assert pcm[:9600] == b"\0" * 9600  # 300 ms of silence at 16 kHz
    assert pcm[-9600:] == b"\0" * 9600


def test_no_padding_and_other_target_rate():
    pcm = decode_audio(wav_bytes(tone_pcm(1.0, rate=16000), rate=16000), target_rate=8000, pad_ms=0)
    assert pcm_seconds(pcm, 8000) == pytest.approx(1.0, abs=0.01)


def test_stereo_and_8bit_and_24bit():
    mono = tone_pcm(0.5, rate=16000)
    stereo = audioop.tostereo(mono, 2, 1, 1)
    assert pcm_seconds(decode_audio(wav_bytes(stereo, 16000, channels=2), pad_ms=0)) == pytest.approx(0.5, abs=0.01)
    u8 = audioop.bias(audioop.lin2lin(mono, 2, 1), 1, 128)  # 8-bit WAV is unsigned
    out8 = decode_audio(wav_bytes(u8, 16000, width=1), pad_ms=0, normalise=False)
    assert abs(peak(out8) - peak(mono)) < 400  # not shifted by the unsigned bias
    out24 = decode_audio(wav_bytes(audioop.lin2lin(mono, 2, 3), 16000, width=3), pad_ms=0, normalise=False)
    assert abs(peak(out24) - peak(mono)) < 5


def test_mulaw_wav():
    src = tone_pcm(1.0)
    out = decode_audio(mulaw_wav(src), pad_ms=0, normalise=False)
    assert pcm_seconds(out) == pytest.approx(1.0, abs=0.01)
    assert abs(peak(out) - peak(src)) < peak(src) * 0.1


@pytest.mark.skipif(not shutil.which("ffmpeg"), reason="ffmpeg not installed")
def test_mp3(tmp_path):
    src = tmp_path / "t.wav"
    src.write_bytes(wav_bytes(tone_pcm(1.5)))
    mp3 = tmp_path / "t.mp3"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(src), str(mp3)], check=True)
    out = decode_audio(mp3.read_bytes(), pad_ms=0)
    assert pcm_seconds(out) == pytest.approx(1.5, abs=0.1)
    # Corrupt MP3 body: refused with AudioError, not a crash.
    with pytest.raises(AudioError):
        decode_audio(mp3.read_bytes()[:4] + b"\0" * 3000)


@pytest.mark.skipif(not shutil.which("ffmpeg"), reason="ffmpeg not installed")
def test_long_mp3_refused(tmp_path):
    mp3 = tmp_path / "long.mp3"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono",
                    "-t", "30", "-b:a", "8k", str(mp3)], check=True)
    with pytest.raises(AudioError, match="too long"):
        decode_audio(mp3.read_bytes(), max_seconds=10)


def test_quiet_caller_normalised():
    quiet = tone_pcm(1.0, amp=1000)  # about -30 dBFS
    out = decode_audio(wav_bytes(quiet), pad_ms=0)
    assert peak(out) == pytest.approx(32767 * 10 ** (-1 / 20), rel=0.02)  # raised to -1 dBFS
    quieter = tone_pcm(1.0, amp=300)  # about -41 dBFS: needs 40 dB, gets the 30 dB maximum
    assert peak(decode_audio(wav_bytes(quieter), pad_ms=0)) == pytest.approx(300 * 10 ** 1.5, rel=0.02)


def test_whisper_boost_is_capped():
    faint = tone_pcm(1.0, amp=30)  # about -61 dBFS... below the silence floor: untouched
    assert peak(decode_audio(wav_bytes(faint), pad_ms=0)) <= 40
    soft = tone_pcm(1.0, amp=60)  # about -55 dBFS: boosted, but by at most 30 dB
    assert peak(decode_audio(wav_bytes(soft), pad_ms=0)) <= 60 * 10 ** (30 / 20) + 50


def test_silence_stays_silent():
    out = decode_audio(wav_bytes(b"\0\0" * 8000), pad_ms=0)
    assert peak(out) == 0


def test_loud_audio_not_attenuated():
    loud = tone_pcm(0.5, amp=32000)
    out = decode_audio(wav_bytes(loud, 16000), pad_ms=0)
    assert abs(peak(out) - peak(loud)) < 10


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"hello world, this is not audio at all" * 10, "not audio"),
    (b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00", "fmt chunk is truncated"),
    (b"RIFF\x24\x00\x00\x00WAVEfmt ", "no fmt chunk"),
    (b"RIFF\x04\x00\x00\x00WAVE", "no fmt chunk"),
])
def test_bad_input_rejected(data, message):
    with pytest.raises(AudioError, match=message):
        decode_audio(data)


def test_truncated_wav():
    full = wav_bytes(tone_pcm(2.0))
    with pytest.raises(AudioError, match="truncated"):
        decode_audio(full[: len(full) // 2])


def test_header_claiming_hours_refused_cheaply():
    header = bytearray(wav_bytes(tone_pcm(0.1)))
    hours = 3 * 3600 * 8000 * 2
    data_at = header.index(b"data")
    header[data_at + 4:data_at + 8] = struct.pack("<I", hours)
    with pytest.raises(AudioError, match="declares 10800.0 s"):
        decode_audio(bytes(header))


def test_long_wav_refused_before_decoding():
    data = wav_bytes(b"\0\0" * 8000 * 130)
    with pytest.raises(AudioError, match="too long: 130.0 s"):
        decode_audio(data)
    assert decode_audio(data, max_seconds=200)


def test_zero_length_wav():
    with pytest.raises(AudioError, match="zero-length"):
        decode_audio(wav_bytes(b""))


def test_streaming_writer_size_placeholder():
    data = bytearray(wav_bytes(tone_pcm(0.5)))
    at = data.index(b"data")
    data[at + 4:at + 8] = b"\xff\xff\xff\xff"
    assert pcm_seconds(decode_audio(bytes(data), pad_ms=0)) == pytest.approx(0.5, abs=0.01)
    assert parse_wav_header(bytes(data)).declared_size == 0xFFFFFFFF


def test_pcm_to_wav_roundtrip():
    pcm = tone_pcm(0.5, rate=16000)
    assert decode_audio(pcm_to_wav(pcm), pad_ms=0, normalise=False) == pcm


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_random_bytes_only_ever_audio_error(data):
    """Garbage never crashes with anything but AudioError (or decodes, if it happens to be audio)."""
    try:
        decode_audio(data)
    except AudioError as exc:
        assert str(exc)


@settings(max_examples=40, deadline=None)
@given(st.binary(min_size=0, max_size=200))
def test_random_bytes_after_wav_header(tail):
    try:
        decode_audio(wav_bytes(tone_pcm(0.05))[:44] + tail)
    except AudioError:
        pass


def test_fsdd_tight_clip_padded_and_quiet_speaker():
    """Real 8 kHz clips: tightly trimmed, and the very quiet speaker 'theo' is raised."""
    from conftest import SHARED_SAMPLES
    clip = SHARED_SAMPLES / "fsdd" / "3_theo_0.wav"
    if not clip.exists():
        pytest.skip("shared speech samples missing")
    raw = clip.read_bytes()
    info = parse_wav_header(raw)
    assert info.sample_rate == 8000
    src_peak = peak(raw[info.data_offset:info.data_offset + info.data_size])
    out = decode_audio(raw)
    assert peak(out) > src_peak
    assert pcm_seconds(out) == pytest.approx(info.seconds + 0.6, abs=0.01)
