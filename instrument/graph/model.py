"""Graphs as plain data: nodes, connections, and the preset that holds a voice and a global graph.

Connections are checked when they are made: ``Graph.connect`` rejects an edge that would close a
cycle and names the cycle (``osc1 -> filt -> osc1``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from instrument.errors import GraphError
from instrument.names import nearest


@dataclass
class Node:
    """A module instance: ``id`` in its graph, module ``type``, parameter values in display
    units (as written in the preset), and ``where`` for error messages."""

    id: str
    type: str
    params: dict[str, float] = field(default_factory=dict)
    where: str = ""


@dataclass(frozen=True)
class Connection:
    """``src.port -> dst.port`` (an input port or a parameter), times ``amount``."""

    src: str
    src_port: str
    dst: str
    dst_port: str
    amount: float = 1.0
    where: str = ""

    def __str__(self) -> str:
        tail = f" * {self.amount:g}" if self.amount != 1.0 else ""
        return f"{self.src}.{self.src_port} -> {self.dst}.{self.dst_port}{tail}"


def parse_connection(text: str, where: str = "") -> Connection:
    """Parse ``"osc1.out -> filt.in"`` or ``"env.out -> filt.cutoff_hz * 0.5"``."""
    if not isinstance(text, str) or "->" not in text:
        raise GraphError(f"cannot read connection {text!r}", where,
                         "write it as \"node.port -> node.port\", optionally \"* amount\"")
    if text.count("->") != 1:
        raise GraphError(f"cannot read connection {text!r}", where,
                         'write one connection per string: "a.out -> b.in", "b.out -> c.in"')
    left, right = (part.strip() for part in text.split("->", 1))
    amount = 1.0
    if "*" in right:
        right, amount_text = (part.strip() for part in right.split("*", 1))
        try:
            amount = float(amount_text)
        except ValueError:
            raise GraphError(f"amount {amount_text!r} in {text!r} is not a number", where,
                             "use a number such as 0.5 or -0.25") from None
        if amount != amount or abs(amount) == float("inf"):
            raise GraphError(f"amount in {text!r} is not finite", where, "use a finite number")
    ends = []
    for end in (left, right):
        node, dot, port = end.partition(".")
        if not dot or not node.strip() or not port.strip():
            raise GraphError(f"endpoint {end!r} in {text!r} is not node.port", where,
                             "name both the node and its port, like osc1.out")
        ends.append((node.strip(), port.strip()))
    return Connection(ends[0][0], ends[0][1], ends[1][0], ends[1][1], amount, where)


@dataclass
class Graph:
    """Nodes and connections of one scope (``voice`` or ``global``)."""

    scope: str
    nodes: dict[str, Node] = field(default_factory=dict)
    connections: list[Connection] = field(default_factory=list)

    def add(self, node: Node) -> Node:
        if node.id in self.nodes:
            raise GraphError(f"node '{node.id}' is defined twice", node.where,
                             "give each node its own name")
        self.nodes[node.id] = node
        return node

    def connect(self, conn: Connection) -> Connection:
        """Add an edge; unknown nodes and cycles are rejected here, with the cycle named."""
        for name in (conn.src, conn.dst):
            if name not in self.nodes:
                raise GraphError(f"unknown node '{name}' in \"{conn}\"", conn.where,
                                 nearest(name, self.nodes))
        for old in self.connections:
            if (old.src, old.src_port, old.dst, old.dst_port) == (
                    conn.src, conn.src_port, conn.dst, conn.dst_port):
                raise GraphError(f"connection \"{conn}\" is written twice", conn.where,
                                 "remove one of them")
        path = self._path(conn.dst, conn.src)
        if path is not None:
            cycle = " -> ".join([conn.src, *path])
            raise GraphError(f"connection \"{conn}\" makes a cycle: {cycle}", conn.where,
                             "remove one connection of the cycle; feedback belongs inside a module")
        self.connections.append(conn)
        return conn

    def _path(self, start: str, goal: str) -> list[str] | None:
        """Node names from ``start`` to ``goal`` along existing edges, or None."""
        edges: dict[str, list[str]] = {}
        for c in self.connections:
            edges.setdefault(c.src, []).append(c.dst)
        stack = [(start, [start])]
        seen = set()
        while stack:
            node, path = stack.pop()
            if node == goal:
                return path
            if node in seen:
                continue
            seen.add(node)
            for nxt in edges.get(node, ()):
                stack.append((nxt, path + [nxt]))
        return None

    def order(self) -> list[str]:
        """Kahn ordering; ties keep the order in which nodes were added (stable plans)."""
        indegree = {name: 0 for name in self.nodes}
        edges: dict[str, list[str]] = {name: [] for name in self.nodes}
        for c in self.connections:
            if c.dst not in edges[c.src]:
                edges[c.src].append(c.dst)
                indegree[c.dst] += 1
        position = {name: i for i, name in enumerate(self.nodes)}
        ready = sorted((n for n, d in indegree.items() if d == 0), key=position.get)
        result = []
        while ready:
            node = ready.pop(0)
            result.append(node)
            for nxt in edges[node]:
                indegree[nxt] -= 1
                if indegree[nxt] == 0:
                    ready.append(nxt)
                    ready.sort(key=position.get)
        if len(result) != len(self.nodes):  # unreachable through connect(); kept as a guard
            raise GraphError("graph has a cycle", self.scope, "remove a connection")
        return result


@dataclass
class MacroTarget:
    param: str  # "node.param"
    lo: float  # display value at macro 0
    hi: float  # display value at macro 1
    where: str = ""


@dataclass
class Macro:
    name: str
    label: str
    targets: list[MacroTarget]
    default: float | None = None
    where: str = ""


@dataclass
class VoiceSettings:
    polyphony: int = 8
    mode: str = "poly"
    steal: str = "oldest"
    glide_ms: float = 0.0
    bend_range_st: float = 2.0


@dataclass
class Preset:
    """A whole patch: voice settings, the per-voice graph, the global graph and macros."""

    name: str
    voice: VoiceSettings
    voice_graph: Graph
    global_graph: Graph
    macros: list[Macro] = field(default_factory=list)
    source: str = ""
