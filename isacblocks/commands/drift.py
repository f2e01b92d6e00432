"""``isac drift``: four receivers on a stream through a drifting array (known, frozen, calibrated, tracked)."""

from __future__ import annotations

import time

from ..dsp.drift import DriftParams, load_drift_config
from ..experiments.drift import SCALES, DriftStudyConfig, drift_figure, drift_markdown, drift_study
from ..experiments.report import check_section, update_section
from ..params import SystemParams
from ..safeio import make_folder, write_json, write_text
from .options import add_doc_option, add_json_option, count_value, input_file, output_dir, seed_value

DOC_BEGIN, DOC_END = "<!-- drift:begin -->", "<!-- drift:end -->"


def study_config(args) -> DriftStudyConfig:
    """The study's configuration from the options (the scale's values, then the options given)."""
    values = dict(SCALES[args.scale], seed=args.seed, tracker=args.tracker)
    for name in ("frames", "window"):
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    return DriftStudyConfig(**values)


def run(args) -> int:
    params, drift = load_drift_config(args.config) if args.config else (SystemParams(), DriftParams())
    config = study_config(args)  # every parameter checked before any work
    if args.doc:
        check_section(args.doc, DOC_BEGIN, DOC_END)
    out = make_folder(args.out)
    print(f"isac drift: {config.frames} frames, windows of {config.window}, seed {config.seed}, "
          f"tracker {config.tracker}")
    start = time.perf_counter()
    record = drift_study(params, drift, config)
    record["command"] = f"isac drift --scale {args.scale} --seed {args.seed}" + \
        (f" --frames {args.frames}" if args.frames else "") + (f" --window {args.window}" if args.window else "")
    text = drift_markdown(record)
    print("\n" + text)
    write_json(out / "drift.json", record)
    write_text(out / "drift.md", text + "\n")
    drift_figure(record, out / "drift.png")
    if args.json:
        write_json(args.json, record)
    if args.doc:
        update_section(args.doc, f"`{record['command']}`: " + text, DOC_BEGIN, DOC_END)
        print(f"updated the tables of {args.doc}")
    print(f"wrote {out}/drift.json, drift.md and drift.png ({time.perf_counter() - start:.0f} s)")
    return 0


def register(sub) -> None:
    parser = sub.add_parser("drift", help="track a drifting array without labels (known, frozen, calibrated, "
                                          "tracked)",
                            description="Beyond the paper: the true array's gains walk and its aperture stretches "
                                        "with temperature while frames stream.  Pmd at fixed Pfa per window of "
                                        "frames for the receiver that knows the array, the array learned at the "
                                        "start and frozen, periodic LS calibration from labelled frames, and "
                                        "the online tracker (no labels).")
    parser.add_argument("--scale", choices=tuple(SCALES), default="default",
                        help="quick: about 6 000 frames for a look; default: the documented run")
    parser.add_argument("--frames", type=count_value, default=None, help="frames streamed (default: the scale's)")
    parser.add_argument("--window", type=count_value, default=None,
                        help="frames per scored window, a multiple of 256 (default: the scale's)")
    parser.add_argument("--tracker", choices=("adam", "kalman"), default="adam",
                        help="adam: the replay-buffer learner; kalman: the Kalman filter on the gains")
    parser.add_argument("--seed", type=seed_value, default=0, help="seed of the array, its drift and the frames")
    parser.add_argument("--config", metavar="FILE", type=input_file, default=None,
                        help="TOML file with a [system] table (SystemParams) and/or a [drift] table (DriftParams)")
    parser.add_argument("--out", default="out/drift", type=output_dir, help="output folder")
    add_doc_option(parser, DOC_BEGIN, DOC_END, "docs/drift.md")
    add_json_option(parser)
    parser.set_defaults(run=run)
