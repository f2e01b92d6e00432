"""Online learning of d: the per-frame semi-supervised loss, the script's arguments, convergence."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from isacblocks import SystemParams

torch = pytest.importorskip("torch")

from isacblocks.learning.online import OnlineSpacingTrainer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "flowgraphs" / "online_ssl.py"


def _map(frame, spacing, params):
    """``|Phi_pert(d)^H Y~ Phi_d^*|`` (eq. 15) written out from the steering formulas (eq. 13-14)."""
    k = np.arange(params.n_antennas)
    positions = (k - (params.n_antennas - 1) / 2) * spacing
    a = np.exp(-2j * np.pi / params.wavelength * np.outer(positions, np.sin(params.angle_grid)))  # (K, N_theta)
    tau = 2 * params.range_grid / 299792458.0
    rho = np.exp(-2j * np.pi * params.subcarrier_spacing_hz * np.outer(np.arange(params.n_subcarriers), tau))
    return np.abs(a.conj().T @ frame @ rho.conj())


def _frame_loss(frame, sector, label, spacing, params):
    """One frame's term: eq. 20 (soft estimate, eq. 18-19) when labelled, else eq. 21."""
    m = _map(frame, spacing, params)
    rows = np.flatnonzero((params.angle_grid >= sector[0]) & (params.angle_grid <= sector[1]))
    i, j = np.unravel_index(np.argmax(m[rows]), (rows.size, m.shape[1]))
    i = rows[i]
    di, dj = params.window_half_angle, params.window_half_range
    ii = np.arange(i - di, i + di + 1)
    jj = np.arange(j - dj, j + dj + 1)
    ii, jj = ii[(ii >= 0) & (ii < m.shape[0])], jj[(jj >= 0) & (jj < m.shape[1])]
    window = m[np.ix_(ii, jj)]
    if label is None:
        return -window.max()
    soft = np.exp(window - window.max())
    soft /= soft.sum()
    theta_hat = np.sum(params.angle_grid[ii] * soft.sum(axis=1))
    range_hat = np.sum(params.range_grid[jj] * soft.sum(axis=0))
    theta, r = label
    return ((r * np.cos(theta) - range_hat * np.cos(theta_hat)) ** 2
            + (r * np.sin(theta) - range_hat * np.sin(theta_hat)) ** 2)


def test_labels_are_used_per_frame():
    """A batch with 1 of 8 frames labelled: the loss is (its eq.-20 term + the other 7 frames'
    eq.-21 terms) / 8, computed here from the map's definition on full frames."""
    params = SystemParams()
    rng = np.random.default_rng(7)
    trainer = OnlineSpacingTrainer(params, threshold=0.0, seed=0)
    spacing = params.nominal_spacing
    true_spacing = spacing * (1 + 0.01 * rng.standard_normal(params.n_antennas))
    n = 8
    sector = np.radians([-40.0, -20.0])
    theta = rng.uniform(*sector, n)
    ranges = rng.uniform(20.0, 180.0, n)
    k = np.arange(params.n_antennas)
    positions = (k - (params.n_antennas - 1) / 2) * true_spacing
    tau = 2 * ranges / 299792458.0
    frames = np.empty((n, params.n_antennas, params.n_subcarriers), dtype=np.complex64)
    for b in range(n):
        a = np.exp(-2j * np.pi / params.wavelength * positions * np.sin(theta[b]))
        rho = np.exp(-2j * np.pi * params.subcarrier_spacing_hz * np.arange(params.n_subcarriers) * tau[b])
        noise = (rng.standard_normal(frames.shape[1:]) + 1j * rng.standard_normal(frames.shape[1:])) / np.sqrt(2)
        frames[b] = 0.3 * np.outer(a, rho) + noise
    labels = np.full((n, 2), np.nan)
    labels[3] = theta[3], ranges[3]
    sectors = np.tile([*sector, params.range_min_m, params.range_max_m], (n, 1))

    loss, used = trainer.loss(frames @ trainer.basis.g.astype(np.complex64), sectors, labels)

    terms = [_frame_loss(frames[b].astype(np.complex128), sector, (theta[b], ranges[b]) if b == 3 else None,
                         spacing, params) for b in range(n)]
    assert used.all()
    assert terms[3] > 0 and all(t < 0 for i, t in enumerate(terms) if i != 3)  # the two kinds of term differ
    np.testing.assert_allclose(float(loss.detach()), np.mean(terms), rtol=1e-4)
    # The label counts: the same batch with no label at all is the mean of eq.-21 terms only.
    unlabelled, _ = trainer.loss(frames @ trainer.basis.g.astype(np.complex64), sectors, np.full((n, 2), np.nan))
    term_3 = _frame_loss(frames[3].astype(np.complex128), sector, None, spacing, params)
    np.testing.assert_allclose(float(unlabelled.detach()), (sum(terms) - terms[3] + term_3) / n, rtol=1e-4)


