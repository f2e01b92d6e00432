"""The report of ``isac bench``: the whole run as Markdown (`markdown`, one part per section), the goals
table, and the README's benchmark section (`readme_section`, between `BENCH_BEGIN` and `BENCH_END`)."""

from __future__ import annotations

import math

from isacblocks.experiments.common import table

from . import receivers
from .timing import fmt_rate

__all__ = ["BENCH_BEGIN", "BENCH_END", "goals_table", "markdown", "readme_section"]


def _f(value, digits: int = 1) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _yes(met) -> str:
    return {True: "yes", False: "**no**", None: "-"}[met]


def markdown(record: dict) -> str:
    """The whole report as Markdown."""
    meta, res = record["meta"], record["results"]
    m = meta["machine"]
    lines = [f"# isac bench ({meta['mode']})", "",
             f"`{meta['command']}` — {meta['started']}, wall {meta['wall_s']:.0f} s, load average (1/5/15 min) "
             f"{meta['load_average_start']} at start, {meta['load_average_end']} at end "
             f"({m['usable_cores']} usable cores).", "",
             f"Machine: {m['cpu_model']}, {m['logical_cores']} logical cores, {m['memory_gib']} GiB, "
             f"{'/'.join(m['vector_extensions'])}; numpy {m['numpy']} "
             f"({(m.get('numpy_blas') or {}).get('name')} {(m.get('numpy_blas') or {}).get('version')}), "
             f"numba {m['numba']} ({m['numba_threads']} threads, {m['numba_threading_layer']}), torch {m['torch']} "
             f"({m['torch_threads']} threads); Python {m['python']}.", ""]
    if "roofline" in res:
        lines += _roofline_md(res["roofline"])
    if "receivers" in res:
        lines += _receivers_md(res["receivers"])
    if "training" in res:
        lines += _training_md(res["training"])
    if "chain" in res:
        lines += _chain_md(res["chain"])
    if "work_overhead" in res:
        lines += _work_md(res["work_overhead"])
    if "stream" in res:
        lines += _stream_md(res["stream"])
    if "zmq" in res:
        lines += _zmq_md(res["zmq"])
    if "gnuradio" in res:
        lines += _gnuradio_md(res["gnuradio"])
    if "gr_native" in res:
        lines += _gr_native_md(res["gr_native"])
    if "memory" in res:
        lines += _memory_md(res["memory"])
    if "gpu" in res:
        lines += _gpu_md(res["gpu"])
    lines += ["## Goals", "", goals_table(record), ""]
    errors = [f"- {name}: {sec['error']}" for name, sec in res.items() if "error" in sec]
    if errors:
        lines += ["## Errors", "", *errors, ""]
    return "\n".join(lines)


def goals_table(record: dict) -> str:
    """The goals of a run as a Markdown table (also the README's benchmark section)."""
    return table(["goal", "target", "measured", "met", "note"],
                 [[g["goal"], g["target"], g["measured"], _yes(g["met"]), g["note"]] for g in record["goals"]])


#: The README's benchmark section lies between these markers (`isac bench --readme README.md`).
BENCH_BEGIN, BENCH_END = "<!-- bench:begin -->", "<!-- bench:end -->"


def readme_section(record: dict) -> str:
    """The README's benchmark section: the command, machine and load of the run, and its goals."""
    meta, m = record["meta"], record["meta"]["machine"]
    return "\n".join([f"Latest run: `{meta['command']}` ({meta['mode']}, {meta['wall_s']:.0f} s, {m['cpu_model']}, "
                      f"{m['usable_cores']} usable cores, load average {meta['load_average_start'][0]:.2f} at start, "
                      f"{meta['load_average_end'][0]:.2f} at end):", "", goals_table(record)])


def _load(sec: dict) -> str:
    return f"(section: {sec['wall_s']:.0f} s, load {sec['load_average']['start'][0]:.2f} -> " \
           f"{sec['load_average']['end'][0]:.2f})"


def _error_md(title: str, sec: dict) -> list[str] | None:
    if "error" in sec:
        return [f"## {title}", "", f"failed: {sec['error']}", ""]
    return None


