"""Throughput, overhead and memory benchmarks of isacblocks (``isac bench``).

Everything is measured in one run, on the same inputs, against dense reference-style
implementations written here (`benchmarks.dense_reference`), with warm-up, repetitions,
medians and min-max.  Sections:

* `benchmarks.roofline`   -- the machine's complex64 matmul GFLOP/s (numpy, torch), memory
  bandwidth, and the FLOPs / bytes per frame of each receiver;
* `benchmarks.receivers`  -- receiver frames/s (MB-ML, MAPRT, dense numpy, dense torch) and
  the cross-checks between them;
* `benchmarks.training`   -- `Trainer.step()` vs a dense torch autograd step;
* `benchmarks.chain`      -- the tx -> channel -> rx flowgraph, scheduler overhead, work()
  call overhead;
* `benchmarks.zmq_bench`  -- ZeroMQ PUSH/PULL and PUB/SUB loopback, one and two processes;
* `benchmarks.memory`     -- peak RSS of a training step, RSS of a streaming flowgraph;
* `benchmarks.suite`      -- runs them all, checks the goals, writes Markdown and JSON.

The package lives beside `isacblocks/` in the source tree (it is not installed); the
``isac bench`` command finds it there.  Run from the repository root with
``python -m benchmarks.suite [--quick]`` as well.
"""
