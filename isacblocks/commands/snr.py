"""``isac snr-sweep``: Pmd and position RMSE vs SNR_r for known, lambda/2 and learned spacings
(`isacblocks.experiments.snr`)."""

from __future__ import annotations

import argparse
import time

import numpy as np

from ..blocks.ula import true_array
from ..dsp.spacing import load_spacing, save_spacing
from ..errors import ConfigError
from ..executor import ProgressLine, add_executor_options, executor_from_args
from ..experiments.common import fmt_interval, run_record, table
from ..experiments.scales import SCALES, get_scale
from ..experiments.snr import DEFAULT_SNRS_DB, parse_snrs, plot_snr, snr_sweep
from ..experiments.studies import Study
from ..safeio import make_folder, write_json
from ..sim.evaluation import EVAL_CHUNK
from .memory import check_memory, memory_estimate, scale_memory, tasks_at_once
from .options import add_study_options, count_value, input_file, load_params, output_dir
from .runner import HEARTBEAT_S

LEARNED_RUN = "UL (curriculum)"


def snr_value(text: str) -> tuple[float, ...]:
    """``type=`` of ``--snr`` (`parse_snrs`)."""
    try:
        return parse_snrs(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--snr ")) from None


def run(args) -> int:
    snrs = args.snr
    frames = len(snrs) * 3 * 2 * args.frames  # 3 spacings, 2 hypotheses
    params = load_params(args)
    where = f"--frames {args.frames} at {len(snrs)} SNR points"
    parts = memory_estimate(params, tasks=tasks_at_once(args), results_frames=frames,
                            task_frames=min(args.frames, EVAL_CHUNK), options={"results_frames": where,
                                                                               "task_frames": where})
    check_memory(parts if args.learned else {**parts, **scale_memory(params, get_scale(args.scale), args)})
    ula = true_array(params, args.seed, args.true_spacing)
    learned_file = load_spacing(args.learned, params.n_antennas, params.wavelength) if args.learned else None
    out = make_folder(args.out)
    start = time.perf_counter()
    with executor_from_args(args) as executor, ProgressLine("snr-sweep", heartbeat_s=HEARTBEAT_S) as progress:
        print(f"running on {executor.describe()}")
        if learned_file is not None:
            learned, source = learned_file, args.learned
        else:
            scale = get_scale(args.scale)
            print(f"learning the spacing: {LEARNED_RUN}, scale {scale.name} ({scale.iterations} iterations, batch "
                  f"{scale.batch_size}; --learned FILE skips this)")
            study = Study(params, ula.spacing, scale, seed=args.seed, executor=executor, progress=True)
            learned = np.asarray(study.train(LEARNED_RUN, "ul", curriculum=True).spacing_m)
            source = f"{LEARNED_RUN}, scale {scale.name}"
            save_spacing(out / "learned_spacing.txt", learned)
        spacings = {"known d": ula.spacing, "lambda/2": params.nominal_spacing, f"learned ({source})": learned}
        result = snr_sweep(params, ula.spacing, spacings, snrs, args.frames, seed=args.seed, executor=executor,
                           progress=progress)
    wall = time.perf_counter() - start
    for label, curve in result.items():
        print(f"\n{label}: element-position error {curve['position_error_mm']:.2f} mm")
        rows = [[f"{snr:g}", fmt_interval(pmd, ci), f"{rmse:.3f}"]
                for snr, pmd, ci, rmse in zip(curve["snr_db"], curve["pmd"], curve["pmd_ci"], curve["rmse_position"])]
        print(table(["SNR_r (dB)", f"Pmd at Pfa {params.pfa:g} [95% CI]", "RMSE pos (m)"], rows))
    plot_snr(result, out / "snr.png", params.pfa)
    record = {**run_record(args, params, ula), "frames_per_hypothesis": args.frames, "snr_db": list(snrs),
              "learned_spacing_source": source, "results": result, "wall_s": wall}
    write_json(out / "snr.json", record)
    if args.json:
        write_json(args.json, record)
        print(f"wrote {args.json}")
    print(f"\nwrote {out}/snr.json, {out}/snr.png  (wall time {wall:.0f} s, "
          f"{len(snrs) * len(spacings) * 2 * args.frames} frames)")
    return 0


def register(sub) -> None:
    parser = sub.add_parser("snr-sweep", help="Pmd and position RMSE vs SNR_r: known, lambda/2 and learned spacing",
                            description="Pmd at Pfa = 1e-2 and position RMSE of the MB-ML receiver vs the radar "
                                        "SNR, on the test sector, for the known spacing, lambda/2 and a learned "
                                        "spacing (--learned FILE, or learnt first with UL and the sector curriculum).")
    parser.add_argument("--snr", default=DEFAULT_SNRS_DB, metavar="DB", type=snr_value,
                        help="SNR_r values in dB: start:stop:step or a comma list (default 0:20:2)")
    parser.add_argument("--frames", type=count_value, default=10000,
                        help="frames per hypothesis per point (default 10000)")
    parser.add_argument("--learned", metavar="FILE", default=None, type=input_file,
                        help="the learned spacing (.npy or text, e.g. from isac train); default: learn it first")
    parser.add_argument("--scale", default="default", choices=sorted(SCALES),
                        help="scale of the training run when --learned is not given (default: default)")
    parser.add_argument("--out", default="out/snr", type=output_dir, help="output folder (default out/snr)")
    add_study_options(parser)
    add_executor_options(parser)
    parser.set_defaults(run=run)
