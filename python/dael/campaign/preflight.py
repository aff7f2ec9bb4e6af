"""One check, before the first side effect (a folder, a trajectory, a pending row), of everything a campaign
command (`dael run`, `dael benchmark`) will need hours later: the base model, the MD drivers, the oracle with its
parameters and label options, the training settings. Each problem is one ValueError naming the key."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dael.calculators.deploy import resolve_parent
from dael.calculators.registry import check_calculator
from dael.campaign.config import Campaign
from dael.explore.conditions import check_phases
from dael.label.cluster import check_cluster, check_scheduler, cluster_settings
from dael.label.labelling import check_options
from dael.train.settings import TrainSettings


@dataclass(frozen=True)
class Checked:
    """What the checks resolved: the base model's file (None: train from scratch) and the registry names of the
    exploration driver (round 1, the benchmark's pools) and of the benchmark's test-set MD driver."""

    base: Path | None
    driver: str
    test_driver: str | None


def preflight(campaign: Campaign, where: str, base: str | os.PathLike | None = None, base_key: str | None = None,
              epochs: int | None = None, benchmark: bool = False, oracle: bool = True,
              seeds: dict | None = None) -> Checked:
    """Check `campaign` (read from `where`, named in every message) for a run: `base` (the campaign's
    train.base, named `base_key` in its error, or --from, whose errors name it already), the oracle, the label
    options, the exploration driver with its driver_params, the training settings (with `epochs`, default
    train.epochs), the `seeds` (phase name: Atoms) against the grid (a slab or molecule at a pressure other than 0
    or in NPT, dael.explore.conditions) and, for the `benchmark`, its test-set driver. `oracle=False` (a benchmark
    on stored, labelled pools) checks neither the oracle nor the MD drivers, which such a run never builds; their
    names are the campaign's as written."""
    lab, parent = campaign.label, None
    if seeds is not None:
        e = campaign.explore
        try:
            check_phases(seeds, e.pressures, e.ensemble, e.slab_cell)
        except ValueError as exc:
            raise ValueError(f"{where}: explore: {exc}") from exc
    if base is not None:  # a missing base fails now, not after the exploration and the labels
        try:
            parent = resolve_parent(base)
        except (ValueError, FileNotFoundError) as exc:
            raise ValueError(f"{where}: {base_key}: {exc}" if base_key else str(exc)) from exc
    if not oracle:
        _check_training(campaign, where, epochs)
        return Checked(parent, campaign.driver, campaign.benchmark.test_driver if benchmark else None)
    try:  # where the labels run: the extra it needs, the batch system and its job script
        check_options(lab.workers, lab.timeout, lab.retries, dask=lab.dask, cluster=lab.cluster, keep=lab.keep)
        if lab.cluster is not None:
            check_cluster(cluster_settings(lab.cluster, timeout=lab.timeout))
        if lab.dask is not None:
            check_scheduler(lab.dask)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from exc
    try:
        check_calculator(lab.oracle, **lab.params)
    except Exception as exc:  # an oracle's constructor may raise anything for bad parameters
        raise ValueError(f"{where}: label (oracle {lab.oracle!r}, params {lab.params}): {exc}") from exc
    drivers = {"driver": lambda: campaign.exploration_driver(parent)}
    if benchmark:
        drivers["benchmark.test_driver"] = lambda: campaign.test_md_driver(parent)
    names: dict[str, str] = {}
    for key, resolve in drivers.items():
        params = campaign.driver_params if key == "driver" else {}
        try:
            names[key] = resolve()
            check_calculator(names[key], **params)
        except (ValueError, FileNotFoundError) as exc:
            raise ValueError(f"{where}: {key}{' (driver_params ' + str(params) + ')' if params else ''}: {exc}") \
                from exc
    _check_training(campaign, where, epochs)
    return Checked(parent, names["driver"], names.get("benchmark.test_driver"))


def _check_training(campaign: Campaign, where: str, epochs: int | None) -> None:
    try:
        TrainSettings(epochs=epochs or campaign.train.epochs, seed=campaign.seed, **campaign.train.settings).check()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: train.settings: {exc}") from exc
