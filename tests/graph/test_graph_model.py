"""Graph model: connection parsing, connect-time cycle rejection (cycle named), Kahn order.

The order is checked against a slow obvious reference (`_reference_order`): the topological
order that, at every step, takes the earliest-added node whose sources have all been placed.
"""

import random
import re

import pytest

from instrument.errors import GraphError, InstrumentError
from instrument.graph.model import Connection, Graph, Node, parse_connection


def _graph(*names: str, scope: str = "voice") -> Graph:
    graph = Graph(scope)
    for name in names:
        graph.add(Node(name, "saw", where=f"{scope}.nodes.{name}"))
    return graph


def _link(graph: Graph, src: str, dst: str, where: str = "") -> Connection:
    return graph.connect(Connection(src, "out", dst, "in", where=where))


def _reference_order(names: list[str], edges: list[tuple[str, str]]) -> list[str]:
    placed: list[str] = []
    while len(placed) < len(names):
        for name in names:  # earliest-added first
            if name not in placed and all(s in placed for s, d in edges if d == name):
                placed.append(name)
                break
        else:
            raise AssertionError("reference order found a cycle")
    return placed


def _reaches(edges: list[tuple[str, str]], start: str, goal: str) -> bool:
    frontier, seen = [start], set()
    while frontier:
        node = frontier.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            frontier.extend(d for s, d in edges if s == node)
    return False


def _cycle_in(message: str) -> list[str]:
    match = re.search(r"makes a cycle: ([\w >-]+?)(?: \(|$)", message)
    assert match, f"no cycle named in: {message}"
    return match.group(1).split(" -> ")


# -- parse_connection ----------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    pytest.param("osc1.out -> filt.in", ("osc1", "out", "filt", "in", 1.0), id="plain"),
    pytest.param("osc1.out->filt.in", ("osc1", "out", "filt", "in", 1.0), id="no-spaces"),
    pytest.param("  osc1 . out  ->  filt . in  ", ("osc1", "out", "filt", "in", 1.0),
                 id="spaces-everywhere"),
    pytest.param("env.out -> filt.cutoff_hz * 0.5", ("env", "out", "filt", "cutoff_hz", 0.5),
                 id="amount"),
    pytest.param("env.out -> filt.cutoff_hz*0.45", ("env", "out", "filt", "cutoff_hz", 0.45),
                 id="amount-no-spaces"),
    pytest.param("env.out -> filt.cutoff_hz * -0.25", ("env", "out", "filt", "cutoff_hz", -0.25),
                 id="negative-amount"),
    pytest.param("lfo.out -> osc.level * 1e-3", ("lfo", "out", "osc", "level", 0.001),
                 id="exponent-amount"),
    pytest.param("lfo.out -> osc.level * 0", ("lfo", "out", "osc", "level", 0.0),
                 id="zero-amount"),
])
def test_parse_connection_reads_ends_and_amount(text, expected):
    conn = parse_connection(text, "voice.connect[0]")
    assert (conn.src, conn.src_port, conn.dst, conn.dst_port, conn.amount) == expected
    assert conn.where == "voice.connect[0]"


@pytest.mark.parametrize("text, canonical", [
    pytest.param("a.out->b.in", "a.out -> b.in", id="unit-amount-omitted"),
    pytest.param("a.out -> b.gain * 1.0", "a.out -> b.gain", id="explicit-unit-amount-omitted"),
    pytest.param("a.out -> b.gain * 0.5", "a.out -> b.gain * 0.5", id="amount-kept"),
    pytest.param("a.out -> b.gain*-2", "a.out -> b.gain * -2", id="negative-amount-kept"),
])
def test_connection_prints_canonically_and_parses_back(text, canonical):
    conn = parse_connection(text)
    assert str(conn) == canonical
    assert parse_connection(str(conn)) == conn


