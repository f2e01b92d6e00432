"""Small tools: ``isac draw-spacing``."""

from __future__ import annotations

import numpy as np

from ..dsp.spacing import save_spacing
from ..dsp.steering import element_positions
from .common import check_memory, load_params, memory_estimate, run_record, true_array, write_json
from .options import add_json_option, add_run_options, output_file


def draw_spacing_main(args) -> int:
    params = load_params(args)
    check_memory(memory_estimate(params, dictionaries=False))
    ula = true_array(params, args.seed, None)
    save_spacing(args.out, ula.spacing)
    nominal = element_positions(params.nominal_spacing)
    offset_mm = float(np.abs(ula.positions - nominal).max() * 1e3)
    print(f"wrote {args.out}: {params.n_antennas} spacings, mean {ula.spacing.mean() * 1e3:.4f} mm, "
          f"element positions off lambda/2 by up to {offset_mm:.2f} mm")
    if args.json:
        write_json(args.json, {**run_record(args, params, ula), "out": args.out,
                               "max_position_offset_mm": offset_mm})
        print(f"wrote {args.json}")
    return 0


def register(sub) -> None:
    draw = sub.add_parser("draw-spacing", help="draw an impaired spacing vector (as --seed does) and write it")
    add_run_options(draw, seed_help="seed of the drawn array (the one every command draws for this --seed)")
    draw.add_argument("--out", required=True, type=output_file, help="output file (.npy or text)")
    add_json_option(draw)
    draw.set_defaults(func=draw_spacing_main)