def test_unlabelled_frames_below_threshold_are_not_used():
    """Unlabelled frames need their statistic above the threshold; labelled ones are always used."""
    params = SystemParams()
    trainer = OnlineSpacingTrainer(params, threshold=1e9, seed=0)
    rng = np.random.default_rng(3)
    n, r = 4, trainer.basis.rank
    projected = ((rng.standard_normal((n, params.n_antennas, r))
                  + 1j * rng.standard_normal((n, params.n_antennas, r))) * trainer.basis.sigma).astype(np.complex64)
    sectors = np.tile([*np.radians([-10.0, 10.0]), params.range_min_m, params.range_max_m], (n, 1))
    labels = np.full((n, 2), np.nan)
    labels[1] = 0.0, 50.0
    loss, used = trainer.loss(projected, sectors, labels)
    assert used.tolist() == [False, True, False, False]
    assert float(loss.detach()) > 0  # only the supervised term (a squared distance)


def _script():
    spec = importlib.util.spec_from_file_location("online_ssl", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_script(capsys, *args) -> tuple[int, str]:
    """The script's exit status and standard error for `args`, run in this process."""
    try:
        status = _script().main(list(args))
    except SystemExit as exc:
        status = exc.code
    return status, capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--frames", "0"], "--frames: '0': must be an integer >= 1"),
    (["--frames", "ten"], "--frames: 'ten'"),
    (["--labelled", "-1"], "--labelled: '-1': must be an integer >= 0"),
    (["--frames", "100", "--labelled", "200"], "--labelled: 200 exceeds --frames = 100"),
    (["--true-spacing", "/no/such/file.npy"], "--true-spacing: '/no/such/file.npy': no such file"),
    (["--out", "/no/such/folder/d.npy"], "--out: '/no/such/folder/d.npy': folder '/no/such/folder' does not exist"),
    (["--out", "d.txt"], "--out: 'd.txt': the file name must end in .npy"),
    (["--plot", "curve.pdf"], "--plot: 'curve.pdf': the file name must end in .png"),
    (["--lr", "0"], "--lr: '0'"),
    (["--gate-start", "30", "--gate-end", "20"], "--gate-end: 20 is below --gate-start = 30"),
    (["--replay", "64", "--batch", "128"], "--replay: 64 must hold at least one --batch (128)"),
    (["--frames", "1000", "--segments", "4"], "--segments: 4 segments of --frames = 1000 leave fewer than 400"),
    (["--seed", "-2"], "--seed: '-2': must be an integer >= 0"),
])
def test_script_rejects_bad_arguments(capsys, args, message):
    status, err = _run_script(capsys, *args)
    assert status == 2
    assert message in err


def test_script_rejects_a_spacing_file_of_the_wrong_length(capsys, tmp_path):
    path = tmp_path / "short.npy"
    np.save(path, np.full(3, 2.5e-3))
    status, err = _run_script(capsys, "--true-spacing", str(path), "--frames", "2000")
    assert status == 2
    assert "--true-spacing" in err and "64" in err


