"""The CUDA angle-delay kernel against the CPU kernel, on Numba's CUDA simulator.

The simulator must be switched on before numba.cuda is first imported, so the
comparisons run in one child process with ``NUMBA_ENABLE_CUDASIM=1`` (this process and
the rest of the suite never see it).  The simulator runs each thread as a Python
thread: sizes are small (K = 8, S = 16, a 24 x 12 grid, a few frames).
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from isacblocks.errors import ConfigError
from isacblocks.params import SystemParams

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np
    import numba
    from numba import cuda
    assert numba.config.ENABLE_CUDASIM
    from isacblocks.blocks.receivers import MAPRTDetector, MBMLEstimator
    from isacblocks.dsp.angle_delay import angle_delay_peak, angle_delay_peak_cuda
    from isacblocks.dsp.maprt import maprt
    from isacblocks.dsp.mbml import (angle_dictionary, mbml_estimate, mbml_estimate_projected, mbml_peak,
                                     range_dictionary, range_factors)
    from isacblocks.params import SystemParams

    p = SystemParams(n_antennas=8, n_subcarriers=16, n_taps=1, n_angle_grid=24, n_range_grid=12)
    rng = np.random.default_rng(3)
    d = p.nominal_spacing + 0.05 * p.wavelength * rng.standard_normal(8)
    ad, rd = angle_dictionary(d, p), range_dictionary(p)
    B = 6
    Y = (rng.standard_normal((B, 8, 16)) + 1j * rng.standard_normal((B, 8, 16))).astype(np.complex64)
    Y[3] = 0                  # all-zero map: every entry ties, the first one must win
    Y[4, 2, 5] = np.nan       # NaN frame
    lo, hi = np.array([0, 3, 5, 0, 0, 20]), np.array([24, 10, 6, 24, 24, 24])
    clo, chi = np.array([0, 2, 11, 0, 0, 0]), np.array([12, 9, 12, 12, 12, 3])
    out = {}

    def pack(name, a, b):
        out[name] = {k: [np.asarray(getattr(a, k)).tolist(), np.asarray(getattr(b, k)).tolist()]
                     for k in a._fields}

    for threads in (1, 7, 32):
        a = angle_delay_peak(Y, ad, rd, lo, hi, clo, chi, 2, 1)
        b = angle_delay_peak_cuda(Y, ad, rd, lo, hi, clo, chi, 2, 1, threads_per_block=threads)
        pack(f"peak_t{threads}", a, b)
    a = angle_delay_peak(Y, ad, rd, lo, hi, clo, chi, 2, 1)
    b = angle_delay_peak_cuda(cuda.to_device(Y), ad, rd, lo, hi, clo, chi, 2, 1, threads_per_block=8)
    pack("device_input", a, b)
    g = np.asarray(range_factors(p)[0])
    C = (Y[:3].astype(np.complex128) @ g).astype(np.complex64)
    a = angle_delay_peak(C, ad, rd, lo[:3], hi[:3], clo[:3], chi[:3], 1, 2, projected=True)
    b = angle_delay_peak_cuda(C, ad, rd, lo[:3], hi[:3], clo[:3], chi[:3], 1, 2, projected=True,
                              threads_per_block=16)
    pack("projected", a, b)

    sec = (np.full(3, -0.6), np.full(3, 0.4), np.full(3, p.range_min_m), np.full(3, p.range_max_m))
    out["mbml"] = [np.asarray(mbml_estimate(Y[:3], *sec, d, p)).tolist(),
                   np.asarray(mbml_estimate(Y[:3], *sec, d, p, device="cuda")).tolist()]
    out["mbml_projected"] = [np.asarray(mbml_estimate_projected(C, *sec, d, p)).tolist(),
                             np.asarray(mbml_estimate_projected(C, *sec, d, p, device="cuda")).tolist()]
    out["mbml_peak"] = [np.asarray(mbml_peak(Y[:3], *sec, d, p)).tolist(),
                        np.asarray(mbml_peak(Y[:3], *sec, d, p, device="cuda")).tolist()]
    out["maprt"] = [np.asarray(maprt(Y[:2], *[s[:2] for s in sec], d, p, n_theta=10, n_range=6)).tolist(),
                    np.asarray(maprt(Y[:2], *[s[:2] for s in sec], d, p, n_theta=10, n_range=6,
                                     device="cuda")).tolist()]
    sectors = np.stack(sec, axis=1)
    blocks = []
    for device in ("cpu", "cuda"):
        est = MBMLEstimator(p, d, sector=(-0.6, 0.4), device=device)
        blocks.append(np.asarray(est.estimate(Y[:3], sectors)).tolist())
        MAPRTDetector(p, d, sector=(-0.6, 0.4), n_theta=10, n_range=6, device=device)
    out["block"] = blocks
    from isacblocks.sim.evaluation import mbml_statistics
    d_true = p.nominal_spacing + 0.03 * p.wavelength * rng.standard_normal(8)
    stats = [mbml_statistics(p, d_true, d, 6, np.random.default_rng(5), True, sector=(-0.6, 0.4), device=device)
             for device in ("cpu", "cuda")]
    out["evaluation"] = [[s[k].tolist() for k in ("statistic", "theta_hat", "range_hat")] for s in stats]
    json.dump(out, sys.stdout)
""")


@pytest.fixture(scope="module")
def simulated():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", PYTHONPATH=str(ROOT) + os.pathsep
               + os.environ.get("PYTHONPATH", ""))
    run = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=900)
    if run.returncode:
        pytest.fail(f"CUDA simulator run failed:\n{run.stderr[-4000:]}")
    return json.loads(run.stdout)


