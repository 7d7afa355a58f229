"""Compile a preset into a plan: resolve modules, check names and values, order the nodes (Kahn),
assign buffer rows (reused once their last reader has run), lay out state, and emit flat ops.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from instrument.layout import (
    CFG_MODE, CFG_MONO_VOICE, CFG_N_OPS, CFG_N_PARAMS, CFG_N_VOICES, CFG_N_VOICE_OPS, CFG_STEAL,
    CFG_WIDTH,
    CODE_PMOD, CODE_SUM, MODES, N_RESERVED_ROWS, OP_WIDTH, PM_COEFF, PM_CURVE, PM_HI, PM_KIND,
    PM_LO, PM_RAMP_SAMPLES, PM_ROW, PM_SCOPE, PM_SKEW, PM_SMOOTH_MODE, PM_WIDTH, PORT_DEFAULT_ROWS,
    ROW_BUS_L, ROW_BUS_R, ROW_OUT_L, ROW_OUT_R, ROW_SINK, SCOPE_GLOBAL, SCOPE_VOICE,
    STEAL_POLICIES,
)
from instrument.errors import GraphError, ModuleError, ParamError
from instrument.graph.model import Graph, Preset
from instrument.names import nearest
from instrument.graph.plan import MacroSlot, ParamSlot, Plan, freeze
from instrument.params import Curve
from instrument.params.smoothing import linear_ramp_samples, one_pole_coeff

MAX_POLYPHONY = 128


class _Rows:
    """Buffer rows: a free list, so a row is reused once its last reader has run."""

    def __init__(self, first: int):
        self.next = first
        self.free: list[int] = []

    def take(self) -> int:
        if self.free:
            return self.free.pop(0)
        self.next += 1
        return self.next - 1

    def give(self, row: int) -> None:
        self.free.append(row)
        self.free.sort()


class _Emitter:
    def __init__(self):
        self.ops: list[list[int]] = []
        self.io: list[int] = []
        self.pr: list[int] = []
        self.fa: list[float] = []
        self.lines: list[str] = []
        self.notes: list[str] = []  # plan text lines after the ops

    def emit(self, code, io, pr, fa, state, node_index, line):
        row = [code, len(self.io), len(self.io) + len(io), len(self.pr), len(self.pr) + len(pr),
               state[0], state[1], len(self.fa), len(self.fa) + len(fa), node_index]
        self.io.extend(io)
        self.pr.extend(pr)
        self.fa.extend(fa)
        self.lines.append(f"{len(self.ops):>4} {line.lstrip()}")
        self.ops.append(row)


def resolve_modules(preset: Preset, registry) -> dict[str, type]:
    """Module class per node id (voice and global), checking scopes and unique names."""
    classes = {}
    for graph in (preset.voice_graph, preset.global_graph):
        for node in graph.nodes.values():
            cls = registry.get(node.type, node.where)
            if cls.scope not in ("any", graph.scope):
                raise ModuleError(f"module '{node.type}' cannot be used in the {graph.scope} graph",
                                  node.where, f"it belongs in the {cls.scope} graph")
            if node.id in classes:
                raise GraphError(f"node name '{node.id}' is used in both graphs", node.where,
                                 "give every node a distinct name")
            classes[node.id] = cls
    return classes


def _check_graph(graph: Graph, classes) -> None:
    for node in graph.nodes.values():
        cls = classes[node.id]
        for name, value in node.params.items():
            if name not in cls.param_names():
                raise GraphError(f"module '{node.type}' has no parameter '{name}'",
                                 f"{node.where}.{name}" if node.where else name,
                                 nearest(name, cls.param_names()))
            spec = cls.param(name)
            if isinstance(value, str):
                try:
                    value = node.params[name] = spec.parse(value, clamp=False)
                except ParamError as exc:
                    raise GraphError(exc.what, f"{node.where}.{name}", exc.fix) from None
            try:
                v = float(value)
            except (TypeError, ValueError):
                v = float("nan")
            if not math.isfinite(v) or v < spec.min or v > spec.max:
                raise GraphError(
                    f"{name} = {value!r} is out of range", f"{node.where}.{name}",
                    f"use {spec.format(spec.min)} to {spec.format(spec.max)}")
            if spec.is_discrete and v != int(v):
                raise GraphError(f"{name} = {value!r} is not a whole number",
                                 f"{node.where}.{name}", _discrete_fix(spec))
    outputs = [n.id for n in graph.nodes.values() if n.type == "output"]
    if not outputs:
        raise GraphError(f"the {graph.scope} graph has no output node", graph.scope,
                         'add a node with type = "output" and connect the sound to it')
    if len(outputs) > 1:
        names = ", ".join(f"'{o}'" for o in outputs)
        raise GraphError(f"the {graph.scope} graph has {len(outputs)} output nodes: {names}",
                         graph.scope, 'keep one node with type = "output"')
    if graph.scope == "global" and not any(n.type == "voices" for n in graph.nodes.values()):
        raise GraphError("the global graph has no 'voices' node, so no voice would be heard",
                         "global", 'add a node with type = "voices" and connect it')
    for c in graph.connections:
        src_cls, dst_cls = classes[c.src], classes[c.dst]
        if c.src_port not in src_cls.outputs:
            raise GraphError(f"'{c.src}' ({src_cls.type_name}) has no output '{c.src_port}'",
                             c.where, nearest(c.src_port, src_cls.outputs))
        targets = list(dst_cls.input_names()) + [p.name for p in dst_cls.params if not p.is_discrete]
        if c.dst_port not in targets:
            raise GraphError(f"'{c.dst}' ({dst_cls.type_name}) has no input or continuous "
                             f"parameter '{c.dst_port}'", c.where, nearest(c.dst_port, targets))


def compile_preset(preset: Preset, registry, sample_rate: float, block_size: int) -> Plan:
    """Compile ``preset`` for ``sample_rate`` and ``block_size``; raises GraphError/ModuleError
    (one line, with where and fix) for anything wrong in it."""
    classes = resolve_modules(preset, registry)
    if not preset.global_graph.nodes:
        _default_global(preset.global_graph)
        classes.update({"voices": registry.get("voices"), "main": registry.get("output")})
    for graph in (preset.voice_graph, preset.global_graph):
        _check_graph(graph, classes)
    vs = preset.voice
    if vs.mode not in MODES:
        raise GraphError(f"mode '{vs.mode}' is unknown", "voice.mode", nearest(vs.mode, MODES))
    if vs.steal not in STEAL_POLICIES:
        raise GraphError(f"steal '{vs.steal}' is unknown", "voice.steal",
                         nearest(vs.steal, STEAL_POLICIES))
    if not 1 <= vs.polyphony <= MAX_POLYPHONY:
        raise GraphError(f"polyphony {vs.polyphony} is out of range", "voice.polyphony",
                         f"use 1 to {MAX_POLYPHONY}")
    n_voices = vs.polyphony if vs.mode == "poly" else 1

    # Parameter table: every node parameter, voice graph first, in declaration order. Each
    # also has a row in its scope's value array (voice or global).
    params: list[ParamSlot] = []
    local_row: list[int] = []
    for graph in (preset.voice_graph, preset.global_graph):
        first = len(params)
        for node in graph.nodes.values():
            for spec in classes[node.id].params:
                value = node.params.get(spec.name, spec.default)
                params.append(ParamSlot(len(params), f"{node.id}.{spec.name}", node.id, spec,
                                        spec.to_norm(float(value))))
                local_row.append(len(params) - 1 - first)
    index = {slot.path: slot.index for slot in params}

    renderer = registry.renderer()
    em = _Emitter()
    scopes = {}
    n_voice_ops = 0
    for graph in (preset.voice_graph, preset.global_graph):
        n_scope_params = sum(1 for slot in params if slot.node in graph.nodes)
        scope = _Scope(graph.scope, _Rows(N_RESERVED_ROWS), _Rows(n_scope_params))
        scopes[graph.scope] = scope
        _emit_graph(graph, classes, index, local_row, em, scope, sample_rate, block_size,
                    renderer.codes)
        if graph.scope == "voice":
            n_voice_ops = len(em.ops)
    vs_scope, gl_scope = scopes["voice"], scopes["global"]

    vinit = np.zeros(max(vs_scope.state_size, 1))
    ginit = np.zeros(max(gl_scope.state_size, 1))
    at_points: list[str] = []
    for graph, init, scope in ((preset.voice_graph, vinit, vs_scope),
                               (preset.global_graph, ginit, gl_scope)):
        sparse = read_at_points(graph, classes)
        for node in graph.nodes.values():
            a, b = scope.layout[node.id]
            classes[node.id].reset_state(init[a:b], float(sample_rate))
            if node.id in sparse and classes[node.id].read_at_points(init[a:b]):
                at_points.append(node.id)

    cfg = np.zeros(CFG_WIDTH, dtype=np.int64)
    cfg[CFG_N_VOICE_OPS] = n_voice_ops
    cfg[CFG_N_OPS] = len(em.ops)
    cfg[CFG_N_PARAMS] = len(params)
    cfg[CFG_N_VOICES] = n_voices
    cfg[CFG_MODE] = MODES[vs.mode]
    cfg[CFG_STEAL] = STEAL_POLICIES[vs.steal]
    cfg[CFG_MONO_VOICE] = mono_voice(preset.voice_graph)
    voice_nodes = set(preset.voice_graph.nodes)
    pmeta = _param_meta(params, local_row, voice_nodes, sample_rate)
    macros = _macros(preset, index, params)
    for m, slot in zip(preset.macros, macros):
        if m.default is not None:  # an explicit macro default sets its targets at load
            for idx, norm in slot.targets_for(slot.initial_norm):
                params[idx] = dataclasses.replace(params[idx], initial_norm=norm)
    ops = np.array(em.ops, dtype=np.int64).reshape(-1, OP_WIDTH)
    io = np.array(em.io or [0], dtype=np.int64)
    pr = np.array(em.pr or [0], dtype=np.int64)
    fa = np.array(em.fa or [0.0], dtype=np.float64)
    vlayout, glayout = (_state_layout(scope) for scope in (vs_scope, gl_scope))
    freeze(cfg, ops, io, pr, fa, pmeta, vinit, ginit, vlayout, glayout)
    header = (f"plan '{preset.name}': {n_voices} voice{'s' if n_voices != 1 else ''}, {vs.mode}, "
              f"steal {vs.steal}, {sample_rate:g} Hz, block {block_size}")
    voice_lines = em.lines[:n_voice_ops]
    global_lines = em.lines[n_voice_ops:]
    text = "\n".join([header, f"voice ({len(voice_lines)} ops):", *voice_lines,
                      f"global ({len(global_lines)} ops):", *global_lines,
                      vs_scope.summary(), gl_scope.summary()]
                     + em.notes
                     + ([f"written at modulation points only: {', '.join(at_points)}"]
                        if at_points else []))
    return Plan(preset.name, float(sample_rate), int(block_size), cfg, ops, io, pr, fa, pmeta,
                vs_scope.rows.next, gl_scope.rows.next, vs_scope.prows.next, gl_scope.prows.next,
                vinit, ginit, vlayout, glayout, float(vs.glide_ms), float(vs.bend_range_st),
                tuple(params), macros, renderer.key, text)


def read_at_points(graph: Graph, classes) -> set[str]:
    """Nodes of ``graph`` whose outputs are all read only at the modulation points: every
    connection from them goes to a parameter whose curve is neither linear nor dB (a cutoff,
    a time), which a modulation reads there alone (``engine.builtin_ops.pmod_op``)."""
    found = set()
    for name in graph.nodes:
        out = [c for c in graph.connections if c.src == name]
        if out and all(_read_at_points(classes[c.dst], c.dst_port) for c in out):
            found.add(name)
    return found


def _read_at_points(cls, port: str) -> bool:
    if port not in cls.param_names():
        return False  # an input: read on every sample
    return cls.param(port).curve not in (Curve.LINEAR, Curve.DB)


def _state_layout(scope) -> np.ndarray:
    """(nodes with state, 2) int64: each node's state rows [start, end), for the guard."""
    spans = [span for span in scope.layout.values() if span[1] > span[0]]
    return np.array(spans or [(0, 0)], dtype=np.int64).reshape(-1, 2)


