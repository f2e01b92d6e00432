"""isacblocks blocks as native GNU Radio 3.10 blocks (`as_gr_block`).

GNU Radio is not on PyPI: this package imports only where GNU Radio's Python modules do,
i.e. under Debian's ``/usr/bin/python3`` with ``apt-get install gnuradio``, or in the
project's ``.venv-gr`` (``make gnuradio``: a venv on that interpreter with
``--system-site-packages``).  Nothing else in isacblocks imports it.
"""

from __future__ import annotations

from .requirement import require_gnuradio

__all__ = ["as_gr_block", "gr_top_block", "raise_errors", "to_pmt", "from_pmt", "gr_signature", "GR_POLICIES"]


def __getattr__(name: str):
    """The wrapper's names load on first use (PEP 562), so that `isacblocks.gnuradio.grc`, which
    writes GRC's block YAML, imports in a Python without GNU Radio too."""
    if name in __all__:
        require_gnuradio()
        from . import wrapper

        return getattr(wrapper, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
