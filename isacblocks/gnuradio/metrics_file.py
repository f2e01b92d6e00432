"""The detection metrics of a GNU Radio flowgraph written to a file when it ends.

GRC's examples (flowgraphs/grc/isac_native_sensing_nogui.grc, isac_mixed_rx_nogui.grc) call
`write_detection_metrics` from a *Python Snippet* in the section "Main - After Stop": after
``tb.wait()`` the flowgraph has ended and the wrapped `DetectionMetricsSink` holds every record,
so the report is computed once, from the whole run, as `isac rx` and the baseline compute it.
The sink stays the generated block (no port, no parameter added) and nothing runs per frame.

The JSON is strict (`isacblocks.safeio.write_json`: NaN -> null with the reason);
the records themselves, with their NaN for H0 frames, go beside it as ``.npy`` so that they can be
compared bit for bit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..blocks.sinks import records_report
from ..errors import ConfigError
from ..safeio import atomic_write, write_json
from .grc import wrapped_block


def records_path(out) -> str:
    """Where the records of the metrics file `out` go: ``OUT.records.npy`` beside it."""
    return str(out) + ".records.npy"


def write_detection_metrics(sink, out, **extra) -> dict:
    """Write the report of the `DetectionMetricsSink` in `sink` (the GNU Radio block
    `as_gr_block` made, or the sink itself) to the JSON file `out`, and its records to
    `records_path(out)`; where no report can be made (too few H0 frames for the pfa) the
    JSON says why (``no_report``) and the records are still written; `extra` (e.g. ``seed``,
    ``frames``) is added to the JSON.  Returns the record written."""
    block = wrapped_block(sink)
    records = block.records
    try:
        report = records_report(records, block.pfa, block.threshold)
    except ConfigError as error:  # e.g. too few H0 frames for the pfa: the records are still written
        report, reason = None, str(error)
    else:
        reason = None
    numbers = ({"detection": report.to_dict(), "pmd": report.pmd, "threshold": report.threshold,
                "rmse_position": report.rmse_position, "rmse_angle": report.rmse_angle,
                "rmse_range": report.rmse_range} if report is not None else
               {"detection": None, "no_report": reason})
    record = {**numbers, "pfa": block.pfa, "frames": int(len(records) + block.invalid_frames + block.bad_truth),
              "records": int(len(records)), "invalid_frames": int(block.invalid_frames),
              "bad_truth": int(block.bad_truth), "records_npy": records_path(out), **extra}
    atomic_write(records_path(out), lambda f: np.save(f, records), "records")
    write_json(Path(out), record)
    print(f"wrote {out}", flush=True)
    return record
