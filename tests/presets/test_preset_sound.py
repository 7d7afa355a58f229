"""Every shipped preset, rendered: regression on features, not bits (RMS envelope in 100 ms
windows, spectral centroid, pitch of a held note). Golden values in
tests/golden/preset_features.json; regenerate with UPDATE_GOLDEN=1 after an intended change and
read the diff. Also: every preset has 8 named macros, stays under the limiter's ceiling without
leaning on it, and is not silent."""

import json
import os

import numpy as np
import pytest

from helpers import compile_toml, fft_pitch, make_engine, render, spectral_centroid
from instrument.engine.events import NOTE_OFF, NOTE_ON
from live import REPO, TESTS

SR = 48000
PRESETS = sorted((REPO / "presets").glob("*.toml"))
GOLDEN = TESTS / "golden" / "preset_features.json"
CHORD = (48, 55, 60, 64)


def phrase():
    """A chord (held 1.5 s), then A4 alone (0.8 s), then silence to 5 s."""
    ev = [(k * 100, NOTE_ON, 0, n, 0.8) for k, n in enumerate(CHORD)]
    ev += [(int(1.5 * SR), NOTE_OFF, 0, n, 0.0) for n in CHORD]
    ev += [(int(2.5 * SR), NOTE_ON, 0, 69, 1.0), (int(3.3 * SR), NOTE_OFF, 0, 69, 0.0)]
    return sorted(ev)


def features(path):
    plan = compile_toml(path.read_text(), SR, 64)
    engine = make_engine(plan)
    out = render(engine, 5 * SR, phrase()).astype(np.float64)
    mono = out.mean(axis=1)
    hop = SR // 10
    rms_db = [20 * np.log10(np.sqrt(np.mean(mono[i:i + hop] ** 2)) + 1e-9)
              for i in range(0, len(mono), hop)]
    note = mono[int(2.7 * SR):int(3.2 * SR)]
    return {
        "rms_db": [round(v, 2) for v in rms_db],
        "centroid_chord_hz": round(spectral_centroid(mono[int(0.5 * SR):int(1.4 * SR)], SR), 1),
        "pitch_note_hz": round(fft_pitch(note, SR), 2),
        "peak": float(np.abs(out).max()),
        "limiter_samples": engine.limiter_engaged_samples,
        "macros": [m.name for m in plan.macros],
    }


@pytest.fixture(scope="module")
def golden():
    if GOLDEN.exists():
        return json.loads(GOLDEN.read_text())
    return {}


@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_preset_sounds_as_recorded(path, golden):
    got = features(path)
    if os.environ.get("UPDATE_GOLDEN"):
        golden[path.stem] = got
        GOLDEN.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
        return
    want = golden[path.stem]
    assert len(got["macros"]) == 8, got["macros"]
    assert got["peak"] <= 10 ** (-0.3 / 20) + 1e-6
    assert got["limiter_samples"] == 0  # presets must not lean on the safety limiter
    assert max(got["rms_db"][:15]) > -35  # audible while the chord sounds
    loud = [i for i, v in enumerate(want["rms_db"]) if v > -60]  # compare where there is sound
    diff = np.abs(np.array(got["rms_db"])[loud] - np.array(want["rms_db"])[loud])
    assert diff.max() < 1.0, (path.stem, diff.max())
    assert got["centroid_chord_hz"] == pytest.approx(want["centroid_chord_hz"], rel=0.05)
    assert got["pitch_note_hz"] == pytest.approx(want["pitch_note_hz"], rel=0.003)
