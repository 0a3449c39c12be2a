"""WAV analysis for call tests (numpy only).

A recording is cut into windows (100 ms by default); each window gets its RMS and its
dominant frequency (peak of a Hann-windowed FFT, DC and < 50 Hz ignored, parabolic
interpolation). "The tone is present" means: the dominant frequency of a window lies
within `tolerance_hz` of the tone and the window is not silent (RMS >= min_rms).

    from audio import assert_tone, assert_no_tone, assert_silent, assert_music, describe

    assert_tone(wav, 1000)                      # >= 70% of windows carry 1000 Hz
    assert_no_tone(wav, 440)                    # <= 10% of windows carry 440 Hz
    assert_music(wav, not_freqs=[440, 1000])    # loud, and mostly not those tones
    print(describe(wav, freqs=[440, 1000]))     # e.g. "2.00 s; 1000 Hz in 93% of 100 ms windows; ..."

Every assert_* helper raises AssertionError with describe() of the file, so a failure
says what was actually heard.

WAV files written by PJSIP's recorder get their final header only when the recorder
is destroyed (pj_phones.py's record_stop does that and pumps events before replying);
read_wav() still copes with a header whose sizes were never filled in (it then takes
every byte after the "data" chunk header as samples).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_WINDOW_MS = 100
DEFAULT_MIN_RMS = 100.0  # 16-bit samples; PCMU silence decodes to ~0-8
LOUD_RMS = 300.0


# --------------------------------------------------------------------------- reading


def read_wav(path) -> tuple[int, np.ndarray]:
    """(sample_rate, mono float64 samples in 16-bit units). PCM 16-bit (and 8-bit) only."""
    raw = Path(path).read_bytes()
    if len(raw) < 12 or raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise ValueError(f"{path}: not a RIFF/WAVE file ({len(raw)} bytes)")
    pos = 12
    fmt = None
    data = None
    while pos + 8 <= len(raw):
        cid = raw[pos:pos + 4]
        size = struct.unpack("<I", raw[pos + 4:pos + 8])[0]
        body_start = pos + 8
        if cid == b"fmt ":
            fmt = struct.unpack("<HHIIHH", raw[body_start:body_start + 16])
        elif cid == b"data":
            end = body_start + size
            if size == 0 or end > len(raw):  # header not finalized: take the rest
                end = len(raw)
            data = raw[body_start:end]
            break
        pos = body_start + size + (size & 1)
    if fmt is None or data is None:
        raise ValueError(f"{path}: no fmt/data chunk ({len(raw)} bytes)")
    audio_format, channels, rate, _byte_rate, _align, bits = fmt
    if audio_format not in (1, 0xFFFE):
        raise ValueError(f"{path}: WAV format {audio_format} is not PCM")
    if bits == 16:
        n = len(data) // 2 * 2
        x = np.frombuffer(data[:n], dtype="<i2").astype(np.float64)
    elif bits == 8:
        x = (np.frombuffer(data, dtype=np.uint8).astype(np.float64) - 128.0) * 256.0
    else:
        raise ValueError(f"{path}: {bits}-bit samples not supported")
    if channels > 1:
        x = x[: len(x) // channels * channels].reshape(-1, channels).mean(axis=1)
    return rate, x


# --------------------------------------------------------------------------- analysis


@dataclass
class Window:
    start_s: float
    rms: float
    freq: float | None  # None for a silent window (rms < min_rms)


def windows(path, window_ms=DEFAULT_WINDOW_MS, min_rms=DEFAULT_MIN_RMS, skip_ms=0) -> list[Window]:
    rate, x = read_wav(path)
    n = max(1, int(rate * window_ms / 1000))
    start = int(rate * skip_ms / 1000)
    hann = np.hanning(n)
    freqs = np.fft.rfftfreq(n, 1.0 / rate)
    low = np.searchsorted(freqs, 50.0)
    out = []
    for i in range(start, len(x) - n + 1, n):
        w = x[i:i + n]
        rms = float(np.sqrt(np.mean(w * w)))
        f = None
        if rms >= min_rms:
            spec = np.abs(np.fft.rfft((w - w.mean()) * hann))
            k = int(np.argmax(spec[low:])) + low
            f = float(freqs[k])
            if 0 < k < len(spec) - 1:  # parabolic interpolation of the peak
                a, b, c = spec[k - 1], spec[k], spec[k + 1]
                den = a - 2 * b + c
                if den != 0:
                    f += 0.5 * (a - c) / den * (freqs[1] - freqs[0])
        out.append(Window(i / rate, rms, f))
    return out


def tone_windows(path, freq_hz, window_ms=DEFAULT_WINDOW_MS, tolerance_hz=40,
                 min_rms=DEFAULT_MIN_RMS, skip_ms=0) -> float:
    """Fraction (0..1) of windows whose dominant frequency is within tolerance of freq_hz."""
    ws = windows(path, window_ms, min_rms, skip_ms)
    if not ws:
        return 0.0
    hit = sum(1 for w in ws if w.freq is not None and abs(w.freq - freq_hz) <= tolerance_hz)
    return hit / len(ws)


def loud_fraction(path, threshold=LOUD_RMS, window_ms=DEFAULT_WINDOW_MS, skip_ms=0) -> float:
    """Fraction (0..1) of windows whose RMS is at least `threshold` (16-bit units)."""
    ws = windows(path, window_ms, min_rms=0, skip_ms=skip_ms)
    if not ws:
        return 0.0
    return sum(1 for w in ws if w.rms >= threshold) / len(ws)


def rms(path, skip_ms=0) -> float:
    rate, x = read_wav(path)
    x = x[int(rate * skip_ms / 1000):]
    return float(np.sqrt(np.mean(x * x))) if len(x) else 0.0


def duration_s(path) -> float:
    rate, x = read_wav(path)
    return len(x) / rate


def dominant_frequencies(path, window_ms=DEFAULT_WINDOW_MS, min_rms=DEFAULT_MIN_RMS, skip_ms=0,
                         bucket_hz=20) -> list[tuple[float, float]]:
    """[(frequency, fraction of windows)] most common first; silent windows are reported as
    frequency 0.0. Frequencies are rounded to bucket_hz."""
    ws = windows(path, window_ms, min_rms, skip_ms)
    if not ws:
        return []
    counts: dict[float, int] = {}
    for w in ws:
        key = 0.0 if w.freq is None else float(round(w.freq / bucket_hz) * bucket_hz)
        counts[key] = counts.get(key, 0) + 1
    return sorted(((f, c / len(ws)) for f, c in counts.items()), key=lambda t: -t[1])


def describe(path, freqs=(), window_ms=DEFAULT_WINDOW_MS, tolerance_hz=40, skip_ms=0) -> str:
    """One-paragraph summary: duration, RMS, per-tone fractions, the most common peaks."""
    try:
        ws = windows(path, window_ms, DEFAULT_MIN_RMS, skip_ms)
    except (OSError, ValueError) as e:
        return f"{path}: unreadable ({e})"
    if not ws:
        return f"{path}: no complete {window_ms} ms window (file too short)"
    parts = [f"{Path(path).name}: {len(ws) * window_ms / 1000:.2f} s in {len(ws)} windows of {window_ms} ms"]
    rmss = np.array([w.rms for w in ws])
    parts.append(f"RMS median {np.median(rmss):.0f} (max {rmss.max():.0f}), "
                 f"loud (>= {LOUD_RMS:.0f}) in {np.mean(rmss >= LOUD_RMS):.0%}, "
                 f"silent in {np.mean(rmss < DEFAULT_MIN_RMS):.0%}")
    for f in freqs:
        hits = [w.freq for w in ws if w.freq is not None and abs(w.freq - f) <= tolerance_hz]
        if hits:
            parts.append(f"{np.median(hits):.0f} Hz (~{f} Hz) in {len(hits) / len(ws):.0%} of windows")
        else:
            parts.append(f"{f} Hz in 0% of windows")
    top = dominant_frequencies(path, window_ms, DEFAULT_MIN_RMS, skip_ms)[:5]
    parts.append("peaks: " + ", ".join(
        (f"silence {frac:.0%}" if fr == 0 else f"{fr:.0f} Hz {frac:.0%}") for fr, frac in top))
    return "; ".join(parts)


# --------------------------------------------------------------------------- assertions


def assert_tone(path, freq_hz, min_fraction=0.7, tolerance_hz=40, skip_ms=0, others=()) -> float:
    """The tone is the dominant frequency in at least min_fraction of the windows."""
    frac = tone_windows(path, freq_hz, tolerance_hz=tolerance_hz, skip_ms=skip_ms)
    if frac < min_fraction:
        raise AssertionError(f"expected {freq_hz} Hz in >= {min_fraction:.0%} of windows, got {frac:.0%}: "
                             + describe(path, (freq_hz, *others), skip_ms=skip_ms))
    return frac


def assert_no_tone(path, freq_hz, max_fraction=0.1, tolerance_hz=40, skip_ms=0, others=()) -> float:
    frac = tone_windows(path, freq_hz, tolerance_hz=tolerance_hz, skip_ms=skip_ms)
    if frac > max_fraction:
        raise AssertionError(f"expected {freq_hz} Hz in <= {max_fraction:.0%} of windows, got {frac:.0%}: "
                             + describe(path, (freq_hz, *others), skip_ms=skip_ms))
    return frac


def assert_silent(path, threshold=LOUD_RMS, max_loud_fraction=0.1, skip_ms=0, freqs=()) -> float:
    frac = loud_fraction(path, threshold, skip_ms=skip_ms)
    if frac > max_loud_fraction:
        raise AssertionError(f"expected silence (RMS >= {threshold} in <= {max_loud_fraction:.0%} of windows), "
                             f"got {frac:.0%}: " + describe(path, freqs, skip_ms=skip_ms))
    return frac


def assert_loud(path, threshold=LOUD_RMS, min_fraction=0.7, skip_ms=0, freqs=()) -> float:
    frac = loud_fraction(path, threshold, skip_ms=skip_ms)
    if frac < min_fraction:
        raise AssertionError(f"expected sound (RMS >= {threshold} in >= {min_fraction:.0%} of windows), "
                             f"got {frac:.0%}: " + describe(path, freqs, skip_ms=skip_ms))
    return frac


def assert_music(path, not_freqs=(), min_loud_fraction=0.6, max_tone_fraction=0.2, threshold=LOUD_RMS,
                 skip_ms=0):
    """'Music' (e.g. music on hold): loud enough, and not any of the given tones (the parties'
    own test tones) for more than max_tone_fraction of the windows."""
    assert_loud(path, threshold, min_loud_fraction, skip_ms=skip_ms, freqs=not_freqs)
    for f in not_freqs:
        assert_no_tone(path, f, max_tone_fraction, skip_ms=skip_ms, others=[x for x in not_freqs if x != f])
