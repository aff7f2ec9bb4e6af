"""Synthetic benchmark pools for the strategy and benchmark tests: rattled Si cells tagged like the explorer's
snapshots, with their fingerprints."""

import numpy as np
from ase.build import bulk

import dael
from dael.benchmark.strategies import Pools
from dael.data.dataset import structure_hash

from conftest import skewed


def si_cells(n, rng, rattle=0.1, cubic=True):
    return [skewed(bulk("Si", "diamond", a=5.43, cubic=cubic), rng, strain=0.02, rattle=rattle) for _ in range(n)]


def labelled_copies(structures):
    """Stand-ins for a pool's labelled rows: copies carrying their content hash (as labels.db rows do)."""
    out = [a.copy() for a in structures]
    for a in out:
        a.info["hash"] = structure_hash(a)
    return out


def synthetic_pools(rng, n=60):
    """Pools of rattled Si cells tagged like explorer snapshots (3 trajectories of n/3 steps)."""
    entropy = si_cells(n, rng, rattle=0.15)
    for k, a in enumerate(entropy):
        a.info.update({"trajectory": f"t{k % 3}", "step": k // 3, "driver_energy": -5.0, "relaxed_energy": -5.0,
                       "temperature_K": 300.0})
    entropy[5].info["driver_energy"] = 5.0  # far outside the window
    anchors = si_cells(10, rng, rattle=0.01)
    random = si_cells(n, rng, rattle=0.1)
    fps = dael.fingerprint(entropy + anchors + random, cutoff=4.0, natx=40)
    return Pools(entropy, random, anchors,
                 {"entropy": fps.subset(0, n), "anchor": fps.subset(n, n + 10),
                  "random": fps.subset(n + 10, 2 * n + 10)},
                 {"entropy": np.arange(n), "random": np.arange(n)}, mode="dual", min_gain=0.0, window=0.5,
                 anchor_fraction=0.2)