def _discrete_fix(spec) -> str:
    if spec.choices:
        return "use one of " + ", ".join(f"{i} ({c})" for i, c in enumerate(spec.choices))
    return f"use a whole number from {spec.format(spec.min)} to {spec.format(spec.max)}"


def _default_global(graph: Graph) -> None:
    from instrument.graph.model import Connection, Node

    graph.add(Node("voices", "voices", where="global"))
    graph.add(Node("main", "output", where="global"))
    graph.connect(Connection("voices", "left", "main", "left", where="global"))
    graph.connect(Connection("voices", "right", "main", "right", where="global"))


class _Scope:
    """Row pools and state layout of one graph (voice or global)."""

    def __init__(self, name: str, rows: _Rows, prows: _Rows):
        self.name = name
        self.rows = rows
        self.prows = prows
        self.n_params = prows.next
        self.state_size = 0
        self.layout: dict[str, tuple[int, int]] = {}

    def summary(self) -> str:
        return (f"{self.name}: {self.rows.next} rows ({N_RESERVED_ROWS} reserved), "
                f"{self.prows.next} param rows ({self.n_params} params), "
                f"state {self.state_size}")


def mono_voice(graph) -> bool:
    """Whether ``graph`` is a voice graph whose output node has neither ``left`` nor
    ``right`` patched: each voice is mono, and the engine sums one row per voice
    (``CFG_MONO_VOICE``)."""
    if graph.scope != "voice":
        return False
    outs = {n.id for n in graph.nodes.values() if n.type == "output"}
    return not any(c.dst in outs and c.dst_port in ("left", "right") for c in graph.connections)


