"""Online learning of d: the per-frame semi-supervised loss, the learner thread beside the stream
(publishing, joining, errors), the synchronous mode's reproducibility, the script's arguments,
convergence."""

import importlib.util
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from isacblocks import SystemParams
from isacblocks.core import WORK_DONE, Flowgraph, MessageCollector, NullSink, SourceBlock
from isacblocks.errors import BlockError

torch = pytest.importorskip("torch")

from isacblocks.learning.online import OnlineSpacingTrainer, ReplayBuffer  # noqa: E402
from isacblocks.learning.transceiver import online_flowgraph, run_online_stream  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
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
    known-spacing 95 % interval (10 000 frames per hypothesis).  Synchronous, so that the result
    does not depend on the machine's speed; the asynchronous runs are in docs/online-learning.md."""
    out = tmp_path / "d.npy"
    result = subprocess.run([sys.executable, str(SCRIPT), "--frames", "20000", "--labelled", "0", "--out", str(out),
                             "--curve-points", "1", "--synchronous"], capture_output=True, text=True, cwd=ROOT,
                            timeout=3600)
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
        _, _, trainer = module.build(params, ula, args)
        assert trainer.transmit_gradient is expected


def test_script_options_choose_the_learner():
    module = _script()
    params = SystemParams()
    ula = module.true_array(params, 0, None)
    for argv, asynchronous in (([], True), (["--synchronous"], False)):
        fg, _, trainer = module.build(params, ula, module.parse_args(["--frames", "2000", *argv]))
        assert trainer.asynchronous is asynchronous and fg.scheduler == "single"
    fg, _, trainer = module.build(params, ula, module.parse_args(["--frames", "2000", "--no-learner",
                                                                   "--scheduler", "threaded"]))
    assert trainer is None and fg.scheduler == "threaded"


# ---------------------------------------------------------------------- the learner beside the stream
SMALL = SystemParams(n_antennas=16, n_subcarriers=64, n_angle_grid=180, n_range_grid=50)


def _noise_frames(params, n, seed=0):
    """Target-free full frames (n, K, S) complex64 and one broadside sector per frame (n, 4)."""
    rng = np.random.default_rng(seed)
    shape = (n, params.n_antennas, params.n_subcarriers)
    frames = ((rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / np.sqrt(2)).astype(np.complex64)
    sectors = np.tile([-0.3, 0.3, params.range_min_m, params.range_max_m], (n, 1))
    return frames, sectors


def _eager_trainer(params, **options):
    """A trainer that steps on any frame: threshold 0, the gate open, small steps."""
    return OnlineSpacingTrainer(params, threshold=0.0, gate_start_deg=90.0, gate_end_deg=90.0, gate_frames=0,
                                step_frames=32, min_step_frames=32, seed=0, **options)


class _Feeder(SourceBlock):
    """Full frames with ``sector`` tags: the first `first` of them, then (waiting up to `patience`
    seconds until ``until()`` holds) the rest; then the end of the stream."""

    def __init__(self, frames, sectors, until, first=None, patience=120.0):
        super().__init__(out_sig=[("Y_tilde", np.complex64, frames.shape[1:])], name="feeder")
        self.frames, self.sectors, self.until, self.patience = frames, sectors, until, patience
        self.first = len(frames) if first is None else first

    def start(self):
        super().start()
        self.deadline = time.monotonic() + self.patience
        self.released = False

    def work(self, inputs, outputs):
        sent = self.nitems_written(0)
        if sent == self.first and not self.released:
            if not self.until() and time.monotonic() < self.deadline:
                self.sleep(0.002)
                return 0
            self.released = True
        end = len(self.frames) if self.released else self.first
        if sent >= end:
            return WORK_DONE
        n = min(len(outputs[0]), end - sent)
        outputs[0][:n] = self.frames[sent:sent + n]
        for i in range(n):
            self.add_tag(0, sent + i, "sector", tuple(self.sectors[sent + i]))
        return n


def _learner_threads(trainer) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"isacblocks-{trainer.name}-learner"]


