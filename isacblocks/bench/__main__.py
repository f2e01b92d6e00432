"""``python -m isacblocks.bench [--quick] ...``: the same as ``isac bench``."""

import sys

from .cli import main

sys.exit(main())