def direct_outputs(graph, classes, readers) -> dict[tuple[str, str], int]:
    """The (node, port) outputs that may write the graph's output rows themselves, and the
    row each writes: the one source of the output node's ``in`` (then ROW_OUT_L, a mono
    voice), or of its ``left`` and of its ``right`` with ``in`` unpatched (ROW_OUT_L and
    ROW_OUT_R), when nothing else reads them. The output node then runs no op (it would copy
    the rows: 0.3-0.5 us per block at 16 voices); empty when it must run."""
    outs = [n.id for n in graph.nodes.values() if n.type == "output"]
    feeds = {c.dst_port: c for c in graph.connections if c.dst in outs}
    if len(feeds) != sum(1 for c in graph.connections if c.dst in outs):
        return {}  # a fan-in into a port: the output sums it
    wanted = {"in": ROW_OUT_L} if set(feeds) == {"in"} else (
        {"left": ROW_OUT_L, "right": ROW_OUT_R} if set(feeds) == {"left", "right"} else {})
    direct = {}
    for port, row in wanted.items():
        src = (feeds[port].src, feeds[port].src_port)
        if readers.get(src, 0) != 1 or classes[src[0]].type_name == "voices":
            return {}  # read elsewhere too, or a row the engine fixes (the voices bus)
        direct[src] = row
    return direct


