"""``isac reproduce`` (the paper's studies, `isacblocks.experiments.reproduce`) and ``isac report``
(its tables, claims and figures again from a saved ``results.json``)."""

from __future__ import annotations

import argparse
import dataclasses

from ..blocks.ula import true_array
from ..executor import add_executor_options, executor_from_args
from ..experiments.scales import SCALES
from ..params import SystemParams
from ..safeio import make_folder, write_text
from .memory import check_memory, scale_memory
from .options import add_device_option, add_study_options, load_params, output_dir, output_file

FIGURES = ("3", "4", "5")
#: What ``--fig all`` runs: the paper's figures and the scaling study.
ALL_FIGURES = (*FIGURES, "scaling")
def figures_value(text: str) -> tuple[str, ...]:
    """``type=`` of ``--fig``: 3, 4, 5, scaling, a comma list of them, or all."""
    if text == "all":
        return ALL_FIGURES
    figs = tuple(f.strip() for f in text.split(","))
    bad = [f for f in figs if f not in ALL_FIGURES]
    if bad or not figs:
        raise argparse.ArgumentTypeError(f"{text!r}: figure {bad[0] if bad else text!r} does not exist; "
                                         f"choose from {', '.join(ALL_FIGURES)}, a comma list of them, or all")
    return tuple(dict.fromkeys(figs))


def run_reproduce(args) -> int:
    from ..experiments.reproduce import reproduce
    from ..experiments.results import to_json

    params = load_params(args)
    check_memory(scale_memory(params, SCALES[args.scale], args, scaling="scaling" in args.fig))
    ula = true_array(params, args.seed, args.true_spacing)
    with executor_from_args(args) as executor:
        result = reproduce(params, ula, figs=args.fig, scale=args.scale, out=args.out, seed=args.seed, args=args,
                           executor=executor, progress=True)
    if args.json:
        to_json(result, args.json)
        print(f"wrote {args.json}")
    return 0


def run_report(args) -> int:
    """``isac report``: tables, claims and figures regenerated from a saved ``results.json``; the
    claims are decided again from its numbers by the current rules."""
    from ..experiments.claims import claims_of, claims_table
    from ..experiments.figures import plot_all
    from ..experiments.report import results_markdown, update_readme
    from ..experiments.results import from_json, to_json

    result = from_json(args.results)
    result = dataclasses.replace(result, claims=claims_of(result))
    if args.readme:
        update_readme(args.readme, result)
        print(f"updated the results section of {args.readme}")
    if args.out:
        out = make_folder(args.out)
        write_text(out / "results.md", results_markdown(result) + "\n")
        write_text(out / "claims.md", claims_table(result.claims, result.scale, result.wall_s) + "\n")
        pfa = result.run.get("params", {}).get("pfa", SystemParams().pfa)
        names = plot_all(result, out, pfa) if args.figures else []
        print(f"wrote {out}/{', '.join(['results.md', 'claims.md', *names])}")
    if args.json:
        to_json(result, args.json)
        print(f"wrote {args.json}")
    if not (args.readme or args.out or args.json):
        print(results_markdown(result))
    return 0


def register(sub) -> None:
    rep = sub.add_parser("reproduce", help="the paper's studies: Figs. 3-5, JSON and the claims table",
                         description="Run the paper's studies and write Figs. 3-5 (PNG), results.json and "
                                     "claims.md.  Scales: " + ", ".join(SCALES))
    rep.add_argument("--fig", default=FIGURES, type=figures_value,
                     help="3, 4, 5, scaling, a comma list, or all (default 3,4,5; all adds the scaling study)")
    rep.add_argument("--scale", default="default", choices=sorted(SCALES), help="how big the studies run")
    rep.add_argument("--out", default="out/reproduce", type=output_dir,
                     help="output folder, replaced as a whole when the run ends")
    add_study_options(rep)
    add_executor_options(rep)
    add_device_option(rep, "training (torch's parts) and every receiver's map kernel")
    rep.set_defaults(run=run_reproduce)

    rp = sub.add_parser("report", help="tables, claims and figures from a saved results.json (no rerun)",
                        description="Read a results.json written by `isac reproduce` and print its tables, "
                                    "replace the README's results section (between <!-- results:begin --> and "
                                    "<!-- results:end -->), or write results.md, claims.md and the figures.")
    rp.add_argument("results", help="results.json of an `isac reproduce` run")
    rp.add_argument("--readme", default=None, help="README whose results section to replace")
    rp.add_argument("--out", default=None, type=output_dir, help="folder for results.md and claims.md")
    rp.add_argument("--figures", action="store_true", help="also redraw the figures into --out")
    rp.add_argument("--json", metavar="PATH", type=output_file, default=None,
                    help="write the results read, with the claims decided again, to this JSON file")
    rp.set_defaults(run=run_report)
