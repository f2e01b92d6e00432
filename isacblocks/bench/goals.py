"""The goals of ``isac bench``: each measurement against its target, with what decides it (`evaluate_goals`)."""

from __future__ import annotations

from . import stream
from .config import BenchConfig

__all__ = ["evaluate_goals"]

#: The benchmark goals (what each measurement is held to).
GOAL_MBML_RATIO = 40.0
GOAL_TRAIN_RATIO = 35.0
GOAL_LOWRANK_RATIO = 1.5  # the receiver at 1.5x the fused kernel's frames/s, the same arg-max
GOAL_WORK_US = 10.0
GOAL_SCHEDULER = 0.05
GOAL_ZMQ_GBS = 1.0
GOAL_TRAIN_RSS_GB = 4.0
GOAL_TRAIN_RSS_BATCH = 3000
GOAL_THREADED_OVER_SINGLE = 1.4  # the threaded scheduler's chain against the single-threaded one
GOAL_STREAM_OVER_KERNEL = 0.6  # the chain and the link, each against the fused kernel alone


def _goal(name: str, target: str, measured: str, met: bool | None, note: str) -> dict:
    return {"goal": name, "target": target, "measured": measured, "met": met, "note": note}


def _ok(section: dict | None) -> bool:
    return bool(section) and "error" not in section


