"""Seeded results that do not depend on the CPU.

Another CPU runs other BLAS kernels (OpenBLAS picks one per CPU model) and other vector
code paths (torch dispatches per instruction set).  This machine can run the kernels of
older CPUs: ``OPENBLAS_CORETYPE`` picks OpenBLAS's kernel set and ``ATEN_CPU_CAPABILITY``
torch's, so the tests below run the same seeded computation in subprocesses under other
kernel sets and compare.  The values pinned in `PINNED` were computed by this code; they
are what every CPU must give (a change to them must say why).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from isacblocks import SystemParams
from isacblocks.dsp.canonical import canonical_svd, singular_groups
from isacblocks.kernels import PINNED, SWITCH, cpu_has_avx2_fma, numpy_pin, pinned_environment

X86 = platform.machine().lower() in ("x86_64", "amd64")

#: Kernel sets of older x86 CPUs this machine can run, as environment variables, and the set
#: the ``isac`` command pins (`isacblocks.kernels`).
OTHER_CPUS = {
    "sandybridge": {"OPENBLAS_CORETYPE": "Sandybridge", "ATEN_CPU_CAPABILITY": "default"},
    "nehalem": {"OPENBLAS_CORETYPE": "Nehalem", "ATEN_CPU_CAPABILITY": "default", "NUMBA_CPU_NAME": "generic"},
    "pinned": {**PINNED, **numpy_pin(), SWITCH: "pinned"},
}

#: The seeded computation every CPU must agree on: a spacing draw, a projected frame, the
#: classical calibration from 4 and 8 labelled frames, and Pmd of the MB-ML receiver.
SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    from isacblocks.dsp.calibration import calibrate_positions
    from isacblocks.dsp.mbml import range_factors
    from isacblocks.dsp.spacing import draw_spacing
    from isacblocks.params import SystemParams
    from isacblocks.sim.evaluation import evaluate_spacing
    from isacblocks.sim.montecarlo import ProjectedBasis, calibration_snapshots, draw_projected_frames

    p = SystemParams()
    true = draw_spacing(np.random.default_rng(0), p)
    out = {"spacing_mm": (true[:3] * 1e3).tolist()}
    g = range_factors(p)[0]
    out["g"] = [float(g[0, 0].real), float(g[0, 0].imag), float(g[100, 30].real), float(g[5, 40].imag)]
    frames = draw_projected_frames(np.random.default_rng(1), p, true, ProjectedBasis.for_params(p), -0.3, 0.3, 4)
    c = frames.combine(np.ones(4))
    out["frame"] = [float(c[0, 0, 0].real), float(c[0, 0, 0].imag), float(c[2, 10, 5].real)]
    for n in (4, 8):
        snapshots, theta = calibration_snapshots(np.random.default_rng(np.random.SeedSequence([0, 11, n])), p, true, n)
        d = calibrate_positions(snapshots, theta, p)
        out[f"calibrated_{n}_mm"] = (d[:3] * 1e3).tolist()
        out[f"pmd_calibrated_{n}"] = evaluate_spacing(p, true, d, 400, seed=7).pmd
    out["pmd_known"] = evaluate_spacing(p, true, true, 400, seed=7).pmd
    out["pmd_half_wavelength"] = evaluate_spacing(p, true, p.nominal_spacing, 400, seed=7).pmd
    json.dump(out, sys.stdout)
""")

#: What `SCRIPT` prints on every CPU: floats to the tolerance of `_agree`, Pmd exactly.
STORED = {
    "spacing_mm": [2.858348180703784, 2.800845769769108, 2.7896728863549236],
    "g": [0.015708155643210885, 0.004071378114494217, -3.7805672899435696, 0.3660848696435327],
    "frame": [-10.670934677124023, -25.06725311279297, -5.221004009246826],
    "calibrated_4_mm": [1.4453850683361278, 2.8026040555263436, 2.7831097463716423],
    "calibrated_8_mm": [2.8659272798235267, 2.7963921270114134, 2.786432076100788],
    "pmd_calibrated_4": 0.1,
    "pmd_calibrated_8": 0.045,
    "pmd_known": 0.04,
    "pmd_half_wavelength": 0.145,
}


def _run(env_extra: dict) -> dict:
    env = {**os.environ, **env_extra}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def _agree(got: dict, expect: dict) -> None:
    for key, value in expect.items():
        if key.startswith("pmd"):
            assert got[key] == value, (key, got[key], value)
        else:
            np.testing.assert_allclose(got[key], value, rtol=1e-6, atol=1e-9, err_msg=key)


@pytest.fixture(scope="module")
def here() -> dict:
    return _run({})