@pytest.mark.parametrize("text, what, fix", [
    pytest.param("osc.out filt.in", "cannot read connection 'osc.out filt.in'",
                 'write it as "node.port -> node.port", optionally "* amount"', id="no-arrow"),
    pytest.param(3, "cannot read connection 3",
                 'write it as "node.port -> node.port", optionally "* amount"', id="not-a-string"),
    pytest.param("osc -> filt.in", "endpoint 'osc' in 'osc -> filt.in' is not node.port",
                 "name both the node and its port, like osc1.out", id="source-without-port"),
    pytest.param("osc.out -> filt", "endpoint 'filt' in 'osc.out -> filt' is not node.port",
                 "name both the node and its port, like osc1.out", id="target-without-port"),
    pytest.param("osc.out -> .in", "endpoint '.in' in 'osc.out -> .in' is not node.port",
                 "name both the node and its port, like osc1.out", id="target-without-node"),
    pytest.param("osc. -> filt.in", "endpoint 'osc.' in 'osc. -> filt.in' is not node.port",
                 "name both the node and its port, like osc1.out", id="empty-port"),
    pytest.param("env.out -> filt.cutoff_hz * lots",
                 "amount 'lots' in 'env.out -> filt.cutoff_hz * lots' is not a number",
                 "use a number such as 0.5 or -0.25", id="amount-not-a-number"),
    pytest.param("env.out -> filt.cutoff_hz * 0.5 * 2",
                 "amount '0.5 * 2' in 'env.out -> filt.cutoff_hz * 0.5 * 2' is not a number",
                 "use a number such as 0.5 or -0.25", id="two-amounts"),
    pytest.param("env.out -> filt.cutoff_hz * nan",
                 "amount in 'env.out -> filt.cutoff_hz * nan' is not finite",
                 "use a finite number", id="amount-nan"),
    pytest.param("env.out -> filt.cutoff_hz * -inf",
                 "amount in 'env.out -> filt.cutoff_hz * -inf' is not finite",
                 "use a finite number", id="amount-inf"),
])
def test_parse_connection_rejects_bad_syntax_with_where_and_fix(text, what, fix):
    with pytest.raises(GraphError) as info:
        parse_connection(text, "voice.connect[2]")
    assert (info.value.what, info.value.where, info.value.fix) == (what, "voice.connect[2]", fix)
    assert "\n" not in str(info.value)


def test_parse_connection_rejects_a_chain_of_two_arrows():
    # "a -> b -> c" is two connections written as one; it must not turn into port "in -> out.in".
    with pytest.raises(GraphError) as info:
        parse_connection("filt.out -> amp.in -> out.in", "voice.connect[1]")
    assert info.value.where == "voice.connect[1]"
    assert "filt.out -> amp.in -> out.in" in info.value.what
    assert info.value.fix


# -- Graph.add / Graph.connect ---------------------------------------------------------------------

def test_add_rejects_a_second_node_with_the_same_name():
    graph = _graph("osc")
    with pytest.raises(GraphError) as info:
        graph.add(Node("osc", "sine", where="voice.nodes.osc"))
    assert info.value.what == "node 'osc' is defined twice"
    assert info.value.where == "voice.nodes.osc"
    assert info.value.fix == "give each node its own name"
    assert graph.nodes["osc"].type == "saw"


@pytest.mark.parametrize("src, dst, unknown, fix", [
    pytest.param("flit", "amp", "flit", "did you mean 'filt'?", id="unknown-source-near-match"),
    pytest.param("filt", "ampp", "ampp", "did you mean 'amp'?", id="unknown-target-near-match"),
    pytest.param("zzz", "amp", "zzz", "valid: amp, filt, osc", id="unknown-source-lists-nodes"),
])
def test_connect_rejects_unknown_node_with_nearest_name(src, dst, unknown, fix):
    graph = _graph("osc", "filt", "amp")
    with pytest.raises(GraphError) as info:
        graph.connect(Connection(src, "out", dst, "in", where="voice.connect[3]"))
    assert info.value.what == f"unknown node '{unknown}' in \"{src}.out -> {dst}.in\""
    assert info.value.where == "voice.connect[3]"
    assert info.value.fix == fix
    assert graph.connections == []


def test_connect_in_empty_graph_says_there_is_no_node():
    with pytest.raises(GraphError) as info:
        Graph("global").connect(Connection("voices", "left", "main", "left"))
    assert info.value.fix == "there is none"


@pytest.mark.parametrize("existing, new, cycle", [
    pytest.param([], ("a", "a"), "a -> a", id="self-loop"),
    pytest.param([("a", "b")], ("b", "a"), "b -> a -> b", id="two-nodes"),
    pytest.param([("a", "b"), ("b", "c")], ("c", "a"), "c -> a -> b -> c", id="three-nodes"),
    pytest.param([("a", "b"), ("b", "c"), ("c", "d")], ("d", "b"), "d -> b -> c -> d",
                 id="cycle-not-through-first-node"),
])
def test_connect_rejects_a_cycle_and_names_it_in_signal_order(existing, new, cycle):
    graph = _graph("a", "b", "c", "d")
    for src, dst in existing:
        _link(graph, src, dst)
    before = list(graph.connections)
    with pytest.raises(GraphError) as info:
        _link(graph, *new, where="voice.connect[7]")
    err = info.value
    assert err.what == f"connection \"{new[0]}.out -> {new[1]}.in\" makes a cycle: {cycle}"
    assert err.where == "voice.connect[7]"
    assert err.fix == "remove one connection of the cycle; feedback belongs inside a module"
    assert graph.connections == before  # the rejected edge is not kept


def test_connect_names_a_real_cycle_when_there_are_several_paths():
    # Diamond a -> (b, c) -> d: closing d -> a has two candidate cycles; either is fine as long
    # as every step of the named cycle is a real edge.
    graph = _graph("a", "b", "c", "d")
    edges = [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]
    for src, dst in edges:
        _link(graph, src, dst)
    with pytest.raises(GraphError) as info:
        _link(graph, "d", "a")
    cycle = _cycle_in(info.value.what)
    assert cycle[0] == cycle[-1] == "d"
    assert set(zip(cycle, cycle[1:])) <= set(edges) | {("d", "a")}


