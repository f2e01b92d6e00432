"""Per-block performance counters as a text table (GNU Radio's gr-perf-monitorx, in a terminal)."""

from __future__ import annotations

COLUMNS = ("block", "type", "calls", "items in", "items out", "work s", "share", "items/s", "out fill")


def format_performance(rows: list[dict]) -> str:
    """`Flowgraph.performance()` rows as an aligned text table; the limiting block (the largest
    share of the wall time inside work()) is marked with ``*``."""
    if not rows:
        return "(no blocks)"
    top = max(rows, key=lambda r: r["work_share"])["block"]
    cells = [COLUMNS]
    for r in rows:
        cells.append((("* " if r["block"] == top else "  ") + r["block"], r["type"], str(r["calls"]),
                      str(r["items_in"]), str(r["items_out"]), f"{r['work_s']:.3f}", f"{r['work_share']:.0%}",
                      "-" if r["items_per_s"] is None else f"{r['items_per_s']:.0f}",
                      "-" if r["buffer_fill"] is None else f"{r['buffer_fill']:.0%}"))
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
             for row in cells]
    return "\n".join(lines) + "\n(* the block that spends the largest share of the wall time inside work())"
