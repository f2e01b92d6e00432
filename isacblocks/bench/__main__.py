"""``python -m isacblocks.bench [--quick] ...``: the same as ``isac bench``."""

import sys

from .cli import main

sys.argv[0] = "python -m isacblocks.bench"  # the command line the report records
sys.exit(main())
