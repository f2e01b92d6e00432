"""The online-learning transceiver: the flowgraph of ``flowgraphs/online_ssl.py``
(`online_flowgraph`: the sensing chain of Fig. 2 with the learner beside the estimator) and one
timed run of it, with or without the learner (`run_online_stream`, used by ``isac bench --only
stream``).  The learner itself is `isacblocks.learning.online.OnlineSpacingTrainer`."""

from __future__ import annotations

import time

import numpy as np

from ..blocks import (
    DetectionMetricsSink,
    MBMLEstimator,
    OFDMModulator,
    ReciprocalFilter,
    ScenarioSource,
    SectorBeamformer,
    SymbolSource,
    TargetChannel,
    true_array,
)
from ..blocks.chains import block_seeds
from ..core import Flowgraph, NullSink, TagFilter
from ..dsp.spacing import spacing_errors
from ..params import SystemParams
from ..validation import check_int
from .online import OnlineSpacingTrainer

# ---------------------------------------------------------------------- the flowgraph
#: The online flowgraph's scheduler: the stream on one thread, beside the learner's thread.  With a
#: thread per block ("threaded") the stream's dozen threads left the learner a fraction of a core on
#: two cores: 134 steps in 20 000 frames (seed 0; the Pmd reached the known-spacing interval only at
#: the end), against 482-574 with "single" (there by 10 000 frames; `docs/online-learning.md`).
ONLINE_SCHEDULER = "single"


def online_flowgraph(params, ula, frames: int, *, labelled: int = 0, seed=0, learner: bool = True,
                     scheduler: str | None = ONLINE_SCHEDULER, **trainer_options):
    """The online-learning transceiver of ``flowgraphs/online_ssl.py``::

        ScenarioSource ─► SectorBeamformer ─► TargetChannel ─► ReciprocalFilter ─┬─► MBMLEstimator ─► metrics
        SymbolSource ─► OFDMModulator ──────────┘                                └─► TagFilter ─► trainer

    `frames` frames on the training sectors through the true array `ula` (an `ImpairedULA`);
    the first `labelled` keep their label tags.  The trainer's message port ``spacing`` feeds the
    estimator's and the beamformer's; both start at lambda/2.  `trainer_options` go to
    `OnlineSpacingTrainer` (``gate_frames`` defaults to 3/4 of `frames`).  With ``learner=False``
    a `NullSink` takes the trainer's place: the same stream without learning.  `scheduler`: the
    `Flowgraph`'s (default `ONLINE_SCHEDULER`; None: the library's default).

    Returns ``(flowgraph, metrics sink, trainer or None)``.
    """
    seeds = block_seeds(seed)
    k, s = params.n_antennas, params.n_subcarriers
    scenario = ScenarioSource(params, frames, sector="train", seed=seeds["scenario"])
    symbols = SymbolSource(params, frames, seed=seeds["symbols"])
    ofdm = OFDMModulator(params)
    # training sectors never repeat: solve each work() call's precoders together
    beam = SectorBeamformer(params, params.nominal_spacing, batch_solve=True)
    channel = TargetChannel(params, ula, seed=seeds["target"])
    recip = ReciprocalFilter(params)
    estimator = MBMLEstimator(params, params.nominal_spacing)
    metrics = DetectionMetricsSink(params)
    labels = TagFilter(np.complex64, (k, s), drop_keys=("theta", "range"), from_item=labelled)
    fg = Flowgraph(max_items=64, name="online_ssl", scheduler=scheduler)
    fg.connect(scenario, beam, (channel, "precoder"))
    fg.connect((symbols, "symbols"), ofdm, (channel, "symbols"))
    fg.connect((symbols, "messages"), NullSink(np.int32, s))
    fg.connect(ofdm, (recip, "symbols"))
    fg.connect(channel, recip, estimator, metrics)
    if not learner:
        fg.connect(recip, labels, NullSink(np.complex64, (k, s)))
        return fg, metrics, None
    trainer_options.setdefault("gate_frames", round(0.75 * frames))
    trainer = OnlineSpacingTrainer(params, seed=seed, **trainer_options)
    fg.connect(recip, labels, trainer)
    fg.msg_connect(trainer, "spacing", estimator, "spacing")
    fg.msg_connect(trainer, "spacing", beam, "spacing")
    return fg, metrics, trainer


def run_online_stream(frames: int = 20000, learner: bool = True, seed: int = 0, *, asynchronous: bool = True,
                      labelled: int = 0, params=None, true_spacing=None, scheduler: str | None = ONLINE_SCHEDULER,
                      **trainer_options) -> dict:
    """Run the online-learning stream (`online_flowgraph`) once and time it.

    `frames` streamed frames, `seed` for the stream and the drawn true array (or the spacing
    file `true_spacing`), the first `labelled` frames labelled; ``learner=False``: the same
    stream with a `NullSink` in place of the trainer.  `asynchronous`, `trainer_options`: the
    trainer's (`OnlineSpacingTrainer`); `scheduler`: the flowgraph's (`online_flowgraph`).
    Nothing is evaluated (no Pmd): see ``flowgraphs/online_ssl.py`` for that.

    Returns a dict: ``frames``, ``learner``, ``asynchronous``, ``seed``, ``setup_s`` (building the
    flowgraph: the trainer's noise threshold), ``seconds`` (the stream, from start to end),
    ``frames_per_s``, ``steps`` (learning steps taken), ``first_step_s`` and ``last_step_s``
    (seconds from the stream's start; None without steps), ``spacing`` (the final ``d``,
    lambda/2 without a learner) and ``position_error_mm`` (its element-position error).
    """
    params = SystemParams() if params is None else params
    frames = check_int("run_online_stream", "frames", frames, 1)
    ula = true_array(params, seed, true_spacing)
    start = time.perf_counter()
    if learner:
        trainer_options["asynchronous"] = asynchronous
    fg, _, trainer = online_flowgraph(params, ula, frames, labelled=labelled, seed=seed, learner=learner,
                                      scheduler=scheduler, **trainer_options)
    built = time.perf_counter()
    fg.run()
    seconds = time.perf_counter() - built
    updates = trainer.updates if trainer is not None else []
    spacing = trainer.spacing if trainer is not None else params.nominal_spacing
    return {"frames": frames, "learner": learner, "asynchronous": asynchronous if learner else None, "seed": seed,
            "setup_s": built - start, "seconds": seconds, "frames_per_s": frames / seconds, "steps": len(updates),
            "first_step_s": updates[0]["time_s"] if updates else None,
            "last_step_s": updates[-1]["time_s"] if updates else None, "spacing": spacing,
            "position_error_mm": spacing_errors(spacing, ula.spacing)["position_error_mm"]}
