"""Command lines of the baseline studies (`isacblocks.experiments.baseline`): ``isac sensing``
and ``isac isac-sweep``.

`flowgraphs/baseline_sensing.py` and `flowgraphs/baseline_isac.py` run the same commands.
"""

from __future__ import annotations

import argparse
import math
import time

from ..blocks.ula import true_array
from ..executor import ProgressLine, add_executor_options, executor_from_args
from ..experiments.baseline import baseline_sensing, isac_sweep
from ..experiments.common import fmt_interval, run_record, table, true_spacing_source
from ..safeio import write_json
from .memory import check_memory, memory_estimate, tasks_at_once, uses_coupling
from .options import add_common_options, assumed_spacings, integer_at_least, load_params
from .runner import HEARTBEAT_S


def sensing_options(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Baseline sensing (Sec. III): Pmd at Pfa = 1e-2 on the test sector with the MAPRT "
                          "detector, when the transceiver knows the array's impaired spacing and when it "
                          "assumes lambda/2.")
    add_common_options(parser, frames=10000, frames_help="frames per hypothesis (H0 and H1 each)")
    add_executor_options(parser)


def run_sensing(args) -> int:
    params = load_params(args)
    check_memory(memory_estimate(params, tasks=tasks_at_once(args), results_frames=2 * args.frames,
                                 flowgraph_frames=args.max_items, coupling=uses_coupling(args),
                                 options={"results_frames": f"--frames {args.frames}",
                                          "flowgraph_frames": f"--max-items {args.max_items}"}))
    ula = true_array(params, args.seed, args.true_spacing, args.impairments)
    spacings = assumed_spacings(args.assume, params, ula)
    start = time.perf_counter()
    with executor_from_args(args) as executor, ProgressLine("sensing", heartbeat_s=HEARTBEAT_S) as progress:
        print(f"running on {executor.describe()}: {len(spacings)} flowgraph run(s) of {2 * args.frames} frames",
              flush=True)
        results = baseline_sensing(params, ula, args.frames, seed=args.seed, max_items=args.max_items,
                                   spacings=spacings, executor=executor, progress=progress)
    rows = []
    for label, res in results.items():
        det = res["detection"]
        rows.append([label, fmt_interval(det["pmd"], det["pmd_ci"]), fmt_interval(det["pfa_check"],
                     det["pfa_check_ci"]), f"{det['threshold']:.2f}", f"{det['rmse_position']:.3f}",
                     f"{math.degrees(det['rmse_angle']):.3f}", f"{det['rmse_range']:.3f}",
                     f"{res['position_error_mm']:.2f}", f"{res['frames_per_s']:.0f}"])
    print(f"Baseline sensing, test sector {params.test_sector_deg} deg, Pfa = {params.pfa}, "
          f"{args.frames} frames per hypothesis, true spacing: {true_spacing_source(args)}")
    print(table(["spacing assumed", "Pmd [95% CI]", "Pfa check [95% CI]", "threshold", "RMSE pos (m)",
                 "RMSE angle (deg)", "RMSE range (m)", "position error (mm)", "frames/s"], rows))
    print(f"wall time {time.perf_counter() - start:.1f} s")
    if args.json:
        write_json(args.json, {**run_record(args, params, ula), "frames_per_hypothesis": args.frames,
                               "results": results})
        print(f"wrote {args.json}")
    return 0


def isac_sweep_options(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Baseline ISAC trade-off (Sec. V-C): the (eta, phi) sweep with Pmd at Pfa = 1e-2, "
                          "position RMSE and SER, and its Pareto-optimal points, for the known impaired "
                          "spacing and for lambda/2.")
    add_common_options(parser, frames=300, frames_help="target frames per trade-off point "
                                                       "(the threshold uses 10x as many target-free frames)")
    parser.add_argument("--grid", type=integer_at_least(2), default=8, help="points of eta and of phi (default 8)")
    add_executor_options(parser)


def run_isac_sweep(args) -> int:
    frames = 11 * args.frames * args.grid ** 2  # target frames and 10x as many target-free ones per point
    params = load_params(args)
    check_memory(memory_estimate(params, tasks=tasks_at_once(args), results_frames=frames,
                                 flowgraph_frames=args.max_items, coupling=uses_coupling(args),
                                 options={"results_frames": f"--frames {args.frames} --grid {args.grid}",
                                          "flowgraph_frames": f"--max-items {args.max_items}"}))
    ula = true_array(params, args.seed, args.true_spacing, args.impairments)
    spacings = assumed_spacings(args.assume, params, ula)
    start = time.perf_counter()
    with executor_from_args(args) as executor, ProgressLine("isac-sweep", heartbeat_s=HEARTBEAT_S) as progress:
        print(f"running on {executor.describe()}", flush=True)
        results = isac_sweep(params, ula, args.frames, seed=args.seed, n_grid=args.grid, max_items=args.max_items,
                             spacings=spacings, executor=executor, progress=progress)
    for label, res in results.items():
        print(f"\nspacing assumed: {label}  (threshold {res['threshold']:.2f} from {res['h0_frames']} H0 frames, "
              f"element-position error {res['position_error_mm']:.2f} mm)")
        rows = [[f"{p['eta']:.3f}", f"{math.degrees(p['phi']):.0f}", fmt_interval(p["pmd"], p["pmd_ci"], 3),
                 f"{p['rmse_position']:.3f}", fmt_interval(p["ser"], p["ser_ci"], 4),
                 "*" if p["pareto_pmd_ser"] else "", "*" if p["pareto_rmse_ser"] else ""]
                for p in res["points"] if p["pareto_pmd_ser"] or p["pareto_rmse_ser"]]
        print(table(["eta", "phi (deg)", "Pmd [95% CI]", "RMSE pos (m)", "SER [95% CI]", "Pareto Pmd-SER",
                     "Pareto RMSE-SER"], rows))
        print(f"({len(res['points'])} trade-off points; the Pareto-optimal ones are shown)")
    print(f"wall time {time.perf_counter() - start:.1f} s")
    if args.json:
        write_json(args.json, {**run_record(args, params, ula), "frames_per_point": args.frames, "results": results})
        print(f"wrote {args.json}")
    return 0


def register(sub) -> None:
    sensing = sub.add_parser("sensing", help="baseline sensing Pmd, known vs lambda/2 spacing")
    sensing_options(sensing)
    sensing.set_defaults(run=run_sensing)
    sweep = sub.add_parser("isac-sweep", help="baseline ISAC (eta, phi) sweep and its Pareto points")
    isac_sweep_options(sweep)
    sweep.set_defaults(run=run_isac_sweep)
