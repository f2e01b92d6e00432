"""The ``isac`` command: one entry point for the studies, flowgraphs and tools."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from .errors import IsacError


def _draw_spacing_main(args) -> int:
    from .dsp.spacing import save_spacing
    from .experiments.common import load_params, true_array

    params = load_params(args)
    ula = true_array(params, args.seed, None)
    save_spacing(args.out, ula.spacing)
    pos = ula.positions - (np.arange(params.n_antennas) - (params.n_antennas - 1) / 2) * params.wavelength / 2
    print(f"wrote {args.out}: {params.n_antennas} spacings, mean {ula.spacing.mean() * 1e3:.4f} mm, "
          f"element-position offsets from lambda/2 up to {np.abs(pos).max() * 1e3:.2f} mm")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .experiments import baseline_cli

    parser = argparse.ArgumentParser(prog="isac", description="isacblocks: GNU Radio-style ISAC blocks and studies")
    sub = parser.add_subparsers(dest="command", required=True)
    baseline_cli.sensing_parser(sub.add_parser("sensing", help="baseline sensing Pmd, known vs lambda/2 spacing"))
    baseline_cli.isac_parser(sub.add_parser("isac-sweep", help="baseline ISAC (eta, phi) sweep and Pareto points"))
    draw = sub.add_parser("draw-spacing", help="draw an impaired spacing vector and write it to a file")
    draw.add_argument("--seed", type=int, default=0)
    draw.add_argument("--config", default=None)
    draw.add_argument("--out", required=True, help="output file (.npy or text)")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from .experiments import baseline_cli

    commands = {"sensing": lambda a: baseline_cli.sensing_main(args=a),
                "isac-sweep": lambda a: baseline_cli.isac_main(args=a),
                "draw-spacing": _draw_spacing_main}
    try:
        return commands[args.command](args)
    except IsacError as exc:
        print(f"isac {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"isac {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
