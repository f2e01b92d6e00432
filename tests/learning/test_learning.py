"""Learning d: the differentiable formulas equal the numpy ones, gradients match finite
differences, schedules, checkpoints and the divergence guard."""

import numpy as np
import pytest
import torch

from isacblocks import SystemParams, TrainingError
from isacblocks.dsp import beampattern_precoder, draw_spacing, ula_steering
from isacblocks.dsp.impairments import array_rows, draw_impairments
from isacblocks.dsp.mbml import mbml_estimate_projected, mbml_peak_projected, sector_rows, window_indices
from isacblocks.dsp.precoder import sector_beampattern
from isacblocks.dsp.steering import array_gain
from isacblocks.learning import differentiable as diff
from isacblocks.learning.trainer import TrainConfig, Trainer
from isacblocks.sim.montecarlo import ProjectedBasis, draw_projected_frames

P = SystemParams()


@pytest.fixture(scope="module")
def true_spacing():
    return draw_spacing(np.random.default_rng(3), P)


def test_torch_steering_equals_numpy(true_spacing):
    theta = np.linspace(-1.4, 1.4, 37)
    ours = diff.steering(torch.as_tensor(theta), torch.as_tensor(true_spacing), P.wavelength).numpy()
    np.testing.assert_allclose(ours, ula_steering(theta, true_spacing, P.wavelength).T, atol=1e-12)


def test_array_gain_is_the_sum_over_the_elements_in_numpy_and_torch():
    rng = np.random.default_rng(4)
    rows = rng.standard_normal((5, 8)) + 1j * rng.standard_normal((5, 8))
    per_frame = rng.standard_normal((5, 8)) + 1j * rng.standard_normal((5, 8))
    one = per_frame[0]
    expected_one = np.array([sum(rows[b, k] * one[k] for k in range(8)) for b in range(5)])
    expected_per_frame = np.array([sum(rows[b, k] * per_frame[b, k] for k in range(8)) for b in range(5)])
    for f, expected in ((one, expected_one), (per_frame, expected_per_frame)):
        np.testing.assert_allclose(array_gain(rows, f), expected, rtol=1e-13)
        np.testing.assert_allclose(array_gain(torch.as_tensor(rows), torch.as_tensor(f)).numpy(), expected, rtol=1e-13)


@pytest.mark.parametrize("sector_deg", [(-40, -20), (30, 50), (-5, 8)])
def test_torch_ls_precoder_equals_numpy(true_spacing, sector_deg):
    lo, hi = np.radians(sector_deg)
    grid_a = diff.grid_steering(torch.as_tensor(true_spacing), P)
    ours = diff.ls_precoder(grid_a, np.array([lo]), np.array([hi]), P)[0].numpy()
    ref = beampattern_precoder(lo, hi, true_spacing, P)
    np.testing.assert_allclose(ours, ref, atol=1e-9)


def test_batched_torch_precoders_equal_numpy_on_every_sector_and_array():
    """The normal-equation form of the learner (one Cholesky factor, prefix-sum right-hand sides)
    against LAPACK's SVD least squares per sector: random training sectors, sectors clipped at
    the grid's ends, a one-point sector, and an array with gains and coupling."""
    rng = np.random.default_rng(8)
    lo = np.radians(np.concatenate([rng.uniform(-85, 70, 40), [-90.0, 80.0, 10.0]]))
    hi = np.concatenate([lo[:40] + np.radians(rng.uniform(5, 20, 40)), np.radians([-75.0, 90.0, 10.0])])
    lo[-1] = P.angle_grid[400] - 1e-9  # exactly one grid point inside
    hi[-1] = P.angle_grid[400] + 1e-9
    for array in (draw_spacing(np.random.default_rng(5), P),
                  draw_impairments(6, P, kinds=("spacing", "gain", "coupling"))):
        rows = array_rows(P.angle_grid, array, P.wavelength)  # (N_theta, K), a_pert(theta_n)^T
        ours = diff.ls_precoder(torch.as_tensor(rows), lo, hi, P).numpy()
        ref = np.array([beampattern_precoder(a, b, array, P) for a, b in zip(lo, hi)])
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)


def test_factored_window_equals_the_window_of_the_formed_frames_with_its_gradients(true_spacing):
    rng = np.random.default_rng(9)
    B, C, R = 6, 2 * P.window_half_range + 1, 2 * P.window_half_angle + 1
    cplx = lambda *shape: rng.standard_normal(shape) + 1j * rng.standard_normal(shape)  # noqa: E731
    echo, delay_cols, noise_cols = cplx(B, P.n_antennas), cplx(B, C), cplx(B, P.n_antennas, C)
    rows = torch.as_tensor(rng.integers(0, P.n_angle_grid - R, B)[:, None] + np.arange(R))
    gain_value = cplx(B)
    results = []
    for factored in (False, True):
        spacing = torch.tensor(true_spacing, requires_grad=True)
        gain = torch.tensor(gain_value, requires_grad=True)
        grid_a = diff.grid_steering(spacing, P)
        if factored:
            window = diff.factored_window_map(gain, *map(torch.as_tensor, (echo, delay_cols, noise_cols)), rows, grid_a)
        else:  # z formed entry by entry
            z = gain[:, None, None] * torch.as_tensor(echo[:, :, None] * delay_cols[:, None, :] + 0j)
            window = diff.window_map(z + torch.as_tensor(noise_cols), rows, grid_a)
        (window ** 2).sum().backward()
        results.append((window.detach().numpy(), spacing.grad.numpy(), gain.grad.numpy()))
    for ours, ref in zip(results[1], results[0]):
        np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())