def _roofline_md(sec: dict) -> list[str]:
    if (err := _error_md("Roofline", sec)) is not None:
        return err
    rows = [[f"complex64 matmul {b} (n = {v['n']}), GFLOP/s", _f(v["gflops"]["median"]),
             f"{_f(v['gflops']['min'])}-{_f(v['gflops']['max'])}"] for b, v in sec["matmul"].items()]
    rows += [[f"complex64 {v['shape']} (the dense map's product) {b}, GFLOP/s", _f(v["gflops"]["median"]),
              f"{_f(v['gflops']['min'])}-{_f(v['gflops']['max'])}"] for b, v in sec["map_product"].items()]
    bw = sec["memory_bandwidth"]
    rows.append([f"memory bandwidth (copy of {bw['array_mb']} MB, read + write), GB/s",
                 _f(bw["gbytes_per_s"]["median"]), f"{_f(bw['gbytes_per_s']['min'])}-{_f(bw['gbytes_per_s']['max'])}"])
    return ["## Roofline " + _load(sec), "", table(["measurement", "median", "min-max"], rows), ""]


def _receivers_md(sec: dict) -> list[str]:
    if (err := _error_md("Receivers", sec)) is not None:
        return err
    batches = [str(b) for b in sec["batches"]]
    rows = []
    for name in receivers.IMPLEMENTATIONS:
        r = sec["roofline"][name]
        rows.append([name, *[fmt_rate(sec["throughput"][name][b]["frames_per_s"]) for b in batches],
                     _f(r["mflop_per_frame"]), _f(r["achieved_gflops"]["median"]),
                     f"{_f(r['attainable_gflops'])} ({r['bound']})", f"{r['fraction_of_roof']:.0%}"])
    counts = sec["flop_counts"]
    sym = counts["symbols"]
    padded, padded_maprt = sym["r'"], sym["r'_m"]
    checks = []
    for c in sec["cross_checks"]:
        if "within_one_cell" in c:  # MAPRT: its own grid
            checks.append([c["pair"], c["frames"], f"{c['within_one_cell']} within one cell", "-",
                           f"{c['agreement']:.1%}", f"ratio {c['statistic_ratio_median']:.4f}",
                           _f(c["max_theta_diff_deg"], 4), _f(c["max_range_diff_m"], 3),
                           "yes" if c["ok"] else "**no**"])
        else:
            checks.append([c["pair"], c["frames"], c["same_argmax"], c["float32_ties"], f"{c['agreement']:.1%}",
                           f"{c['max_statistic_rel_diff']:.1e}", _f(c["max_theta_hat_diff_deg"], 4),
                           _f(c["max_range_hat_diff_m"], 3), "yes" if c["ok"] else "**no**"])
    sector = sec["frames"]["sector"]
    return [f"## Receivers: frames/s, median [min-max] of {sec['repetitions']} repetitions after {sec['warmup']} "
            f"warm-up {_load(sec)}", "",
            f"Same {sec['frames']['count']} frames for all ({sec['frames']['targets']} with a target), sector "
            f"[{math.degrees(sector[0]):.0f}, {math.degrees(sector[1]):.0f}] deg x "
            f"[{sector[2]:.0f}, {sector[3]:.0f}] m; GFLOP/s and roofline at batch {max(sec['batches'])}; dense "
            f"implementations {sec['dense_chunk']} frames per product.", "",
            table(["implementation", *[f"batch {b}" for b in batches], "MFLOP/frame", "GFLOP/s", "roof GFLOP/s",
                   "of roof"], rows), "",
            f"FLOPs per frame (K={sym['K']}, S={sym['S']}, N_theta={sym['N_theta']}, N_tau={sym['N_tau']}, "
            f"R={sym['R']} sector rows, C={sym['C']} columns, r'={padded} (rank {counts['range_rank']} padded), "
            f"window {sym['W_theta']}x{sym['W_R']}; MAPRT: n_theta={sym['n_theta']}, n_range={sym['n_range']}, "
            f"r'_m={padded_maprt}): dense `{counts['formulas']['dense']}`; MB-ML `{counts['formulas']['mbml']}`; "
            f"MB-ML low-rank (r_a={sym['r_a']} latent rows) `{counts['formulas']['mbml lowrank']}`; "
            f"MAPRT `{counts['formulas']['maprt']}`; the sector rows alone, without the range factorisation, "
            f"would take `{counts['formulas']['mbml_minimal_exact']}` = "
            f"{counts['flops']['mbml_minimal_exact'] / 1e6:.1f} MFLOP. Bytes per frame: dense "
            f"`{counts['formulas']['dense_bytes']}`, MB-ML and MAPRT `{counts['formulas']['mbml_bytes']}`.", "",
            "Cross-checks on the largest batch (outputs of the timed calls; MAPRT on the clearly detected frames, "
            "against the dense arg-max's grid point):", "",
            table(["pair", "frames", "same arg-max", "float32 ties", "agreement", "max stat rel diff",
                   "max dtheta (deg)", "max dR (m)", "ok"], checks), ""]


