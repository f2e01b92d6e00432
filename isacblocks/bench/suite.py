"""``isac bench``: every benchmark in one run, the goals, a Markdown table and JSON.

Run ``isac bench [--quick] [--out DIR]`` (or ``python -m isacblocks.bench [--quick]``).
Writes ``DIR/bench.json`` and ``DIR/bench.md`` and prints the Markdown.  ``--quick`` uses small
batches and few repetitions (CI smoke run, about a minute); its numbers show that everything
runs, not what the machine can do.

The sections' sizes are in :mod:`~isacblocks.bench.config`, the goals in
:mod:`~isacblocks.bench.goals`, the Markdown in :mod:`~isacblocks.bench.report`.

Other jobs may share the machine's cores: the load average is recorded at the start and
end of every section and printed with the results.
"""

from __future__ import annotations

import sys
import time
import traceback
from dataclasses import asdict, replace

from isacblocks import SystemParams
from isacblocks.blocks import true_array
from isacblocks.errors import ConfigError
from isacblocks.safeio import make_folder, write_json, write_text

from . import chain, gnuradio_bench, gpu, gr_native_section, memory, receivers, roofline, stream, training, zmq_bench
from .config import DEVICE_SECTIONS, FULL, QUICK, SECTIONS, BenchConfig
from .goals import evaluate_goals
from .report import BENCH_BEGIN, BENCH_END, markdown, readme_section
from .timing import load_average, machine_description

__all__ = ["run", "run_sections"]


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
