"""``isac multi-target``: GOSPA and per-target detection probability vs SNR_r, up to T targets
(`isacblocks.experiments.multitarget`)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..blocks.ula import true_array
from ..dsp.impairments import load_array
from ..dsp.multitarget import COUNT_DISTRIBUTIONS
from ..errors import ConfigError
from ..executor import ProgressLine
from ..experiments.common import run_record, table
from ..experiments.multitarget import CHUNK_FRAMES, multitarget_study, plot_multitarget
from ..experiments.report import check_section, update_section
from ..experiments.snr import parse_snrs
from ..safeio import make_folder, write_json
from .memory import check_memory, memory_estimate, uses_coupling
from .options import (
    add_doc_option,
    add_impairments_option,
    add_spacing_options,
    count_value,
    input_file,
    load_params,
    output_dir,
    positive_real,
    real_in,
)
from .runner import HEARTBEAT_S

MAX_TARGETS_LIMIT = 16
#: Bytes of one frame's estimated (or true) positions, a small numpy array in a list, besides 16 per target.
BYTES_PER_ESTIMATE = 128


def snr_list(text: str) -> tuple[float, ...]:
    try:
        return parse_snrs(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--snr ")) from None


def target_counts(text: str) -> tuple[int, ...]:
    """``type=`` of ``--max-targets``: a comma list or ``a:b`` (both included) of integers in 1..16."""
    try:
        if ":" in text:
            lo, hi = (int(x) for x in text.split(":"))
            values = tuple(range(lo, hi + 1))
        else:
            values = tuple(int(x) for x in text.split(","))
    except ValueError:
        values = ()
    if not values or not all(1 <= v <= MAX_TARGETS_LIMIT for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a comma list or a:b of integers in "
                                         f"1..{MAX_TARGETS_LIMIT}")
    return tuple(sorted(set(values)))


def run(args) -> int:
    params = load_params(args)
    n_spacings = 3 if args.learned else 2
    per_frame = (len(args.max_targets) * (1 + n_spacings * len(args.snr))  # the truth, and each array's estimates
                 * (BYTES_PER_ESTIMATE + 16 * max(args.max_targets)))
    check_memory(memory_estimate(
        params, results_frames=args.h0_frames, scene_frames=CHUNK_FRAMES, scene_results=args.frames * per_frame,
        coupling=uses_coupling(args),
        options={"results_frames": f"--h0-frames {args.h0_frames}",
                 "scene_results": f"--frames {args.frames} at {len(args.max_targets)} target count(s), "
                                  f"{len(args.snr)} SNR point(s) and {n_spacings} arrays"}))
    ula = true_array(params, args.seed, args.true_spacing, args.impairments)
    spacings = {"known d": ula.array, "lambda/2": params.nominal_spacing}
    if args.learned:
        learned = load_array(args.learned, params.n_antennas, params.wavelength)
        spacings[f"learned ({Path(args.learned).name})"] = learned
    else:
        print("no --learned FILE given: no learned spacing; curves for the known spacing and lambda/2 only "
              "(isac train or isac snr-sweep write one)")
    if args.h0_frames * args.pfa < 1:
        raise ConfigError(f"--h0-frames {args.h0_frames} cannot resolve --pfa {args.pfa:g} "
                          f"(need at least {int(-(-1 // args.pfa))})")
    if args.doc:
        check_section(args.doc, DOC_BEGIN, DOC_END)
    out = make_folder(args.out)
    start = time.perf_counter()
    with ProgressLine("multi-target", heartbeat_s=HEARTBEAT_S) as progress:
        result = multitarget_study(params, ula.array, spacings, args.snr, args.max_targets, args.frames, args.pfa,
                                   args.h0_frames, seed=args.seed, c=args.gospa_c, distribution=args.distribution,
                                   progress=progress)
    wall = time.perf_counter() - start
    sep = result["separation"]
    print(f"targets per frame ~ {args.distribution} on 0..T; separation >= {sep['angle_cells']} angle cells "
          f"({sep['angle_rad']:.4f} rad) or {sep['range_cells']} range cells ({sep['range_m']:.3f} m); "
          f"GOSPA c = {args.gospa_c:g} m, p = 2, alpha = 2; frame Pfa {args.pfa:g}")
    for label, entry in result["spacings"].items():
        print(f"\n{label}: threshold {entry['threshold']:.1f}, element-position error "
              f"{entry['position_error_mm']:.2f} mm")
        rows = []
        for T, curve in entry["curves"].items():
            for i, snr in enumerate(curve["snr_db"]):
                rows.append([T, f"{snr:g}", f"{curve['gospa_mean'][i]:.2f}", f"{curve['detection_probability'][i]:.3f}",
                             f"{curve['false_per_frame'][i]:.3f}", f"{curve['frame_pfa'][i]:.3f}",
                             f"{curve['rmse_position'][i]:.3f}"])
        print(table(["T", "SNR_r (dB)", "GOSPA (m)", "P_D", "false/frame", "frame Pfa (0 targets)",
                     "RMSE matched (m)"], rows))
    plot_multitarget(result, out / "multitarget.png", args.pfa, args.gospa_c)
    record = {**run_record(args, params, ula), "frames_per_point": args.frames, "h0_frames": args.h0_frames,
              "snr_db": list(args.snr), "max_targets": list(args.max_targets), "pfa": args.pfa,
              "distribution": args.distribution, "gospa": {"c_m": args.gospa_c, "p": 2, "alpha": 2},
              "learned_spacing_source": args.learned, **result, "wall_s": wall}
    write_json(out / "multitarget.json", record)
    if args.json:
        write_json(args.json, record)
    if args.doc:
        update_section(args.doc, summary_table(result, args, wall), DOC_BEGIN, DOC_END)
        print(f"updated the table of {args.doc}")
    print(f"\nwrote {out}/multitarget.json, {out}/multitarget.png  (wall time {wall:.0f} s)")
    return 0


#: The (T, SNR_r) points of the documentation's table, where the run has them.
DOC_POINTS = ((1, 10.0), (3, 10.0), (3, 20.0), (5, 15.0), (5, 20.0))
DOC_BEGIN, DOC_END = "<!-- multitarget:begin -->", "<!-- multitarget:end -->"


def summary_table(result: dict, args, wall: float) -> str:
    """Mean GOSPA / per-target P_D / false targets per frame at `DOC_POINTS`, one column per array."""
    labels = list(result["spacings"])
    lines = [f"`isac multi-target` with {args.frames} frames per point, seed {args.seed}, true array "
             f"{'+'.join(args.impairments)} ({wall:.0f} s of study); mean GOSPA (m) / per-target P_D / "
             "false targets per frame:", "", "| T | SNR_r | " + " | ".join(labels) + " |",
             "|---|---|" + "---|" * len(labels)]
    for T, snr in DOC_POINTS:
        cells = []
        for label in labels:
            curve = result["spacings"][label]["curves"].get(T)
            if curve is None or snr not in curve["snr_db"]:
                break
            i = curve["snr_db"].index(snr)
            cells.append(f"{curve['gospa_mean'][i]:.2f} / {curve['detection_probability'][i]:.3f} / "
                         f"{curve['false_per_frame'][i]:.2f}")
        if len(cells) == len(labels):
            lines.append(f"| {T} | {snr:g} dB | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def register(sub) -> None:
    parser = sub.add_parser("multi-target", help="GOSPA and per-target P_D vs SNR_r for up to T targets",
                            description="Multi-target sensing beyond the paper: up to T Swerling-1 targets on the "
                                        "test sector, greedy successive detection (Algorithm 1, joint LS gains, "
                                        "subtraction) at a fixed frame Pfa; GOSPA and per-target detection "
                                        "probability vs SNR_r for the known spacing, lambda/2 and --learned FILE.")
    parser.add_argument("--snr", default=(0.0, 5.0, 10.0, 15.0, 20.0), metavar="DB", type=snr_list,
                        help="per-target SNR_r values in dB: start:stop:step or a comma list (default 0:20:5)")
    parser.add_argument("--max-targets", default=(1, 2, 3, 4, 5), metavar="T", type=target_counts,
                        help="values of T (targets per frame ~ U{0..T}): comma list or a:b (default 1:5)")
    parser.add_argument("--frames", type=count_value, default=60, help="frames per (T, SNR) point")
    parser.add_argument("--h0-frames", type=count_value, default=2000,
                        help="target-free frames that set each spacing's threshold")
    parser.add_argument("--pfa", type=real_in(0.0, 1.0, lo_open=True, hi_open=True), default=1e-2,
                        help="false-alarm probability of a target-free frame")
    parser.add_argument("--gospa-c", type=positive_real, default=10.0, help="GOSPA cut-off distance c (m)")
    parser.add_argument("--distribution", choices=COUNT_DISTRIBUTIONS, default="uniform",
                        help="law of the number of targets on 0..T (binomial: p = 1/2)")
    parser.add_argument("--learned", metavar="FILE", type=input_file, default=None,
                        help="a learned spacing (.npy or text, metres), or a learned array (.npz), e.g. from "
                             "isac train (as in isac snr-sweep)")
    add_impairments_option(parser, "")
    add_doc_option(parser, DOC_BEGIN, DOC_END, "docs/multi-target.md")
    parser.add_argument("--out", default="out/multitarget", type=output_dir, help="output folder")
    add_spacing_options(parser)
    parser.set_defaults(run=run)
