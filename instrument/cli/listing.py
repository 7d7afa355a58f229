"""Text listings for ``instrument modules`` and ``instrument devices``."""

from __future__ import annotations


def list_modules(registry=None) -> str:
    from instrument.modules.registry import default_registry

    registry = registry or default_registry()
    lines = []
    for name in sorted(registry.modules):
        cls = registry.modules[name]
        ins = ", ".join(p.name for p in cls.inputs) or "-"
        outs = ", ".join(cls.outputs)
        lines.append(f"{name} ({cls.scope}): {cls.doc}")
        lines.append(f"    in: {ins}    out: {outs}")
        for spec in cls.params:
            if spec.choices:
                rng = " | ".join(spec.choices)
            else:
                rng = f"{spec.format(spec.min)} .. {spec.format(spec.max)}"
            lines.append(f"    {spec.name:<16} {rng:<28} default {spec.format(spec.default)}"
                         f"  {spec.doc}")
    for line in registry.skipped:
        lines.append(f"skipped: {line}")
    return "\n".join(lines)


def list_devices() -> str:
    try:
        import sounddevice as sd
    except OSError as exc:  # PortAudio library missing
        return f"no audio: PortAudio is not available ({exc}); install libportaudio2"
    devices = sd.query_devices()
    if not len(devices):
        return "no audio devices found"
    lines = []
    for i, d in enumerate(devices):
        api = sd.query_hostapis(d["hostapi"])["name"]
        lines.append(f"{i:>3} {d['name']} ({api}): {d['max_output_channels']} out, "
                     f"{d['max_input_channels']} in, {d['default_samplerate']:g} Hz")
    return "\n".join(lines)