@pytest.mark.parametrize("scheduler", ["single", "threaded"])
def test_asynchronous_learner_publishes_to_its_subscribers(scheduler):
    """Steps taken on the learner thread reach the subscribers of port ``spacing`` (a collector and
    an MB-ML estimator, as in the online flowgraph) while the stream runs; the thread is gone after."""
    from isacblocks.blocks import MBMLEstimator

    frames, sectors = _noise_frames(SMALL, 256)
    trainer = _eager_trainer(SMALL)
    collector = MessageCollector(name="published")
    estimator = MBMLEstimator(SMALL)

    def received() -> bool:
        return len(collector.messages) >= 3 and not np.array_equal(estimator.spacing, SMALL.nominal_spacing)

    feeder = _Feeder(frames, sectors, until=received, first=len(frames) - 64)
    fg = Flowgraph(scheduler=scheduler)
    fg.connect(feeder, trainer)
    fg.connect(feeder, estimator, NullSink(np.float64, 3))
    fg.msg_connect(trainer, "spacing", collector, "in")
    fg.msg_connect(trainer, "spacing", estimator, "spacing")
    fg.run()

    published = [u["spacing"] for u in trainer.updates]
    assert received() and len(published) >= 3
    assert all(m is p for m, p in zip(collector.messages, published))  # in order, as published
    assert any(np.array_equal(estimator.spacing, p) for p in published)
    assert not np.array_equal(published[-1], SMALL.nominal_spacing)
    assert trainer.asynchronous and _learner_threads(trainer) == []


def test_stop_joins_the_learner_thread():
    frames, sectors = _noise_frames(SMALL, 64)
    trainer = _eager_trainer(SMALL, name="joined_trainer")
    trainer.start()
    assert len(_learner_threads(trainer)) == 1
    trainer.receive(frames @ trainer.basis.g.astype(np.complex64), sectors, np.full((64, 2), np.nan))
    assert trainer.wait_idle(timeout=120)
    assert len(trainer.updates) >= 1
    trainer.stop()
    assert _learner_threads(trainer) == []
    trainer.stop()  # a second stop has nothing to join


def test_receive_needs_a_running_learner():
    frames, sectors = _noise_frames(SMALL, 4)
    trainer = _eager_trainer(SMALL, name="not_started")
    with pytest.raises(BlockError, match="'not_started'.*call start"):
        trainer.receive(frames @ trainer.basis.g.astype(np.complex64), sectors, np.full((4, 2), np.nan))


def _failing_loss(*args):
    raise RuntimeError("the learner failed")


def test_learner_exception_is_raised_by_the_next_work_naming_the_block():
    """The learner dies on its first step; the frames that reach work() afterwards raise a
    BlockError naming the trainer, and the flowgraph stops with it."""
    frames, sectors = _noise_frames(SMALL, 192)
    trainer = _eager_trainer(SMALL, name="failing_trainer")
    trainer.loss = _failing_loss
    threads = []
    start = trainer.start

    def start_and_note_the_thread():
        start()
        threads.extend(_learner_threads(trainer))

    trainer.start = start_and_note_the_thread
    fg = Flowgraph(scheduler="single")
    fg.connect(_Feeder(frames, sectors, until=lambda: not threads[0].is_alive(), first=128), trainer)
    with pytest.raises(BlockError, match="'failing_trainer'.*RuntimeError: the learner failed") as info:
        fg.run()
    assert "work" in [entry.name for entry in info.traceback]  # raised there, not at stop()
    assert len(threads) == 1 and _learner_threads(trainer) == []


def test_learner_exception_is_raised_by_stop_naming_the_block():
    frames, sectors = _noise_frames(SMALL, 64)
    trainer = _eager_trainer(SMALL, name="failing_at_stop")
    trainer.loss = _failing_loss
    trainer.start()
    trainer.receive(frames @ trainer.basis.g.astype(np.complex64), sectors, np.full((64, 2), np.nan))
    deadline = time.monotonic() + 120
    while _learner_threads(trainer) and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(BlockError, match="'failing_at_stop'.*its learner thread raised RuntimeError"):
        trainer.stop()
    assert _learner_threads(trainer) == []
    trainer.stop()  # reported once


def test_synchronous_mode_is_bit_reproducible():
    """The online flowgraph with the synchronous learner, run twice from one seed: the same steps,
    losses, published spacings and stream statistics, bit for bit."""
    from isacblocks.blocks import true_array

    ula = true_array(SMALL, 3, None)
    runs = []
    for _ in range(2):
        fg, metrics, trainer = online_flowgraph(SMALL, ula, 768, seed=3, asynchronous=False, step_frames=64,
                                                min_step_frames=32, gate_frames=384)
        fg.run()
        runs.append((trainer.updates, metrics.records))
    (updates_a, records_a), (updates_b, records_b) = runs
    assert len(updates_a) > 10
    assert [u["loss"] for u in updates_a] == [u["loss"] for u in updates_b]
    assert all(np.array_equal(a["spacing"], b["spacing"]) for a, b in zip(updates_a, updates_b))
    assert np.array_equal(records_a, records_b, equal_nan=True)  # NaN: the H0 frames have no truth


