"""The training step's fast path: the factored-frame kernel and the batches drawn ahead.

* `mbml_peak_factored` forms ``C = scale a d^T + N`` inside the kernel; it must find the
  same peak as `mbml_peak_projected` on the frames formed in numpy, and its window columns
  must equal ``N V[:, cols]`` and ``d V[:, cols]`` computed in float64.
"""

import numpy as np
import pytest

from isacblocks import SystemParams
from isacblocks.dsp import draw_spacing
from isacblocks.dsp.mbml import mbml_peak_factored, mbml_peak_projected, range_factors, window_indices
from isacblocks.errors import ShapeError
from isacblocks.sim.montecarlo import ProjectedBasis, draw_projected_frames

P = SystemParams()


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(4)
    true_spacing = draw_spacing(rng, P)
    basis = ProjectedBasis.for_params(P)
    centres = rng.uniform(-1.0, 1.0, 96)
    theta_min, theta_max = centres - 0.12, centres + 0.12
    present = rng.random(96) < 0.8
    frames = draw_projected_frames(rng, P, true_spacing, basis, theta_min, theta_max, 96, present=present)
    gain = rng.standard_normal(96) + 1j * rng.standard_normal(96)
    assumed = P.nominal_spacing * (1 + 0.01 * rng.standard_normal(P.n_antennas))
    return frames, gain, theta_min, theta_max, assumed


def test_factored_kernel_finds_the_peak_of_the_formed_frames(batch):
    frames, gain, theta_min, theta_max, assumed = batch
    ref = mbml_peak_projected(frames.combine(gain), theta_min, theta_max, P.range_min_m, P.range_max_m, assumed, P)
    scale = (frames.amplitude * gain).astype(np.complex64)
    peak, _, _ = mbml_peak_factored(frames.noise, frames.steering, scale, frames.delay, theta_min, theta_max,
                                    P.range_min_m, P.range_max_m, assumed, P)
    np.testing.assert_array_equal(peak.i_hat, ref.i_hat)
    np.testing.assert_array_equal(peak.j_hat, ref.j_hat)
    np.testing.assert_allclose(peak.statistic, ref.statistic, rtol=1e-6)


def test_factored_kernel_window_columns_equal_the_float64_synthesis(batch):
    frames, gain, theta_min, theta_max, assumed = batch
    scale = (frames.amplitude * gain).astype(np.complex64)
    half = P.window_half_range
    peak, noise_cols, delay_cols = mbml_peak_factored(frames.noise, frames.steering, scale, frames.delay, theta_min,
                                                      theta_max, P.range_min_m, P.range_max_m, assumed, P,
                                                      window_cols=half)
    _, cols, _, _ = window_indices(peak.i_hat, peak.j_hat, P)  # clipped to the grid, as the kernel clips
    v = range_factors(P)[2]
    synth = v[:, cols].transpose(1, 0, 2)  # (B, r, 2 half + 1)
    expect_noise = np.einsum("bkr,brc->bkc", frames.noise.astype(np.complex128), synth)
    expect_delay = np.einsum("br,brc->bc", frames.delay.astype(np.complex128), synth)
    assert noise_cols.shape == (len(cols), P.n_antennas, 2 * half + 1)
    np.testing.assert_allclose(noise_cols, expect_noise, rtol=0, atol=1e-5 * np.abs(expect_noise).max())
    np.testing.assert_allclose(delay_cols, expect_delay, rtol=0, atol=1e-5 * np.abs(expect_delay).max())


def test_factored_kernel_names_a_factor_of_the_wrong_shape(batch):
    frames, gain, theta_min, theta_max, assumed = batch
    with pytest.raises(ShapeError, match="steering must have shape"):
        mbml_peak_factored(frames.noise, frames.steering[:, :5], gain, frames.delay, theta_min, theta_max,
                           P.range_min_m, P.range_max_m, assumed, P)


# ------------------------------------------------------------- frames made on the training device
def test_frames_made_on_the_device_give_the_host_paths_loss_and_gradient():
    """`TrainConfig(frames="device")` (the CUDA default) forms ``C`` and the window columns in
    torch; on the same noise the host path (the fused CPU kernel) gives the same loss and
    gradient to float32 rounding.  Run here on torch's CPU device."""
    import dataclasses

    from isacblocks.learning.batches import TrainingBatch
    from isacblocks.learning.trainer import TrainConfig, Trainer

    true_spacing = draw_spacing(np.random.default_rng(8), P)
    trainer = Trainer(P, true_spacing, TrainConfig(schedule="ul", iterations=1, batch_size=48, frames="device",
                                                   progress=False, seed=2))
    batch = trainer.draw_batch(labelled=True)
    assert batch.device_noise is not None and batch.frames.noise is None
    host = TrainingBatch(dataclasses.replace(batch.frames, noise=batch.device_noise.numpy()), batch.theta_min,
                         batch.theta_max, batch.labels)
    for kind in ("ul", "sl"):
        results = []
        for b in (batch, host):
            trainer.optimizer.zero_grad()
            loss = trainer.loss(b, kind)
            loss.backward()
            results.append((float(loss.detach()), trainer.model.u.grad.clone()))
        (loss_device, grad_device), (loss_host, grad_host) = results
        assert loss_device == pytest.approx(loss_host, rel=1e-6)
        assert float((grad_device - grad_host).norm() / grad_host.norm()) < 1e-4