def evaluate_goals(results: dict, config: BenchConfig) -> list[dict]:
    """Each goal against the measurements, with what decides it."""
    goals = []
    quick_note = " (quick run: small batches, indicative only)" if config.mode == "quick" else ""
    rx = results.get("receivers")
    if _ok(rx):
        batch = str(max(rx["batches"]))
        ratio = rx["mbml_over_dense_torch"][batch]
        rl = rx["roofline"]
        mbml_fps = rx["throughput"]["mbml"][batch]["frames_per_s"]["median"]
        dense_fps = rx["throughput"]["dense torch"][batch]["frames_per_s"]["median"]
        flop_ratio = rl["dense torch"]["mflop_per_frame"] / rl["mbml"]["mflop_per_frame"]
        needed = GOAL_MBML_RATIO * dense_fps * rl["mbml"]["mflop_per_frame"] / 1e3
        best_possible = rl["mbml"]["attainable_gflops"] * 1e3 / rl["mbml"]["mflop_per_frame"] / dense_fps
        note = (f"MB-ML does {rl['mbml']['mflop_per_frame']:.1f} MFLOP/frame vs "
                f"{rl['dense torch']['mflop_per_frame']:.1f} dense ({flop_ratio:.1f}x fewer); dense torch runs at "
                f"{rl['dense torch']['fraction_of_roof']:.0%} of torch's matmul roof, MB-ML at "
                f"{rl['mbml']['fraction_of_roof']:.0%} of its roof. {GOAL_MBML_RATIO:.0f}x "
                f"needs MB-ML at {needed:.0f} GFLOP/s, the roof is {rl['mbml']['attainable_gflops']:.0f}: at 100 % of "
                f"the roof the ratio would be {best_possible:.1f}x")
        goals.append(_goal(f"MB-ML vs dense torch, frames/s at batch {batch}", f">= {GOAL_MBML_RATIO:.0f}x",
                           f"{ratio:.1f}x ({mbml_fps:.0f} vs {dense_fps:.0f} frames/s)", ratio >= GOAL_MBML_RATIO,
                           note + quick_note))
        fractions = ", ".join(f"{name} {v['fraction_of_roof']:.0%} of {v['attainable_gflops']:.0f} GFLOP/s "
                              f"({v['bound']}-bound)" for name, v in rl.items())
        goals.append(_goal("fraction of own roofline", "report", fractions, None,
                           "roof: measured complex64 matmul rate of the implementation's library (numpy's BLAS for "
                           "dense numpy, torch for dense torch, the better of both for the Numba kernel of MB-ML "
                           "and MAPRT), or bandwidth x FLOP/byte if lower" + quick_note))
        lowrank = rx["lowrank_over_fused"][batch]
        lowrank_fps = rx["throughput"]["mbml lowrank"][batch]["frames_per_s"]["median"]
        goals.append(_goal(f"MB-ML low-rank form vs the fused kernel, frames/s at batch {batch}",
                           f">= {GOAL_LOWRANK_RATIO:g}x",
                           f"{lowrank:.2f}x ({lowrank_fps:.0f} vs {mbml_fps:.0f} frames/s)",
                           lowrank >= GOAL_LOWRANK_RATIO,
                           f"method='lowrank': {rl['mbml lowrank']['mflop_per_frame']:.1f} vs "
                           f"{rl['mbml']['mflop_per_frame']:.1f} MFLOP/frame on the test sector, the same arg-max "
                           "(cross-checked against dense numpy)" + quick_note))
        goals.append(_goal("receivers cross-checked (same arg-max)", "all agree",
                           "; ".join(f"{c['pair']}: {c['agreement']:.1%} of {c['frames']}" for c in rx["cross_checks"]),
                           rx["cross_checks_ok"], "criteria in the cross-check table"))
    tr = results.get("training")
    if _ok(tr):
        ratio = tr["ratio"]
        note = (f"dense step {tr['dense_torch']['step']['median_ms']:.0f} ms (of which data generation "
                f"{tr['dense_torch']['data_generation_ms_median']:.0f} ms) vs "
                f"{tr['isacblocks']['step']['median_ms']:.0f} ms; {GOAL_TRAIN_RATIO:.0f}x needs the library's step "
                f"<= {tr['dense_torch']['step']['median_ms'] / GOAL_TRAIN_RATIO:.0f} ms")
        env = tr.get("environment_sensitivity")
        if env:
            note += (f"; with OMP_WAIT_POLICY=PASSIVE the library's step takes "
                     f"{env['OMP_WAIT_POLICY=PASSIVE']['step']['median_ms']:.0f} ms instead of "
                     f"{env['default']['step']['median_ms']:.0f} ms (fresh processes)")
        goals.append(_goal(f"training step vs dense torch autograd, batch {tr['batch']}", f">= {GOAL_TRAIN_RATIO:.0f}x",
                           f"{ratio:.1f}x", ratio >= GOAL_TRAIN_RATIO, note + quick_note))
        cc = tr["cross_check"]
        goals.append(_goal("training step cross-checked (loss, gradient)", "agree",
                           "; ".join(f"{kind.upper()} loss rel diff {cc[kind]['complex128']['loss_rel_diff']:.1e}, "
                                     f"grad cosine {cc[kind]['complex128']['grad_cosine']:.6f}"
                                     for kind in ("ul", "sl")),
                           cc["ok"], cc["criterion"]))
    wo = results.get("work_overhead")
    if _ok(wo):
        for n in ("64", "4096"):
            if n in wo:
                us = wo[n]["us_per_call"]
                goals.append(_goal(f"work() overhead, no-op sync block, {n} items/call", f"<= {GOAL_WORK_US:.0f} us",
                                   f"{us:.1f} us [{wo[n]['us_per_call_min']:.1f}-{wo[n]['us_per_call_max']:.1f}]",
                                   us <= GOAL_WORK_US, "marginal cost of one more block per work() call, "
                                                       "scheduler included"))
    ch = results.get("chain")
    if _ok(ch):
        for rx_name in ("mbml", "maprt"):
            inst, share = ch[rx_name]["instrumented"], ch[rx_name]["scheduler_overhead"]
            goals.append(_goal(f"scheduler overhead, {rx_name} chain, {ch[rx_name]['items_per_call']} frames/call",
                               f"<= {GOAL_SCHEDULER:.0%}",
                               f"{share['median']:.2%} [{share['min']:.2%}-{share['max']:.2%}] "
                               f"({inst['scheduler_us_per_call']:.0f} us per work() call)",
                               share["median"] <= GOAL_SCHEDULER,
                               "wall time outside every block's work(), timer cost removed; median of the repetitions"))
    st = results.get("stream")
    if _ok(st):
        goals += _stream_goals(st, quick_note)
    zq = results.get("zmq")
    if _ok(zq):
        for key in ("push_pull_in_process", "push_pull_two_process"):
            r = zq["results"][key]
            goals.append(_goal(f"ZeroMQ {key.replace('_', ' ')}", f">= {GOAL_ZMQ_GBS:.0f} GB/s",
                               f"{r['gbytes_per_s']['median']:.2f} GB/s [{r['gbytes_per_s']['min']:.2f}-"
                               f"{r['gbytes_per_s']['max']:.2f}], lost {r['lost_frames']}",
                               r["gbytes_per_s"]["median"] >= GOAL_ZMQ_GBS and r["lost_frames"] == 0,
                               f"{zq['frames_per_message']} frames of {zq['frame_shape']} complex64 per message"))
    mem = results.get("memory")
    if _ok(mem):
        t = mem["training"]
        peak_gib = t["isacblocks"]["peak_rss_gib"]
        peak_gb = peak_gib * 2**30 / 1e9
        dense_gb = t["dense_torch"]["peak_rss_gib"] * 2**30 / 1e9
        at_goal_batch = t["batch"] == GOAL_TRAIN_RSS_BATCH
        goals.append(_goal(f"training step peak RSS, batch {t['batch']}", f"<= {GOAL_TRAIN_RSS_GB:.0f} GB "
                                                                           f"at batch {GOAL_TRAIN_RSS_BATCH}",
                           f"{peak_gb:.2f} GB = {peak_gib:.2f} GiB (dense torch: ~{dense_gb:.1f} GB, "
                           f"{'measured' if t['dense_torch']['measured'] else 'extrapolated'})",
                           (peak_gb <= GOAL_TRAIN_RSS_GB) if at_goal_batch else None,
                           "" if at_goal_batch else f"measured at batch {t['batch']} (quick run), not the goal's "
                                                    f"{GOAL_TRAIN_RSS_BATCH}"))
        s = mem["streaming"]
        goals.append(_goal(f"receiver flowgraph RSS flat while streaming {s['seconds']:.0f} s", "flat",
                           f"{s['rss_start_mib']:.0f} -> {s['rss_end_mib']:.0f} MiB (max {s['rss_max_mib']:.0f}), "
                           f"{s['frames_while_sampled']} frames", s["flat"], s["criterion"]))
    return goals


