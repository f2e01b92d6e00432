"""Small tools: ``isac draw-spacing``."""

from __future__ import annotations

import numpy as np

from ..dsp.spacing import save_spacing
from .common import load_params, true_array


def draw_spacing_main(args) -> int:
    params = load_params(args)
    ula = true_array(params, args.seed, None)
    save_spacing(args.out, ula.spacing)
    nominal = (np.arange(params.n_antennas) - (params.n_antennas - 1) / 2) * params.wavelength / 2
    print(f"wrote {args.out}: {params.n_antennas} spacings, mean {ula.spacing.mean() * 1e3:.4f} mm, "
          f"element positions off lambda/2 by up to {np.abs(ula.positions - nominal).max() * 1e3:.2f} mm")
    return 0


def register(sub) -> None:
    draw = sub.add_parser("draw-spacing", help="draw an impaired spacing vector (as --seed does) and write it")
    draw.add_argument("--seed", type=int, default=0)
    draw.add_argument("--config", default=None, help="SystemParams TOML file")
    draw.add_argument("--out", required=True, help="output file (.npy or text)")
    draw.set_defaults(func=draw_spacing_main)
