"""The library's own exceptions. Every message names what was wrong: the block, port,
parameter or field, what was expected and what came."""


class IsacError(Exception):
    """Base class of every error raised on purpose by isacblocks."""


class ConfigError(IsacError, ValueError):
    """An invalid configuration field or block parameter."""


class ShapeError(IsacError, ValueError):
    """An array of the wrong shape or dtype given to a function or a port."""


class ConnectError(IsacError, TypeError):
    """Two ports that cannot be connected (dtype or item shape differ, unknown port)."""


class BlockError(IsacError, RuntimeError):
    """An exception raised inside a block's work(); the message names the block."""


class TrainingError(IsacError, RuntimeError):
    """Training stopped: divergence, NaN loss, or an unusable checkpoint."""
