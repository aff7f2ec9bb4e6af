"""The name `dael.train_progress.EpochReporter` that model configs written before dael 0.2 name as nequip's
callback `_target_`: kept so that their runs resume. New configs name `dael.train.progress.EpochReporter`."""

from dael.train.progress import EpochReporter

__all__ = ["EpochReporter"]
