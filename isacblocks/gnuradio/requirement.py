"""The one check that this interpreter can import GNU Radio, with how to get it where it cannot."""

from __future__ import annotations


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
