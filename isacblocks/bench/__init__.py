"""Throughput, overhead and memory benchmarks of isacblocks (``isac bench``), installed with the package.

Everything is measured in one run, on the same inputs, against dense reference-style
implementations (`isacblocks.bench.dense_reference`: reference code the benchmark compares
against, not library code), with warm-up, repetitions, medians and min-max.  Sections:

* `isacblocks.bench.roofline`   -- the machine's complex64 matmul GFLOP/s (numpy, torch),
  memory bandwidth, and the FLOPs / bytes per frame of each receiver;
* `isacblocks.bench.receivers`  -- receiver frames/s (MB-ML, MAPRT, dense numpy, dense torch)
  and the cross-checks between them;
* `isacblocks.bench.training`   -- `Trainer.step()` vs a dense torch autograd step;
* `isacblocks.bench.chain`      -- the tx -> channel -> rx flowgraph, scheduler overhead,
  work() call overhead;
* `isacblocks.bench.zmq_bench`  -- ZeroMQ PUSH/PULL and PUB/SUB loopback, one and two processes;
* `isacblocks.bench.gnuradio_bench` -- ZeroMQ between GNU Radio and isacblocks;
* `isacblocks.bench.memory`     -- peak RSS of a training step, RSS of a streaming flowgraph;
* `isacblocks.bench.gpu`        -- the CUDA kernel against the CPU one (``--device cuda``);
* `isacblocks.bench.suite`      -- runs them (sizes in `isacblocks.bench.config`), checks the goals
  (`isacblocks.bench.goals`), writes Markdown (`isacblocks.bench.report`) and JSON.

`benchmark_flowgraph` times a flowgraph of your own: frames/s over fresh runs and the
per-block counters (work() calls and time, items, buffer fill) of the median run.

The ``isac bench`` command runs the suite (also ``python -m isacblocks.bench``).  Only the
``isac`` command imports this package; nothing in the library does (`tests/test_layers.py`).
Importing it does not import torch: the sections do, when they run.
"""

from .flowgraph import FlowgraphBenchmark, benchmark_flowgraph

__all__ = ["FlowgraphBenchmark", "benchmark_flowgraph"]
