"""Online learning of ``d`` inside a running flowgraph (beyond the paper).

`OnlineSpacingTrainer` is a sink: it consumes reciprocal-filtered frames, keeps the
recent ones in a replay buffer, and takes Adam steps on ``d``, each on frames drawn from
the buffer; it publishes each new ``d`` on its message port ``spacing`` (connect it to
the estimator's and the beamformer's ``spacing`` ports).

Two ways to run the learner:

* **Asynchronous** (the default): the learner is a thread of its own, started in the
  block's `start()` and joined in its `stop()`.  work() only projects the frames, finds
  the angle the gate needs (the MB-ML estimate with the latest published ``d``) and stores
  them in the replay buffer under a lock; it never waits for a learning step.  The learner
  draws its batches from the buffer under the same lock and learns on the copies, beside
  the stream (torch, numpy's BLAS and the Numba kernels release the GIL).  It takes at most
  `steps_per_batch` steps per `batch_size` frames received (the synchronous mode's count);
  when it is slower than the stream it takes fewer, never holding the stream back.  An
  exception in the learner is raised as a `BlockError` naming the block at the next work()
  or at stop().  What is reproducible: the seed fixes the stream (frames, targets, sectors)
  and the learner's own generator (which frames it picks, given what the buffer holds).
  What is not: when each step starts, hence which frames the buffer holds then, the angle
  gate's width at that moment, how many steps are taken, and at which frame each new ``d``
  reaches the estimator and the beamformer -- all depend on the relative speed of the
  stream and the learner, i.e. on the machine and its load.
* **Synchronous** (``asynchronous=False``): after every `batch_size` received frames,
  work() itself takes `steps_per_batch` steps before it returns; the stream waits for the
  learner.  Bit-reproducible for a seed (the tests that need that use it) when the flowgraph
  runs on the "single" scheduler (`learning.transceiver.online_flowgraph`'s default): with a thread per block, the
  frame at which the beamformer takes up a new ``d`` depends on timing.

`isacblocks.learning.transceiver.online_flowgraph` builds the online-learning transceiver of
``flowgraphs/online_ssl.py`` and `run_online_stream` runs it, with or without the learner,
and reports its rate.

Loss, per frame (semi-supervised): a frame that carries label tags (``theta``,
``range``) gives its supervised term (eq. 20), any other frame its unsupervised term
(eq. 21), provided its statistic crosses the detection threshold (without labels nobody
knows which frames hold a target; below the threshold the map peak is noise).  The step
minimises the mean of these terms over the used frames.

Angle gate (the sector curriculum, online): an element's position error e becomes the
phase ``2 pi e sin(theta) / lambda``, which wraps; far from broadside the outer elements
get stuck in side lobes of the objective.  So a frame is used only when its angle --
the label where there is one, else the MB-ML estimate at arrival -- satisfies
``|theta| <= g(n)``, with ``g`` growing linearly from `gate_start_deg` to `gate_end_deg`
over the first `gate_frames` received frames.  The source's sectors are whatever it
draws; the gate selects.

Transmit side: a streamed frame was already sent with the precoder in force, and the true
transmit gain ``a_tx(theta)^T f(d)`` (eq. 1) is unknown; but the array is monostatic, so the
frame's snapshot ``v`` at the estimated range is ``a_tx(theta)`` up to a scalar (eq. 7).  With
`transmit_gradient` an unlabelled frame's map window is multiplied by
``|v^T f(d)| / |v^T f(d)|`` (value 1, the denominator held constant): the gradient then
flows, as in the offline trainer, through the LS precoder of the frame's sector (eq. 5-6)
as well as through the receiver.  The receiver alone cannot see a common scaling of the
element positions (it only moves the peak in ``sin theta``); the precoder can.  The
beamformer follows the learned ``d`` through its message port.  Frames are stored
range-projected (``Y~ G``, K x r complex64, about 29 kB each at K = 64): `replay` frames
at most, the oldest dropped first.
"""

from __future__ import annotations

import threading
import time

import numba
import numpy as np
import torch

from ..blocks.items import required_tags
from ..core import SinkBlock
from ..dsp.angle_delay import RangeProjectedFrames
from ..dsp.detection import threshold_at_pfa
from ..dsp.mbml import estimate
from ..dsp.steering import array_gain, range_steering
from ..errors import BlockError, ConfigError
from ..sim.montecarlo import ProjectedBasis, draw_projected_frames
from ..validation import check_int, check_real
from . import differentiable as diff
from .model import SpacingModel
from .window import learner_search, projected_window