def _output_row(cls, scope: str, port: str, mono: bool):
    """Rows fixed by the engine: graph outputs (a mono voice's right one is the sink) and the
    voices bus."""
    if cls.type_name == "output":
        if port == cls.outputs[0]:
            return ROW_OUT_L
        return ROW_SINK if mono else ROW_OUT_R
    if cls.type_name == "voices":
        return ROW_BUS_L if port == "left" else ROW_BUS_R
    return None


def _emit_graph(graph, classes, index, local_row, em, scope, sample_rate, block_size, codes):
    rows, param_rows = scope.rows, scope.prows
    readers: dict[tuple[str, str], int] = {}
    for c in graph.connections:
        readers[(c.src, c.src_port)] = readers.get((c.src, c.src_port), 0) + 1
    out_rows: dict[tuple[str, str], int] = {}
    mono = mono_voice(graph)
    direct = direct_outputs(graph, classes, readers)
    for node_index, name in enumerate(graph.order()):
        cls = classes[name]
        incoming = [c for c in graph.connections if c.dst == name]
        temps: list[int] = []
        ptemps: list[int] = []
        in_rows: list[int] = []
        described: list[str] = []
        for port in cls.inputs:
            srcs = [c for c in incoming if c.dst_port == port.name]
            if not srcs:
                in_rows.append(PORT_DEFAULT_ROWS[port.default])
                if port.default != "zero":
                    described.append(f"{port.name}={port.default}")
                continue
            if any(c.amount != 1.0 for c in srcs):
                raise GraphError(f"an amount on \"{srcs[0]}\" needs a parameter as target",
                                 srcs[0].where, "scale audio inputs with a gain or vca node")
            src_rows = [out_rows[(c.src, c.src_port)] for c in srcs]
            if len(srcs) == 1:
                in_rows.append(src_rows[0])
            else:  # fan-in: sum into a temporary row
                tmp = rows.take()
                temps.append(tmp)
                em.emit(CODE_SUM, src_rows + [tmp], [], [], (0, 0), -1,
                        f"  sum          {' + '.join(f'b{r}' for r in src_rows)} -> b{tmp}")
                in_rows.append(tmp)
            described.append(f"{port.name}=b{in_rows[-1]}")
        prows: list[int] = []
        for spec in cls.params:
            p = index[f"{name}.{spec.name}"]
            mods = [c for c in incoming if c.dst_port == spec.name]
            if not mods:
                prows.append(local_row[p])
                continue
            dst = param_rows.take()
            ptemps.append(dst)
            src_rows = [out_rows[(c.src, c.src_port)] for c in mods]
            chunk_ends = int(spec.name in cls.chunk_params)
            em.emit(CODE_PMOD, src_rows, [p, dst, chunk_ends], [c.amount for c in mods], (0, 0),
                    -1,
                    f"  pmod         {name}.{spec.name} + "
                    + " + ".join(f"b{r}*{c.amount:g}" for r, c in zip(src_rows, mods))
                    + f" -> P{dst}" + (" (chunk ends)" if chunk_ends else ""))
            prows.append(dst)
        size = cls.prepare(float(sample_rate), int(block_size))
        start = scope.state_size
        scope.layout[name] = (start, start + size)
        scope.state_size = start + size
        outs: list[int] = []
        for port in cls.outputs:
            row = _output_row(cls, graph.scope, port, mono)
            if (name, port) in direct:
                row = direct[(name, port)]
            elif row is None:
                row = rows.take() if readers.get((name, port), 0) else ROW_SINK
            out_rows[(name, port)] = row
            outs.append(row)
        if cls.type_name == "output" and direct:
            writers = sorted({node for node, _ in direct})
            em.notes.append(f"{graph.scope} output '{name}' runs no op: "
                            f"{' and '.join(writers)} write{'s' * (len(writers) == 1)} its rows")
        elif cls.type_name != "voices":
            em.emit(codes[cls.type_name], in_rows + outs, prows, [], scope.layout[name],
                    node_index,
                    f"  {cls.type_name:<12} {name:<8} in({' '.join(described) or '-'}) "
                    f"out({' '.join(f'{o}=' + ('-' if r == ROW_SINK else f'b{r}') for o, r in zip(cls.outputs, outs))}) "
                    f"params({' '.join(f'{p.name}=P{r}' for p, r in zip(cls.params, prows)) or '-'})"
                    f" state[{size}]")
        for c in incoming:
            key = (c.src, c.src_port)
            readers[key] -= 1
            if readers[key] == 0 and out_rows[key] >= N_RESERVED_ROWS:
                rows.give(out_rows[key])
        for t in temps:
            rows.give(t)
        for t in ptemps:
            param_rows.give(t)


