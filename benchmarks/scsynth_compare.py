"""instrument against SuperCollider's scsynth: the same patch and score, rendered offline by both.

The patch is presets/poly16.toml; the script reads its values from the file and refuses to run
if the preset's structure changed. Per voice, in both engines:

    2 band-limited saws (-7/+7 cents, level 0.35 each) -> sum -> resonant 2-pole low-pass, whose
    cutoff is 300 Hz moved up by ADSR 10/600/0.3/400 ms x 0.45 of the cutoff range -> VCA,
    ADSR 8/300/0.8/500 ms x gain 0.4 x velocity (amount 0.6) -> the same signal to L and R

    instrument                          scsynth (SynthDef written here as SynthDef file v2 bytes)
    saw (24-tap minBLEP), level 0.35    Saw.ar (band-limited) * 0.7 (SC's Saw is about +-0.5)
    fan-in sum into filt.in             BinaryOpUGen +
    svf_lowpass (TPT SVF, 12 dB/oct)    BLowPass.ar (RBJ biquad: the same bilinear-warped
                                        2-pole response as a TPT SVF low-pass), rq = 1/Q
    fenv -> cutoff in normalized units  EnvGen.kr (control rate, 64 samples) -> exp -> * 300:
      (log 20..20000 Hz): exact every     cutoff = 300 Hz * 1000**(0.45 * env), the same value;
      8 samples, linear between           BLowPass recomputes its coefficients once per block
    adsr (audio rate)                   EnvGen.ar (audio rate; --sc-amp-rate kr for .kr), doneAction 2
    vca: in * env * gain * velocity     * env * amp (amp = 0.4 * (0.4 + 0.6 * velocity) per note)
    output: mono into both channels     Out.ar(0, [sig, sig])
    + engine: voice allocation, limiter + server: node tree, synth per note (s_new / n_set gate 0)

Envelopes: both are linear attacks and exponential decays/releases that land exactly on their
goal: instrument aims 0.1 % of the travel past the goal, which is exactly SC's curve shape
with curve = -ln(1001) (-6.909), so the two envelope shapes are identical.

The score is a seeded 16-voice texture: 16 slots, each playing one note after another (0.25 to
1.6 s long, velocity 40-127, a key no other sounding note uses), the next note of a slot only
after the previous one's 500 ms release ended (+30 ms): at most 16 notes sound at once, release
tails included, so instrument (polyphony 16, steal oldest) never steals and scsynth never runs
more than 16 synths; about 15 sound on average. The same notes go to a MIDI file for
``instrument render`` and to an NRT score (OSC bundles) for ``scsynth -N``; times are whole
milliseconds in both (scsynth runs a bundle's commands at a control-block boundary, 64
samples = 1.3 ms; instrument applies events to the sample).

Each round renders 60 s and 600 s of music with each engine (interleaved; order alternates
between rounds), to float32 stereo WAV at 48 kHz, block 64, timing the whole command (both
write the same 46 MB of WAV per 100 s of audio). Start-up (Python, numba cache, synthdef load)
cancels in the marginal throughput
(d600 - d60) / (t600 - t60): seconds of audio per second of wall time, medians over rounds.

    .venv/bin/python benchmarks/scsynth_compare.py                 # 3 rounds, ~1 min
    .venv/bin/python benchmarks/scsynth_compare.py --rounds 5 --tmp /dev/shm

Needs scsynth: apt-get install -y --no-install-recommends supercollider-server
"""

from __future__ import annotations

import argparse
import heapq
import math
import os
import platform
import random
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import mido
import numpy as np

REPO = Path(__file__).resolve().parents[1]
PRESET = REPO / "presets" / "poly16.toml"
SAMPLE_RATE = 48000
BLOCK = 64
SYNTHDEF = "poly16"
START_MS = 10          # first note (the synthdef is received at 0)
TAIL_MARGIN_MS = 30    # gap between a note's release end and its slot's next note
KEYS = range(36, 84)   # C2..B5
INSTALL_HINT = ("scsynth not found: install it with "
                "`apt-get install -y --no-install-recommends supercollider-server`")

# ---- the patch -----------------------------------------------------------------------------

