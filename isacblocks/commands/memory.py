"""The large allocations of a run, estimated from its configuration before it starts: a run
whose arrays cannot fit in the memory available is refused up front (`check_memory`), naming
the largest part."""

from __future__ import annotations

from ..errors import ConfigError
from ..params import SystemParams


def available_memory_bytes() -> int | None:
    """Memory this process may still use (``MemAvailable`` of /proc/meminfo), None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


#: Bytes kept per simulated frame by an evaluation (statistic, estimates and truth, float64) and per task.
BYTES_PER_FRAME = 64
BYTES_PER_TASK = 4096
#: Bytes of one complex128 and one complex64 number.
C128, C64 = 16, 8
#: Bytes a training run keeps per iteration (its history record).
BYTES_PER_ITERATION = 512
#: Spacing vectors (K float64) a run holds: the true and assumed ones, positions, draws and errors.
SPACING_VECTORS = 16
#: Frame-sized arrays held per frame in flight: in a flowgraph's buffers and work() temporaries
#: (full K x S frames), and in an evaluation task (range-projected K x r frames, noise included).
FLOWGRAPH_FRAME_COPIES, PROJECTED_FRAME_COPIES = 16, 2
#: Frame-sized (K x S complex128) arrays a training step holds per frame of its batch: `isac bench`
#: measures a peak RSS of 0.91 GB for a step at batch 3000 on the paper's configuration (0.79 GB here).
TRAINING_FRAME_COPIES = 1
#: Evaluations whose results a study holds at once (`experiments.studies`: one per run and baseline).
STUDY_EVALUATIONS = 16
#: Frames the map kernels take at once (`dsp.angle_delay*`) and `multitarget` simulates at once.
MAP_CHUNK_FRAMES = 32


def results_bytes(frames: int, frames_per_task: int = 2000) -> int:
    """Memory the per-frame results of `frames` simulated frames take (and their tasks)."""
    return frames * BYTES_PER_FRAME + -(-frames // frames_per_task) * BYTES_PER_TASK


def uses_coupling(args) -> bool:
    """Whether a run's arrays may hold mutual coupling (K x K matrices): drawn or learnt with it
    (``--impairments``, ``--learn``), or read from an ``.npz`` array file."""
    kinds = (*(getattr(args, "impairments", None) or ()), *(getattr(args, "learn", None) or ()))
    assume = getattr(args, "assume", None)
    files = [getattr(args, "true_spacing", None), getattr(args, "learned", None),
             *(assume if isinstance(assume, list) else [assume])]
    return "coupling" in kinds or any(str(f).endswith(".npz") for f in files if f)


def tasks_at_once(args) -> int:
    """How many tasks run at the same time on this machine under the executor options of `args`."""
    from ..executor.base import usable_cores

    workers = getattr(args, "workers", None)
    if workers == 0 or getattr(args, "scheduler", None):
        return 1
    if getattr(args, "dask_local", None):
        return max(int(args.dask_local), 1)
    return usable_cores() if workers is None else max(int(workers), 1)


def memory_estimate(params: SystemParams, *, tasks: int = 1, results_frames: int = 0, task_frames: int = 0,
                    flowgraph_frames: int = 0, batch: int = 0, iterations: int = 0, calibration_frames: int = 0,
                    coupling: bool = False, scene_frames: int = 0, scene_results: int = 0,
                    dictionaries: bool = True, options: dict | None = None) -> dict[str, int]:
    """The large allocations of a run, ``{what: bytes}``, from the configuration and the sizes the
    command line sets; `check_memory` refuses their total when it cannot fit.

    Every run: the spacing vectors it draws and compares (K); with `dictionaries` (every run that
    transmits or receives), the steering matrices on the angle grid (K x N_theta: the LS precoder's
    least squares, the receiver's dictionary) and the range dictionary with its SVD (S x N_tau).
    `tasks` running at once each hold `task_frames` range-projected frames (K x r, r <= min(S,
    N_tau)) and the map kernel's chunk, or `flowgraph_frames` full frames (K x S) in a
    flowgraph's buffers.  Training (`batch` > 0): the batch's frames, the K x K Gram matrix of the
    learner's LS precoder and its Cholesky factor (per task: training runs are tasks too), and a
    history record per iteration (`iterations`).
    `calibration_frames`: the snapshots and the K x K normal matrix of the LS calibration;
    `coupling`: the K x K coupling matrix.  `scene_frames`: full frames of the multi-target study
    simulated at once; `scene_results`: the bytes of its per-frame estimates.  `options` names
    the command-line option behind a size (``{"batch": "--batch-size 256"}``).
    """
    options = options or {}
    k, s, n_theta, n_tau = params.n_antennas, params.n_subcarriers, params.n_angle_grid, params.n_range_grid
    rank = min(s, n_tau)

    def name(key: str, text: str) -> str:
        return f"{options[key]}: {text}" if key in options else text

    parts = {f"the spacing vectors (n_antennas = {k})": SPACING_VECTORS * k * 8}
    if dictionaries:
        parts[f"the steering matrices on the angle grid (n_antennas x n_angle_grid = {k} x {n_theta})"] = (
            4 * k * n_theta * C128)
        padded = -(-rank // 8) * 8  # the kernels' projection pads the rank to a multiple of 8 (`dsp.angle_delay`)
        parts[f"the range dictionary and its SVD (n_subcarriers x n_range_grid = {s} x {n_tau})"] = (
            4 * s * (n_tau + 2 * padded) * C128)
    if results_frames:
        parts[name("results_frames", f"the results of {results_frames} frames")] = results_bytes(results_frames)
    if task_frames:
        parts[name("task_frames", f"{tasks} task(s) at once of {task_frames} frames (K x r = {k} x {rank} each)")] = (
            tasks * task_frames * k * rank * C64 * PROJECTED_FRAME_COPIES)
        parts[f"the maps of {tasks} task(s) at once ({MAP_CHUNK_FRAMES} frames of n_angle_grid x n_range_grid = "
              f"{n_theta} x {n_tau})"] = tasks * MAP_CHUNK_FRAMES * n_theta * n_tau * 4
    if flowgraph_frames:
        parts[name("flowgraph_frames", f"the frames in {tasks} flowgraph(s)' buffers ({flowgraph_frames} "
                                       f"frames of K x S = {k} x {s} per work() call)")] = (
            tasks * flowgraph_frames * k * s * C64 * FLOWGRAPH_FRAME_COPIES)
    if batch:
        parts[name("batch", "the frames of a training batch")] = tasks * batch * k * s * C128 * TRAINING_FRAME_COPIES
        parts[f"the K x K Gram matrix of the learner's LS precoder and its Cholesky factor (n_antennas = {k})"] = (
            tasks * 4 * k * k * C128)
    if iterations:
        parts[name("iterations", f"the history of {iterations} training iterations")] = iterations * BYTES_PER_ITERATION
    if calibration_frames:
        parts[name("calibration_frames", f"the LS calibration's {calibration_frames} frames and its K x K normal "
                                         f"matrix (n_antennas = {k})")] = (
            calibration_frames * k * (rank * C64 * PROJECTED_FRAME_COPIES + 2 * C128) + 2 * k * k * C128)
    if coupling:
        parts[f"the K x K coupling matrix (n_antennas = {k})"] = 2 * k * k * (C128 + 8)
    if scene_frames:
        parts[name("scene_frames", f"{scene_frames} full frames at once (K x S = {k} x {s} each)")] = (
            scene_frames * k * s * C128 * 4)
    if scene_results:
        parts[name("scene_results", "the per-frame estimates")] = scene_results
    return parts


def scale_memory(params: SystemParams, scale, args, scaling: bool = False) -> dict[str, int]:
    """`memory_estimate` of the learning studies at `scale` (`experiments.scales.Scale`; with the
    scaling study if `scaling`) on the executor of `args`."""
    from ..sim.evaluation import EVAL_CHUNK

    plan = scale.scaling if scaling else None
    frames = max(scale.final_eval_frames, scale.eval_frames, scale.isac_frames, plan.eval_frames if plan else 0)
    where = f"--scale {scale.name}"
    batch = max((scale.batch_size, *(plan.batch_sizes if plan else ())))
    return memory_estimate(params, tasks=tasks_at_once(args), batch=batch,
                           iterations=max(scale.iterations, plan.iterations if plan else 0),
                           results_frames=2 * frames * STUDY_EVALUATIONS, task_frames=min(frames, EVAL_CHUNK),
                           calibration_frames=max(scale.calibration_frames, default=0), coupling=uses_coupling(args),
                           options={key: where for key in ("batch", "iterations", "results_frames", "task_frames",
                                                           "calibration_frames")})


def check_memory(parts: dict[str, int]) -> None:
    """Refuse up front a run whose arrays (`memory_estimate`) cannot fit in the memory available,
    naming the largest part, its estimate and the total."""
    have = available_memory_bytes()
    need = sum(parts.values())
    if have is None or need <= have:
        return
    what, most = max(parts.items(), key=lambda item: item[1])
    total = "" if need < 1.05 * most else f" (the whole run about {need / 2**30:.3g} GiB)"
    raise ConfigError(f"{what} need about {most / 2**30:.3g} GiB{total}, more than the {have / 2**30:.3g} GiB "
                      "available; make the run smaller")
