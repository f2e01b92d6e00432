"""Memory: peak RSS of one training step, and the RSS of a receiver flowgraph streaming for a while.

Each measurement runs in a child process of its own (``python -m isacblocks.bench.memory
...``), so that nothing else this benchmark allocated counts.  The peak RSS is the child's
high-water mark, VmHWM from ``/proc/self/status``: ``getrusage(RUSAGE_SELF).ru_maxrss``
measures the same thing but on Linux also carries over the parent's peak RSS at the spawn
(the kernel keeps the high-water mark of the address space the child had before exec), so
a child of this benchmark, which itself held GBs of dense maps, would report those.
ru_maxrss is recorded beside it.  RSS now comes from ``/proc/self/statm``.

A training child first runs one step at batch `WARMUP_BATCH`, so that code and
workspaces touched on first use are part of its baseline, then:

* ``train --impl isacblocks --batch 3000``: `Trainer.step()` at batch 3000;
* ``train --impl dense --batch B1 B2 [B]``: the dense torch step at batch sizes B1 < B2, and
  at the goal's batch B when its tensor-size estimate
  (`isacblocks.bench.dense_reference.dense_training_peak_bytes`) stays within
  `DENSE_RUN_LIMIT_BYTES`.  At batch 3000 it does not (about 13 GiB), so the peak there is
  extrapolated linearly from B1 and B2.  The high-water mark is the process's, which a
  one-time transient of the first step can hold above the peaks of small batches, so the
  fit uses each step's own peak, sampled every millisecond (`isacblocks.bench.timing.RssSampler`);
  both are reported.

``stream --seconds T``: the tx -> channel -> rx flowgraph with `MBMLEstimator` streams
endless frames in its scheduler thread; after a warm-up of a few batches through the
metrics sink, RSS is sampled every `interval` seconds.  `DetectionMetricsSink` keeps 48
bytes per frame by design (its records), so that much growth is expected and reported
beside the measured growth.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .timing import RssSampler, child_env, peak_rss_bytes, rss_bytes, ru_maxrss_bytes

#: Batch size of the untimed first training step of a memory child.
WARMUP_BATCH = 2
#: The dense step is run at the goal's batch only if its tensor-size estimate stays below this.
DENSE_RUN_LIMIT_BYTES = 8e9
#: Bytes per frame that `DetectionMetricsSink` keeps (six float64 per record).
RECORD_BYTES = 48
GIB = 2**30
MIB = 2**20


def _child(args: list[str], timeout_s: float) -> dict:
    proc = subprocess.run([sys.executable, "-m", "isacblocks.bench.memory", *args], capture_output=True, text=True,
                          env=child_env(), timeout=timeout_s)
    if proc.returncode != 0:
        raise RuntimeError(f"isacblocks.bench.memory {' '.join(args)} failed ({proc.returncode}): "
                           f"{proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------- child side
def _params(config: str | None):
    from isacblocks import SystemParams

    return SystemParams.from_toml(config) if config else SystemParams()


def _train_child(impl: str, batches: list[int], seed: int, config: str | None) -> dict:
    import torch  # noqa: F401 - imported before the baseline RSS is read, as in any training process

    from isacblocks.blocks import true_array

    from .dense_reference import DenseTrainer
    from .training import make_trainer
    from .workload import training_draw

    params = _params(config)
    ula = true_array(params, seed, None)

    def step(batch: int) -> None:
        if impl == "isacblocks":
            make_trainer(params, ula.spacing, batch, seed).step()
        else:
            DenseTrainer(params).step(training_draw(np.random.default_rng(seed), params, ula.spacing, batch), "ul")

    # One step at batch WARMUP_BATCH first: libraries' code and workspaces touched on first use
    # (LAPACK, Numba's cached kernels, torch's allocators) are then part of the baseline.
    step(WARMUP_BATCH)
    baseline = rss_bytes()
    steps = []
    for batch in sorted(batches):
        start = time.perf_counter()
        with RssSampler() as sampler:
            step(batch)
        steps.append({"batch": batch, "peak_rss_bytes": peak_rss_bytes(), "ru_maxrss_bytes": ru_maxrss_bytes(),
                      "sampled_peak_rss_bytes": sampler.peak, "step_s": time.perf_counter() - start})
    return {"impl": impl, "baseline_rss_bytes": baseline, "steps": steps}


def _stream_child(seconds: float, warmup_calls: int, interval_s: float, seed: int, max_items: int,
                  config: str | None) -> dict:
    from isacblocks.blocks import MBMLEstimator, true_array
    from isacblocks.blocks.chains import isac_flowgraph

    params = _params(config)
    ula = true_array(params, seed, None)
    chain = isac_flowgraph(params, ula, ula.spacing, None, seed=seed, estimator=MBMLEstimator(params, ula.spacing),
                           max_items=max_items)
    fg = chain.flowgraph
    fg.start()
    try:
        # Warm-up: until the metrics sink has taken `warmup_calls` batches (kernels loaded, precoders
        # computed, buffers allocated), at most 10 minutes.
        deadline = time.monotonic() + 600
        while fg.work_calls.get(chain.detection.name, 0) < warmup_calls and time.monotonic() < deadline:
            if not fg.running:
                break
            time.sleep(0.05)
        calls_at_start = fg.work_calls.get(chain.detection.name, 0)
        samples = []
        start = time.perf_counter()
        while (now := time.perf_counter() - start) < seconds:
            samples.append((now, rss_bytes()))
            time.sleep(interval_s)
        samples.append((time.perf_counter() - start, rss_bytes()))
        calls = fg.work_calls.get(chain.detection.name, 0) - calls_at_start
    finally:
        fg.stop(timeout=30.0)
    fg.wait()  # re-raises a block's error, if the flowgraph failed
    frames = len(chain.detection.records) + chain.detection.invalid_frames
    return {"samples": samples, "detection_calls_while_sampled": calls, "frames_total": frames,
            "warmup_calls": warmup_calls, "max_items": max_items}


# ------------------------------------------------------------------------------ parent side
def _config_args(config: str | None) -> list[str]:
    return ["--config", str(Path(config).resolve())] if config else []


def training_peak(batch: int, dense_batches: list[int], seed: int, config: str | None = None,
                  timeout_s: float = 600.0) -> dict:
    """Peak RSS of the library's step at `batch` (measured) and of the dense step: measured at
    `batch` too when its tensor-size estimate stays within `DENSE_RUN_LIMIT_BYTES`, otherwise
    extrapolated from `dense_batches`."""
    from .dense_reference import dense_training_peak_bytes

    tensors = dense_training_peak_bytes(_params(config), batch)
    direct = tensors["estimated_peak_bytes"] <= DENSE_RUN_LIMIT_BYTES
    common = ["--seed", str(seed), *_config_args(config)]
    lib = _child(["train", "--impl", "isacblocks", "--batch", str(batch), *common], timeout_s)
    fit_batches = sorted(set(dense_batches))[-2:]
    run_batches = sorted(set(fit_batches) | ({batch} if direct else set()))
    dense = _child(["train", "--impl", "dense", "--batch", *map(str, run_batches), *common], timeout_s)
    points = {s["batch"]: s for s in dense["steps"]}
    (b1, p1), (b2, p2) = [(b, points[b]["sampled_peak_rss_bytes"]) for b in fit_batches]
    slope = (p2 - p1) / (b2 - b1)
    extrapolated = p2 + slope * (batch - b2)
    lib_peak = lib["steps"][-1]["peak_rss_bytes"]
    if direct:
        dense_peak = points[batch]["peak_rss_bytes"]
        how = "measured (VmHWM)"
    else:
        dense_peak = extrapolated
        how = (f"extrapolated; not run: its tensor-size estimate {tensors['estimated_peak_bytes'] / 1e9:.1f} GB "
               f"exceeds the {DENSE_RUN_LIMIT_BYTES / 1e9:.0f} GB a benchmark may take on this machine")
    return {
        "batch": batch,
        "isacblocks": {"peak_rss_gib": lib_peak / GIB, "baseline_rss_gib": lib["baseline_rss_bytes"] / GIB,
                       "ru_maxrss_gib": lib["steps"][-1]["ru_maxrss_bytes"] / GIB,
                       "sampled_step_peak_rss_gib": lib["steps"][-1]["sampled_peak_rss_bytes"] / GIB,
                       "step_s": lib["steps"][-1]["step_s"], "measured": True},
        "dense_torch": {
            "peak_rss_gib": dense_peak / GIB, "measured": direct, "how": how,
            "extrapolated_peak_rss_gib": extrapolated / GIB,
            "per_frame_mib_measured": slope / MIB,
            "tensor_estimate_gib": (dense["baseline_rss_bytes"] + tensors["estimated_peak_bytes"]) / GIB,
            "tensor_estimate_per_frame_mib": tensors["per_frame_total_bytes"] / MIB,
            "measured_points": [{"batch": s["batch"], "step_peak_rss_gib": s["sampled_peak_rss_bytes"] / GIB,
                                 "vm_hwm_gib": s["peak_rss_bytes"] / GIB, "ru_maxrss_gib": s["ru_maxrss_bytes"] / GIB,
                                 "step_s": s["step_s"]} for s in dense["steps"]],
            "baseline_rss_gib": dense["baseline_rss_bytes"] / GIB,
        },
        "ratio_dense_over_isacblocks": dense_peak / lib_peak,
    }


def streaming_rss(seconds: float, warmup_calls: int, interval_s: float, seed: int, max_items: int = 64,
                  config: str | None = None) -> dict:
    """RSS samples of a streaming receiver flowgraph and whether they stay flat."""
    raw = _child(["stream", "--seconds", str(seconds), "--warmup-calls", str(warmup_calls), "--interval-s",
                  str(interval_s), "--seed", str(seed), "--max-items", str(max_items), *_config_args(config)],
                 timeout_s=seconds + 900)
    t = np.array([s[0] for s in raw["samples"]])
    rss = np.array([s[1] for s in raw["samples"]], dtype=np.float64)
    slope = float(np.polyfit(t, rss, 1)[0]) if len(t) > 1 else 0.0
    frames = raw["detection_calls_while_sampled"] * max_items
    expected = frames * RECORD_BYTES
    growth = float(rss[-1] - rss[0])
    allowance = max(10 * MIB, 0.02 * rss[0])
    return {"seconds": seconds, "warmup_calls": warmup_calls, "frames_per_call": max_items, "samples": len(rss),
            "rss_start_mib": rss[0] / MIB, "rss_end_mib": rss[-1] / MIB, "rss_max_mib": rss.max() / MIB,
            "growth_mib": growth / MIB, "slope_mib_per_min": slope * 60 / MIB,
            "frames_while_sampled": frames, "frames_per_s": frames / seconds,
            "expected_growth_mib": expected / MIB,
            "flat": bool(growth - expected <= allowance),
            "criterion": "growth beyond the metrics sink's 48 bytes per frame <= max(10 MiB, 2 % of the start)",
            "rss_mib_series": [[round(float(a), 2), round(float(b) / MIB, 1)] for a, b in zip(t, rss)]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="memory measurements of isacblocks (child processes of isac bench)")
    sub = parser.add_subparsers(dest="what", required=True)
    train = sub.add_parser("train", help="peak RSS of training steps")
    train.add_argument("--impl", choices=("isacblocks", "dense"), required=True)
    train.add_argument("--batch", type=int, nargs="+", required=True)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--config", default=None)
    stream = sub.add_parser("stream", help="RSS of a streaming receiver flowgraph")
    stream.add_argument("--seconds", type=float, required=True)
    stream.add_argument("--warmup-calls", type=int, default=4, help="batches through the sink before sampling")
    stream.add_argument("--interval-s", type=float, default=0.5)
    stream.add_argument("--seed", type=int, default=0)
    stream.add_argument("--max-items", type=int, default=64)
    stream.add_argument("--config", default=None)
    args = parser.parse_args(argv)
    if args.what == "train":
        result = _train_child(args.impl, args.batch, args.seed, args.config)
    else:
        result = _stream_child(args.seconds, args.warmup_calls, args.interval_s, args.seed, args.max_items,
                               args.config)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