POLY16_CONNECT = [
    "osc1.out -> filt.in",
    "osc2.out -> filt.in",
    "fenv.out -> filt.cutoff_hz * 0.45",
    "filt.out -> amp.in",
    "aenv.out -> amp.cv",
    "amp.out -> out.in",
]
POLY16_TYPES = {"osc1": "saw", "osc2": "saw", "filt": "svf_lowpass", "fenv": "adsr",
                "aenv": "adsr", "amp": "vca", "out": "output"}
CUTOFF_RANGE = (20.0, 20000.0)  # svf_lowpass cutoff_hz: LOG curve over this range


@dataclass(frozen=True)
class Patch:
    polyphony: int
    detune_cents: tuple[float, float]
    levels: tuple[float, float]
    cutoff_hz: float
    fenv_amount: float
    resonance: float
    fenv: tuple[float, float, float, float]  # attack s, decay s, sustain, release s
    aenv: tuple[float, float, float, float]
    gain: float
    velocity_amount: float

    @property
    def rq(self) -> float:
        """1/Q: svf_lowpass has Q = 0.5 * 100**resonance (instrument.kernels.svf.svf_damping)."""
        return 2.0 * 100.0 ** (-self.resonance)

    @property
    def cutoff_exp_scale(self) -> float:
        """Cutoff modulation in normalized units of a LOG parameter is a factor of
        (hi/lo)**(amount * env): cutoff = cutoff_hz * exp(env * this)."""
        lo, hi = CUTOFF_RANGE
        top = math.log(self.cutoff_hz / lo) / math.log(hi / lo) + self.fenv_amount
        assert top <= 1.0, "cutoff + envelope would clamp at 20 kHz; the SC mapping assumes not"
        return self.fenv_amount * math.log(hi / lo)

    def amp(self, velocity: int) -> float:
        a = self.velocity_amount
        return self.gain * (1.0 - a + a * velocity / 127.0)


def load_patch(path: Path = PRESET) -> Patch:
    """poly16's values, after checking that its structure is still the one mirrored here."""
    doc = tomllib.loads(path.read_text())
    voice = doc["voice"]
    nodes = voice["nodes"]
    types = {k: v["type"] for k, v in nodes.items()}
    if types != POLY16_TYPES or voice["connect"] != POLY16_CONNECT or doc.get("global"):
        sys.exit(f"{path}: the graph is no longer the one this script mirrors in SC; "
                 "update benchmarks/scsynth_compare.py")
    if voice.get("mode", "poly") != "poly" or voice.get("steal", "oldest") != "oldest":
        sys.exit(f"{path}: expected mode poly, steal oldest")

    def env(n):
        e = nodes[n]
        return (e["attack_ms"] / 1000, e["decay_ms"] / 1000, e["sustain"], e["release_ms"] / 1000)

    return Patch(
        polyphony=int(voice["polyphony"]),
        detune_cents=(nodes["osc1"].get("detune_cents", 0.0), nodes["osc2"].get("detune_cents", 0.0)),
        levels=(nodes["osc1"]["level"], nodes["osc2"]["level"]),
        cutoff_hz=nodes["filt"]["cutoff_hz"],
        fenv_amount=float(POLY16_CONNECT[2].rsplit("*", 1)[1]),
        resonance=nodes["filt"]["resonance"],
        fenv=env("fenv"),
        aenv=env("aenv"),
        gain=nodes["amp"]["gain"],
        velocity_amount=nodes["amp"]["velocity_amount"],
    )


# ---- SynthDef file v2 ----------------------------------------------------------------------

# SC's Saw spans about -0.5..0.5 (measured with this script's synthdef writer: its harmonics
# are 6.0 dB below those of instrument's saw at the same level, which match an ideal saw of
# peak ``level``; LFSaw spans -1..1), so SC's saws get twice poly16's level. A constant: no work.
SC_SAW_SCALE = 2.0

IR, KR, AR = 0, 1, 2
OP_ADD, OP_MUL = 0, 2   # BinaryOpUGen special indices
OP_EXP = 15             # UnaryOpUGen special index
# The decay/release shape of instrument's adsr (aim OVERSHOOT = 0.001 of the travel past the
# goal, land on it exactly) is SC's curve shape (5) with this curve value.
ADSR_CURVE = -math.log(1.0 / 0.001 + 1.0)