def _training_md(sec: dict) -> list[str]:
    if (err := _error_md("Training step", sec)) is not None:
        return err
    rows = [["isacblocks Trainer.step()", sec["batch"],
             f"{_f(sec['isacblocks']['step']['median_ms'])} [{_f(sec['isacblocks']['step']['min_ms'])}-"
             f"{_f(sec['isacblocks']['step']['max_ms'])}]", fmt_rate(sec["isacblocks"]["frames_per_s"])],
            ["dense torch autograd", sec["batch"],
             f"{_f(sec['dense_torch']['step']['median_ms'])} [{_f(sec['dense_torch']['step']['min_ms'])}-"
             f"{_f(sec['dense_torch']['step']['max_ms'])}]", fmt_rate(sec["dense_torch"]["frames_per_s"])]]
    cc = sec["cross_check"]
    checks = [[kind.upper(), precision, f"{cc[kind]['isacblocks_loss']:.6g}",
               f"{cc[kind][precision]['dense_loss']:.6g}",
               f"{cc[kind][precision]['loss_rel_diff']:.1e}", f"{cc[kind][precision]['grad_cosine']:.6f}",
               f"{cc[kind][precision]['grad_rel_diff']:.1e}",
               ("yes" if cc[kind]["ok"] else "**no**") if precision == "complex128" else "(info)"]
              for kind in ("ul", "sl") for precision in ("complex128", "complex64")]
    return ["## Training step (UL, forward + backward through d, Adam) " + _load(sec), "",
            table(["implementation", "batch", "step ms median [min-max]", "frames/s"], rows), "",
            f"Ratio {sec['ratio']:.1f}x ({sec['ratio_excluding_dense_data_generation']:.1f}x without the dense step's "
            f"{sec['dense_torch']['data_generation_ms_median']:.0f} ms of data generation).", "",
            f"Cross-check on one shared batch of {cc['batch']} at the nominal spacing ({cc['criterion']}):", "",
            table(["loss", "dense precision", "isacblocks loss", "dense loss", "loss rel diff", "grad cosine",
                   "grad rel diff", "ok"], checks), "", *_environment_md(sec.get("environment_sensitivity"))]


def _environment_md(env: dict | None) -> list[str]:
    if not env:
        return []
    default, passive = env["default"]["step"], env["OMP_WAIT_POLICY=PASSIVE"]["step"]
    return [f"Thread pools: `Trainer.step()` at batch {env['batch']} in fresh processes, {env['steps']} steps: "
            f"{default['median_ms']:.0f} ms [{default['min_ms']:.0f}-{default['max_ms']:.0f}] with the default "
            f"environment, {passive['median_ms']:.0f} ms [{passive['min_ms']:.0f}-{passive['max_ms']:.0f}] with "
            f"`OMP_WAIT_POLICY=PASSIVE` ({env['speedup_passive']:.1f}x): busy-waiting OpenMP threads (Numba's and "
            "torch's pools) take the cores from the next library's work.", ""]


def _chain_md(sec: dict) -> list[str]:
    if (err := _error_md("Whole chain", sec)) is not None:
        return err
    rows = []
    for name in ("mbml", "maprt"):
        r = sec[name]
        inst = r["instrumented"]
        top = ", ".join(f"{b['type']} {b['share_of_wall']:.0%}" for b in inst["blocks"][:4])
        share = r["scheduler_overhead"]
        rows.append([name, r["frames"], fmt_rate(r["frames_per_s"], 1), inst["work_calls"],
                     f"{share['median']:.2%} [{share['min']:.2%}-{share['max']:.2%}]",
                     _f(inst["scheduler_us_per_call"]), top])
    scheduler = sec["mbml"].get("scheduler", "default")
    return [f"## Whole chain: tx -> channels -> rx flowgraph, 64 frames per work() call, {scheduler} scheduler "
            + _load(sec), "",
            table(["receiver", "frames", "frames/s median [min-max]", "work() calls", "scheduler overhead",
                   "scheduler us/call", "largest work() shares of wall time (median run)"], rows), ""]


