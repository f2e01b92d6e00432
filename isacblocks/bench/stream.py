"""One stream, end to end, against the receiver kernel it runs on (``isac bench --only stream``).

In one run, frames/s of:

* kernel: the fused MB-ML kernel alone, `mbml_estimate` on `kernel_frames` (512) frames held
  in memory after the reciprocal filter -- the most a stream through MB-ML could give;
* chain: the README's chain in one process (scenario -> beamformer -> OFDM -> target
  channel -> reciprocal filter -> MB-ML -> metrics; `isacblocks.blocks.chains`
  `IsacTransmitter` and `IsacReceiver` without comm), once per scheduler of `Flowgraph`
  ("single" and "threaded"), timed with
  `benchmark_flowgraph` (fresh flowgraph per run, one small warm-up run first);
* link: the same chain split over two processes on loopback, ``isac tx --no-comm`` ->
  ``isac rx --estimator mbml --no-comm``; frames/s is rx's processed frames over rx's wall
  time (from rx's JSON; rx starts once tx waits for a receiver, so tx's start-up is not in
  it, rx's first calls are); the arrival rate at rx's sockets (first to last frame
  received) is recorded too;
* online: the online stream without and with the learner
  (`isacblocks.learning.transceiver.run_online_stream`; the stream's own seconds, building it
  excluded).

Each rate is given with its ratio to the kernel's.  The spacing is the true one throughout
(the known-spacing receiver), so every path runs the same kernel on the same grid.
"""

from __future__ import annotations

import json
import os
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from isacblocks.blocks import MBMLEstimator
from isacblocks.blocks.chains import IsacReceiver, IsacTransmitter, connect_transceiver
from isacblocks.core import Flowgraph
from isacblocks.dsp.mbml import mbml_estimate

from .flowgraph import benchmark_flowgraph
from .timing import Timing, child_env, measure
from .workload import sensing_frames

SCHEDULERS = ("single", "threaded")
#: Frames per work() call of the chains and of the link (as in the chain section).
MAX_ITEMS = 64
#: The rows' names.
KERNEL = "kernel: mbml_estimate, frames in memory"
CHAIN = "chain, {} scheduler"
LINK = "link: isac tx -> isac rx, two processes"
ONLINE = ("online stream, no learner", "online stream, with learner")


def _rate_row(path: str, frames: int, rate: dict | None, kernel_fps: float | None, **extra) -> dict:
    row = {"path": path, "frames": frames, "available": rate is not None, "frames_per_s": rate}
    if rate is not None and kernel_fps:
        row["vs_kernel"] = rate["median"] / kernel_fps
    return {**row, **extra}


# --------------------------------------------------------------------------------- kernel
def kernel_row(params, ula, frames: int, reps: int, seed: int) -> dict:
    f = sensing_frames(params, ula.spacing, frames, seed)

    def call():
        mbml_estimate(f.Y_tilde, f.theta_min, f.theta_max, f.r_min, f.r_max, ula.spacing, params)

    timing = measure(call, 1, reps)
    return _rate_row(KERNEL, frames, timing.rate(frames), None, vs_kernel=1.0,
                     timing=timing.to_dict(1e3, "ms"))


# ---------------------------------------------------------------------------------- chain
def readme_chain(params, ula, n_frames: int, seed: int, scheduler: str | None = None,
                 max_items: int = MAX_ITEMS) -> Flowgraph:
    """The README's chain without comm, MB-ML assuming the true spacing, in a new `Flowgraph`
    (with ``scheduler=`` where given)."""
    options = {} if scheduler is None else {"scheduler": scheduler}
    fg = Flowgraph(max_items=max_items, name=f"stream-{scheduler or 'default'}", **options)
    tx = IsacTransmitter(params, ula, ula.spacing, n_frames, seed=seed, with_comm=False)
    connect_transceiver(fg, tx, IsacReceiver(params, MBMLEstimator(params, ula.spacing), with_comm=False))
    return fg


def chain_rows(params, ula, frames: int, warmup_frames: int, reps: int, seed: int, kernel_fps: float | None) -> list:
    rows = []
    for scheduler in SCHEDULERS:
        path = CHAIN.format(scheduler)
        readme_chain(params, ula, warmup_frames, seed, scheduler).run()
        result = benchmark_flowgraph(lambda choice=scheduler: readme_chain(params, ula, frames, seed, choice),
                                     repeats=reps, warmup=0)
        top = [f"{b['type']} {b['share_of_wall']:.0%}" for b in result.blocks[:3]]
        rows.append(_rate_row(path, result.frames, result.rate, kernel_fps, scheduler=scheduler,
                              wall_s=result.wall_s, largest_work_shares=top,
                              blocks=result.blocks))
    return rows


# ----------------------------------------------------------------------------------- link
def free_base_port(count: int = 2) -> int:
    """A tcp port on 127.0.0.1 with the next `count - 1` ports free too (the link's streams)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + count > 65535:
            continue
        held = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                held.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise RuntimeError(f"no {count} consecutive free tcp ports on 127.0.0.1")


def _wait_for_line(proc: subprocess.Popen, text: str, timeout_s: float) -> list[str]:
    """Lines of `proc`'s stdout up to the first one holding `text`."""
    lines, deadline = [], time.monotonic() + timeout_s
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            raise RuntimeError(f"isac tx: no {text!r} line within {timeout_s:.0f} s (exit {proc.poll()}): "
                               + " | ".join(lines[-5:]))
        ready, _, _ = select.select([proc.stdout], [], [], min(left, 0.5))
        if ready:
            line = proc.stdout.readline()
            lines.append(line.rstrip())
            if text in line:
                return lines