def _pstring(s: str) -> bytes:
    b = s.encode("ascii")
    return struct.pack(">B", len(b)) + b


class SynthDef:
    """A minimal builder for SuperCollider's SynthDef file format, version 2 (big-endian):
    constants, one Control UGen for the parameters, UGens in topological order."""

    def __init__(self, name: str, params: dict[str, float]):
        self.name = name
        self.params = params
        self.constants: list[float] = []
        self.ugens: list[tuple[str, int, list, int, int]] = []
        outs = self.ugen("Control", KR, [], n_outputs=len(params), special=0)
        self.controls = dict(zip(params, outs))

    def _input(self, x) -> tuple[int, int]:
        if isinstance(x, tuple):
            return x
        x = float(np.float32(x))
        if x not in self.constants:
            self.constants.append(x)
        return (-1, self.constants.index(x))

    def rate_of(self, x) -> int:
        return IR if not isinstance(x, tuple) or x[0] < 0 else self.ugens[x[0]][1]

    def ugen(self, name: str, rate: int, inputs: list, n_outputs: int = 1, special: int = 0):
        self.ugens.append((name, rate, [self._input(i) for i in inputs], n_outputs, special))
        index = len(self.ugens) - 1
        outs = [(index, k) for k in range(n_outputs)]
        return outs if n_outputs != 1 else outs[0]

    def binop(self, op: int, a, b):
        return self.ugen("BinaryOpUGen", max(self.rate_of(a), self.rate_of(b)), [a, b], special=op)

    def unop(self, op: int, a):
        return self.ugen("UnaryOpUGen", self.rate_of(a), [a], special=op)

    def env_gen(self, rate: int, gate, adsr, level_scale=1.0, done_action=0):
        """EnvGen of an ADSR: linear attack, decay and release of instrument's curve shape,
        sustaining at node 2 (Env.asArray layout: init level, segments, release node, loop
        node, then level, time, shape, curve per segment)."""
        a, d, s, r = adsr
        env = [0.0, 3, 2, -99,
               1.0, a, 1, 0.0,
               s, d, 5, ADSR_CURVE,
               0.0, r, 5, ADSR_CURVE]
        return self.ugen("EnvGen", rate, [gate, level_scale, 0.0, 1.0, done_action] + env)

    def to_bytes(self) -> bytes:
        out = [b"SCgf", struct.pack(">iH", 2, 1), _pstring(self.name)]
        out.append(struct.pack(">i", len(self.constants)))
        out += [struct.pack(">f", c) for c in self.constants]
        out.append(struct.pack(">i", len(self.params)))
        out += [struct.pack(">f", v) for v in self.params.values()]
        out.append(struct.pack(">i", len(self.params)))
        out += [_pstring(k) + struct.pack(">i", i) for i, k in enumerate(self.params)]
        out.append(struct.pack(">i", len(self.ugens)))
        for name, rate, inputs, n_outputs, special in self.ugens:
            out.append(_pstring(name) + struct.pack(">biih", rate, len(inputs), n_outputs, special))
            out += [struct.pack(">ii", u, k) for u, k in inputs]
            out.append(bytes([rate]) * n_outputs)
        out.append(struct.pack(">H", 0))  # no variants
        return b"".join(out)


def poly16_synthdef(p: Patch, amp_rate: int = AR) -> bytes:
    sd = SynthDef(SYNTHDEF, {"freq": 440.0, "amp": 0.1, "gate": 1.0})
    freq, amp, gate = sd.controls["freq"], sd.controls["amp"], sd.controls["gate"]
    saws = []
    for cents, level in zip(p.detune_cents, p.levels):
        f = sd.binop(OP_MUL, freq, 2.0 ** (cents / 1200.0))
        saws.append(sd.binop(OP_MUL, sd.ugen("Saw", AR, [f]), level * SC_SAW_SCALE))
    mix = sd.binop(OP_ADD, saws[0], saws[1])
    fenv = sd.env_gen(KR, gate, p.fenv, level_scale=p.cutoff_exp_scale)
    cutoff = sd.binop(OP_MUL, sd.unop(OP_EXP, fenv), p.cutoff_hz)
    filt = sd.ugen("BLowPass", AR, [mix, cutoff, p.rq])
    aenv = sd.env_gen(amp_rate, gate, p.aenv, done_action=2)
    sig = sd.binop(OP_MUL, sd.binop(OP_MUL, filt, aenv), amp)
    sd.ugen("Out", AR, [0.0, sig, sig], n_outputs=0)
    return sd.to_bytes()


