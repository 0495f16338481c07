"""Caller audio in, recognizer-ready PCM out: mono 16-bit little-endian at 16 kHz.

Input is untrusted (a Twilio recording, an upload): it is sniffed by magic bytes, WAV headers
are parsed here so the duration is known before anything is decoded (an hours-long or lying
header is refused cheaply), PCM / μ-law / A-law WAV is decoded in-process with pydub/audioop,
and only other containers (MP3, OGG, FLAC, float WAV...) go through ffmpeg, with ffmpeg told
to stop after ``max_seconds`` so a long file cannot cost a long decode.
"""
from __future__ import annotations

import io
import shutil
import struct
import warnings
from dataclasses import dataclass

from pydub import AudioSegment
from pydub.exceptions import CouldntDecodeError

with warnings.catch_warnings():
    # audioop is deprecated in 3.11-3.12 (pyproject pulls audioop-lts on 3.13); pydub needs it too.
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

SAMPLE_WIDTH = 2  # bytes: 16-bit PCM is what Vosk takes
PAD_MS = 300  # silence added at both ends: tightly trimmed clips lose their first phone otherwise
HEADROOM_DB = 1.0  # normalise peaks to -1 dBFS
MAX_GAIN_DB = 30.0  # never boost more than this: a whisper becomes speech, hiss stays hiss
SILENCE_PEAK_DBFS = -55.0  # peak below this: silence/noise floor, left as it is

_WAVE_PCM, _WAVE_FLOAT, _WAVE_ALAW, _WAVE_MULAW, _WAVE_EXTENSIBLE = 1, 3, 6, 7, 0xFFFE


class AudioError(ValueError):
    """Audio from outside is empty, not audio, corrupt, truncated or too long."""


class AudioBackendMissing(RuntimeError):
    """This server lacks ffmpeg, needed for the caller's audio format (a setup problem)."""


@dataclass(frozen=True)
class WavInfo:
    format_tag: int
    channels: int
    sample_rate: int
    bits: int
    block_align: int
    data_offset: int
    data_size: int  # bytes actually present (whole frames), after the truncation check
    declared_size: int

    @property
    def seconds(self) -> float:
        return self.data_size / (self.block_align * self.sample_rate)


def pcm_seconds(pcm: bytes, sample_rate: int = 16000) -> float:
    """Duration of mono 16-bit PCM."""
    return len(pcm) / (SAMPLE_WIDTH * sample_rate)


def parse_wav_header(data: bytes) -> WavInfo:
    """Walk the RIFF chunks of a WAV file; raises AudioError if it is malformed or truncated."""
    if len(data) < 12 or data[:4] not in (b"RIFF", b"RIFX") or data[8:12] != b"WAVE":
        raise AudioError("not a WAV file")
    if data[:4] == b"RIFX":
        raise AudioError("big-endian WAV (RIFX) is not supported")
    pos, fmt = 12, None
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body = pos + 8
        if cid == b"fmt ":
            if size < 16 or body + 16 > len(data):
                raise AudioError("corrupt WAV file: fmt chunk is truncated")
            tag, channels, rate, _byte_rate, align, bits = struct.unpack("<HHIIHH", data[body:body + 16])
            if tag == _WAVE_EXTENSIBLE and size >= 40 and body + 26 <= len(data):
                tag = struct.unpack("<H", data[body + 24:body + 26])[0]  # sub-format GUID's first 2 bytes
            fmt = (tag, channels, rate, bits, align)
        elif cid == b"data":
            if fmt is None:
                raise AudioError("corrupt WAV file: data chunk before fmt chunk")
            tag, channels, rate, bits, align = fmt
            if not (1 <= channels <= 16) or not (1000 <= rate <= 384000) or align == 0:
                raise AudioError(f"corrupt WAV header: {channels} channel(s), {rate} Hz, block {align}")
            present = len(data) - body
            declared = size
            # Streaming writers (ffmpeg to a pipe, some recorders) leave 0 or 0xFFFFFFFF here.
            if size in (0, 0xFFFFFFFF) and present > 0:
                size = present
            elif size > present:
                declared_s = size / (align * rate)
                present_s = present / (align * rate)
                raise AudioError(
                    f"truncated or corrupt WAV file: header declares {declared_s:.1f} s of audio "
                    f"but only {present_s:.1f} s is present")
            size -= size % align
            return WavInfo(tag, channels, rate, bits, align, body, size, declared)
        pos = body + size + (size & 1)  # chunks are word-aligned
    if fmt is None:
        raise AudioError("truncated or corrupt WAV file: no fmt chunk")
    raise AudioError("truncated or corrupt WAV file: no data chunk")


def _sniff(data: bytes) -> str | None:
    """Container format from magic bytes; None for anything we do not accept as audio."""
    if data[:4] in (b"RIFF", b"RIFX") and data[8:12] == b"WAVE":
        return "wav"
    if data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return "mp3"
    if data[:4] == b"OggS":
        return "ogg"
    if data[:4] == b"fLaC":
        return "flac"
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"
    if data[4:8] == b"ftyp":
        return "mp4"
    if data[:6] == b"#!AMR\n":
        return "amr"
    return None


