"""``python -m isacblocks.commands COMMAND ...``: the ``isac`` commands in this process as it is."""

import sys

from . import main

sys.exit(main())
