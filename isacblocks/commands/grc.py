"""``isac grc install``: the GNU Radio Companion blocks of isacblocks, generated from the block
classes (`isacblocks.gnuradio.grc`) and written where GRC reads its user blocks."""

from __future__ import annotations

import sys
from pathlib import Path

from ..safeio import write_json
from .options import HelpFormatter, output_file

DESCRIPTION = (
    "isac grc install [--dir DIR] [--print] [--json PATH]: write one GRC block description (YAML) per "
    "isacblocks block into DIR, where GNU Radio Companion and grcc find them under the category "
    "[isacblocks] (restart GRC, or reload its block library, to see them).  DIR defaults to the first "
    "folder of GRC_BLOCKS_PATH, else to the user block folder of the installed GRC (~/.grc_gnuradio in "
    "GNU Radio 3.10.5, ~/.local/state/gnuradio in 3.10.11 and later, or GRC_HIER_PATH).  Files it wrote "
    "before and no longer writes are removed.  The flowgraphs run in a Python that imports both gnuradio "
    "and isacblocks.")


def generator():
    """`isacblocks.gnuradio.grc`: it needs no GNU Radio (the package loads the wrapper lazily)."""
    from ..gnuradio import grc

    return grc


def run_install(args) -> int:
    from ..errors import ConfigError

    grc = generator()
    files = grc.all_yaml()
    if args.dir is not None:
        folder, why = Path(args.dir).expanduser(), "--dir"
    else:
        folder, why = grc.default_folder()
    if args.print:
        for name, text in files.items():
            print(f"# --- {folder / name}\n{text}")
        print(f"# {len(files)} GRC blocks for {folder} ({why}); nothing written (--print)", file=sys.stderr)
        result = None
    else:
        if folder.exists() and not folder.is_dir():
            raise ConfigError(f"--dir {folder}: is a file, not a folder")
        result = grc.install(folder, files, on_file=lambda path: print(f"wrote {path}"))
        for path in result.removed:
            print(f"removed {path} (an isacblocks block that no longer exists)")
        print(f"{len(result.written)} GRC blocks in {folder} ({why}): category [isacblocks] in GNU Radio "
              "Companion (restart it or reload the block library)")
    if args.json:
        write_json(args.json, {"folder": str(folder), "reason": why, "printed_only": bool(args.print),
                               "blocks": sorted(files),
                               "written": [str(p) for p in result.written] if result else [],
                               "removed": [str(p) for p in result.removed] if result else []})
        print(f"wrote {args.json}")
    return 0


def register(sub) -> None:
    grc = sub.add_parser("grc", help="GNU Radio Companion blocks of isacblocks: isac grc install",
                         description=DESCRIPTION, formatter_class=HelpFormatter)
    commands = grc.add_subparsers(dest="grc_command", metavar="SUBCOMMAND", required=True)
    install = commands.add_parser("install", help="write the GRC block descriptions (YAML)", description=DESCRIPTION,
                                  formatter_class=HelpFormatter)
    install.add_argument("--dir", metavar="DIR", default=None,
                         help="folder for the YAML files (default: GRC_BLOCKS_PATH's first folder, else GRC's user "
                              "block folder)")
    install.add_argument("--print", action="store_true",
                         help="print the YAML to stdout instead of writing it")
    install.add_argument("--json", metavar="PATH", type=output_file, default=None,
                         help="also write the folder and the files written and removed to this JSON file")
    install.set_defaults(run=run_install)