def _work_md(sec: dict) -> list[str]:
    if (err := _error_md("work() call overhead", sec)) is not None:
        return err
    rows = [[n, v["calls_per_block"], f"{_f(v['us_per_call'], 2)} [{_f(v['us_per_call_min'], 2)}-"
                                      f"{_f(v['us_per_call_max'], 2)}]"] for n, v in sec.items() if n.isdigit()]
    return ["## work() call overhead of a no-op sync block " + _load(sec), "",
            table(["items per call", "calls per block", "us per call median [min-max]"], rows), ""]


def _stream_md(sec: dict) -> list[str]:
    if (err := _error_md("Stream", sec)) is not None:
        return err
    rows = []
    for r in sec["rows"]:
        if not r["available"]:
            rows.append([r["path"], "-", "n/a", "-", r.get("why") or f"failed: {r.get('error')}"])
            continue
        if "scheduler" in r:
            note = f"performance counters; largest work() shares: {', '.join(r['largest_work_shares'])}"
        elif r.get("learning_steps") is not None:
            note = f"{r['learning_steps']} learning steps"
        elif "arrival_frames_per_s" in r:
            note = f"arrival at rx's sockets (first to last frame): {_f(r['arrival_frames_per_s'], 0)} frames/s"
        else:
            note = ""
        rows.append([r["path"], r["frames"], fmt_rate(r["frames_per_s"]),
                     f"{r['vs_kernel']:.2f}x", note])
    return [f"## Stream: one stream through MB-ML, against the kernel alone ({sec['max_items']} frames per work() "
            "call) " + _load(sec), "",
            table(["path", "frames", "frames/s median [min-max]", "vs kernel", "note"], rows), ""]


def _zmq_md(sec: dict) -> list[str]:
    if (err := _error_md("ZeroMQ", sec)) is not None:
        return err
    rows = [[key.split("_")[0].upper() + "/" + key.split("_")[1].upper(), "two" if "two" in key else "one",
             f"{_f(r['gbytes_per_s']['median'], 2)} [{_f(r['gbytes_per_s']['min'], 2)}-"
             f"{_f(r['gbytes_per_s']['max'], 2)}]",
             _f(r["frames_per_s"]["median"], 0), r["lost_frames"], r["out_of_sequence"], r["dropped_messages"]]
            for key, r in sec["results"].items()]
    return [f"## ZeroMQ loopback, {sec['frame_shape'][0]}x{sec['frame_shape'][1]} complex64 frames, "
            f"{sec['frames_per_message']} per message, {sec['frames_per_run']} per run " + _load(sec), "",
            table(["pattern", "processes", "GB/s median [min-max]", "frames/s", "lost", "out of sequence",
                   "dropped"], rows), ""]


def _gnuradio_md(sec: dict) -> list[str]:
    if (err := _error_md("GNU Radio <-> isacblocks ZeroMQ", sec)) is not None:
        return err
    if "skipped" in sec:
        return ["## GNU Radio <-> isacblocks ZeroMQ", "", f"Skipped: {sec['skipped']}", ""]
    names = {"gr_to_gr": "GNU Radio -> GNU Radio", "gr_to_isacblocks": "GNU Radio -> isacblocks",
             "isacblocks_to_gr": "isacblocks -> GNU Radio"}
    rows = [[names[key], f"{_f(r['gbytes_per_s']['median'], 2)} [{_f(r['gbytes_per_s']['min'], 2)}-"
                         f"{_f(r['gbytes_per_s']['max'], 2)}]", _f(r["frames_per_s"], 0)]
            for key, r in sec["results"].items()]
    return [f"## GNU Radio {sec['gnuradio']} <-> isacblocks, ZeroMQ PUSH/PULL on loopback, two processes, "
            f"{sec['frame_shape'][0]}x{sec['frame_shape'][1]} complex64 frames, {sec['frames_per_run']} per run "
            + _load(sec), "", table(["direction", "GB/s median [min-max]", "frames/s"], rows), ""]