def _param_meta(params, local_row, voice_nodes, sample_rate) -> np.ndarray:
    pmeta = np.zeros((max(len(params), 1), PM_WIDTH))
    for slot in params:
        s = slot.spec
        row = pmeta[slot.index]
        row[PM_CURVE] = int(s.curve)
        row[PM_LO] = s.min
        row[PM_HI] = s.max
        row[PM_SKEW] = s.skew
        row[PM_KIND] = int(s.kind)
        row[PM_SMOOTH_MODE] = int(s.effective_smoothing)
        row[PM_COEFF] = one_pole_coeff(s.smoothing_ms, sample_rate) if s.smoothing_ms > 0 else 0.0
        row[PM_RAMP_SAMPLES] = linear_ramp_samples(s.smoothing_ms, sample_rate)
        row[PM_SCOPE] = SCOPE_VOICE if slot.node in voice_nodes else SCOPE_GLOBAL
        row[PM_ROW] = local_row[slot.index]
    return pmeta


def _macros(preset, index, params) -> tuple[MacroSlot, ...]:
    slots = []
    for m in preset.macros:
        targets = []
        for t in m.targets:
            if t.param not in index:
                raise GraphError(f"macro '{m.name}' targets unknown parameter '{t.param}'",
                                 t.where, nearest(t.param, index))
            spec = params[index[t.param]].spec
            for v in (t.lo, t.hi):
                if not (spec.min <= v <= spec.max):
                    raise GraphError(f"macro '{m.name}' range value {v:g} for {t.param} is out "
                                     "of range", t.where,
                                     f"use {spec.format(spec.min)} to {spec.format(spec.max)}")
            targets.append((index[t.param], spec.to_norm(t.lo), spec.to_norm(t.hi)))
        if m.default is not None:
            initial = float(m.default)
        else:  # follow the first target's preset value, so the macro shows the real state
            idx, lo, hi = targets[0]
            cur = params[idx].initial_norm
            initial = 0.0 if hi == lo else min(max((cur - lo) / (hi - lo), 0.0), 1.0)
        slots.append(MacroSlot(len(slots), m.name, m.label, tuple(targets), initial))
    return tuple(slots)