# ---- OSC (NRT score) -----------------------------------------------------------------------

def _osc_pad(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 4)


def osc_message(address: str, *args) -> bytes:
    tags, data = ",", []
    for a in args:
        if isinstance(a, int):
            tags += "i"
            data.append(struct.pack(">i", a))
        elif isinstance(a, float):
            tags += "f"
            data.append(struct.pack(">f", a))
        elif isinstance(a, str):
            tags += "s"
            data.append(_osc_pad(a.encode() + b"\0"))
        elif isinstance(a, bytes):
            tags += "b"
            data.append(struct.pack(">i", len(a)) + _osc_pad(a))
        else:
            raise TypeError(a)
    return _osc_pad(address.encode() + b"\0") + _osc_pad(tags.encode() + b"\0") + b"".join(data)


def nrt_bundle(t_s: float, *messages: bytes) -> bytes:
    """One score entry: int32 size, then a bundle whose time tag is ``t_s`` seconds (32.32)."""
    body = b"#bundle\0" + struct.pack(">Q", int(round(t_s * 2**32)))
    body += b"".join(struct.pack(">i", len(m)) + m for m in messages)
    return struct.pack(">i", len(body)) + body


# ---- the score -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Note:
    on_ms: int
    off_ms: int
    key: int
    velocity: int


def make_notes(seconds: float, release_s: float, voices: int = 16, seed: int = 1) -> list[Note]:
    """``voices`` slots, each playing notes one after another; a slot's next note starts only
    after the previous one's release ended (+ TAIL_MARGIN_MS), and no key sounds twice at once
    (tails included). Every note ends by ``seconds``."""
    rng = random.Random(seed)
    tail = int(round(release_s * 1000)) + TAIL_MARGIN_MS
    end = int(seconds * 1000)
    heap = [(START_MS + rng.randint(0, 1000), slot) for slot in range(voices)]
    heapq.heapify(heap)
    busy_until = {k: -1 for k in KEYS}
    notes = []
    while heap:
        on, slot = heapq.heappop(heap)
        off = on + rng.randint(250, 1600)
        if off > end:
            continue  # this slot is done
        key = rng.choice([k for k in KEYS if busy_until[k] <= on])
        busy_until[key] = off + tail
        notes.append(Note(on, off, key, rng.randint(40, 127)))
        heapq.heappush(heap, (off + tail + rng.randint(0, 150), slot))
    notes.sort(key=lambda n: (n.on_ms, n.key))
    return notes


def overlap_stats(notes: list[Note], release_s: float, length_s: float) -> tuple[int, float]:
    """(most notes sounding at once, mean notes sounding), release tails included."""
    tail = int(round(release_s * 1000))
    edges = sorted([(n.on_ms, 1) for n in notes] + [(n.off_ms + tail, -1) for n in notes],
                   key=lambda e: (e[0], e[1]))
    most = now = 0
    for _, d in edges:
        now += d
        most = max(most, now)
    sounding_ms = sum(n.off_ms - n.on_ms + tail for n in notes)
    return most, sounding_ms / (length_s * 1000)


def write_midi(notes: list[Note], path: Path) -> None:
    """Type 0, 1 ms per tick (500 ticks per beat at the default 120 bpm)."""
    events = [(n.on_ms, 1, mido.Message("note_on", note=n.key, velocity=n.velocity)) for n in notes]
    events += [(n.off_ms, 0, mido.Message("note_off", note=n.key, velocity=0)) for n in notes]
    events.sort(key=lambda e: (e[0], e[1]))  # offs before ons at the same millisecond
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000, time=0)])
    last = 0
    for t, _, msg in events:
        track.append(msg.copy(time=t - last))
        last = t
    track.append(mido.MetaMessage("end_of_track", time=0))
    mid = mido.MidiFile(type=0, ticks_per_beat=500)
    mid.tracks.append(track)
    mid.save(path)


