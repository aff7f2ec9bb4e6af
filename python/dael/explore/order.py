"""The order in which a grid's trajectories are explored (docs/method.md §5).

A budgeted round labels what the streaming filter accepts *first*, so the exploration order decides which
phases and conditions a small budget covers. Orders (`explore.order`):

- 'stratified' (default): a random order in which every prefix is as balanced as it can be: over the
  phases first, no grid point repeated (another seed) before every point is explored, then over each
  phase's pressures and temperatures, then over the pressures and temperatures of all phases together.
  Built greedily: the next trajectory is one whose phase is the least explored so far; among those, one at
  an unexplored grid point; among those, the one whose (phase, pressure) and then (phase, temperature) pairs
  are least explored, and so on (ties at random). With 3 phases × 3 pressures × 3 temperatures, the first
  3 trajectories hold the 3 phases, the first 9 every pressure and every temperature of every phase, the
  first 27 every grid point.
- 'random': a uniformly random permutation (a small budget can miss a phase: with 27 grid points of 3
  phases, the first 8 trajectories lack one phase with probability 0.06).
- 'grid': the grid's own order (phase by phase).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np

ORDERS = ("stratified", "random", "grid")
GRID_TAGS = ("phase", "pressure_GPa", "temperature_K", "k_global", "k_local")
"""The tags that name a trajectory's grid point (phase, P GPa, T K, k_g, k_l eV), most important first: the
explorer writes them on every snapshot, and they are the stratified order's keys."""


def grid_key(tags: Mapping[str, Any]) -> tuple:
    """The grid point of a trajectory from its tags (a snapshot's atoms.info or dael.explore.explorer.Job.grid_tags)."""
    return tuple(tags.get(k) for k in GRID_TAGS)


def trajectory_order(keys: Sequence[tuple[Hashable, ...]], order: str, rng: np.random.Generator) -> np.ndarray:
    """Indices into `keys` (one tuple per trajectory, most important key first, e.g. (phase, P GPa, T K))
    in the exploration order `order` (see the module docstring); shape (len(keys),)."""
    if order not in ORDERS:
        raise ValueError(f"exploration order must be one of {', '.join(ORDERS)}; got {order!r}")
    if order == "grid" or not len(keys):
        return np.arange(len(keys))
    if order == "random":
        return rng.permutation(len(keys))
    return _stratified(keys, rng)


def _stratified(keys: Sequence[tuple[Hashable, ...]], rng: np.random.Generator) -> np.ndarray:
    m = len(keys[0])
    if any(len(k) != m for k in keys):
        raise ValueError("every trajectory needs the same number of grid keys")
    # the groups whose counts are balanced, in priority order: the first key, the whole grid point (no repeat
    # before every point is explored), the first key's pairs with each other key, each other key alone
    groups = [(0,), tuple(range(m)), *((0, j) for j in range(1, m)), *((j,) for j in range(1, m))]
    codes = np.stack([np.unique([repr(tuple(k[j] for j in g)) for k in keys], return_inverse=True)[1]
                      for g in groups], axis=1)  # (n, groups): which value of each group a trajectory has
    counts = [np.zeros(codes[:, f].max() + 1, dtype=np.int64) for f in range(len(groups))]
    left = rng.permutation(len(keys))  # random tie-breaking: lexsort is stable
    out = []
    while len(left):
        score = [counts[f][codes[left, f]] for f in range(len(groups))]
        pick = int(np.lexsort(score[::-1])[0])
        i = left[pick]
        for f in range(len(groups)):
            counts[f][codes[i, f]] += 1
        out.append(i)
        left = np.delete(left, pick)
    return np.asarray(out, dtype=np.int64)