def _from_wav(data: bytes, info: WavInfo) -> AudioSegment:
    raw = data[info.data_offset:info.data_offset + info.data_size]
    if info.format_tag == _WAVE_PCM and info.bits in (8, 16, 24, 32):
        width = info.bits // 8
        if info.block_align != width * info.channels:
            raise AudioError(f"corrupt WAV header: block size {info.block_align} does not match "
                             f"{info.channels} channel(s) of {info.bits}-bit samples")
        if width == 1:
            raw = audioop.bias(raw, 1, -128)  # 8-bit WAV samples are unsigned
        return AudioSegment(data=raw, sample_width=width, frame_rate=info.sample_rate, channels=info.channels)
    if info.format_tag in (_WAVE_MULAW, _WAVE_ALAW) and info.bits == 8:
        # Telephone codecs (Twilio recordings are often 8 kHz μ-law): expand in-process.
        expand = audioop.ulaw2lin if info.format_tag == _WAVE_MULAW else audioop.alaw2lin
        return AudioSegment(data=expand(raw, 2), sample_width=2, frame_rate=info.sample_rate,
                            channels=info.channels)
    # Float, ADPCM, GSM...: let ffmpeg do it.
    return _via_ffmpeg(data, "wav", None)


def _via_ffmpeg(data: bytes, fmt: str | None, max_seconds: float | None) -> AudioSegment:
    if shutil.which("ffmpeg") is None:
        raise AudioBackendMissing(f"ffmpeg is needed to decode {fmt or 'this'} audio but is not installed")
    try:
        # -t bounds the work: a long file costs at most max_seconds (+1) of decoding.
        duration = None if max_seconds is None else max_seconds + 1.0
        return AudioSegment.from_file(io.BytesIO(data), format=fmt if fmt in ("mp3", "ogg", "flac", "wav") else None,
                                      duration=duration)
    except CouldntDecodeError as exc:
        raise AudioError(f"could not decode {fmt or 'the'} audio: the file is corrupt, "
                         f"truncated or not audio") from exc


def _normalise(seg: AudioSegment) -> AudioSegment:
    """Raise quiet callers to -1 dBFS peak, boost capped; silence/noise floor untouched."""
    peak = seg.max_dBFS
    if peak == float("-inf") or peak < SILENCE_PEAK_DBFS:
        return seg
    gain = min(-HEADROOM_DB - peak, MAX_GAIN_DB)
    if gain <= 0.1:
        return seg  # already loud enough; never attenuate (clipping is already baked in)
    return seg.apply_gain(gain)


def decode_audio(data: bytes, target_rate: int = 16000, *, max_seconds: float = 120.0,
                 pad_ms: int = PAD_MS, normalise: bool = True) -> bytes:
    """Decode a WAV/MP3/OGG/FLAC file into mono 16-bit little-endian PCM at *target_rate*.

    Telephone audio (8 kHz) is upsampled (small Vosk models refuse 8 kHz), quiet audio is
    normalised, and *pad_ms* of silence is added at both ends. Raises AudioError for bad input.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("decode_audio takes bytes")
    data = bytes(data)
    if not data:
        raise AudioError("empty audio: no bytes received")
    kind = _sniff(data)
    if kind is None:
        raise AudioError("not audio: unrecognised file format (expected WAV, MP3, OGG or FLAC)")
    if kind == "wav":
        info = parse_wav_header(data)
        if info.data_size == 0:
            raise AudioError("zero-length audio: the WAV file contains no samples")
        if info.seconds > max_seconds:
            raise AudioError(f"audio too long: {info.seconds:.1f} s, the limit is {max_seconds:.0f} s")
        seg = _from_wav(data, info)
    else:
        seg = _via_ffmpeg(data, kind, max_seconds)
        if seg.duration_seconds > max_seconds:
            raise AudioError(f"audio too long: over {max_seconds:.0f} s")
    if len(seg.raw_data) == 0 or seg.frame_count() == 0:
        raise AudioError("zero-length audio: the file decodes to no samples")
    seg = seg.set_sample_width(SAMPLE_WIDTH).set_channels(1)
    if normalise:
        seg = _normalise(seg)
    if seg.frame_rate != target_rate:
        seg = seg.set_frame_rate(target_rate)
    if pad_ms:
        pad = AudioSegment.silent(duration=pad_ms, frame_rate=target_rate).set_sample_width(SAMPLE_WIDTH)
        seg = pad + seg + pad
    return seg.raw_data


def pcm_to_wav(pcm: bytes, sample_rate: int = 16000) -> bytes:
    """Wrap mono 16-bit PCM in a WAV container (for storing review audio, tests)."""
    buf = io.BytesIO()
    AudioSegment(data=pcm, sample_width=SAMPLE_WIDTH, frame_rate=sample_rate, channels=1).export(buf, format="wav")
    return buf.getvalue()