def write_score(notes: list[Note], patch: Patch, synthdef: bytes, path: Path) -> float:
    """The NRT score: the synthdef at 0, a synth per note (added at the tail of the root group,
    freed by its amp envelope), gate 0 at the note's end; returns the score's end in seconds
    (last note-off + release + 50 ms: scsynth renders until the last bundle)."""
    entries: list[tuple[int, int, bytes]] = []
    for i, n in enumerate(notes):
        node = 1000 + i
        freq = 440.0 * 2.0 ** ((n.key - 69) / 12.0)
        entries.append((n.on_ms, 1, osc_message("/s_new", SYNTHDEF, node, 1, 0, "freq", freq,
                                                "amp", patch.amp(n.velocity))))
        entries.append((n.off_ms, 0, osc_message("/n_set", node, "gate", 0.0)))
    entries.sort(key=lambda e: (e[0], e[1]))
    end_s = max(n.off_ms for n in notes) / 1000 + patch.aenv[3] + 0.05
    with open(path, "wb") as f:
        f.write(nrt_bundle(0.0, osc_message("/d_recv", synthdef)))
        for t, _, msg in entries:
            f.write(nrt_bundle(t / 1000, msg))
        f.write(nrt_bundle(end_s, osc_message("/c_set", 0, 0.0)))  # the end of the score
    return end_s


# ---- running the engines -------------------------------------------------------------------

@dataclass
class Run:
    engine: str
    music_s: int
    wall_s: float
    cpu_s: float
    audio_s: float


def instrument_cmd(midi: Path, out: Path) -> list[str]:
    exe = Path(sys.executable).parent / "instrument"
    exe = str(exe) if exe.exists() else (shutil.which("instrument") or "instrument")
    return [exe, "render", str(PRESET), "--midi", str(midi), "-o", str(out),
            "--rate", str(SAMPLE_RATE), "--block", str(BLOCK), "--format", "float32", "--quiet"]


def scsynth_cmd(scsynth: str, score: Path, out: Path) -> list[str]:
    return [scsynth, "-i", "0", "-o", "2", "-z", str(BLOCK), "-D", "0", "-V", "-1",
            "-N", str(score), "_", str(out), str(SAMPLE_RATE), "WAV", "float"]


def wav_seconds(path: Path) -> float:
    """Duration of a float32 stereo WAV from its size (headers are small against the data)."""
    with open(path, "rb") as f:
        head = f.read(4096)
    pos = 12
    while pos + 8 <= len(head):
        cid, size = head[pos:pos + 4], struct.unpack_from("<I", head, pos + 4)[0]
        if cid == b"data":
            data = os.path.getsize(path) - pos - 8 if size in (0, 0xFFFFFFFF) else size
            return data / (2 * 4) / SAMPLE_RATE
        pos += 8 + size + (size % 2)
    raise RuntimeError(f"{path}: no data chunk")


