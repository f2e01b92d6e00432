"""`HierBlock`: blocks wired together that act as one block (GNU Radio's ``hier_block2``).

A subclass declares its stream ports like any block and wires them in its constructor::

    class Tx(HierBlock):
        def __init__(self, params):
            super().__init__(in_sig=[...], out_sig=[...], name="tx")
            a, b = BlockA(params), BlockB(params)
            self.connect((self, 0), (a, 0))   # hier input 0 -> inner input
            self.connect(a, b)                # inner to inner
            self.connect((b, 0), (self, 0))   # inner output -> hier output 0
            self.message_port_register_hier_in("spacing")
            self.msg_connect(self, "spacing", a, "spacing")

A `Flowgraph` flattens it: connecting to a hier port connects to the inner port(s) it
stands for, and the inner blocks and connections join the flowgraph.  A hier input may
feed several inner inputs; a hier output comes from one inner output.  Hier blocks nest.
The hier block itself never runs: it has no work().
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import ConfigError, ConnectError
from .block import Block
from .graph import Graph, endpoint, link_problems, port_index


class _InnerGraph(Graph):
    def __init__(self, hier: HierBlock):
        super().__init__(hier.name)
        self.hier = hier

    def _what(self) -> str:
        return f"hier block {self.hier.name!r}"

    def _input_taken(self, dst: Block, dst_port: int) -> bool:
        """Also taken: an inner input that a hier input feeds."""
        return super()._input_taken(dst, dst_port) or any(
            b is dst and p == dst_port for targets in self.hier._in_map.values() for b, p in targets)


class HierBlock(Block):
    """A block made of connected blocks; see the module docstring."""

    #: Read by `Graph` to flatten this block instead of running it.
    is_hier = True

    def __init__(self, in_sig: Sequence = (), out_sig: Sequence = (), name: str | None = None):
        super().__init__(in_sig=in_sig, out_sig=out_sig, name=name)
        self._msg_handlers = {}  # a hier block has only the message ports it registers
        self.inner = _InnerGraph(self)
        self._in_map: dict[int, list[tuple[Block, int]]] = {}
        self._out_map: dict[int, tuple[Block, int]] = {}
        self._msg_in_map: dict[str, list[tuple[Block, str]]] = {}
        self._msg_out_map: dict[str, list[tuple[Block, str]]] = {}

    def work(self, inputs, outputs) -> int:
        raise TypeError(f"hier block {self.name!r} has no work(); a Flowgraph runs its inner blocks")

    # -------------------------------------------------------------- wiring
    def connect(self, *endpoints) -> None:
        """Connect inner blocks, as `Flowgraph.connect`; ``(self, i)`` as a source is hier input
        ``i``, as a destination hier output ``i``."""
        if len(endpoints) < 2:
            raise ConnectError(f"hier block {self.name!r}: connect needs at least two endpoints")
        for src_item, dst_item in zip(endpoints[:-1], endpoints[1:]):
            src_is_self = self._is_self(src_item)
            dst_is_self = self._is_self(dst_item)
            if src_is_self and dst_is_self:
                raise ConfigError(f"hier block {self.name!r}: an input connected straight to an output is not "
                                  "supported; put a block between them")
            if src_is_self:
                self._connect_input(src_item, dst_item)
            elif dst_is_self:
                self._connect_output(src_item, dst_item)
            else:
                self.inner.connect(src_item, dst_item)

    def _is_self(self, item) -> bool:
        return (item[0] if isinstance(item, tuple) and len(item) == 2 else item) is self

    def _self_port(self, item, sig, direction: str) -> int:
        port = item[1] if isinstance(item, tuple) else 0
        try:
            return port_index(self, port, sig, direction)
        except ConnectError as exc:
            raise ConnectError(f"hier block {self.name!r}: {exc}") from None

    def _connect_input(self, src_item, dst_item) -> None:
        index = self._self_port(src_item, self.in_sig, "in")
        spec = self.in_sig[index]
        dst, dst_port = endpoint(dst_item, "in")
        problems = link_problems(spec, dst.in_sig[dst_port])
        if problems:
            raise ConnectError(f"hier block {self.name!r}: cannot connect its input {spec.name} "
                               f"({spec.describe()}) to {dst.name}:{dst.in_sig[dst_port].name} "
                               f"({dst.in_sig[dst_port].describe()}): {'; '.join(problems)}")
        inner = self.inner
        if getattr(dst, "is_hier", False):
            inner._add(dst)
            used = inner._hiers[id(dst)][1]
            if dst_port in used:
                raise ConnectError(f"hier block {dst.name!r}: input {dst.in_sig[dst_port].name} is already "
                                   "connected; an input port takes one upstream")
            used.add(dst_port)
            targets = dst.inner_targets(dst_port)
        else:
            inner._add(dst)
            targets = [(dst, dst_port)]
        taken = {(id(b), p) for b, p in self._leaf_inputs_taken()}
        for block, port in targets:
            if (id(block), port) in taken:
                raise ConnectError(f"hier block {self.name!r}: {block.name}:{block.in_sig[port].name} is already "
                                   "connected; an input port takes one upstream")
        self._in_map.setdefault(index, []).extend(targets)

    def _leaf_inputs_taken(self):
        for _, _, dst, port in self.inner._edges:
            yield dst, port
        for targets in self._in_map.values():
            yield from targets

    def _connect_output(self, src_item, dst_item) -> None:
        index = self._self_port(dst_item, self.out_sig, "out")
        spec = self.out_sig[index]
        src, src_port = endpoint(src_item, "out")
        problems = link_problems(src.out_sig[src_port], spec)
        if problems:
            raise ConnectError(f"hier block {self.name!r}: cannot connect {src.name}:{src.out_sig[src_port].name} "
                               f"({src.out_sig[src_port].describe()}) to its output {spec.name} "
                               f"({spec.describe()}): {'; '.join(problems)}")
        if index in self._out_map:
            raise ConnectError(f"hier block {self.name!r}: output {spec.name} is already connected inside; a hier "
                               "output comes from one inner output")
        self.inner._add(src)
        if getattr(src, "is_hier", False):
            self.inner._hiers[id(src)][2].add(src_port)
            self._out_map[index] = src.inner_source(src_port)
        else:
            self._out_map[index] = (src, src_port)

    def message_port_register_hier_in(self, port: str) -> None:
        """Declare input message port `port`; ``msg_connect(self, port, block, block_port)`` forwards it."""
        self._msg_in_map.setdefault(port, [])

    def message_port_register_hier_out(self, port: str) -> None:
        """Declare output message port `port`; ``msg_connect(block, block_port, self, port)`` feeds it."""
        self._msg_out_map.setdefault(port, [])

    @property
    def message_ports_in(self) -> tuple[str, ...]:
        return tuple(self._msg_in_map)

    @property
    def message_ports_out(self) -> tuple[str, ...]:
        return tuple(self._msg_out_map)

    def msg_connect(self, src: Block, src_port: str, dst: Block, dst_port: str) -> None:
        """Connect inner message ports, as `Flowgraph.msg_connect`; `self` stands for the hier
        block's own message ports (registered with ``message_port_register_hier_in/out``)."""
        if src is self and dst is self:
            raise ConfigError(f"hier block {self.name!r}: a message input connected straight to a message output "
                              "is not supported")
        if src is self:
            if src_port not in self._msg_in_map:
                raise ConnectError(f"hier block {self.name!r} has no input message port {src_port!r}; it has "
                                   f"{list(self._msg_in_map)} (message_port_register_hier_in)")
            if dst_port not in dst.message_ports_in:
                raise ConnectError(f"block {dst.name!r} has no input message port {dst_port!r}; "
                                   f"it has {list(dst.message_ports_in)}")
            self.inner._add(dst)
            targets = dst.inner_msg_targets(dst_port) if getattr(dst, "is_hier", False) else [(dst, dst_port)]
            self._msg_in_map[src_port].extend(targets)
        elif dst is self:
            if dst_port not in self._msg_out_map:
                raise ConnectError(f"hier block {self.name!r} has no output message port {dst_port!r}; it has "
                                   f"{list(self._msg_out_map)} (message_port_register_hier_out)")
            if src_port not in src.message_ports_out:
                raise ConnectError(f"block {src.name!r} has no output message port {src_port!r}; "
                                   f"it has {list(src.message_ports_out)}")
            self.inner._add(src)
            sources = src.inner_msg_sources(src_port) if getattr(src, "is_hier", False) else [(src, src_port)]
            self._msg_out_map[dst_port].extend(sources)
        else:
            self.inner.msg_connect(src, src_port, dst, dst_port)

    def add(self, *blocks: Block) -> None:
        """Add inner blocks that have no stream connections."""
        self.inner.add(*blocks)

    # -------------------------------------------------------------- flattening
    def check_inside(self) -> None:
        """Every hier port is wired inside; raises `ConfigError` naming the first that is not."""
        for index, spec in enumerate(self.in_sig):
            if not self._in_map.get(index):
                raise ConfigError(f"hier block {self.name!r}: input {spec.name} ({spec.describe()}) is not "
                                  f"connected inside; connect((self, {index}), (block, port)) in its constructor")
        for index, spec in enumerate(self.out_sig):
            if index not in self._out_map:
                raise ConfigError(f"hier block {self.name!r}: output {spec.name} ({spec.describe()}) is not "
                                  f"connected inside; connect((block, port), (self, {index})) in its constructor")
        for port, targets in {**self._msg_in_map, **self._msg_out_map}.items():
            if not targets:
                raise ConfigError(f"hier block {self.name!r}: message port {port!r} is not connected inside; "
                                  "msg_connect it in the constructor")

    def inner_targets(self, port: int) -> list[tuple[Block, int]]:
        """The inner (block, input) pairs hier input `port` feeds."""
        self.check_inside()
        return list(self._in_map[port])

    def inner_source(self, port: int) -> tuple[Block, int]:
        """The inner (block, output) pair behind hier output `port`."""
        self.check_inside()
        return self._out_map[port]

    def inner_msg_targets(self, port: str) -> list[tuple[Block, str]]:
        self.check_inside()
        return list(self._msg_in_map[port])

    def inner_msg_sources(self, port: str) -> list[tuple[Block, str]]:
        self.check_inside()
        return list(self._msg_out_map[port])

    def post(self, port: str, msg: Any) -> None:
        """Post `msg` to every inner port that hier message input `port` feeds."""
        if port not in self._msg_in_map:
            raise ConfigError(f"hier block {self.name!r}: no input message port {port!r}; "
                              f"registered: {sorted(self._msg_in_map)}")
        for block, block_port in self._msg_in_map[port]:
            block.post(block_port, msg)