def test_seeded_draws_and_monte_carlo_numbers_are_pinned(here):
    """Stored values: the numbers any CPU gives for these seeds (see the module docstring)."""
    _agree(here, STORED)


@pytest.mark.skipif(not X86 or not cpu_has_avx2_fma(), reason="the other kernel sets are x86-64-v3 ones")
@pytest.mark.parametrize("cpu", sorted(OTHER_CPUS))
def test_another_cpus_kernels_give_the_same_numbers(here, cpu):
    _agree(_run(OTHER_CPUS[cpu]), here)


def test_canonical_svd_removes_the_decompositions_phases_and_rotations():
    """Rotate the singular vectors of each group of equal singular values by a random unitary
    (and a lone vector by a random phase), as another LAPACK could: the canonical factors are
    the same, and their product is unchanged."""
    rng = np.random.default_rng(3)
    n, r = 40, 12
    u, _ = np.linalg.qr(rng.standard_normal((n, r)) + 1j * rng.standard_normal((n, r)))
    vh = np.linalg.qr(rng.standard_normal((30, r)) + 1j * rng.standard_normal((30, r)))[0].conj().T
    sigma = np.array([5.0] * 5 + [3.0, 2.0] + [1.0] * 4 + [0.5])
    assert singular_groups(sigma) == [(0, 5), (5, 6), (6, 7), (7, 11), (11, 12)]
    w = np.zeros((r, r), complex)
    for lo, hi in singular_groups(sigma):
        m = hi - lo
        w[lo:hi, lo:hi] = np.linalg.qr(rng.standard_normal((m, m)) + 1j * rng.standard_normal((m, m)))[0]
    u2, vh2 = u @ w, w.conj().T @ vh  # another valid SVD of the same matrix
    np.testing.assert_allclose((u2 * sigma) @ vh2, (u * sigma) @ vh, atol=1e-12)
    a_u, a_vh = canonical_svd(u, sigma, vh)
    b_u, b_vh = canonical_svd(u2, sigma, vh2)
    np.testing.assert_allclose(a_u, b_u, atol=1e-12)
    np.testing.assert_allclose(a_vh, b_vh, atol=1e-12)
    np.testing.assert_allclose((a_u * sigma) @ a_vh, (u * sigma) @ vh, atol=1e-12)
    np.testing.assert_allclose(a_u.conj().T @ a_u, np.eye(r), atol=1e-12)


def test_range_factors_keep_the_factorisation_exact():
    """G V = Phi_d^* to float64 rounding, G's column norms are the singular values."""
    from isacblocks.dsp.mbml import range_factors
    from isacblocks.dsp.steering import range_steering

    p = SystemParams()
    g, sigma, v = range_factors(p)
    phi = np.conj(range_steering(p.range_grid, p))
    np.testing.assert_allclose(g @ v, phi, atol=1e-9 * np.abs(phi).max())
    np.testing.assert_allclose(np.linalg.norm(g, axis=0), sigma, rtol=1e-9)


EPYC = "processor\t: 0\nflags\t\t: fpu sse2 avx fma avx2 bmi2\n"
OLD = "processor\t: 0\nflags\t\t: fpu sse2 sse4_2 avx\n"


def test_the_isac_command_pins_the_kernel_set_where_the_cpu_has_it():
    env = pinned_environment({"PATH": "/bin"}, cpuinfo=EPYC)
    assert env == {**PINNED, **numpy_pin(), "PATH": "/bin", SWITCH: "pinned"}
    assert numpy_pin("2.4.6") == {"NPY_ENABLE_CPU_FEATURES": "X86_V3"}
    assert "AVX512F" in numpy_pin("1.24.2")["NPY_DISABLE_CPU_FEATURES"]
    assert pinned_environment({"OPENBLAS_CORETYPE": "Zen"}, cpuinfo=EPYC)["OPENBLAS_CORETYPE"] == "Zen"  # the user's
    assert pinned_environment({}, cpuinfo=OLD) is None  # no AVX2: its own kernels
    assert pinned_environment({SWITCH: "native"}, cpuinfo=EPYC) is None
    assert pinned_environment({SWITCH: "pinned"}, cpuinfo=EPYC) is None  # already restarted once


@pytest.mark.skipif(not X86 or not cpu_has_avx2_fma(), reason="pins only on x86-64-v3 CPUs")
def test_the_isac_command_restarts_itself_with_the_pinned_kernels():
    code = ("import os, sys; from isacblocks.kernels import restart_with_pinned_kernels; "
            "restart_with_pinned_kernels(); print(os.environ['ISAC_KERNELS'], os.environ['OPENBLAS_CORETYPE'])")
    env = {k: v for k, v in os.environ.items() if k != SWITCH and k not in PINNED}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["pinned", "Haswell"], done.stderr
