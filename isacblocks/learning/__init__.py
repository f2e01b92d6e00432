"""Learning the antenna spacing ``d`` with gradients: the only package that imports torch."""

from .config import SCHEDULES, TrainConfig
from .model import SpacingModel
from .trainer import Trainer, TrainResult

__all__ = ["SpacingModel", "Trainer", "TrainConfig", "TrainResult", "SCHEDULES"]