def test_sector_beampattern_is_k_on_the_grid_points_inside_the_sector():
    lo, hi = np.radians([-30.0, 5.0, -90.0]), np.radians([-12.5, 5.0, -80.0])
    grid = P.angle_grid
    expect = np.where((grid >= lo[:, None]) & (grid <= hi[:, None]), 64.0, 0.0)
    np.testing.assert_array_equal(sector_beampattern(lo, hi, P), expect)
    first, end = sector_rows(lo, hi, P)
    for f, e, row in zip(first, end, expect):
        assert np.array_equal(np.flatnonzero(row), np.arange(f, e))


def _frames(true_spacing, n=16, seed=0):
    rng = np.random.default_rng(seed)
    basis = ProjectedBasis.for_params(P)
    lo, hi = np.radians(-40.0), np.radians(-20.0)
    frames = draw_projected_frames(rng, P, true_spacing, basis, lo, hi, n)
    f = beampattern_precoder(lo, hi, true_spacing, P)
    gain = ula_steering(frames.theta, true_spacing, P.wavelength).T @ f
    return basis, frames, gain, lo, hi


def test_torch_window_and_soft_estimate_equal_mbml(true_spacing):
    basis, frames, gain, lo, hi = _frames(true_spacing)
    projected = frames.combine(gain)
    stat, theta_hat, range_hat = mbml_estimate_projected(projected, lo, hi, P.range_min_m, P.range_max_m,
                                                         true_spacing, P)
    peak = mbml_peak_projected(projected, lo, hi, P.range_min_m, P.range_max_m, true_spacing, P)
    rows, cols, rv, cv = window_indices(peak.i_hat, peak.j_hat, P)
    valid = torch.as_tensor(rv[:, :, None] & cv[:, None, :])
    z = projected.astype(np.complex128) @ basis.v[:, cols].transpose(1, 0, 2)
    window = diff.window_map(torch.as_tensor(z), torch.as_tensor(rows),
                             diff.grid_steering(torch.as_tensor(true_spacing), P))
    centre = window[:, P.window_half_angle, P.window_half_range].numpy()
    np.testing.assert_allclose(centre, stat, rtol=1e-4)
    th, rg = diff.soft_estimate(window, valid, torch.as_tensor(rows), torch.as_tensor(cols), P)
    np.testing.assert_allclose(th.numpy(), theta_hat, atol=1e-4)
    np.testing.assert_allclose(rg.numpy(), range_hat, atol=1e-2)


@pytest.mark.parametrize("kind", ["sl", "ul"])
def test_loss_gradient_matches_finite_differences(true_spacing, kind):
    cfg = TrainConfig(schedule=kind, iterations=1, batch_size=32, progress=False, seed=1)
    trainer = Trainer(P, true_spacing, cfg)
    batch = trainer.draw_batch(labelled=True)
    # A point off lambda/2, so the gradient is not special.
    trainer.model.set_spacing(P.nominal_spacing + 0.3 * (true_spacing - P.nominal_spacing))
    loss = trainer.loss(batch, kind)
    loss.backward()
    grad = trainer.model.u.grad.numpy().copy()
    u0 = trainer.model.u.detach().clone()
    rng = np.random.default_rng(0)
    for _ in range(3):
        direction = torch.as_tensor(rng.standard_normal(P.n_antennas))
        direction /= torch.linalg.vector_norm(direction)
        h = 1e-7
        values = []
        for sign in (1, -1):
            with torch.no_grad():
                trainer.model.u.copy_(u0 + sign * h * direction)
            values.append(float(trainer.loss(batch, kind).detach()))
        with torch.no_grad():
            trainer.model.u.copy_(u0)
        numeric = (values[0] - values[1]) / (2 * h)
        analytic = float(grad @ direction.numpy())
        assert numeric == pytest.approx(analytic, rel=2e-3, abs=1e-6 * max(1.0, abs(analytic)))


def test_schedules_and_labeled_ratio():
    cfg = TrainConfig(schedule="sl+ul", iterations=10, labeled_ratio=0.3, progress=False)
    assert [cfg.loss_at(i) for i in range(10)] == ["sl"] * 3 + ["ul"] * 7
    cfg = TrainConfig(schedule="ul+sl", iterations=10, labeled_ratio=0.3, progress=False)
    assert [cfg.loss_at(i) for i in range(10)] == ["ul"] * 7 + ["sl"] * 3
    with pytest.raises(Exception, match="labeled_ratio"):
        TrainConfig(schedule="sl+ul", iterations=10)


