"""isacblocks: GNU Radio-style blocks for integrated sensing and communication (ISAC).

Layers: `isacblocks.core` (runtime), `isacblocks.dsp` (physics, numpy/Numba),
`isacblocks.blocks` (block shells), `isacblocks.learning` (torch; learning the
antenna spacing), `isacblocks.zeromq` (ZeroMQ streaming), `isacblocks.experiments`.
"""

from .errors import BlockError, ConfigError, ConnectError, IsacError, ShapeError, TrainingError
from .params import SystemParams

__version__ = "0.1.0"

__all__ = ["SystemParams", "IsacError", "ConfigError", "ShapeError", "ConnectError", "BlockError",
           "TrainingError", "__version__"]
