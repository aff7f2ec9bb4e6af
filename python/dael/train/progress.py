"""The Lightning callback that `nequip-train` runs for dael: one machine-readable line per epoch.

It runs inside the `nequip-train` subprocess (named in the config that `dael.train.training` writes); the parent
reads lines that start with `MARKER`, turns them into progress messages and keeps the epoch history.
"""

from __future__ import annotations

import json
import sys
import time

import lightning

from dael.train.settings import MARKER


class EpochReporter(lightning.Callback):
    """Print `MARKER` + JSON after each validation: epoch, seconds (train + val), lr, losses, val0 metrics."""

    def __init__(self, max_epochs: int) -> None:
        self.max_epochs = max_epochs
        self.start = time.perf_counter()

    def on_train_epoch_start(self, trainer: lightning.Trainer, module: lightning.LightningModule) -> None:
        self.start = time.perf_counter()

    def on_validation_end(self, trainer: lightning.Trainer, module: lightning.LightningModule) -> None:
        # the module logs its val0 metrics in its own on_validation_epoch_end, after the callbacks' hook of
        # that name, so they are read here; the epoch's training loss is not logged yet, hence compute()
        if trainer.sanity_checking:
            return
        metrics = {k.split("/", 1)[1]: float(v) for k, v in trainer.callback_metrics.items()
                   if k.startswith("val0_epoch/")}
        loss = module.loss.compute().get("weighted_sum") if getattr(module, "loss", None) else None
        record = {
            "epoch": trainer.current_epoch + 1,
            "max_epochs": self.max_epochs,
            "seconds": time.perf_counter() - self.start,
            "lr": float(trainer.optimizers[0].param_groups[0]["lr"]) if trainer.optimizers else None,
            "train_loss": None if loss is None else float(loss),
            "val": metrics,
        }
        sys.stdout.write(MARKER + json.dumps(record) + "\n")
        sys.stdout.flush()
