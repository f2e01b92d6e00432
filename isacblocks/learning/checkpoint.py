"""Training checkpoints: what one holds, the check that it belongs to this run, and reading
and writing it (`Trainer.save_checkpoint`, `Trainer.load_checkpoint`).

A checkpoint is a `torch.save` zip of tensors and plain types (`Trainer.state_dict`): read
with ``weights_only=True`` after its sizes and members are checked, a checkpoint from
elsewhere cannot run code on load.
"""

from __future__ import annotations

import pickle
from dataclasses import asdict

import numpy as np
import torch

from ..dsp.impairments import ArrayImpairments
from ..errors import TrainingError
from ..params import SystemParams
from ..safeio import InputFileError, atomic_write, check_zip
from .config import TrainConfig

#: What a checkpoint holds (`Trainer.state_dict`).
CHECKPOINT_KEYS = ("iteration", "model", "optimizer", "rng", "history", "evaluations", "labeled_frames",
                   "first_loss", "config", "params", "true_spacing")
#: The `TrainConfig` fields a resumed run must share with the run that wrote the checkpoint.
RESUME_MUST_MATCH = ("schedule", "iterations", "labeled_ratio", "batch_size", "lr", "lr_decay", "lr_decay_at",
                     "curriculum", "curriculum_start_deg", "eval_at", "eval_frames", "eval_seed", "seed",
                     "max_loss_growth", "impairments", "coupling_band")


def true_impairments(array) -> dict:
    """The true array's gains and coupling as checkpoint entries (none for a spacing vector)."""
    if not isinstance(array, ArrayImpairments):
        return {}
    return {f"true_{kind}": torch.from_numpy(np.array(getattr(array, kind)))
            for kind in ("gain", "coupling") if getattr(array, kind) is not None}


def check_state(state, params: SystemParams, config: TrainConfig, true_spacing: np.ndarray, true_array,
                source: str = "checkpoint") -> None:
    """Refuse a state that is not a checkpoint of this run: keys missing, or another K,
    system configuration, true array, schedule, seed or training configuration."""
    if not isinstance(state, dict):
        raise TrainingError(f"{source}: not a training checkpoint (holds {type(state).__name__})")
    missing = [key for key in CHECKPOINT_KEYS if key not in state]
    if missing:
        raise TrainingError(f"{source}: not a training checkpoint of this version; keys {missing} are missing")
    saved_params, params = _plain(state["params"]), _plain(params.to_dict())
    differ = [k for k in params if saved_params.get(k) != params[k]]
    if differ:
        k = differ[0]
        raise TrainingError(f"{source}: written for another system configuration: {k} = {saved_params.get(k)!r} "
                            f"there, {params[k]!r} in this run (fields that differ: {differ})")
    saved, config = _plain(state["config"]), _plain(asdict(config))
    defaults = _plain(asdict(TrainConfig()))  # a field newer than the checkpoint had its default there
    differ = [k for k in RESUME_MUST_MATCH if saved.get(k, defaults[k]) != config[k]]
    if differ:
        raise TrainingError(f"{source}: written by another run: "
                            + ", ".join(f"{k} = {saved.get(k)!r} there, {config[k]!r} here" for k in differ))
    same = np.array_equal(np.asarray(state["true_spacing"]), true_spacing)
    here = true_impairments(true_array)
    there = {k: v for k, v in state.items() if k in ("true_gain", "true_coupling")}
    same = same and here.keys() == there.keys() and all(np.array_equal(np.asarray(there[k]), here[k].numpy())
                                                        for k in here)
    if not same:
        raise TrainingError(f"{source}: written for another true array (--true-spacing / --seed differ)")


def write_checkpoint(path, state: dict) -> None:
    """Write `state` atomically (a run killed while writing keeps the last good checkpoint)."""
    atomic_write(path, lambda f: torch.save(state, f), "checkpoint")


def read_checkpoint(path, device: torch.device):
    """The state saved at `path`, its tensors on `device` (not checked yet: `check_state`)."""
    try:  # sizes and members checked first; tensors and plain types only: a checkpoint from elsewhere
        check_zip(path, "checkpoint")  # cannot run code on load
        return torch.load(path, weights_only=True, map_location=device)
    except InputFileError as exc:
        raise TrainingError(f"cannot read {exc}") from None
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as exc:
        raise TrainingError(f"cannot read checkpoint {path}: {str(exc).splitlines()[0]}") from None


def _plain(value):
    """Tuples as lists, recursively (a configuration read back compares equal to the one written)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