@pytest.mark.slow
def test_online_learning_reaches_the_known_spacing_pmd(tmp_path):
    """20 000 unlabelled streamed frames: the final spacing's test-sector Pmd lies inside the
    known-spacing 95 % interval (10 000 frames per hypothesis)."""
    out = tmp_path / "d.npy"
    result = subprocess.run([sys.executable, str(SCRIPT), "--frames", "20000", "--labelled", "0", "--out", str(out),
                             "--curve-points", "1"], capture_output=True, text=True, cwd=ROOT, timeout=3600)
    assert result.returncode == 0, result.stderr
    assert "final Pmd inside the known-spacing 95% interval" in result.stdout, result.stdout
    assert np.load(out).shape == (SystemParams().n_antennas,)


def test_transmit_gain_term_has_the_gradient_of_the_true_transmit_gain():
    """On a noise-free frame the snapshot is the true ``a_tx(theta)`` up to a scalar, so the factor's
    gradient in ``u`` is that of ``log |a_tx(theta)^T f(d)|`` with the numpy LS precoder (eq. 5-6),
    here by central differences; its value is 1 (the loss value is unchanged)."""
    from isacblocks.dsp.precoder import beampattern_precoder
    from isacblocks.learning import differentiable as diff
    from isacblocks.sim.montecarlo import draw_projected_frames

    params = SystemParams()
    rng = np.random.default_rng(11)
    true_spacing = params.nominal_spacing * (1 + 0.02 * rng.standard_normal(params.n_antennas))
    init = params.nominal_spacing * (1 + 0.01 * rng.standard_normal(params.n_antennas))
    trainer = OnlineSpacingTrainer(params, init_spacing=init, threshold=0.0, seed=0)
    sector = np.radians([-35.0, -20.0])
    frames = draw_projected_frames(rng, params, true_spacing, trainer.basis, *sector, 1)
    projected = frames.steering[:, :, None] * frames.delay[:, None, :]  # no noise, unit amplitude
    j_hat = np.array([np.argmin(np.abs(params.range_grid - frames.ranges[0]))])
    sectors = np.array([[*sector, params.range_min_m, params.range_max_m]])
    factor = trainer._transmit_gain(projected, sectors, j_hat, diff.grid_steering(trainer.model.spacing(), params))
    torch.log(factor).sum().backward()
    a_tx = frames.steering[0].astype(np.complex128)
    u0, scale, h = trainer.model.u.detach().numpy().copy(), trainer.model.scale, 1e-6

    def log_gain(u):
        return np.log(np.abs(a_tx @ beampattern_precoder(*sector, scale * (1 + u), params)))

    numeric = np.array([(log_gain(u0 + h * e) - log_gain(u0 - h * e)) / (2 * h) for e in np.eye(params.n_antennas)])
    np.testing.assert_allclose(float(factor.detach()[0]), 1.0, rtol=1e-12)
    np.testing.assert_allclose(trainer.model.u.grad.numpy(), numeric, rtol=2e-3, atol=2e-3 * np.abs(numeric).max())


def test_transmit_gradient_must_be_a_bool():
    from isacblocks.errors import ConfigError

    with pytest.raises(ConfigError, match="transmit_gradient = 1: expected True or False"):
        OnlineSpacingTrainer(SystemParams(), threshold=0.0, transmit_gradient=1)


def test_script_receiver_only_turns_the_transmit_gradient_off():
    module = _script()
    params = SystemParams()
    for argv, expected in (([], True), (["--receiver-only"], False)):
        args = module.parse_args(["--frames", "2000", *argv])
        ula = module.true_array(params, args.seed, None)
        _, _, trainer, _ = module.build(params, ula, args)
        assert trainer.transmit_gradient is expected
