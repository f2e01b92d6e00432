"""The ``isac`` command lines, one module per command group.

Each module in `GROUPS` has ``register(sub)``, which adds its sub-commands to argparse's
sub-parsers and sets each parser's default ``run``: ``run(args) -> int`` runs the command
and returns its exit code (`runner.run_command` calls it).  `isacblocks.cli` builds ``isac``
from `GROUPS` (and adds ``isac bench``, the benchmark layer above this one);
``python -m isacblocks.commands`` runs the same commands without it (`main`).

The studies these commands run are `isacblocks.experiments`; the arguments they share are
`options`, their memory check `memory`.
"""

from __future__ import annotations

import argparse

from . import baseline, drift, grc, impairments, learning, link, multitarget, reproduce, snr, tools
from .options import HelpFormatter
from .runner import run_command

#: The command groups, in the order ``isac --help`` lists them (a new group is one more entry).
GROUPS = (
    reproduce,  # reproduce, report
    learning,  # train, evaluate
    baseline,  # sensing, isac-sweep
    snr,  # snr-sweep
    link,  # tx, rx
    tools,  # draw-spacing, keys
    multitarget,  # multi-target
    impairments,  # impairments
    drift,  # drift
    grc,  # grc install
)


def register(sub) -> None:
    """Add every command of `GROUPS` to the sub-parsers `sub`."""
    for group in GROUPS:
        group.register(sub)


def main(argv=None) -> int:
    """``python -m isacblocks.commands COMMAND ...``: the commands of `GROUPS` in this process
    (without ``isac``'s restart on the pinned kernel set); returns the exit code."""
    parser = argparse.ArgumentParser(prog="isac")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    register(sub)
    for command in sub.choices.values():
        command.formatter_class = HelpFormatter
    return run_command(parser, argv)