def test_device_noise_is_circular_gaussian_with_the_range_factors_power():
    from isacblocks.learning.noise import device_noise

    basis = ProjectedBasis.for_params(P)
    noise = device_noise(5, (200, P.n_antennas, basis.rank), 2.0, basis.sigma, "cpu").numpy().astype(np.complex128)
    white = noise / basis.sigma  # CN(0, 2) each
    n = white.size  # 793 600 samples
    assert abs(np.mean(np.abs(white) ** 2) / 2.0 - 1) < 5 / np.sqrt(n)  # var of |x|^2/N0 is 1
    assert abs(np.mean(white ** 2)) / 2.0 < 5 / np.sqrt(n)  # circular: E[x^2] = 0
    assert abs(np.mean(white.real * white.imag)) < 5 / np.sqrt(n)
    again = device_noise(5, (200, P.n_antennas, basis.rank), 2.0, basis.sigma, "cpu").numpy()
    assert np.array_equal(again, noise.astype(np.complex64))


def test_frames_option_is_validated():
    from isacblocks.errors import ConfigError
    from isacblocks.learning.config import TrainConfig

    assert TrainConfig(device="cpu").frames_on_device is False
    assert TrainConfig(device="cpu", frames="device").frames_on_device is True
    with pytest.raises(ConfigError, match="TrainConfig.frames = 'gpu': must be 'auto', 'host' or 'device'"):
        TrainConfig(frames="gpu")


def _batch_arrays(batch):
    f = batch.frames
    return [batch.theta_min, batch.theta_max, f.noise, f.steering, f.delay, f.amplitude, f.theta, f.ranges]


def test_batches_drawn_ahead_are_the_batches_drawn_in_order():
    """Trainer.step draws the next iteration's batch on a background thread: the batch each
    step uses, and the generator state a checkpoint keeps, are those of drawing in order."""
    from isacblocks.learning.trainer import TrainConfig, Trainer

    spacing = draw_spacing(np.random.default_rng(1), P)
    config = TrainConfig(schedule="ul", iterations=50, batch_size=8, seed=5, progress=False)
    stepped, in_order = Trainer(P, spacing, config), Trainer(P, spacing, config)
    used = []
    original = stepped.loss
    stepped.loss = lambda batch, kind: (used.append(batch), original(batch, kind))[1]
    for _ in range(3):
        stepped.step()
    ahead = stepped.batches.ahead
    assert ahead is not None and ahead.iteration == 3  # the fourth batch is under way
    for batch in used:
        for got, expect in zip(_batch_arrays(batch), _batch_arrays(in_order.draw_batch(labelled=False))):
            np.testing.assert_array_equal(got, expect)
        assert batch.labels is None
    assert stepped.state_dict()["rng"] == in_order.batches.rng.bit_generator.state
    # draw_batch forgets the batch drawn ahead and draws it again from the same state
    for got, expect in zip(_batch_arrays(stepped.draw_batch(labelled=True)),
                           _batch_arrays(in_order.draw_batch(labelled=True))):
        np.testing.assert_array_equal(got, expect)
    assert stepped.batches.ahead is None


def test_the_last_iteration_draws_nothing_ahead():
    from isacblocks.learning.trainer import TrainConfig, Trainer

    spacing = draw_spacing(np.random.default_rng(1), P)
    trainer = Trainer(P, spacing, TrainConfig(schedule="ul", iterations=2, batch_size=8, seed=5, progress=False))
    trainer.run()
    assert trainer.iteration == 2 and trainer.batches.ahead is None


def test_one_blas_thread_holds_until_the_last_thread_inside_leaves():
    """The BLAS thread count is one setting per process.  A batch drawn on the background
    thread must stay on one BLAS thread while the step's thread enters and leaves its own
    `one_blas_thread` (a product on one thread and on two can differ in its last bit: that
    made batches drawn ahead differ from batches drawn in order under load)."""
    import threading

    from threadpoolctl import threadpool_info

    from isacblocks.dsp.blas_threads import one_blas_thread

    def blas_threads() -> set[int]:
        return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}

    before = blas_threads()
    inside, leave = threading.Event(), threading.Event()

    def background():
        with one_blas_thread():
            inside.set()
            leave.wait(10)

    worker = threading.Thread(target=background)
    worker.start()
    assert inside.wait(10)
    with one_blas_thread():
        assert blas_threads() == {1}
    assert blas_threads() == {1}  # the background thread is still inside
    leave.set()
    worker.join(10)
    assert blas_threads() == before
