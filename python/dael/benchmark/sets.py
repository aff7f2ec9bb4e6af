"""Training sets per (strategy, draw, size), drawn from the labelled pools less the holdouts and kept in
FOLDER/sets.json: a rerun with more sizes draws only the new ones, from the same seed stream."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from ase import Atoms

from dael.benchmark.evaluation import holdout_indices
from dael.benchmark.strategies import (
    POOL_KEYS,
    Pools,
    select_sets,
)
from dael.campaign.config import Campaign
from dael.numeric.fingerprint import Fingerprints
from dael.util.files import write_atomic


def training_sets(campaign: Campaign, data: dict[str, list], fps: dict[str, Fingerprints], folder: Path,
                   strategies: list[str]) -> dict:
    """{(strategy, draw, N): keys} (see dael.benchmark.strategies), none drawn from the in-distribution holdouts;
    fps: pool_fingerprints of data."""
    path = folder / "sets.json"
    bench = campaign.benchmark
    saved = json.loads(path.read_text()) if path.exists() else {}
    wanted = {str(n) for n in bench.sizes}
    todo = [(s, d) for s in strategies for d in range(bench.draws) if not wanted <= set(saved.get(f"{s}/{d}", {}))]
    if todo:
        pools = selection_pools(campaign, data, fps, folder)
    for strategy, d in todo:  # sizes added since the sets were saved: drawn from the same seed stream
        have = saved.get(f"{strategy}/{d}", {})
        rng = draw_rng(campaign, strategy, d)
        missing = [n for n in bench.sizes if str(n) not in have]
        picked = select_sets(strategy, pools, missing, rng)  # null: a size the strategy cannot fill
        saved[f"{strategy}/{d}"] = {**have, **{str(n): picked.get(n) for n in missing}}
        write_atomic(path, json.dumps(saved).encode())
    sets = {(s, int(d), int(n)): keys for k, v in saved.items() for n, keys in v.items()
            for s, d in [k.split("/")] if s in strategies and int(d) < bench.draws and n in wanted and keys}
    return sets


STRATEGY_SEEDS = {"random": 1, "entropy-random": 2}
"""Seed streams of the permutation strategies (so that random and entropy-random draws are independent)."""


def draw_rng(campaign: Campaign, strategy: str, draw: int) -> np.random.Generator:
    """The random stream of one strategy's draw (the same on every rerun)."""
    return np.random.default_rng([campaign.seed, draw, STRATEGY_SEEDS.get(strategy, 0)])


def selection_pools(campaign: Campaign, data: dict[str, list], fps: dict[str, Fingerprints],
                    folder: Path | None = None):
    """What the strategies choose from (dael.benchmark.strategies.Pools): the labelled pools `data` less the
    in-distribution holdouts (holdout_indices; kept in `folder`), with their per-atom fingerprints `fps` and
    the campaign's filter, window, anchor share and exploration order."""
    hold = holdout_indices(data, campaign.seed, folder)
    rest = {name: np.setdiff1d(np.arange(len(data[name])), hold[name]) for name in hold}
    return Pools(data["entropy"], data["random"], data["anchor"], fps, rest, mode=campaign.filter.mode,
                 eps=campaign.filter.eps, min_gain=campaign.filter.min_gain, window=campaign.explore.window,
                 anchor_fraction=campaign.benchmark.anchor_fraction, order=campaign.explore.order)


def members(keys: list[str], data: dict[str, list]) -> list[Atoms]:
    return [data[POOL_KEYS[key[0]]][int(key[1:])] for key in keys]
