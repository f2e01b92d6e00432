"""isacblocks blocks as native GNU Radio 3.10 blocks (`as_gr_block`).

GNU Radio is not on PyPI: this package imports only where GNU Radio's Python modules do,
i.e. under Debian's ``/usr/bin/python3`` with ``apt-get install gnuradio``, or in the
project's ``.venv-gr`` (``make gnuradio``: a venv on that interpreter with
``--system-site-packages``).  Nothing else in isacblocks imports it.
"""

from __future__ import annotations

__all__ = ["as_gr_block", "gr_top_block", "raise_errors", "to_pmt", "from_pmt", "gr_signature", "GR_POLICIES"]


def require_gnuradio() -> None:
    """Raise an ImportError that says how to get GNU Radio where this interpreter cannot import it."""
    try:
        import pmt  # noqa: F401 - GNU Radio's PMT module (not isacblocks.zeromq.pmt)
        from gnuradio import gr  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "isacblocks.gnuradio needs GNU Radio 3.10's Python modules (`gnuradio`, `pmt`), which pip cannot "
            f"install, and this interpreter cannot import them ({exc}).  On Debian/Ubuntu: "
            "`apt-get install gnuradio`, then `make gnuradio` in the isacblocks checkout and use "
            "`.venv-gr/bin/python` (a venv on /usr/bin/python3 with --system-site-packages), or run "
            "/usr/bin/python3 with isacblocks on its path"
        ) from exc


def __getattr__(name: str):
    """The wrapper's names load on first use (PEP 562), so that `isacblocks.gnuradio.grc`, which
    writes GRC's block YAML, imports in a Python without GNU Radio too."""
    if name in __all__:
        require_gnuradio()
        from . import wrapper

        return getattr(wrapper, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