class ReplayBuffer:
    """The last `capacity` frames: projected data (K, r), sector (4,), label (theta, range) or NaN,
    and the angle used by the gate.  Not locked itself: the trainer holds its lock around it."""

    def __init__(self, capacity: int, shape: tuple[int, int]):
        self.capacity = capacity
        self.data = np.empty((capacity, *shape), dtype=np.complex64)
        self.sector = np.empty((capacity, 4))
        self.label = np.full((capacity, 2), np.nan)
        self.angle = np.empty(capacity)
        self.size = 0
        self._next = 0

    def add(self, data, sector, label, angle) -> None:
        """Append frames in order; once full, each overwrites the oldest."""
        n = len(data)
        first = max(0, n - self.capacity)  # older ones would be overwritten within this call
        slots = (self._next + np.arange(first, n)) % self.capacity
        self.data[slots], self.sector[slots] = data[first:], sector[first:]
        self.label[slots], self.angle[slots] = label[first:], angle[first:]
        self._next = (self._next + n) % self.capacity
        self.size = min(self.size + n, self.capacity)


class OnlineSpacingTrainer(SinkBlock):
    """Learns ``d`` from the frames it sees; publishes each update on message port ``spacing``.

    Parameters: `steps_per_batch` Adam steps per `batch_size` received frames (synchronous: taken
    after every `batch_size` frames; asynchronous: at most that many), each on `step_frames` frames
    drawn from the replay buffer (only frames inside the angle gate, and only once `min_step_frames`
    of them are stored); `replay` frames kept; `lr` (Adam step in metres); the gate
    ``|theta| <= g`` with ``g`` from `gate_start_deg` to `gate_end_deg` over `gate_frames`
    received frames (``gate_frames=0``: ``g = gate_end_deg`` from the start); `threshold` for the
    unlabelled frames (default: the ``params.pfa`` threshold of target-free frames, estimated at
    start-up from 4 000 simulated noise frames); `transmit_gradient`: the unlabelled frames'
    gradient also through the transmit precoder (module docstring); `asynchronous`: the learner
    in a thread beside the stream (default) or inside work() (module docstring).

    `updates` holds one record per step: ``frames_received`` when its batch was drawn,
    ``frames_published`` when its ``d`` was published, ``time_s`` (seconds since `start()`),
    frames ``used``, ``labelled``, ``gate_deg``, ``loss`` and the new ``spacing``.

    Input
    -----
    Y_tilde : [n, K, S], complex64
        The reciprocal-filtered frames (eq. 7), tagged ``sector`` (and ``theta``, ``range`` if labelled).

    Messages
    --------
    spacing (out)
        Each learned ``d`` (a (K,) array in m), after every Adam step.
    """

    def __init__(self, params, init_spacing=None, batch_size: int = 128, lr: float = 6.25e-6,
                 steps_per_batch: int = 8, step_frames: int = 128, min_step_frames: int = 128, replay: int = 4096,
                 gate_start_deg: float = 15.0, gate_end_deg: float = 70.0, gate_frames: int = 15000,
                 threshold: float | None = None, transmit_gradient: bool = True, asynchronous: bool = True,
                 seed=0, name=None):
        k, s = params.n_antennas, params.n_subcarriers
        super().__init__(in_sig=[("Y_tilde", np.complex64, (k, s))], name=name)
        self.params = params
        lr = check_real(self.name, "lr", lr, 0.0, low_open=True)
        self.lr = lr
        self.batch_size = check_int(self.name, "batch_size", batch_size, 1)
        self.steps_per_batch = check_int(self.name, "steps_per_batch", steps_per_batch, 1)
        self.step_frames = check_int(self.name, "step_frames", step_frames, 1)
        self.min_step_frames = check_int(self.name, "min_step_frames", min_step_frames, 1)
        replay = check_int(self.name, "replay", replay, 1)
        if replay < self.batch_size:
            raise ConfigError(f"{self.name}: replay = {replay}: the buffer must hold at least one batch "
                              f"(batch_size = {self.batch_size}) frames")
        self.gate_start_deg = check_real(self.name, "gate_start_deg", gate_start_deg, 0.0, 90.0)
        self.gate_end_deg = check_real(self.name, "gate_end_deg", gate_end_deg, self.gate_start_deg, 90.0)
        self.gate_frames = check_int(self.name, "gate_frames", gate_frames, 0)
        if threshold is not None:
            threshold = check_real(self.name, "threshold", threshold, 0.0)
        for field, value in (("transmit_gradient", transmit_gradient), ("asynchronous", asynchronous)):
            if not isinstance(value, bool):
                raise ConfigError(f"{self.name}: {field} = {value!r}: expected True or False")
        self.transmit_gradient = transmit_gradient
        self.asynchronous = asynchronous
        self.model = SpacingModel(params, init_spacing)
        # the map searches: the stream's (the published d: threshold and gate) and the learner's (its current d)
        self._stream_search = learner_search(self.model.spacing_numpy(), params, owner=self.name)
        self._learner_search = learner_search(self.model.spacing_numpy(), params, owner=self.name)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr / self.model.scale)
        self.basis = ProjectedBasis.for_params(params)
        self._g = self.basis.g.astype(np.complex64)
        # v_n = C w(R_j): the snapshot weights of projected frames at every grid range (`_snapshots`)
        rho = range_steering(params.range_grid, params)  # (S, N_tau)
        self._snapshot_weights = ((self.basis.g.conj().T @ rho.conj()) / (self.basis.sigma ** 2)[:, None]
                                  / params.n_subcarriers).T.astype(np.complex64)  # (N_tau, r), as the frames
        self.threshold = threshold if threshold is not None else self._noise_threshold(seed)
        self.buffer = ReplayBuffer(replay, (k, self.basis.rank))
        self._rng = np.random.default_rng(seed)
        self.message_port_register_out("spacing")
        self._pending: list[tuple] = []
        self.frames_received = 0
        self.updates: list[dict] = []
        self._spacing = self.model.spacing_numpy()  # the latest published d (read by work() for the gate)
        # the learner thread and its hand-off (asynchronous mode)
        self._lock = threading.Condition()  # guards the buffer and the frame counts; notified on new frames
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._error_raised = False
        self._idle = True  # the learner has no step to take (`wait_idle`)
        self._t0 = time.perf_counter()
        self._run_frames = 0  # frames received since start()
        self._run_steps = 0  # learning steps taken (or tried) since start()

    def _noise_threshold(self, seed) -> float:
        p = self.params
        rng = np.random.default_rng(seed)
        frames = draw_projected_frames(rng, p, p.nominal_spacing, self.basis, *p.test_sector, 4000,
                                       present=np.zeros(4000, dtype=bool))
        stat, _, _ = estimate(self._stream_search, RangeProjectedFrames(frames.combine(np.zeros(4000))), *p.test_sector,
                              p.range_min_m, p.range_max_m, owner=self.name)
        return threshold_at_pfa(stat, p.pfa)

    def gate_deg(self, frames_received: int | None = None) -> float:
        """The angle gate ``g`` (degrees) after `frames_received` frames (default: those received so far)."""
        if self.gate_frames == 0:
            return self.gate_end_deg
        n = self.frames_received if frames_received is None else frames_received
        fraction = min(n / self.gate_frames, 1.0)
        return self.gate_start_deg + (self.gate_end_deg - self.gate_start_deg) * fraction

    @property
    def spacing(self) -> np.ndarray:
        """The latest ``d`` published (the initial one before the first step)."""
        return self._spacing

    # ------------------------------------------------------------------ run
    def start(self) -> None:
        """Start a run; in the asynchronous mode, start the learner thread."""
        super().start()
        self._stop_learner()
        self._t0 = time.perf_counter()
        self._run_frames = self._run_steps = 0
        self._error, self._error_raised = None, False
        if self.asynchronous:
            self._halt.clear()
            self._idle = False
            self._thread = threading.Thread(target=self._learner, name=f"isacblocks-{self.name}-learner", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """End a run: the learner finishes the step it is in, its thread is joined, and an
        exception it raised that no work() reported yet is raised here."""
        self._stop_learner()
        self._raise_learner_error()

    def _stop_learner(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            with self._lock:
                self._halt.set()
                self._lock.notify_all()
            thread.join()

    def _raise_learner_error(self) -> None:
        error = self._error
        if error is not None and not self._error_raised:
            self._error_raised = True
            raise BlockError(f"block {self.name!r} ({type(self).__name__}): its learner thread raised "
                             f"{type(error).__name__}: {error}") from error

    # ------------------------------------------------------------------ stream
    def work(self, inputs, outputs):
        self._raise_learner_error()
        frames = inputs[0]
        n, k, s = frames.shape
        sectors = np.asarray(required_tags(self, 0, n, "sector"), dtype=np.float64)
        theta = self.frame_tags(0, n, "theta")
        ranges = self.frame_tags(0, n, "range")
        labels = np.array([(t, r) if t is not None and r is not None else (np.nan, np.nan)
                           for t, r in zip(theta, ranges)], dtype=np.float64).reshape(n, 2)
        projected = (frames.reshape(n * k, s) @ self._g).reshape(n, k, -1)  # Y~ G, (n, K, r)
        self.receive(projected, sectors, labels)
        return n

    def receive(self, projected: np.ndarray, sectors: np.ndarray, labels: np.ndarray) -> None:
        """Take in range-projected frames (n, K, r), their sectors (n, 4) and labels (n, 2)
        (NaN where unlabelled).  Synchronous: learn once per `batch_size` frames, here.
        Asynchronous: store them for the learner thread (running between `start()` and `stop()`)."""
        if not self.asynchronous:
            for i in range(len(projected)):
                self._pending.append((projected[i], sectors[i], labels[i]))
            while len(self._pending) >= self.batch_size:
                batch, self._pending = self._pending[:self.batch_size], self._pending[self.batch_size:]
                self._store(*[np.stack(part) for part in zip(*batch)])
                for _ in range(self.steps_per_batch):
                    self._step()
            return
        self._raise_learner_error()
        if self._thread is None:
            raise BlockError(f"block {self.name!r} ({type(self).__name__}): its asynchronous learner is not "
                             "running: call start() first (or use asynchronous=False)")
        self._store(projected, sectors, labels)

    def _store(self, projected, sectors, labels) -> None:
        """Keep the labelled frames and the unlabelled ones that cross the threshold, with the
        angle the gate uses: the label, else the MB-ML estimate with the latest published ``d``."""
        stat, theta_hat, _ = estimate(self._stream_search, RangeProjectedFrames(projected), sectors[:, 0],
                                      sectors[:, 1], sectors[:, 2], sectors[:, 3], owner=self.name)
        labelled = ~np.isnan(labels[:, 0])
        keep = labelled | (stat > self.threshold)
        angle = np.where(labelled, labels[:, 0], theta_hat)
        with self._lock:
            self.buffer.add(projected[keep], sectors[keep], labels[keep], angle[keep])
            self.frames_received += len(projected)
            self._run_frames += len(projected)
            self._idle = False  # the learner may have work: it says when it has none
            self._lock.notify_all()

    # ------------------------------------------------------------------ learning
    def _learner(self) -> None:
        """The learner thread: a step whenever the budget allows and the gate holds enough frames.

        It runs its torch and Numba work on this one thread (both thread counts are per calling
        thread), leaving the other cores to the stream: on two cores, torch's two OpenMP threads
        beside the stream's block threads made a step 3-6x slower than on one."""
        try:
            torch.set_num_threads(1)
            numba.set_num_threads(1)
            while True:
                with self._lock:
                    while True:
                        if self._halt.is_set():
                            return
                        batch = self._draw() if self._budget() > 0 else None
                        if batch is not None:
                            break
                        self._idle = True  # no step to take until more frames arrive (`wait_idle`)
                        self._lock.notify_all()
                        self._lock.wait()
                self._learn(*batch)
        except BaseException as exc:  # noqa: BLE001 - raised by the block's next work() or stop()
            self._error = exc
        finally:
            with self._lock:
                self._idle = True
                self._lock.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until the asynchronous learner has taken every step its budget allows on the frames
        received so far (or waits for frames to enter the gate); True when it has, False after
        `timeout` seconds.  The stream never calls this: a caller that feeds `receive()` itself may,
        to pace its frames to the learner (then the steps no longer depend on timing)."""
        if self._thread is None:
            raise BlockError(f"block {self.name!r} ({type(self).__name__}): no asynchronous learner is running")
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while not self._idle:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._lock.wait(left)
        self._raise_learner_error()
        return True

    def _budget(self) -> int:
        """Steps the learner may still take: `steps_per_batch` per `batch_size` frames of this run."""
        return self.steps_per_batch * self._run_frames // self.batch_size - self._run_steps

    def _draw(self):
        """A step's frames, copied out of the buffer (under the lock in the asynchronous mode): up to
        `step_frames` of the frames inside the angle gate, or None while fewer than `min_step_frames`."""
        buffer, frames = self.buffer, self.frames_received
        gate = self.gate_deg(frames)
        inside = np.flatnonzero(np.abs(buffer.angle[:buffer.size]) <= np.radians(gate))
        if inside.size < self.min_step_frames:  # a few frames give Adam a noisy direction at full step
            return None
        pick = self._rng.choice(inside, size=min(self.step_frames, inside.size), replace=False)
        self._run_steps += 1
        return buffer.data[pick], buffer.sector[pick], buffer.label[pick], frames, gate

    def _step(self) -> None:
        """One synchronous step (skipped while the gate holds fewer than `min_step_frames` frames)."""
        batch = self._draw()
        if batch is not None:
            self._learn(*batch)

    def _learn(self, projected, sectors, labels, frames_received: int, gate_deg: float) -> None:
        """An Adam step on these frames; publish the new ``d`` (`_model_array`)."""
        loss, used = self.loss(projected, sectors, labels)
        if not used.any():
            return
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        spacing = self._model_array()
        self._adopt(spacing)
        labelled = int(np.count_nonzero(~np.isnan(labels[used, 0])))
        self.updates.append({"frames_received": frames_received, "frames_published": self.frames_received,
                             "time_s": time.perf_counter() - self._t0, "used": int(used.sum()),
                             "labelled": labelled, "gate_deg": gate_deg, "loss": float(loss.detach()),
                             "spacing": spacing})
        self.message_port_pub("spacing", spacing)

    def _model_array(self):
        """What the model publishes after a step: the spacing vector ``d``."""
        return self.model.spacing_numpy()

    def _adopt(self, array) -> None:
        """Make `array` the published one, which the stream's search (the gate's estimates in
        `_store`) follows: built on the learner's thread and swapped in at once, so the stream
        never waits for it."""
        self._stream_search.recreate(array)
        self._spacing = array

    def loss(self, projected, sectors, labels) -> tuple[torch.Tensor, np.ndarray]:
        """The semi-supervised loss of frames (B, K, r), per frame: the eq.-20 term where the
        frame has a label, the eq.-21 term on the others that cross the threshold; the mean
        over the used frames, and the mask of used frames."""
        p = self.params
        spacing = self.model.spacing()
        grid_a = diff.grid_steering(spacing, p)
        self._learner_search.recreate(spacing.detach().numpy())
        window = projected_window(projected, sectors, self._learner_search, grid_a, self.basis, p)
        labelled = ~np.isnan(labels[:, 0])
        unlabelled = ~labelled & (window.peak.statistic > self.threshold)
        used = labelled | unlabelled
        total = torch.zeros((), dtype=torch.float64)
        if labelled.any():
            total = total + labelled.sum() * window[labelled].supervised_loss(labels[labelled, 0],
                                                                              labels[labelled, 1], p)
        if unlabelled.any():
            ul_window = window[unlabelled]
            if self.transmit_gradient:
                ul_window = ul_window.scaled(self._transmit_gain(projected[unlabelled], sectors[unlabelled],
                                                                 ul_window.peak.j_hat, grid_a))
            total = total + unlabelled.sum() * ul_window.unsupervised_loss()
        return total / max(int(used.sum()), 1), used

    def _snapshots(self, projected, j_hat) -> np.ndarray:
        """``v_n`` at grid range ``j_hat``: `sim.montecarlo.projected_snapshots` with its weights
        ``Sigma^-2 G^H rho^*(R_j) / S`` formed once for every grid range, (B, K)."""
        return (projected @ self._snapshot_weights[j_hat][:, :, None])[:, :, 0]

    def _transmit_gain(self, projected, sectors, j_hat, grid_a) -> torch.Tensor:
        """``|v^T f(d)| / |v^T f(d)|`` (value 1, gradient of ``log |a_tx^T f(d)|``) per frame: the
        snapshot ``v`` at the estimated range is ``a_tx(theta)`` up to a scalar (monostatic, eq. 7),
        so it stands in for the unknown true steering vector of the transmit gain (eq. 1)."""
        v = self._snapshots(projected, j_hat)  # (B, K)
        precoders = diff.ls_precoder(grid_a, sectors[:, 0], sectors[:, 1], self.params)
        gain = torch.abs(array_gain(torch.as_tensor(v).to(precoders.dtype), precoders))
        return gain / gain.detach().clamp_min(1e-30)