def run_one(engine: str, cmd: list[str], out: Path, music_s: int) -> Run:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0 or not out.exists():
        sys.exit(f"{engine} failed (exit {proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run(engine, music_s, wall, cpu, wav_seconds(out))


def instrument_voice_check(midi: Path) -> tuple[int, int]:
    """(notes stolen, most voices active) when instrument plays ``midi``: run in-process."""
    from instrument.control.midifile import iter_blocks, read_midi_events
    from instrument.engine.engine import Engine
    from instrument.layout import E_NOTES_STOLEN
    from instrument.presets import compile_file

    plan = compile_file(PRESET, SAMPLE_RATE, BLOCK)
    ev = read_midi_events(midi, SAMPLE_RATE)
    engine = Engine(SAMPLE_RATE, BLOCK, max_events=4096)
    engine.load(plan)
    out = np.zeros((BLOCK, 2), dtype=np.float32)
    n_frames = int(np.ceil(ev.duration_s * SAMPLE_RATE / BLOCK)) * BLOCK
    most = 0
    for events in iter_blocks(ev.events, BLOCK, n_frames):
        engine.process_block(events, len(events), out)
        most = max(most, engine.active_voices)
    return int(engine.current.eng[E_NOTES_STOLEN]), most


def level_report(path: Path) -> tuple[float, float, float, float]:
    """(seconds, RMS dBFS, peak dBFS, spectral centroid Hz) of a WAV (both channels)."""
    from instrument.audio.wav import read_wav

    x, sr = read_wav(path)
    mono = x.mean(axis=1)
    rms = float(np.sqrt(np.mean(x ** 2)))
    peak = float(np.abs(x).max())
    spec = np.abs(np.fft.rfft(mono[: 1 << int(math.log2(len(mono)))])) ** 2
    freqs = np.fft.rfftfreq(1 << int(math.log2(len(mono))), 1 / sr)
    centroid = float((spec * freqs).sum() / spec.sum())
    db = lambda v: 20 * math.log10(max(v, 1e-12))  # noqa: E731
    return len(x) / sr, db(rms), db(peak), centroid


# ---- machine -------------------------------------------------------------------------------

def machine_line(scsynth: str) -> str:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Model name":
                model = value.strip()
            elif key.strip() == "Flags":
                flags = set(value.split())
    except OSError:
        pass
    if not flags and Path("/proc/cpuinfo").exists():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":")[0].strip() in ("flags", "Features"):
                flags |= set(line.split(":", 1)[1].split())
    if "asimd" in flags:
        flags.add("neon")  # aarch64 names NEON asimd
    simd = [f for f in ("sse4_2", "avx", "avx2", "avx512f", "neon") if f in flags]
    import numba

    sc_version = subprocess.run([scsynth, "-v"], capture_output=True, text=True).stdout.strip()
    return (f"{model}, {platform.machine()}, {os.cpu_count()} CPUs, SIMD {' '.join(simd) or '-'}; "
            f"{sc_version}; Python {platform.python_version()}, numba {numba.__version__}")