def link_run(frames: int, seed: int, config: str | None, timeout_s: float = 300.0) -> dict:
    """One ``isac tx`` -> ``isac rx`` run over loopback; rx's JSON numbers."""
    address = f"tcp://127.0.0.1:{free_base_port(2)}"
    common = ["--address", address, "--no-comm", "--seed", str(seed), "--assume", "known", "--report-interval", "0",
              "--max-items", str(MAX_ITEMS), *(["--config", os.path.abspath(config)] if config else [])]
    isac = [sys.executable, "-m", "isacblocks.cli"]
    env = child_env()
    with tempfile.TemporaryDirectory(prefix="isac-bench-link-") as tmp:
        rx_json = os.path.join(tmp, "rx.json")
        tx = subprocess.Popen([*isac, "tx", *common, "--frames", str(frames)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env)
        try:
            _wait_for_line(tx, "waiting for a receiver", timeout_s)  # tx built and bound: rx's clock starts fair
            rx = subprocess.run([*isac, "rx", *common, "--estimator", "mbml", "--json", rx_json],
                                capture_output=True, text=True, env=env, timeout=timeout_s)
            tx_out, tx_err = tx.communicate(timeout=timeout_s)
        finally:
            if tx.poll() is None:
                tx.kill()
                tx.communicate()
        if rx.returncode != 0 or tx.returncode != 0:
            raise RuntimeError(f"isac rx exit {rx.returncode}, isac tx exit {tx.returncode}: "
                               f"{(rx.stderr or rx.stdout)[-1500:]} {tx_err[-500:]}")
        record = json.loads(open(rx_json).read())
    return {"frames": record["frames_scored"], "wall_s": record["wall_s"],
            "arrival_frames_per_s": record["frames_per_s"], "complete": record["complete"]}


def link_row(frames: int, reps: int, seed: int, config: str | None, kernel_fps: float | None) -> dict:
    runs = [link_run(frames, seed, config) for _ in range(reps)]
    if any(r["frames"] != frames for r in runs):
        raise RuntimeError(f"isac rx processed {[r['frames'] for r in runs]} frames, expected {frames}")
    rates = Timing([r["wall_s"] for r in runs]).rate(frames)
    steady = statistics.median(r["arrival_frames_per_s"] for r in runs)
    return _rate_row(LINK, frames, rates, kernel_fps, runs=runs, arrival_frames_per_s=steady)


# --------------------------------------------------------------------------------- online
def _online_rows(quick: bool, seed: int = 0) -> list[dict]:
    """The online stream without and with the learner: ``[{"path", "frames", "wall_s", ...}]``."""
    from isacblocks.learning.transceiver import run_online_stream  # torch: only when the section runs

    frames = 256 if quick else 2048
    rows = []
    for path, learner in zip(ONLINE, (False, True)):
        result = run_online_stream(frames=frames, learner=learner, seed=seed)
        rows.append({"path": path, "frames": int(result["frames"]), "wall_s": float(result["seconds"]),
                     "learning_steps": result.get("steps")})
    return rows


def online_rows(quick: bool, seed: int, kernel_fps: float | None) -> list[dict]:
    rows = []
    for row in _online_rows(quick, seed):
        rate = Timing([row["wall_s"]]).rate(row["frames"])
        extra = {k: v for k, v in row.items() if k not in ("path", "frames")}
        rows.append(_rate_row(row["path"], row["frames"], rate, kernel_fps, **extra))
    return rows


# ------------------------------------------------------------------------------------ run
def run(params, ula, seed: int, quick: bool, kernel_frames: int, kernel_reps: int, chain_frames: int,
        chain_warmup_frames: int, chain_reps: int, link_frames: int, link_reps: int,
        config: str | None = None) -> dict:
    """Every row of the section; a row that fails records its error and the others still run."""
    kernel = kernel_row(params, ula, kernel_frames, kernel_reps, seed)
    kernel_fps = kernel["frames_per_s"]["median"]
    rows = [kernel]

    def attempt(paths, fn) -> list:
        try:
            out = fn()
        except Exception as exc:  # noqa: BLE001 - recorded in the rows; the section goes on
            return [{"path": path, "frames": None, "available": False, "frames_per_s": None,
                     "error": f"{type(exc).__name__}: {exc}"} for path in paths]
        return out if isinstance(out, list) else [out]

    rows += attempt([CHAIN.format(s) for s in SCHEDULERS],
                    lambda: chain_rows(params, ula, chain_frames, chain_warmup_frames, chain_reps, seed, kernel_fps))
    rows += attempt([LINK], lambda: link_row(link_frames, link_reps, seed, config, kernel_fps))
    rows += attempt(ONLINE, lambda: online_rows(quick, seed, kernel_fps))
    return {"kernel_frames_per_s": kernel_fps, "max_items": MAX_ITEMS, "rows": rows}