def _gr_native_md(sec: dict) -> list[str]:
    title = "isacblocks blocks inside GNU Radio's scheduler (as_gr_block)"
    if (err := _error_md(title, sec)) is not None:
        return err
    if "skipped" in sec:
        return [f"## {title}", "", f"Skipped: {sec['skipped']}", ""]
    calls = [[str(d["items_per_call"]), _f(d["plain_us"], 2), _f(d["wrapped_us"], 2), _f(d["overhead_us"], 2),
              _f(r["plain_us_per_call"], 1), _f(r["wrapped_us_per_call"], 1)]
             for d, r in zip(sec["direct"], sec["overhead"])]
    lines = [f"## {title}: GNU Radio {sec['gnuradio']}, load {sec['load_start'][0]} -> {sec['load_end'][0]}", "",
             table(["items per call", "direct: plain gr.sync_block us", "direct: wrapped us", "wrapper's own us",
                    "in scheduler: plain us/call", "in scheduler: wrapped us/call"], calls), ""]
    chain_sec = sec.get("chain")
    if chain_sec:
        rows = []
        for part, label in (("rx", "receive chain (frames in memory)"), ("whole", "whole transceiver, no comm")):
            rates = chain_sec["frames_per_s"]
            ours, theirs = rates[f"{part} isacblocks"], rates[f"{part} gnuradio"]
            rows.append([label, f"{_f(ours['median'], 0)} [{_f(ours['min'], 0)}-{_f(ours['max'], 0)}]",
                         f"{_f(theirs['median'], 0)} [{_f(theirs['min'], 0)}-{_f(theirs['max'], 0)}]",
                         _f(theirs["median"] / ours["median"], 2), str(chain_sec["same_records"][part])])
        lines += [f"frames/s, K = {chain_sec['K']}, S = {chain_sec['S']}, {chain_sec['frames']} frames a run, "
                  "MB-ML:", "",
                  table(["flowgraph", "isacblocks runtime", "GNU Radio scheduler", "GR / ours", "same records"], rows),
                  ""]
    return lines


def _gpu_md(sec: dict) -> list[str]:
    if (err := _error_md("CUDA kernel", sec)) is not None:
        return err
    rows = [[name, _f(rate, 0)] for name, rate in sec["frames_per_s"].items()]
    checks = [[name, str(sec[name].get("argmax_differ", sec[name].get("estimates_equal"))),
               _f(sec[name]["statistic_max_rel_err"], 8)] for name in ("check_mbml", "check_mbml_projected",
                                                                        "check_maprt")]
    return [f"## CUDA kernel on {sec['device']}, {sec['frames']} frames (CPU rows: {sec['cpu_frames']}) " + _load(sec),
            "", table(["receiver", "frames/s"], rows), "",
            table(["cross-check vs CPU", "arg-max differ (MAPRT: estimates equal)", "statistic max rel err"], checks),
            ""]


def _memory_md(sec: dict) -> list[str]:
    if (err := _error_md("Memory", sec)) is not None:
        return err
    t, s = sec["training"], sec["streaming"]
    d = t["dense_torch"]
    points = ", ".join(f"batch {p['batch']}: {p['step_peak_rss_gib']:.2f} GiB" for p in d["measured_points"])
    lib = t["isacblocks"]
    rows = [["isacblocks Trainer.step()", t["batch"], _f(lib["peak_rss_gib"], 2), _f(lib["baseline_rss_gib"], 2),
             f"measured: the child's peak RSS (VmHWM; its getrusage ru_maxrss, {_f(lib['ru_maxrss_gib'], 2)} GiB, "
             f"also counts the parent's peak at the spawn); the step's own peak, sampled: "
             f"{_f(lib['sampled_step_peak_rss_gib'], 2)} GiB; step {lib['step_s']:.1f} s"],
            ["dense torch autograd step", t["batch"], _f(d["peak_rss_gib"], 2), _f(d["baseline_rss_gib"], 2),
             f"{d['how']}.  Step peaks {points}: {_f(d['per_frame_mib_measured'], 2)} MiB/frame, extrapolated "
             f"{_f(d['extrapolated_peak_rss_gib'], 1)} GiB; tensor-size estimate {_f(d['tensor_estimate_gib'], 1)} "
             f"GiB ({_f(d['tensor_estimate_per_frame_mib'], 2)} MiB/frame)"]]
    return ["## Memory " + _load(sec), "",
            table(["step", "batch", "peak RSS GiB", "baseline RSS GiB (imports + a batch-2 step)", "how"], rows), "",
            f"Streaming MB-ML chain for {s['seconds']:.0f} s after a warm-up of {s['warmup_calls']} batches of "
            f"{s['frames_per_call']} frames "
            f"({s['frames_while_sampled']} frames, {s['frames_per_s']:.0f} frames/s): RSS {s['rss_start_mib']:.1f} -> "
            f"{s['rss_end_mib']:.1f} MiB, max {s['rss_max_mib']:.1f}, growth {s['growth_mib']:.1f} MiB "
            f"(the metrics sink keeps {s['expected_growth_mib']:.1f} MiB of records by design), fitted slope "
            f"{s['slope_mib_per_min']:.1f} MiB/min — {'flat' if s['flat'] else '**growing**'}.", ""]