def test_connect_allows_fan_in_fan_out_and_parallel_edges():
    graph = _graph("a", "b", "c")
    _link(graph, "a", "b")
    _link(graph, "a", "c")
    _link(graph, "b", "c")
    graph.connect(Connection("a", "out", "c", "level", 0.5))  # second edge a -> c, other port
    assert len(graph.connections) == 4
    assert graph.order() == ["a", "b", "c"]


@pytest.mark.parametrize("seed", range(20), ids=lambda s: f"seed{s}")
def test_connect_rejects_exactly_the_edges_that_close_a_cycle(seed):
    rng = random.Random(seed)
    names = [f"n{i}" for i in range(rng.randint(2, 7))]
    graph = _graph(*names)
    kept: list[tuple[str, str]] = []
    for i in range(25):
        src, dst = rng.choice(names), rng.choice(names)
        if (src, dst) in kept:  # the same connection twice is its own error
            with pytest.raises(GraphError, match="written twice"):
                _link(graph, src, dst)
            continue
        closes = _reaches(kept, dst, src)
        if closes:
            with pytest.raises(GraphError) as info:
                _link(graph, src, dst, where=f"voice.connect[{i}]")
            cycle = _cycle_in(info.value.what)
            assert cycle[0] == cycle[-1] == src
            assert set(zip(cycle, cycle[1:])) <= set(kept) | {(src, dst)}
        else:
            _link(graph, src, dst)
            kept.append((src, dst))
    assert [(c.src, c.dst) for c in graph.connections] == kept
    assert graph.order() == _reference_order(names, kept)


# -- Graph.order (Kahn) ----------------------------------------------------------------------------

def test_order_of_unconnected_nodes_is_the_order_they_were_added():
    assert _graph("c", "a", "b").order() == ["c", "a", "b"]


def test_order_of_init_preset_voice_graph():
    # osc -> filt -> amp <- env, amp -> out: ties go to the node added first.
    graph = _graph("osc", "filt", "env", "amp", "out")
    for src, dst in [("osc", "filt"), ("filt", "amp"), ("env", "amp"), ("amp", "out")]:
        _link(graph, src, dst)
    assert graph.order() == ["osc", "filt", "env", "amp", "out"]


def test_order_puts_a_node_after_its_sources_even_if_added_first():
    graph = _graph("out", "amp", "osc")
    _link(graph, "amp", "out")
    _link(graph, "osc", "amp")
    assert graph.order() == ["osc", "amp", "out"]


def test_order_does_not_depend_on_the_order_connections_were_made():
    edges = [("osc1", "filt"), ("osc2", "filt"), ("fenv", "filt"), ("filt", "amp"),
             ("aenv", "amp"), ("amp", "out")]
    names = ["osc1", "osc2", "filt", "fenv", "aenv", "amp", "out"]
    orders = set()
    for seed in range(10):
        shuffled = edges[:]
        random.Random(seed).shuffle(shuffled)
        graph = _graph(*names)
        for src, dst in shuffled:
            _link(graph, src, dst)
        orders.add(tuple(graph.order()))
    assert orders == {("osc1", "osc2", "fenv", "filt", "aenv", "amp", "out")}


def test_order_counts_parallel_edges_once():
    graph = _graph("env", "filt")
    graph.connect(Connection("env", "out", "filt", "cutoff_hz", 0.5))
    graph.connect(Connection("env", "out", "filt", "resonance", 0.1))
    assert graph.order() == ["env", "filt"]


@pytest.mark.parametrize("seed", range(30), ids=lambda s: f"seed{s}")
def test_order_matches_reference_on_random_dags(seed):
    rng = random.Random(seed)
    n = rng.randint(1, 12)
    rank = [f"n{i}" for i in range(n)]  # edges only go from lower to higher rank: a DAG
    names = rank[:]
    rng.shuffle(names)  # insertion order unrelated to rank
    edges = [(rank[i], rank[j]) for i in range(n) for j in range(i + 1, n) if rng.random() < 0.3]
    rng.shuffle(edges)
    graph = _graph(*names)
    for src, dst in edges:
        _link(graph, src, dst)
    order = graph.order()
    assert sorted(order) == sorted(names)
    position = {name: i for i, name in enumerate(order)}
    assert all(position[s] < position[d] for s, d in edges)
    assert order == _reference_order(names, edges)


def test_order_raises_graph_error_when_connections_bypass_connect_and_form_a_cycle():
    # connect() makes this impossible; the guard must still fail loudly rather than drop nodes.
    graph = _graph("a", "b")
    _link(graph, "a", "b")
    graph.connections.append(Connection("b", "out", "a", "in"))
    with pytest.raises(GraphError) as info:
        graph.order()
    assert isinstance(info.value, InstrumentError)