def check_peak(result, half_angle, half_range):
    stat_cpu, stat_gpu = (np.array(v, dtype=np.float64) for v in result["statistic"])
    np.testing.assert_array_equal(result["i_hat"][0], result["i_hat"][1])
    np.testing.assert_array_equal(result["j_hat"][0], result["j_hat"][1])
    np.testing.assert_array_equal(np.isnan(stat_cpu), np.isnan(stat_gpu))
    np.testing.assert_allclose(stat_gpu, stat_cpu, rtol=1e-5, atol=0)
    np.testing.assert_array_equal(result["valid"][0], result["valid"][1])
    win_cpu, win_gpu = (np.array(v, dtype=np.float64) for v in result["window"])
    assert win_cpu.shape[1:] == (2 * half_angle + 1, 2 * half_range + 1)
    np.testing.assert_allclose(win_gpu, win_cpu, rtol=1e-5, atol=0, equal_nan=True)


@pytest.mark.parametrize("threads", [1, 7, 32])
def test_kernel_matches_cpu_with_per_frame_sectors_ties_and_nan(simulated, threads):
    result = simulated[f"peak_t{threads}"]
    check_peak(result, 2, 1)
    stat = result["statistic"][1]
    assert stat[3] == 0.0 and result["i_hat"][1][3] == 0 and result["j_hat"][1][3] == 0  # first of the ties
    assert np.isnan(stat[4])  # the NaN frame
    assert all(np.isfinite(stat[b]) for b in (0, 1, 2, 5))  # no leak into the others


def test_frames_already_on_the_device_match_cpu(simulated):
    check_peak(simulated["device_input"], 2, 1)


def test_projected_frames_match_cpu(simulated):
    check_peak(simulated["projected"], 1, 2)


@pytest.mark.parametrize("name", ["mbml", "mbml_projected", "mbml_peak", "maprt", "block", "evaluation"])
def test_device_cuda_matches_cpu_in_estimators_and_blocks(simulated, name):
    cpu, gpu = (np.array(v, dtype=np.float64) for v in simulated[name])
    # float32 sums in another order: errors relative to each output's scale (a soft range or
    # angle estimate near zero carries the rounding of the whole window, not of its own value)
    scale = np.abs(cpu).max(axis=-1, keepdims=True) if cpu.ndim > 1 else np.abs(cpu).max()
    bound = 1e-9 + 1e-5 * scale + 1e-5 * np.abs(cpu)
    assert np.all(np.abs(gpu - cpu) <= bound), np.max(np.abs(gpu - cpu) / bound)


def test_cuda_without_a_device_is_a_config_error_at_construction():
    from numba import cuda

    if cuda.is_available():
        pytest.skip("a CUDA device (or the simulator) is available here")
    from isacblocks.blocks.receivers import MAPRTDetector, MBMLEstimator
    from isacblocks.dsp.mbml import mbml_estimate

    params = SystemParams(n_antennas=8, n_subcarriers=16, n_taps=1, n_angle_grid=24, n_range_grid=12)
    for cls in (MBMLEstimator, MAPRTDetector):
        with pytest.raises(ConfigError, match=r"device = 'cuda': no CUDA device: numba.cuda.is_available\(\) "
                                              r"is False"):
            cls(params, device="cuda")
    with pytest.raises(ConfigError, match="device"):
        MBMLEstimator(params, device="gpu")
    Y = np.zeros((1, 8, 16), np.complex64)
    with pytest.raises(ConfigError, match="mbml_estimate.device = 'cuda'"):
        mbml_estimate(Y, -0.5, 0.5, params.range_min_m, params.range_max_m, params.nominal_spacing, params,
                      device="cuda")


def test_importing_dsp_and_blocks_imports_neither_torch_nor_numba_cuda():
    code = ("import sys, isacblocks.dsp, isacblocks.blocks, isacblocks.dsp.mbml, isacblocks.dsp.angle_delay.cuda; "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('numba.cuda')))")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_training_on_cuda_without_a_device_is_a_config_error():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("torch sees a CUDA device here")
    from isacblocks.learning.trainer import TrainConfig, Trainer

    params = SystemParams(n_antennas=8, n_subcarriers=16, n_taps=1, n_angle_grid=24, n_range_grid=12)
    with pytest.raises(ConfigError, match="TrainConfig.device = 'cuda': no CUDA device"):
        Trainer(params, params.nominal_spacing, TrainConfig(iterations=1, batch_size=4, device="cuda"))
    with pytest.raises(ConfigError, match="TrainConfig.device"):
        TrainConfig(device="gpu")


@pytest.mark.slow  # about a minute on the simulator; the kernel itself is checked above in the default suite
def test_gpu_bench_section_runs_on_the_simulator_and_reports_agreement():
    """`isac bench --device cuda`'s gpu section (`isacblocks.bench.gpu.run`, tiny system) and its Markdown."""
    code = textwrap.dedent("""
        import json
        from isacblocks.bench import gpu, report
        record = gpu.run(8, 1, 8, 0, small=True)
        record.update(wall_s=1.0, load_average={"start": [0.0, 0.0, 0.0], "end": [0.0, 0.0, 0.0]})  # as a section
        print(json.dumps({"md": "\\\\n".join(report._gpu_md(record)), "mbml": record["check_mbml"],
                          "projected": record["check_mbml_projected"]}))
    """)
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", PYTHONPATH=str(ROOT) + os.pathsep
               + os.environ.get("PYTHONPATH", ""))
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    for check in ("mbml", "projected"):
        assert out[check]["argmax_differ"] == 0 and out[check]["statistic_ok"], out[check]
    assert "## CUDA kernel on" in out["md"] and "mbml_gpu_device_frames" in out["md"]
