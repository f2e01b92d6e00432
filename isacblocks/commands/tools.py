"""Small tools: ``isac draw-spacing`` and ``isac keys``."""

from __future__ import annotations

import sys
import warnings

import numpy as np

from ..blocks.ula import true_array
from ..dsp.spacing import save_spacing
from ..dsp.steering import element_positions
from ..experiments.common import run_record
from ..safeio import write_json
from .memory import check_memory, memory_estimate
from .options import add_json_option, add_run_options, load_params, output_file


def run_draw_spacing(args) -> int:
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


def run_keys(args) -> int:
    """``isac keys DIR``: CURVE keys for ``isac tx --curve DIR`` / ``isac rx --curve DIR``."""
    from ..zeromq.curve import create_keys

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        paths = create_keys(args.dir, force=args.force)
    for warning in caught:
        print(f"isac keys: warning: {warning.message}", file=sys.stderr)
    print(f"wrote {', '.join(p.name for p in paths)} in {args.dir} (owner-only); give --curve {args.dir} to both "
          "isac tx and isac rx (a machine that only runs isac rx needs client.key_secret and server.key)")
    if args.json:
        write_json(args.json, {"command": "keys", "dir": str(args.dir), "files": [p.name for p in paths]})
    return 0


def register(sub) -> None:
    draw = sub.add_parser("draw-spacing", help="draw an impaired spacing vector (as --seed does) and write it")
    add_run_options(draw, seed_help="seed of the drawn array (the one every command draws for this --seed)")
    draw.add_argument("--out", required=True, type=output_file, help="output file (.npy or text)")
    add_json_option(draw)
    draw.set_defaults(run=run_draw_spacing)

    keys = sub.add_parser("keys", help="make CURVE keys for an authenticated, encrypted isac tx / rx link")
    keys.description = ("Write a server and a client CURVE keypair into DIR (created owner-only, 0700; files "
                        "0600): server.key_secret and client.key for the binding side (isac tx), "
                        "client.key_secret and server.key for the connecting side (isac rx).  Then run "
                        "isac tx --curve DIR and isac rx --curve DIR.")
    keys.add_argument("dir", metavar="DIR", help="folder for the key files")
    keys.add_argument("--force", action="store_true", help="replace key files already in DIR")
    add_json_option(keys)
    keys.set_defaults(run=run_keys)
