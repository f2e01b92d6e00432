"""``isac bench``: every benchmark in one run, the goals, a Markdown table and JSON.

Run ``isac bench [--quick] [--out DIR]`` (or ``python -m isacblocks.bench [--quick]``).
Writes ``DIR/bench.json`` and ``DIR/bench.md`` and prints the Markdown.  ``--quick`` uses small
batches and few repetitions (CI smoke run, about a minute); its numbers show that everything
runs, not what the machine can do.

Other jobs may share the machine's cores: the load average is recorded at the start and
end of every section and printed with the results.
"""

from __future__ import annotations

import math
import sys
import time
import traceback
from dataclasses import asdict, dataclass, replace

from isacblocks import SystemParams
from isacblocks.errors import ConfigError
from isacblocks.experiments.common import table, true_array, write_json
from isacblocks.safeio import make_folder, write_text

from . import chain, gnuradio_bench, gpu, gr_native_section, memory, receivers, roofline, stream, training, zmq_bench
from .timing import fmt_rate, load_average, machine_description

SECTIONS = ("roofline", "receivers", "training", "chain", "work_overhead", "stream", "zmq", "gnuradio", "gr_native",
            "memory")
#: Run only with ``--device cuda`` (or named in ``--only``): the CUDA kernel against the CPU kernel.
DEVICE_SECTIONS = ("gpu",)


@dataclass(frozen=True)
class BenchConfig:
    """Sizes and repetitions of one run."""

    mode: str
    receiver_batches: tuple[int, ...]
    receiver_warmup: int
    receiver_reps: int
    matmul_n: int
    matmul_reps: int
    bandwidth_mb: int
    train_batch: int
    train_warmup: int
    train_reps: int
    train_check_batch: int
    train_library_per_dense: int
    train_env_steps: int
    chain_frames: dict
    chain_warmup_frames: dict
    chain_reps: int
    noop_calls: int
    noop_blocks: int
    noop_reps: int
    zmq_frames: int
    zmq_reps: int
    memory_batch: int
    dense_memory_batches: tuple[int, ...]
    stream_seconds: float
    stream_warmup_calls: int
    stream_interval_s: float
    stream_kernel_frames: int
    stream_kernel_reps: int
    stream_chain_frames: int
    stream_chain_warmup_frames: int
    stream_chain_reps: int
    stream_link_frames: int
    stream_link_reps: int


FULL = BenchConfig(
    mode="full", receiver_batches=(64, 512), receiver_warmup=1, receiver_reps=5,
    matmul_n=1024, matmul_reps=7, bandwidth_mb=256,
    train_batch=256, train_warmup=1, train_reps=3, train_check_batch=32, train_library_per_dense=5,
    train_env_steps=8,
    chain_frames={"mbml": 2048, "maprt": 256}, chain_warmup_frames={"mbml": 64, "maprt": 64}, chain_reps=3,
    noop_calls=2000, noop_blocks=8, noop_reps=7,
    zmq_frames=3000, zmq_reps=3,
    memory_batch=3000, dense_memory_batches=(64, 192),
    stream_seconds=60.0, stream_warmup_calls=4, stream_interval_s=1.0,
    stream_kernel_frames=512, stream_kernel_reps=5, stream_chain_frames=2048, stream_chain_warmup_frames=64,
    stream_chain_reps=3, stream_link_frames=2048, stream_link_reps=3,
)

QUICK = BenchConfig(
    mode="quick", receiver_batches=(8, 16), receiver_warmup=1, receiver_reps=2,
    matmul_n=512, matmul_reps=3, bandwidth_mb=64,
    train_batch=16, train_warmup=1, train_reps=2, train_check_batch=8, train_library_per_dense=2,
    train_env_steps=0,
    chain_frames={"mbml": 128, "maprt": 16}, chain_warmup_frames={"mbml": 64, "maprt": 8}, chain_reps=2,
    noop_calls=300, noop_blocks=8, noop_reps=3,
    zmq_frames=256, zmq_reps=1,
    memory_batch=64, dense_memory_batches=(4, 12),
    stream_seconds=3.0, stream_warmup_calls=2, stream_interval_s=0.25,
    stream_kernel_frames=512, stream_kernel_reps=2, stream_chain_frames=128, stream_chain_warmup_frames=64,
    stream_chain_reps=2, stream_link_frames=256, stream_link_reps=1,
)

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


