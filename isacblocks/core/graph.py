"""`Graph`: blocks and their stream and message connections, with every connect-time check.

`Flowgraph` (which runs a graph) builds on it.  The rules: an output port may feed many
inputs, an input takes one upstream; the two ports of a connection have the same dtype
and item shape, and blocks that carry a dataclass ``params`` carry equal ones; streams
form a DAG (feedback goes over message ports); before a run every port is connected.

A `HierBlock` (GNU Radio's ``hier_block2``) is flattened here: connecting to one of its
ports connects to the inner ports it stands for, and its inner blocks and connections
join the graph.  Errors name the hierarchical block and its port.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import ConfigError, ConnectError
from .block import TAG_POLICIES, Block
from .ports import PortSpec


def endpoint(item, direction: str) -> tuple[Block, int]:
    """``block`` or ``(block, port)`` with port an index or a port name; `direction` "in" or "out"."""
    block, port = (item if isinstance(item, tuple) and len(item) == 2 else (item, 0))
    if not isinstance(block, Block):
        raise ConnectError(f"connect: expected a Block or (Block, port), got {item!r}")
    return block, port_index(block, port, block.in_sig if direction == "in" else block.out_sig, direction)


def port_index(block: Block, port, sig: tuple[PortSpec, ...], direction: str) -> int:
    """The index of `port` (an index or a name) among the ports `sig` of `block`."""
    if isinstance(port, str):
        names = [s.name for s in sig]
        if port not in names:
            raise ConnectError(f"block {block.name!r} has no {direction}put port {port!r}; it has {names}")
        return names.index(port)
    if isinstance(port, bool) or not isinstance(port, (int, np.integer)) or not 0 <= int(port) < len(sig):
        raise ConnectError(f"block {block.name!r} has no {direction}put port {port!r}: "
                           f"it has {len(sig)} {direction}put port(s)")
    return int(port)


def link_problems(out_spec: PortSpec, in_spec: PortSpec) -> list[str]:
    """What keeps an output of `out_spec` from feeding an input of `in_spec` (empty: nothing)."""
    problems = []
    if np.dtype(out_spec.dtype) != np.dtype(in_spec.dtype):
        problems.append(f"dtype {np.dtype(out_spec.dtype).name} != {np.dtype(in_spec.dtype).name}")
    if tuple(out_spec.shape) != tuple(in_spec.shape):
        problems.append(f"item shape {tuple(out_spec.shape)} != {tuple(in_spec.shape)}")
    return problems


class Graph:
    """Blocks, stream edges ``(src, src_port, dst, dst_port)`` and message edges, checked as
    they are added.  Holds strong references to every block it contains."""

    def __init__(self, name: str):
        self.name = name
        self.blocks: list[Block] = []
        self._edges: list[tuple[Block, int, Block, int]] = []
        self._msg_edges: list[tuple[Block, str, Block, str]] = []
        #: Hierarchical blocks whose inner graph joined this one, and which of their stream
        #: ports were connected from outside: id(hier) -> (hier, inputs used, outputs used).
        self._hiers: dict[int, tuple] = {}

    # -------------------------------------------------------------- building
    def _check_open(self) -> None:
        """Refuse changes while the graph runs (a `Flowgraph` overrides it)."""

    def _add(self, block: Block) -> None:
        if getattr(block, "is_hier", False):
            self._adopt(block)
            return
        if not any(b is block for b in self.blocks):
            names = {b.name for b in self.blocks}
            if block.name in names:
                raise ConnectError(f"{self._what()}: two different blocks are named {block.name!r}")
            self.blocks.append(block)

    def _what(self) -> str:
        return f"flowgraph {self.name!r}"

    def add(self, *blocks: Block) -> None:
        """Add blocks that have no stream connections (message-only blocks, hierarchical blocks)."""
        for block in blocks:
            self._add(block)

    def _adopt(self, hier) -> None:
        """Join the inner blocks and connections of hierarchical block `hier` (once)."""
        if id(hier) in self._hiers:
            return
        hier.check_inside()
        for block in hier.inner.blocks:
            self._add(block)
        self._edges.extend(hier.inner._edges)
        self._msg_edges.extend(hier.inner._msg_edges)
        for key, value in hier.inner._hiers.items():
            self._hiers.setdefault(key, value)
        self._hiers[id(hier)] = (hier, set(), set())

    def connect(self, *endpoints) -> None:
        """Connect blocks: ``connect(a, b, c)`` chains port 0 to port 0, ``connect((a, 1), (b, 0))``
        connects explicit ports (indices or names)."""
        if len(endpoints) < 2:
            raise ConnectError("connect needs at least two endpoints")
        self._check_open()
        for src_item, dst_item in zip(endpoints[:-1], endpoints[1:]):
            src, src_port = endpoint(src_item, "out")
            dst, dst_port = endpoint(dst_item, "in")
            self._check_link(src, src_port, dst, dst_port)
            if getattr(dst, "is_hier", False):
                self._add(dst)
                used = self._hiers[id(dst)][1]
                if dst_port in used:
                    raise ConnectError(f"hier block {dst.name!r}: input {dst.in_sig[dst_port].name} is already "
                                       "connected; an input port takes one upstream")
                used.add(dst_port)
            if getattr(src, "is_hier", False):
                self._add(src)
                self._hiers[id(src)][2].add(src_port)
            leaf_src, leaf_port = src.inner_source(src_port) if getattr(src, "is_hier", False) else (src, src_port)
            targets = dst.inner_targets(dst_port) if getattr(dst, "is_hier", False) else [(dst, dst_port)]
            for leaf_dst, leaf_dst_port in targets:
                self._connect_leaf(leaf_src, leaf_port, leaf_dst, leaf_dst_port)

    def _check_link(self, src: Block, src_port: int, dst: Block, dst_port: int) -> None:
        out_spec, in_spec = src.out_sig[src_port], dst.in_sig[dst_port]
        mismatch = params_mismatch(src, dst)
        if mismatch:
            raise ConnectError(f"cannot connect {src.name}:{out_spec.name} to {dst.name}:{in_spec.name}: "
                               f"the blocks were built from different configurations: {mismatch}")
        problems = link_problems(out_spec, in_spec)
        if problems:
            raise ConnectError(
                f"cannot connect {src.name}:{out_spec.name} ({out_spec.describe()}) to "
                f"{dst.name}:{in_spec.name} ({in_spec.describe()}): {'; '.join(problems)}")

    def _connect_leaf(self, src: Block, src_port: int, dst: Block, dst_port: int) -> None:
        self._check_link(src, src_port, dst, dst_port)
        if self._input_taken(dst, dst_port):
            raise ConnectError(f"{dst.name}:{dst.in_sig[dst_port].name} is already connected; an input port "
                               "takes one upstream (use fan-out from the output instead)")
        self._add(src)
        self._add(dst)
        self._edges.append((src, src_port, dst, dst_port))

    def _input_taken(self, dst: Block, dst_port: int) -> bool:
        return any(d is dst and p == dst_port for _, _, d, p in self._edges)

    def msg_connect(self, src: Block, src_port: str, dst: Block, dst_port: str) -> None:
        """Subscribe input message port ``dst_port`` of `dst` to output message port ``src_port`` of `src`."""
        if src_port not in src.message_ports_out:
            raise ConnectError(f"block {src.name!r} has no output message port {src_port!r}; "
                               f"it has {list(src.message_ports_out)}")
        if dst_port not in dst.message_ports_in:
            raise ConnectError(f"block {dst.name!r} has no input message port {dst_port!r}; "
                               f"it has {list(dst.message_ports_in)}")
        self._add(src)
        self._add(dst)
        sources = src.inner_msg_sources(src_port) if getattr(src, "is_hier", False) else [(src, src_port)]
        targets = dst.inner_msg_targets(dst_port) if getattr(dst, "is_hier", False) else [(dst, dst_port)]
        for leaf_src, leaf_src_port in sources:
            for leaf_dst, leaf_dst_port in targets:
                leaf_src._subscribe(leaf_src_port, leaf_dst, leaf_dst_port)
                self._msg_edges.append((leaf_src, leaf_src_port, leaf_dst, leaf_dst_port))

    # -------------------------------------------------------------- checking
    def check_complete(self) -> None:
        """Every stream port connected and every tag policy valid; raises naming the port."""
        for hier, used_in, used_out in self._hiers.values():
            for index, spec in enumerate(hier.in_sig):
                if index not in used_in:
                    raise ConnectError(f"hier block {hier.name!r}: input {spec.name} ({spec.describe()}) is not "
                                       "connected")
            for index, spec in enumerate(hier.out_sig):
                if index not in used_out:
                    raise ConnectError(f"hier block {hier.name!r}: output {spec.name} ({spec.describe()}) is not "
                                       "connected; connect it to a sink (e.g. NullSink) to discard its items")
        for block in self.blocks:
            for index, spec in enumerate(block.in_sig):
                if not any(d is block and p == index for _, _, d, p in self._edges):
                    raise ConnectError(f"{block.name}:{spec.name} ({spec.describe()}) is not connected")
            for index, spec in enumerate(block.out_sig):
                if not any(s is block and p == index for s, p, _, _ in self._edges):
                    raise ConnectError(f"{block.name}:{spec.name} ({spec.describe()}) is not connected; "
                                       "connect it to a sink (e.g. NullSink) to discard its items")
            policy = block.tag_propagation
            if policy not in TAG_POLICIES:
                raise ConfigError(f"block {block.name!r}: tag_propagation = {policy!r}: expected one of "
                                  f"{list(TAG_POLICIES)}")
            if policy == "one_to_one" and block.in_sig and block.out_sig and \
                    len(block.in_sig) != len(block.out_sig):
                raise ConfigError(f"block {block.name!r}: tag_propagation 'one_to_one' needs as many inputs as "
                                  f"outputs; it has {len(block.in_sig)} and {len(block.out_sig)}")

    def topological_order(self) -> list[Block]:
        """The blocks with every block after its upstream blocks; a cycle raises `ConnectError`."""
        indegree = {id(b): 0 for b in self.blocks}
        for _, _, dst, _ in self._edges:
            indegree[id(dst)] += 1
        ready = [b for b in self.blocks if indegree[id(b)] == 0]
        order: list[Block] = []
        while ready:
            block = ready.pop(0)
            order.append(block)
            for src, _, dst, _ in self._edges:
                if src is block:
                    indegree[id(dst)] -= 1
                    if indegree[id(dst)] == 0:
                        ready.append(dst)
        if len(order) != len(self.blocks):
            cyclic = [b.name for b in self.blocks if b not in order]
            raise ConnectError(f"flowgraph {self.name!r} has a cycle through {cyclic}; streams must form a DAG "
                               "(use message ports for feedback)")
        return order


def _same(a, b) -> bool:
    if a is b:
        return True
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # e.g. arrays: elementwise comparison
        try:
            return bool(np.array_equal(a, b))
        except Exception:  # noqa: BLE001 - incomparable values differ
            return False


def params_mismatch(src: Block, dst: Block) -> str | None:
    """Both blocks carry a dataclass `params` (e.g. SystemParams) and they differ: say where.

    Radio-agnostic: any dataclass attribute named `params` is compared field by field.
    """
    a, b = getattr(src, "params", None), getattr(dst, "params", None)
    if a is None or b is None or a is b:
        return None
    if not (dataclasses.is_dataclass(a) and not isinstance(a, type)
            and dataclasses.is_dataclass(b) and not isinstance(b, type)):
        return None
    if type(a) is not type(b):
        return f"{src.name}.params is a {type(a).__name__}, {dst.name}.params a {type(b).__name__}"
    for field in dataclasses.fields(a):
        va, vb = getattr(a, field.name), getattr(b, field.name)
        if not _same(va, vb):
            return (f"{type(a).__name__}.{field.name} = {va!r} ({src.name}) != {vb!r} ({dst.name}); build both "
                    "blocks from the same params")
    return None
