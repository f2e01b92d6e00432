"""Learning the antenna spacing ``d`` with gradients: the only package that imports torch."""

from .model import SpacingModel
from .trainer import SCHEDULES, TrainConfig, Trainer, TrainResult

__all__ = ["SpacingModel", "Trainer", "TrainConfig", "TrainResult", "SCHEDULES"]
