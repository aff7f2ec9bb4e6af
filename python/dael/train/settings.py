"""The hyper-parameters of one training run (`TrainSettings`): model size, losses, schedule, device."""

from __future__ import annotations

from dataclasses import dataclass

from dael.util.device import check_device
from dael.util.extras import require

__all__ = ["MARKER", "TrainSettings"]

MARKER = "@dael-epoch "
"""Start of the line the training subprocess prints after each epoch (dael.train.progress), JSON after it."""


@dataclass
class TrainSettings:
    """Hyper-parameters of one training run. The model fields apply to training from scratch only."""

    epochs: int = 200                 # most epochs
    seed: int = 0                     # data split, shuffling and (unless model_seed) model initialisation
    model_seed: int | None = None     # vary this (not seed) for a committee on the same data
    val_fraction: float = 0.1         # share of structures held out for validation (at least 1)
    batch_size: int = 4               # structures per optimizer step
    lr: float | None = None           # Adam learning rate; None: 1e-2 from scratch, 3e-3 from a parent
    energy_weight: float = 1.0        # loss weight of the per-atom energy against forces (w : 1 : stress_weight)
    stress_weight: float = 1.0        # loss weight of stress against forces (energy_weight : 1 : w)
    huber_deltas: tuple[float, float, float] = (0.01, 0.01, 0.1)  # eV/atom, eV/Å, eV/Å³
    patience: int = 30                # epochs without a better validation score before stopping
    lr_patience: int = 15             # epochs without improvement before the learning rate is halved
    ema_decay: float = 0.99           # exponential moving average of the weights (evaluated and saved)
    gradient_clip: float | None = None  # gradient-norm clip (the authors' fine-tunes use 0.015)
    threads: int = 1                  # OpenMP / torch threads of the training process
    r_max: float = 4.5                # cutoff, Å
    l_max: int = 1
    num_layers: int = 1
    num_scalar_features: int = 16
    num_tensor_features: int = 8
    model_dtype: str = "float32"
    device: str = "cpu"               # where nequip-train runs (the Lightning trainer's accelerator) and evaluates

    def check(self) -> None:
        """Raise ValueError naming the first setting out of range (or a device this machine lacks, or the training
        extra missing)."""
        require("train", "training an Allegro model")
        check_device(self.device)
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "patience": self.patience,
                    "lr_patience": self.lr_patience, "threads": self.threads, "r_max": self.r_max,
                    "num_layers": self.num_layers, "num_scalar_features": self.num_scalar_features,
                    "num_tensor_features": self.num_tensor_features}
        for name, value in positive.items():
            if value <= 0:
                raise ValueError(f"{name} must be > 0; got {value}")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1); got {self.val_fraction}")
        if self.lr is not None and self.lr <= 0:
            raise ValueError(f"lr must be > 0; got {self.lr}")
        if min(self.energy_weight, self.stress_weight) < 0 or min(self.huber_deltas) <= 0:
            raise ValueError("energy_weight and stress_weight must be >= 0 and the Huber deltas > 0")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1); got {self.ema_decay}")
        if self.l_max < 0 or self.model_dtype not in ("float32", "float64"):
            raise ValueError("l_max must be >= 0 and model_dtype 'float32' or 'float64'")
