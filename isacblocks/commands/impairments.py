"""``isac impairments``: UL with the curriculum under displacement, gain and coupling errors
(`isacblocks.experiments.impairments`)."""

from __future__ import annotations

import time

from ..blocks.ula import true_array
from ..dsp.impairments import ArrayImpairments, save_array
from ..executor import ProgressLine
from ..experiments.common import run_record
from ..experiments.impairments import impairments_study, rows_markdown
from ..experiments.report import check_section, update_section
from ..safeio import make_folder, write_json, write_text
from ..sim.evaluation import EVAL_CHUNK
from .memory import check_memory, memory_estimate, uses_coupling
from .options import add_doc_option, add_spacing_options, count_value, impairments_value, load_params, output_dir
from .runner import HEARTBEAT_S

DOC_BEGIN, DOC_END = "<!-- impairments:begin -->", "<!-- impairments:end -->"


def run(args) -> int:
    params = load_params(args)
    check_memory(memory_estimate(
        params, batch=args.batch_size, iterations=args.iterations, results_frames=2 * args.eval_frames,
        task_frames=min(args.eval_frames, EVAL_CHUNK), calibration_frames=args.calibration_frames,
        coupling=uses_coupling(args),
        options={"batch": f"--batch-size {args.batch_size}", "iterations": f"--iterations {args.iterations}",
                 "calibration_frames": f"--calibration-frames {args.calibration_frames}",
                 **dict.fromkeys(("results_frames", "task_frames"), f"--eval-frames {args.eval_frames}")}))
    if args.doc:
        check_section(args.doc, DOC_BEGIN, DOC_END)
    ula = true_array(params, args.seed, args.true_spacing, args.impairments)
    kinds = ula.kinds
    out = make_folder(args.out)
    print(f"true array: {'+'.join(kinds)} impairments ({args.true_spacing or f'drawn from seed {args.seed}'}); "
          f"UL with the sector curriculum, {args.iterations} x {args.batch_size} frames, no labels")
    start = time.perf_counter()
    with ProgressLine("impairments", heartbeat_s=HEARTBEAT_S):
        rows = impairments_study(params, ula.array, kinds, args.iterations, args.batch_size, args.eval_frames,
                                 args.calibration_frames, seed=args.seed)
    wall = time.perf_counter() - start
    text = (f"True array: {'+'.join(kinds)} impairments drawn from seed {args.seed}; test sector, "
            f"{args.eval_frames} frames per hypothesis (the same frames for every row), Pfa {params.pfa:g}; "
            f"{wall:.0f} s (`isac impairments --iterations {args.iterations} --batch-size {args.batch_size}`).\n\n"
            + rows_markdown(rows))
    print("\n" + text)
    write_text(out / "impairments.md", text + "\n")
    record = {**run_record(args, params, ula), "kinds": list(kinds), "iterations": args.iterations,
              "batch_size": args.batch_size, "eval_frames": args.eval_frames,
              "calibration_frames": args.calibration_frames, "rows": [r.to_dict() for r in rows], "wall_s": wall}
    write_json(out / "impairments.json", record)
    learned = [r for r in rows if r.frames_used and not r.labelled]
    save_array(out / "learned_array.npz" if isinstance(learned[0].array, ArrayImpairments)
               else out / "learned_spacing.npy", learned[0].array)  # the UL run learning every impairment
    if args.json:
        write_json(args.json, record)
    if args.doc:
        update_section(args.doc, text, DOC_BEGIN, DOC_END)
        print(f"updated the table of {args.doc}")
    print(f"wrote {out}/impairments.md, {out}/impairments.json and the learned array")
    return 0


def register(sub) -> None:
    parser = sub.add_parser("impairments", help="learn displacement, gain and coupling errors without labels",
                            description="Beyond the paper: the true array has displacement, gain and coupling "
                                        "errors (a_pert = C diag(g) a(theta; d)); Pmd on the test sector of the "
                                        "known array, lambda/2, UL with the sector curriculum learning every "
                                        "impairment or the spacing only, and LS calibration from labelled frames.")
    parser.add_argument("--impairments", metavar="KINDS", type=impairments_value,
                        default=("spacing", "gain", "coupling"),
                        help="the true array's impairments, drawn with --seed (default spacing,gain,coupling)")
    parser.add_argument("--iterations", type=count_value, default=400, help="UL iterations")
    parser.add_argument("--batch-size", type=count_value, default=256, help="frames per iteration")
    parser.add_argument("--eval-frames", type=count_value, default=10000, help="test frames per hypothesis")
    parser.add_argument("--calibration-frames", type=count_value, default=2000,
                        help="labelled frames of the LS calibration")
    parser.add_argument("--out", default="out/impairments", type=output_dir, help="output folder")
    add_doc_option(parser, DOC_BEGIN, DOC_END, "docs/impairments.md")
    add_spacing_options(parser)
    parser.set_defaults(run=run)