def test_supervised_loss_refuses_unlabelled_frames(true_spacing):
    trainer = Trainer(P, true_spacing, TrainConfig(schedule="sl", iterations=1, batch_size=8, progress=False))
    with pytest.raises(TrainingError, match="labelled"):
        trainer.loss(trainer.draw_batch(labelled=False), "sl")


def test_resume_from_checkpoint_gives_the_same_spacing(true_spacing, tmp_path):
    def config(**kw):
        return TrainConfig(schedule="sl+ul", labeled_ratio=0.5, iterations=8, batch_size=16, progress=False,
                           seed=4, checkpoint=str(tmp_path / "ck.pt"), checkpoint_every=3, **kw)

    straight = Trainer(P, true_spacing, config()).run().spacing
    interrupted = Trainer(P, true_spacing, config())
    interrupted.run(until=5)  # "killed" after iteration 5; the last checkpoint is iteration 3
    resumed = Trainer(P, true_spacing, config())
    resumed.load_checkpoint(tmp_path / "ck.pt")
    assert resumed.iteration == 3
    np.testing.assert_array_equal(resumed.run().spacing, straight)


def test_divergence_guard_stops_with_a_clear_message(true_spacing):
    trainer = Trainer(P, true_spacing, TrainConfig(schedule="ul", iterations=50, batch_size=8, lr=5e-3,
                                                   progress=False))
    with pytest.raises(TrainingError, match="diverged"):
        trainer.run()


def test_inference_path_does_not_import_torch():
    import subprocess
    import sys

    code = "import isacblocks.dsp, isacblocks.blocks, sys; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_learner_whose_angle_grid_is_smaller_than_the_array_is_refused_naming_the_rule():
    """The learner's LS precoder solves the normal equations of the angle grid's steering
    (N_theta x K): with fewer grid angles than antennas the Gram matrix is singular."""
    import torch

    from isacblocks.errors import ConfigError, TrainingError
    from isacblocks.learning.differentiable import grid_steering, ls_precoder
    from isacblocks.learning.trainer import TrainConfig, Trainer

    p = SystemParams(n_antennas=16, n_angle_grid=12)
    with pytest.raises(ConfigError, match=r"n_angle_grid = 12: .* needs n_angle_grid >= n_antennas \(= 16\)"):
        Trainer(p, p.nominal_spacing, TrainConfig(schedule="ul", iterations=1, batch_size=2, progress=False))
    grid = grid_steering(torch.tensor(p.nominal_spacing, dtype=torch.float64), p)
    with pytest.raises(TrainingError, match=r"Gram matrix .* \(12 x 16\) is singular"):
        ls_precoder(grid, np.array([-0.5]), np.array([0.5]), p)


def test_both_learners_see_the_same_window(true_spacing):
    """`window.training_window` (the offline trainer: frames as rank-one echo plus noise, formed in
    the fused kernel) and `window.projected_window` (the online trainer: stored ``Y~ G``) find the
    same peak and the same eq.-17 window, hence the same losses, on the same frames."""
    from isacblocks.learning.batches import TrainingBatch
    from isacblocks.learning.window import learner_search, projected_window, training_window

    basis, frames, gain, lo, hi = _frames(true_spacing, n=24, seed=5)
    n = len(gain)
    assumed = P.nominal_spacing
    grid_a = diff.grid_steering(torch.as_tensor(assumed), P)
    batch = TrainingBatch(frames, np.full(n, lo), np.full(n, hi), {"theta": frames.theta, "range": frames.ranges})
    search = learner_search(assumed, P)
    offline = training_window(batch, torch.as_tensor(gain), grid_a, search, basis, P)
    sectors = np.tile([lo, hi, P.range_min_m, P.range_max_m], (n, 1))
    online = projected_window(frames.combine(gain), sectors, search, grid_a, basis, P)
    for a, b in zip(offline.peak[1:], online.peak[1:]):
        np.testing.assert_array_equal(a, b)
    for a, b in ((offline.rows, online.rows), (offline.cols, online.cols), (offline.valid, online.valid)):
        assert torch.equal(a, b)
    np.testing.assert_allclose(offline.values.numpy(), online.values.numpy(), rtol=1e-5,
                               atol=1e-5 * float(online.values.max()))
    ul = [w.unsupervised_loss().item() for w in (offline, online)]
    sl = [w.supervised_loss(frames.theta, frames.ranges, P).item() for w in (offline, online)]
    assert ul[0] == pytest.approx(ul[1], rel=1e-5) and sl[0] == pytest.approx(sl[1], rel=1e-4)
    half = online[np.arange(n) < n // 2]  # the windows of some of the frames
    assert half.values.shape[0] == n // 2 and torch.equal(half.values, online.values[:n // 2])
    assert np.array_equal(half.peak.j_hat, online.peak.j_hat[:n // 2])
