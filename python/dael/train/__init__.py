"""Allegro training and fine-tuning through nequip: the settings, the nequip-train config, the training
subprocess (train, then package the best checkpoint), the per-epoch progress callback, and the errors of
models on labelled structures.
"""

from dael.train.settings import TrainSettings
from dael.train.training import TrainResult, train

__all__ = ["train", "TrainResult", "TrainSettings"]