def _stream_goals(sec: dict, quick_note: str) -> list[dict]:
    rows = {r["path"]: r for r in sec["rows"]}
    kernel = sec["kernel_frames_per_s"]
    single, threaded = rows.get(stream.CHAIN.format("single")), rows.get(stream.CHAIN.format("threaded"))
    goals = []
    target = f">= {GOAL_THREADED_OVER_SINGLE:g}x"
    name = "stream: chain, threaded scheduler vs single"
    if single and threaded and single["available"] and threaded["available"]:
        ratio = threaded["frames_per_s"]["median"] / single["frames_per_s"]["median"]
        goals.append(_goal(name, target, f"{ratio:.2f}x ({threaded['frames_per_s']['median']:.0f} vs "
                                         f"{single['frames_per_s']['median']:.0f} frames/s)",
                           ratio >= GOAL_THREADED_OVER_SINGLE,
                           f"README chain without comm, MB-ML, {sec['max_items']} frames per work() call"
                           + quick_note))
    else:
        why = (threaded or {}).get("why") or (threaded or single or {}).get("error") or "not measured"
        goals.append(_goal(name, target, "n/a", None, why))
    chains = [r for r in (single, threaded) if r and r["available"]]
    best = max(chains, key=lambda r: r["frames_per_s"]["median"], default=None)
    link = rows.get(stream.LINK)
    target = f">= {GOAL_STREAM_OVER_KERNEL:g}x the kernel"
    for name, row, note in (("stream: in-process chain vs the fused kernel", best,
                             f"the faster scheduler ({best['scheduler']})" if best else ""),
                            ("stream: two-process link vs the fused kernel", link,
                             "rx's processed frames over rx's wall time")):
        if row and row.get("available"):
            goals.append(_goal(name, target, f"{row['vs_kernel']:.2f}x ({row['frames_per_s']['median']:.0f} vs "
                                             f"{kernel:.0f} frames/s)", row["vs_kernel"] >= GOAL_STREAM_OVER_KERNEL,
                               f"{note}; kernel: mbml_estimate on frames in memory" + quick_note))
        else:
            goals.append(_goal(name, target, "n/a", None, (row or {}).get("error") or "not measured"))
    return goals