# ----------------------------------------------------------------------------------- running
def run_sections(config: BenchConfig, params, seed: int, sections, config_file: str | None) -> dict:
    """Run the chosen sections; a section that fails records its error and the rest go on."""
    ula = true_array(params, seed, None)
    results: dict = {}

    def section(name, fn):
        if name not in sections:
            return
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        load_start, start = load_average(), time.perf_counter()
        try:
            value = fn()
        except Exception as exc:  # noqa: BLE001 - recorded, reported, and the exit code says so
            value = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        value["wall_s"] = time.perf_counter() - start
        value["load_average"] = {"start": load_start, "end": load_average()}
        results[name] = value
        print(f"[bench] {name}: {value['wall_s']:.1f} s, load {load_start[0]:.2f} -> "
              f"{value['load_average']['end'][0]:.2f}", file=sys.stderr, flush=True)

    def do_roofline():
        warm = 2 if config.mode == "full" else 1
        return {"matmul": {b: roofline.matmul_gflops(b, config.matmul_n, warm, config.matmul_reps)
                           for b in ("numpy", "torch")},
                "map_product": {b: roofline.map_product_gflops(b, params, 64, warm, config.matmul_reps)
                                for b in ("numpy", "torch")},
                "memory_bandwidth": roofline.memory_bandwidth(config.bandwidth_mb, 1, config.matmul_reps)}

    section("roofline", do_roofline)
    roof = results.get("roofline", {})
    if "matmul" in roof:
        gflops = {b: roof["matmul"][b]["gflops"]["median"] for b in ("numpy", "torch")}
        bandwidth = roof["memory_bandwidth"]["gbytes_per_s"]["median"]
    else:  # receivers alone: measure the roofs quickly so the fractions can still be given
        gflops = {b: roofline.matmul_gflops(b, 512, 1, 3)["gflops"]["median"] for b in ("numpy", "torch")}
        bandwidth = roofline.memory_bandwidth(64, 1, 3)["gbytes_per_s"]["median"]

    section("receivers", lambda: receivers.run(params, ula, config.receiver_batches, config.receiver_warmup,
                                               config.receiver_reps, seed, gflops, bandwidth))

    def do_training():
        result = training.run(params, ula, config.train_batch, config.train_warmup, config.train_reps, seed,
                              config.train_check_batch, config.train_library_per_dense)
        if config.train_env_steps:
            result["environment_sensitivity"] = training.environment_sensitivity(
                config.train_batch, config.train_env_steps, seed, config_file)
        return result

    section("training", do_training)
    section("chain", lambda: {rx: chain.chain_throughput(params, ula, rx, config.chain_frames[rx],
                                                         config.chain_warmup_frames[rx], config.chain_reps, seed)
                              for rx in ("mbml", "maprt")})
    section("work_overhead", lambda: {str(n): chain.work_overhead(n, config.noop_calls, config.noop_blocks, 1,
                                                                  config.noop_reps) for n in (64, 4096)})
    section("stream", lambda: stream.run(params, ula, seed, config.mode == "quick", config.stream_kernel_frames,
                                         config.stream_kernel_reps, config.stream_chain_frames,
                                         config.stream_chain_warmup_frames, config.stream_chain_reps,
                                         config.stream_link_frames, config.stream_link_reps, config_file))
    section("zmq", lambda: zmq_bench.run(config.zmq_frames, config.zmq_reps))
    section("gnuradio", lambda: gnuradio_bench.run(config.zmq_frames, config.zmq_reps))
    quick = config.mode == "quick"
    section("gr_native", lambda: gr_native_section.run(128 if quick else 1024, 1 if quick else 3,
                                                       300 if quick else 2000))
    section("memory", lambda: {
        "training": memory.training_peak(config.memory_batch, list(config.dense_memory_batches), seed, config_file),
        "streaming": memory.streaming_rss(config.stream_seconds, config.stream_warmup_calls, config.stream_interval_s,
                                          seed, config=config_file)})
    frames = 64 if config.mode == "quick" else 4096
    section("gpu", lambda: gpu.run(frames, config.receiver_reps, min(frames, 2048), seed))
    return results


# ------------------------------------------------------------------------------------- goals
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


# ------------------------------------------------------------------------------------ report
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


# -------------------------------------------------------------------------------------- main
def run(quick: bool = False, out: str = "out/bench", seed: int = 0, config_file: str | None = None,
        only: str | None = None, json_path: str | None = None, command: str | None = None,
        stream_seconds: float | None = None, device: str = "cpu", readme: str | None = None) -> tuple[dict, int]:
    """Run the suite; returns the record and the exit code (1 if a section failed or a cross-check
    disagreed).  `stream_seconds` overrides how long the memory section streams (600 for the
    10-minute check)."""
    config = QUICK if quick else FULL
    if stream_seconds is not None:
        if not stream_seconds > 0:
            raise ConfigError(f"--stream-seconds {stream_seconds!r}: must be > 0")
        config = replace(config, stream_seconds=float(stream_seconds))
    default = SECTIONS + (DEVICE_SECTIONS if device == "cuda" else ())
    sections = default if not only else tuple(s.strip() for s in only.split(","))
    unknown = [s for s in sections if s not in SECTIONS + DEVICE_SECTIONS]
    if unknown:
        raise ConfigError(f"--only: unknown section(s) {unknown}; choose from {', '.join(SECTIONS + DEVICE_SECTIONS)}")
    params = SystemParams.from_toml(config_file) if config_file else SystemParams()
    if readme:  # a README without its markers is refused before the benchmarks run, not after
        from isacblocks.experiments.report import check_section

        check_section(readme, BENCH_BEGIN, BENCH_END)
    started = time.strftime("%Y-%m-%d %H:%M:%S %z")
    load_start, start = load_average(), time.perf_counter()
    results = run_sections(config, params, seed, sections, config_file)
    goals = evaluate_goals(results, config)
    record = {
        "meta": {"mode": config.mode, "command": command or " ".join(sys.argv), "started": started,
                 "wall_s": time.perf_counter() - start, "load_average_start": load_start,
                 "load_average_end": load_average(), "seed": seed, "sections": list(sections),
                 "config": asdict(config), "params": params.to_dict(), "machine": machine_description()},
        "results": results,
        "goals": goals,
        "cross_checks_ok": all(g["met"] for g in goals if "cross-checked" in g["goal"]),
    }
    text = markdown(record)
    out_dir = make_folder(out)
    write_text(out_dir / "bench.md", text + "\n")
    for path in filter(None, (out_dir / "bench.json", json_path)):
        write_json(path, record)  # strict JSON: an undefined number is null, with its reason
    print(text)
    if readme:
        from isacblocks.experiments.report import update_section

        update_section(readme, readme_section(record), BENCH_BEGIN, BENCH_END)
        print(f"updated the benchmark section of {readme}")
    failed = (any("error" in sec for sec in results.values()) or not record["cross_checks_ok"]
              or any("error" in row for row in results.get("stream", {}).get("rows", ())))
    return record, 1 if failed else 0
