"""Research strategies of the notebook (docs/experiments/experiments.md), registered with dael's benchmark when
this module is imported: a script imports it, then runs `dael.benchmark.run_benchmark` with their names.

- stream-md: `stream-fill` over the random-MD pool (plain MD, no bias): entropy selection without biased
  exploration.
- seeded: one random-MD snapshot per (phase, pressure, temperature) first (unbiased thermal structures, as a
  campaign starts), then `stream-fill` with the filter's state starting from them.
- mixed-md: `anchor_fraction` of N drawn uniformly from the random-MD pool (thermal anchors at every grid
  condition, drawn as random MD draws them), the rest as `stream-fill`, interleaved.
- random-anchored-stream: of N, `anchor_fraction` anchors (mixed's), the same share at most the streaming
  filter's acceptances over the biased pool with its state starting from the anchors and the set's random MD
  (a campaign whose first round is plain MD and whose later rounds explore with the bias), the rest random MD.
- greedy-atom / greedy-config: greedy D-optimal ΔH re-ranking of a random 80 % of the entropy pool.

`stream_order_spread` is `stream_order` whose fill takes the rejected snapshots round-robin over their
trajectories (benches/experiments/fill_spread.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dael.benchmark.strategies import (
    DRAW_SHARE,
    POOL_KEYS,
    STRATEGIES,
    Pick,
    Pools,
    Sets,
    Strategy,
    anchor_picks,
    anchored,
    blocks,
    filtered,
    prefixes,
    register,
    shuffled,
    stream_order,
    streamed,
)
from dael.numeric.entropy import GlobalEntropy


def thermal_picks(pools: Pools, n: int, rng: np.random.Generator) -> list[str]:
    """n random-MD snapshots drawn uniformly (thermal structures at every grid condition)."""
    cand = pools.candidates["random"]
    return [f"r{i}" for i in rng.choice(cand, size=min(n, len(cand)), replace=False)]


def anchored_stream(pools: Pools, sizes: Sequence[int], rng: np.random.Generator) -> Sets:
    """`random-anchored-stream`: per size N, a = round(anchor_fraction·N) anchors and as many filter places; the
    filter streams the biased pool in one exploration order of the draw against the anchors and the first
    N − 2a of a random-MD permutation, and random MD fills what it leaves."""
    anchors = anchor_picks(pools, int(round(pools.anchor_fraction * max(sizes))), rng)
    random = shuffled(pools, "random", rng)
    order_seed = int(rng.integers(2**63))
    out: Sets = {}
    for n in sizes:
        a = int(round(pools.anchor_fraction * n))
        if n - a > len(random):
            continue
        base = anchors[:a] + random[:max(0, n - 2 * a)]
        start = [pools.fps[POOL_KEYS[k[0]]].of(int(k[1:])) for k in base]
        picked = stream_order(pools, np.random.default_rng(order_seed), min(a, n - len(base)), start=start) if a else []
        out[n] = base + picked + random[len(base) - a:n - a - len(picked)]
    return out


def seeded(pools: Pools, sizes: Sequence[int], rng: np.random.Generator) -> Sets:
    """One random-MD snapshot per (phase, pressure, temperature) of the grid first, then `stream-fill` with the
    filter's state starting from them."""
    cand = pools.candidates["random"]
    groups: dict[tuple, list[int]] = {}
    for i in cand:
        info = pools.random[i].info
        groups.setdefault((info.get("phase"), info.get("pressure_GPa"), info.get("temperature_K")), []).append(i)
    seeds = [int(rng.choice(groups[g])) for g in sorted(groups, key=str)]
    seeds = [seeds[k] for k in rng.permutation(len(seeds))]
    rest = stream_order(pools, rng, max(sizes) - len(seeds), fill=True, start=blocks(pools.fps["random"], seeds))
    return prefixes([f"r{i}" for i in seeds] + rest, sizes)


def greedy(mode: str) -> Pick:
    """Greedy ΔH in `mode` ('atom' or 'config') over a random DRAW_SHARE of the entropy pool."""
    def pick(pools: Pools, sizes: Sequence[int], rng: np.random.Generator) -> Sets:
        cand = pools.candidates["entropy"]
        sub = np.sort(rng.choice(cand, size=int(DRAW_SHARE * len(cand)), replace=False))
        state = GlobalEntropy(mode, pools.eps, pools.fps["entropy"].settings)
        picks, _ = state.greedy(blocks(pools.fps["entropy"], sub), max(sizes), min_gain=-np.inf,
                                lazy=len(sub) > 5000)
        return prefixes([f"e{sub[i]}" for i in picks], sizes)

    return pick


def round_robin(groups: Sequence[str]) -> np.ndarray:
    """Indices of a sequence labelled by `groups` taken round-robin: every group's first member (groups in the
    order they first appear), then every group's second, ...; within a group the order is kept."""
    depth, seen = [], {}
    for g in groups:
        depth.append(seen.get(g, 0))
        seen[g] = depth[-1] + 1
    first = {g: i for i, g in enumerate(dict.fromkeys(groups))}
    return np.array(sorted(range(len(groups)), key=lambda k: (depth[k], first[groups[k]])), dtype=np.int64)


def stream_order_spread(pools: Pools, rng: np.random.Generator, budget: int, fill: bool = False,
                        start: Sequence[np.ndarray] = (), pool: str = "entropy") -> list[str]:
    """`stream_order` whose fill takes the snapshots the filter rejected round-robin over their trajectories."""
    ordered, accepted = filtered(pools, rng, budget, start, pool)
    order = ordered[accepted]
    if fill:
        rest = ordered[~accepted]
        structures = getattr(pools, pool)
        rest = rest[round_robin([str(structures[i].info.get("trajectory", i)) for i in rest.tolist()])]
        order = np.concatenate([order, rest])
    return [f"{pool[0]}{i}" for i in order[:budget]]


EXPERIMENTS = {
    "stream-md": Strategy(streamed(True, "random"), "experiment", "#ff9896", "stream-fill over random MD"),
    "seeded": Strategy(seeded, "experiment", "#98df8a", "one random-MD snapshot per condition, then stream-fill"),
    "mixed-md": Strategy(anchored(thermal_picks), "experiment", "#bcf60c", "random-MD anchors + stream-fill"),
    "random-anchored-stream": Strategy(anchored_stream, "experiment", "#8b4513",
                                       "anchors + random MD + the filter's picks against them"),
    "greedy-atom": Strategy(greedy("atom"), "experiment", "#9467bd", "greedy ΔH, per-atom mode"),
    "greedy-config": Strategy(greedy("config"), "experiment", "#8c564b", "greedy ΔH, per-configuration mode"),
}
for _name, _strategy in EXPERIMENTS.items():
    if _name not in STRATEGIES:  # imported twice (as a script's module and by name): registered once
        register(_name, _strategy)
