"""What ``isac rx`` reports at the end of a run and while it runs: the detection and link tables,
the live line, and the JSON record (all rendered from `rx_summary`)."""

from __future__ import annotations

import math
import sys

import numpy as np

from ..core import format_performance
from ..dsp.detection import threshold_at_pfa
from ..experiments.common import fmt_interval, run_record, table
from ..safeio import atomic_write, write_json


def detection_report(detection, pfa: float):
    """``(report, note)``: the detection report, or ``(None, why not)``.

    With too few H0 frames for the independent Pfa check (half of them), the threshold is
    set on all H0 frames and the check reuses them (said in `note`)."""
    try:
        return detection.report(), None
    except Exception:  # noqa: BLE001 - too few frames of some kind: try the fallback below
        pass
    try:
        threshold = threshold_at_pfa(detection.h0_statistics(), pfa)
        return detection.report(threshold=threshold), "Pfa check on the same H0 frames as the threshold"
    except Exception as exc:  # noqa: BLE001 - a report must not end a long run with a traceback
        return None, str(exc)


def pmd_text(link, params) -> str:
    rep, _ = detection_report(link.detection, params.pfa)
    if rep is None:
        return f"Pmd: too few H0 frames for Pfa {params.pfa:g}"
    return f"Pmd {rep.pmd:.4f} at Pfa {params.pfa:g} (threshold {rep.threshold:.2f})"


def live_line(link, params) -> str:
    rec = link.detection.records
    h0, h1 = int(np.count_nonzero(rec[:, 3] == 0)), int(np.count_nonzero(rec[:, 3] == 1))
    parts = [f"rx: {link.monitor.frames} frames received, {len(rec)} scored (H0 {h0}, H1 {h1}), "
             f"{link.monitor.rate:.1f} frames/s", pmd_text(link, params)]
    if link.ser is not None and link.ser.symbols:
        parts.append(f"SER {link.ser.ser:.2e}")
    stats = link.source.stats()
    unpaired = sum(s["unpaired"] + s["foreign"] + s["untagged"] for s in stats["streams"].values())
    malformed = sum(s["malformed"] for s in stats["streams"].values())
    parts.append(f"gaps {stats['gaps']}, duplicates {stats['duplicates']}, bad truth {stats['rejected']}, "
                 f"unpaired {unpaired}, malformed {malformed}")
    return " | ".join(parts)


def rx_summary(link, params, verdict, elapsed: float) -> dict:
    """Everything the receiver's report shows, in one dict: the tables and the JSON are both
    rendered from it (`SCORE_COLUMNS`, `LINK_COLUMNS`)."""
    rec = link.detection.records
    report, note = detection_report(link.detection, params.pfa)
    det = report.to_dict() if report is not None else {"error": note}
    if note and report is not None:
        det["note"] = note
    counts = verdict.counts
    return {"frames_received": link.monitor.frames, "frames_scored": len(rec),
            "h0": int(np.count_nonzero(rec[:, 3] == 0)), "h1": int(np.count_nonzero(rec[:, 3] == 1)),
            "invalid_frames": link.detection.invalid_frames, "bad_truth": counts["bad_truth"],
            "missing_frames": counts["lost"], "duplicates": counts["duplicates"], "malformed": counts["malformed"],
            "foreign": counts["foreign"], "unpaired": counts["unpaired"] + counts["leftover"] + counts["untagged"],
            "frames_per_s": link.monitor.rate, "elapsed_s": elapsed,
            "detection": det, "ser": link.ser.report() if link.ser is not None else None}


def _det(key: str, digits: int = 3, scale=float):
    return lambda s: "-" if "error" in s["detection"] else f"{scale(s['detection'][key]):.{digits}f}"


def _det_interval(key: str):
    return lambda s: "-" if "error" in s["detection"] else fmt_interval(s["detection"][key],
                                                                         s["detection"][f"{key}_ci"])