# ---- main ----------------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the four renders (3)")
    ap.add_argument("--short", type=int, default=60, help="seconds of music, short score (60)")
    ap.add_argument("--long", type=int, default=600, help="seconds of music, long score (600)")
    ap.add_argument("--seed", type=int, default=1, help="score seed (1)")
    ap.add_argument("--sc-amp-rate", choices=("ar", "kr"), default="ar",
                    help="rate of SC's amplitude EnvGen (ar, like instrument's adsr)")
    ap.add_argument("--tmp", default=None, help="folder for the scores and renders (system temp)")
    ap.add_argument("--scsynth", default=shutil.which("scsynth"), help="scsynth binary")
    args = ap.parse_args(argv)
    if not args.scsynth or not Path(args.scsynth).exists():
        print(INSTALL_HINT)
        return 2
    if not os.environ.get("INSTRUMENT_CACHE_DIR"):
        print("note: INSTRUMENT_CACHE_DIR unset; the default numba cache is used (the first "
              "render compiles for ~30 s, outside the timings)")

    patch = load_patch()
    synthdef = poly16_synthdef(patch, AR if args.sc_amp_rate == "ar" else KR)
    release = patch.aenv[3]
    print(f"machine: {machine_line(args.scsynth)}")
    with tempfile.TemporaryDirectory(prefix="scsynth_compare.", dir=args.tmp) as tmp:
        tmp = Path(tmp)
        scores = {}
        for secs in (args.short, args.long):
            notes = make_notes(secs, release, patch.polyphony, args.seed)
            midi, osc = tmp / f"score{secs}.mid", tmp / f"score{secs}.osc"
            write_midi(notes, midi)
            end_s = write_score(notes, patch, synthdef, osc)
            most, mean = overlap_stats(notes, release, secs)
            scores[secs] = (midi, osc)
            print(f"score {secs} s: {len(notes)} notes, at most {most} sounding at once "
                  f"(tails included), {mean:.1f} on average; SC score ends at {end_s:.2f} s")

        # Sanity: both renders of the short score, before any timing (also warms the caches).
        midi, osc = scores[args.short]
        outs = {"instrument": tmp / "check_instrument.wav", "scsynth": tmp / "check_scsynth.wav"}
        run_one("instrument", instrument_cmd(midi, outs["instrument"]), outs["instrument"], 0)
        run_one("scsynth", scsynth_cmd(args.scsynth, osc, outs["scsynth"]), outs["scsynth"], 0)
        levels = {}
        for name, path in outs.items():
            levels[name] = level_report(path)
            secs, rms, peak, centroid = levels[name]
            print(f"check {name:10s}: {secs:7.2f} s, RMS {rms:6.1f} dBFS, peak {peak:6.1f} dBFS, "
                  f"spectral centroid {centroid:6.0f} Hz")
            path.unlink()
        stolen, most_voices = instrument_voice_check(midi)
        print(f"check instrument voices: at most {most_voices} active, {stolen} notes stolen")
        (a_len, a_rms, a_peak, _), (b_len, b_rms, b_peak, _) = levels["instrument"], levels["scsynth"]
        problems = []
        if abs(a_len - b_len) > 1.0:
            problems.append(f"lengths differ: {a_len:.2f} s against {b_len:.2f} s")
        if min(a_peak, b_peak) < -60:
            problems.append("a render is silent")
        if abs(a_rms - b_rms) > 10:
            problems.append(f"RMS differ by {abs(a_rms - b_rms):.1f} dB")
        if stolen:
            problems.append(f"instrument stole {stolen} notes (scsynth never steals)")
        if problems:
            print("sanity check failed: " + "; ".join(problems))
            return 1
        print(f"check ok: RMS within {abs(a_rms - b_rms):.1f} dB, lengths within "
              f"{abs(a_len - b_len) * 1000:.0f} ms")

        runs: list[Run] = []
        print(f"\n{'round':>5} {'engine':>10} {'music s':>8} {'audio s':>8} {'wall s':>8} "
              f"{'cpu s':>7} {'RT x':>7}")
        for r in range(args.rounds):
            order = ("instrument", "scsynth") if r % 2 == 0 else ("scsynth", "instrument")
            for secs in (args.short, args.long):
                midi, osc = scores[secs]
                for engine in order:
                    with tempfile.TemporaryDirectory(dir=tmp) as d:
                        out = Path(d) / "out.wav"
                        cmd = (instrument_cmd(midi, out) if engine == "instrument"
                               else scsynth_cmd(args.scsynth, osc, out))
                        run = run_one(engine, cmd, out, secs)
                    runs.append(run)
                    print(f"{r + 1:>5} {engine:>10} {secs:>8} {run.audio_s:>8.2f} {run.wall_s:>8.2f} "
                          f"{run.cpu_s:>7.2f} {run.audio_s / run.wall_s:>7.1f}", flush=True)

    def med(engine, secs, attr):
        return float(np.median([getattr(r, attr) for r in runs
                                if r.engine == engine and r.music_s == secs]))

    print(f"\nmedians of {args.rounds} rounds; marginal = (d{args.long} - d{args.short}) / "
          f"(t{args.long} - t{args.short}), seconds of audio per second of wall time")
    result = {}
    for engine in ("instrument", "scsynth"):
        t_s, t_l = med(engine, args.short, "wall_s"), med(engine, args.long, "wall_s")
        d_s, d_l = med(engine, args.short, "audio_s"), med(engine, args.long, "audio_s")
        marginal = (d_l - d_s) / (t_l - t_s)
        startup = t_s - d_s / marginal
        result[engine] = marginal
        print(f"{engine:>10}: marginal {marginal:7.1f}x real time, RT factor at {args.long} s "
              f"{d_l / t_l:7.1f}x (wall {t_l:.2f} s, cpu {med(engine, args.long, 'cpu_s'):.2f} s), "
              f"start-up ~{startup:.2f} s")
    rt = {e: med(e, args.long, "audio_s") / med(e, args.long, "wall_s") for e in result}
    print(f"ratio instrument/scsynth: marginal {result['instrument'] / result['scsynth']:.2f}, "
          f"RT factor at {args.long} s {rt['instrument'] / rt['scsynth']:.2f}")
    print(f"machine: {machine_line(args.scsynth)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