def test_asynchronous_learning_with_a_small_array_reduces_the_position_error():
    """K = 16 elements, unlabelled frames through the true array with the precoder of the latest
    published spacing (what the beamformer sends), fed at the learner's pace (`wait_idle`): the
    element-position error falls well below its lambda/2 value."""
    from isacblocks.blocks import true_array
    from isacblocks.dsp.impairments import array_steering
    from isacblocks.dsp.precoder import ls_solution, sector_beampattern
    from isacblocks.dsp.scenario import training_sectors
    from isacblocks.dsp.spacing import spacing_errors
    from isacblocks.dsp.steering import array_gain
    from isacblocks.sim.montecarlo import draw_projected_frames

    p = SMALL
    ula = true_array(p, 0, None)
    trainer = OnlineSpacingTrainer(p, batch_size=64, steps_per_batch=4, step_frames=64, min_step_frames=32,
                                   gate_frames=1280, seed=0)
    rng = np.random.default_rng(5)
    n = 64
    trainer.start()
    try:
        for _ in range(40):
            lo, hi = training_sectors(rng, p, n)
            frames = draw_projected_frames(rng, p, ula.spacing, trainer.basis, lo, hi, n, present=rng.random(n) < 0.5)
            precoders = ls_solution(array_steering(p.angle_grid, trainer.spacing, p.wavelength).T,
                                    sector_beampattern(lo, hi, p).T).T
            gain = array_gain(array_steering(frames.theta, ula.spacing, p.wavelength).T, precoders)
            sectors = np.stack([lo, hi, np.full(n, p.range_min_m), np.full(n, p.range_max_m)], axis=1)
            trainer.receive(frames.combine(gain), sectors, np.full((n, 2), np.nan))
            assert trainer.wait_idle(timeout=120)
    finally:
        trainer.stop()
    start = spacing_errors(p.nominal_spacing, ula.spacing)["position_error_mm"]
    end = spacing_errors(trainer.spacing, ula.spacing)["position_error_mm"]
    assert len(trainer.updates) >= 100
    assert end < 0.5 * start, (start, end)


def test_replay_buffer_keeps_the_latest_frames_in_order():
    buffer = ReplayBuffer(5, (1, 1))
    for start, n in ((0, 3), (3, 4), (7, 9)):
        values = np.arange(start, start + n)
        buffer.add(values.reshape(n, 1, 1).astype(np.complex64), np.tile(values[:, None], (1, 4)),
                   np.full((n, 2), np.nan), values.astype(float))
    assert buffer.size == 5
    assert sorted(buffer.angle) == [11, 12, 13, 14, 15]
    assert np.array_equal(buffer.data[:, 0, 0].real, buffer.angle) and np.array_equal(buffer.sector[:, 0], buffer.angle)
    assert buffer.angle[(buffer._next - 1) % 5] == 15  # the next write replaces the oldest


def test_asynchronous_must_be_a_bool():
    from isacblocks.errors import ConfigError

    with pytest.raises(ConfigError, match="asynchronous = 'yes': expected True or False"):
        OnlineSpacingTrainer(SMALL, threshold=0.0, asynchronous="yes")


@pytest.mark.parametrize("learner", [False, True])
def test_run_online_stream_reports_the_rate(learner):
    result = run_online_stream(256, learner=learner, seed=0, params=SMALL, min_step_frames=32, step_frames=32)
    assert result["frames"] == 256 and result["learner"] is learner
    assert result["seconds"] > 0 and result["frames_per_s"] == pytest.approx(256 / result["seconds"])
    assert result["spacing"].shape == (SMALL.n_antennas,) and result["position_error_mm"] > 0
    if not learner:
        assert result["steps"] == 0 and result["asynchronous"] is None


def test_batch_solved_precoders_match_the_per_sector_ones():
    """The online flowgraph's beamformer solves each call's sectors together (`batch_solve`)."""
    from isacblocks.blocks import SectorBeamformer
    from isacblocks.core import run_block
    from isacblocks.dsp.scenario import training_sectors
    from isacblocks.errors import ConfigError

    p = SystemParams()
    lo, hi = training_sectors(np.random.default_rng(0), p, 100)
    sectors = np.stack([lo, hi, np.full(100, p.range_min_m), np.full(100, p.range_max_m)], axis=1)
    spacing = p.nominal_spacing * (1 + 0.02 * np.random.default_rng(1).standard_normal(p.n_antennas))
    one = run_block(SectorBeamformer(p, spacing), [sectors]).outputs[0]
    together = run_block(SectorBeamformer(p, spacing, batch_solve=True), [sectors]).outputs[0]
    np.testing.assert_allclose(together, one, rtol=0, atol=1e-6)
    bad = sectors.copy()
    bad[3, :2] = 0.5, 0.1
    with pytest.raises(BlockError, match="theta_min = 0.5 must be < theta_max = 0.1"):
        run_block(SectorBeamformer(p, batch_solve=True), [bad])
    with pytest.raises(ConfigError, match="batch_solve = 1: expected True or False"):
        SectorBeamformer(p, batch_solve=1)