#: The receiver's tables: (header, cell of `rx_summary`'s dict).
SCORE_COLUMNS = [
    ("frames scored", lambda s: s["frames_scored"]), ("H0", lambda s: s["h0"]), ("H1", lambda s: s["h1"]),
    ("Pmd [95% CI]", _det_interval("pmd")), ("Pfa check [95% CI]", _det_interval("pfa_check")),
    ("threshold", _det("threshold", 2)), ("RMSE pos (m)", _det("rmse_position")),
    ("RMSE angle (deg)", _det("rmse_angle", scale=math.degrees)), ("RMSE range (m)", _det("rmse_range")),
    ("SER [95% CI]", lambda s: fmt_interval(s["ser"]["ser"], s["ser"]["ser_ci"]) if s["ser"] and s["ser"]["symbols"]
     else "-"),
    ("frames/s received", lambda s: f"{s['frames_per_s']:.1f}")]
LINK_COLUMNS = [
    ("frames received", "frames_received"), ("missing", "missing_frames"), ("duplicates", "duplicates"),
    ("bad truth (left out)", "bad_truth"), ("NaN/Inf frames (left out)", "invalid_frames"),
    ("malformed messages", "malformed"), ("foreign", "foreign"), ("unpaired/untagged", "unpaired")]


def final_report(link, params, args, ula, elapsed: float, verdict, code: int, cpu: float | None = None) -> None:
    interrupted = code in (130, 143)
    summary = rx_summary(link, params, verdict, elapsed)
    det = summary["detection"]
    form = link.estimator.describe() if hasattr(link.estimator, "describe") else None
    print(f"\nISAC link receiver ({args.estimator}{f' ({form})' if form else ''}, {args.assume} spacing, "
          f"Pfa = {params.pfa})" + (" - interrupted" if interrupted else ""))
    print(table([h for h, _ in SCORE_COLUMNS], [[cell(summary) for _, cell in SCORE_COLUMNS]]))
    if "error" in det:
        print(f"(no detection metrics: {det['error']})")
    elif "note" in det:
        print(f"({det['note']}: too few for an independent check)")
    print(table([h for h, _ in LINK_COLUMNS], [[summary[key] for _, key in LINK_COLUMNS]]))
    pairing = link.source.stats()
    stats = pairing.pop("streams")
    errors = [f"{name}: last malformed message: {st['last_error']}" for name, st in stats.items() if st["malformed"]]
    print(f"link: {link.monitor.frames} frames received in {elapsed:.1f} s, end of stream "
          f"{'received' if verdict.counts['eos_received'] else 'not received'}; {verdict.reason}"
          + ("; " + "; ".join(errors) if errors else ""), flush=True)
    if not verdict.complete and not interrupted:
        print(f"rx: exit {code}: {verdict.reason}", file=sys.stderr, flush=True)
    print_performance(args, link.flowgraph, "rx")
    if args.save_records:
        path = args.save_records if str(args.save_records).endswith(".npy") else f"{args.save_records}.npy"
        atomic_write(path, lambda f: np.save(f, link.detection.records), "records")
        print(f"wrote {path}")
    if args.json:
        write_json(args.json, {**run_record(args, params, ula), "role": "rx", "estimator": args.estimator,
                               "mbml_form": form, "assume": args.assume, "interrupted": interrupted,
                               "wall_s": elapsed, "cpu_s": cpu,
                               "complete": verdict.complete, "exit_code": code, "reason": verdict.reason,
                               **summary, "link": {**pairing, **verdict.counts}, "streams": stats,
                               "performance": link.flowgraph.performance(),
                               "tx_config": _jsonable_config(link.monitor.config)})
        print(f"wrote {args.json}")


def print_performance(args, fg, role: str) -> None:
    """With --perf: the per-block counters of the run (which block limits the flowgraph)."""
    if args.perf:
        print(f"\n{role}: per-block performance ({fg.scheduler} scheduler, {fg.wall_s:.2f} s of wall time):")
        print(format_performance(fg.performance()), flush=True)


def _jsonable_config(config):
    if config is None:
        return None
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v.to_dict() if hasattr(v, "to_dict") else v)
            for k, v in config.items()}
