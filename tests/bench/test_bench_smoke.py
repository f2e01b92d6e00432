"""Smoke test of ``isac bench --quick``: every section runs, the report and JSON are written with
the expected keys, and the implementations agree with each other (cross-checks).

No timing is asserted: numbers from a shared CI machine mean nothing; the benchmark itself
reports them with the load average.
"""

from __future__ import annotations

import argparse
import json
import os

import pytest
import torch

from isacblocks.bench import cli as bench_cli
from isacblocks.bench import report, suite
from isacblocks.bench import stream as stream_section
from isacblocks.errors import ConfigError


def _parse(*argv):
    parser = argparse.ArgumentParser(prog="isac")
    bench_cli.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["bench", *argv])


def test_quick_bench_writes_every_section_and_the_cross_checks_agree(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# title\n\n<!-- bench:begin -->\nold numbers\n<!-- bench:end -->\n\nafter\n")
    args = _parse("--quick", "--out", str(tmp_path / "bench"), "--json", str(tmp_path / "copy.json"),
                  "--readme", str(readme))
    code = args.run(args)
    record = json.loads((tmp_path / "bench" / "bench.json").read_text())
    assert json.loads((tmp_path / "copy.json").read_text())["meta"] == record["meta"]
    results = record["results"]
    errors = {name: sec["error"] for name, sec in results.items() if "error" in sec}
    assert not errors, errors
    assert code == 0

    meta = record["meta"]
    assert meta["mode"] == "quick" and len(meta["load_average_start"]) == 3
    for key in ("cpu_model", "logical_cores", "numpy_blas", "numba", "torch", "torch_threads"):
        assert key in meta["machine"]
    assert set(results) == {"roofline", "receivers", "training", "chain", "work_overhead", "stream", "zmq",
                            "gnuradio", "gr_native", "memory"}
    native = results["gr_native"]  # GNU Radio's scheduler, where .venv-gr exists: the same records
    assert "skipped" in native or all(native["chain"]["same_records"].values()), native
    for sec in results.values():
        assert sec["wall_s"] > 0 and len(sec["load_average"]["start"]) == 3

    roof = results["roofline"]
    assert roof["matmul"]["numpy"]["gflops"]["median"] > 0 and roof["matmul"]["torch"]["gflops"]["median"] > 0
    assert roof["memory_bandwidth"]["gbytes_per_s"]["median"] > 0

    rx = results["receivers"]
    for name in ("mbml", "mbml lowrank", "maprt", "dense numpy", "dense torch"):
        for batch in rx["batches"]:
            rate = rx["throughput"][name][str(batch)]["frames_per_s"]
            assert 0 < rate["min"] <= rate["median"] <= rate["max"]
        assert 0 < rx["roofline"][name]["fraction_of_roof"]
        assert rx["roofline"][name]["mflop_per_frame"] > 0
    assert rx["flop_counts"]["flops"]["mbml"] < rx["flop_counts"]["flops"]["dense torch"]
    assert rx["flop_counts"]["flops"]["mbml lowrank"] < rx["flop_counts"]["flops"]["mbml"]
    pairs = {c["pair"]: c for c in rx["cross_checks"]}
    assert set(pairs) == {"dense torch vs dense numpy", "mbml vs dense numpy", "mbml vs dense torch",
                          "mbml lowrank vs dense numpy", "maprt vs dense numpy"}
    assert pairs["mbml lowrank vs dense numpy"]["ok"]
    assert all(c["ok"] for c in pairs.values()), pairs
    assert pairs["mbml vs dense numpy"]["agreement"] == 1.0 and pairs["mbml vs dense numpy"]["frames"] > 0
    assert rx["cross_checks_ok"] and record["cross_checks_ok"]

    tr = results["training"]
    assert tr["ratio"] > 0 and tr["isacblocks"]["frames_per_s"]["median"] > 0
    assert tr["cross_check"]["ok"] and tr["cross_check"]["ul"]["ok"] and tr["cross_check"]["sl"]["ok"]

    for receiver in ("mbml", "maprt"):
        chain = results["chain"][receiver]
        assert chain["frames_per_s"]["median"] > 0
        inst = chain["instrumented"]
        assert 0 <= inst["work_s"] <= inst["wall_s"] and inst["work_calls"] > 0
        assert {b["type"] for b in inst["blocks"]} >= {"TargetChannel", "ReciprocalFilter", "SectorBeamformer"}
    assert set(results["work_overhead"]) >= {"64", "4096"}
    assert results["work_overhead"]["64"]["us_per_call"] > 0

    stream = results["stream"]
    rows = {row["path"]: row for row in stream["rows"]}
    assert not [row for row in rows.values() if "error" in row], rows
    assert stream["kernel_frames_per_s"] > 0 and rows[stream_section.KERNEL]["frames"] == 512
    single = rows[stream_section.CHAIN.format("single")]
    assert single["frames"] == suite.QUICK.stream_chain_frames and single["vs_kernel"] > 0
    assert {b["type"] for b in single["blocks"]} >= {"TargetChannel", "ReciprocalFilter", "MBMLEstimator"}
    threaded = rows[stream_section.CHAIN.format("threaded")]
    assert threaded["available"] and threaded["vs_kernel"] > 0
    link = rows[stream_section.LINK]
    assert link["frames"] == suite.QUICK.stream_link_frames and link["frames_per_s"]["median"] > 0
    assert all(run["complete"] for run in link["runs"])
    for path in stream_section.ONLINE:
        assert rows[path]["available"] and rows[path]["frames_per_s"]["median"] > 0

    zmq = results["zmq"]["results"]
    assert set(zmq) == {"push_pull_in_process", "push_pull_two_process", "pub_sub_in_process", "pub_sub_two_process"}
    for key, run in zmq.items():
        assert run["gbytes_per_s"]["median"] > 0, key
        assert run["lost_frames"] == 0 and run["out_of_sequence"] == 0, key

    gnuradio = results["gnuradio"]
    if "skipped" not in gnuradio:
        assert set(gnuradio["results"]) == {"gr_to_gr", "gr_to_isacblocks", "isacblocks_to_gr"}
        assert all(r["gbytes_per_s"]["median"] > 0 for r in gnuradio["results"].values())
    else:
        assert os.environ.get("CI", "").lower() != "true", gnuradio["skipped"]

    mem = results["memory"]
    assert mem["training"]["isacblocks"]["peak_rss_gib"] >= mem["training"]["isacblocks"]["baseline_rss_gib"] > 0
    dense = mem["training"]["dense_torch"]
    assert dense["peak_rss_gib"] > 0 and dense["extrapolated_peak_rss_gib"] > 0
    assert dense["measured"]  # the quick run's batch is small enough to run the dense step itself
    assert mem["streaming"]["samples"] >= 2 and mem["streaming"]["frames_while_sampled"] > 0

    goals = {g["goal"] for g in record["goals"]}
    for fragment in ("MB-ML vs dense torch", "fraction of own roofline", "training step vs dense torch",
                     "work() overhead", "scheduler overhead", "ZeroMQ push pull", "training step peak RSS",
                     "RSS flat", "threaded scheduler vs single", "in-process chain vs the fused kernel",
                     "two-process link vs the fused kernel"):
        assert any(fragment in g for g in goals), fragment
    text = (tmp_path / "bench" / "bench.md").read_text()
    assert text.startswith("# isac bench (quick)") and "## Goals" in text and "load average" in text
    # the README section: this run's goals table between the markers, the rest of the file kept
    section = readme.read_text()
    assert "old numbers" not in section and section.startswith("# title\n") and section.endswith("\n\nafter\n")
    assert report.goals_table(record) in section and meta["command"] in section


def test_unknown_section_is_a_config_error(tmp_path):
    args = _parse("--quick", "--out", str(tmp_path), "--only", "receivers,warp_drive")
    with pytest.raises(ConfigError, match="warp_drive"):
        args.run(args)


def test_gpu_training_benchmark_runs_on_the_cpu(tmp_path):
    """`benchmarks.gpu_training` (the device check's training step) at a tiny size on the CPU: it
    writes the step's frames/s and an SL curve evaluated against lambda/2 and the known spacing."""
    import json

    from benchmarks import gpu_training

    out = tmp_path / "training.json"
    assert gpu_training.main(["--device", "cpu", "--batch", "16", "--steps", "2", "--seconds", "1",
                              "--eval-frames", "1000", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert "error" not in record
    assert record["step"]["frames_per_s"] > 0 and len(record["step"]["samples_s"]) == 2
    curve = record["sl_curve"]
    assert curve["iterations"] >= 1 and curve["labelled_frames"] == 16 * curve["iterations"]
    assert set(curve["pmd"]) == {"learned", "lambda/2", "known"}


def test_training_profile_times_every_part_of_a_step_and_restores_what_it_wrapped():
    from benchmarks import training_profile
    from isacblocks.learning import batches

    before = (batches.BatchSource.draw, batches._draw_pool, torch.Tensor.backward)
    per_step, parts = training_profile.profile(batch_size=8, steps=2)
    labels = [label for _, _, label in training_profile.PARTS] + ["backward"]
    assert set(parts) == set(labels), sorted(set(labels) - set(parts))
    top_level = sum(value for label, value in parts.items() if not label.startswith(" "))
    assert 0 < top_level <= per_step
    assert parts["  BLAS search"] <= parts["map kernel"] and parts["  noise"] <= parts["draw"]
    assert (batches.BatchSource.draw, batches._draw_pool, torch.Tensor.backward) == before
