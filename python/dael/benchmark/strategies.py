"""Training-set selection strategies compared by the benchmark (docs/method.md §6).

Every strategy picks, for one draw, training sets of the requested sizes from labelled pools. A set is a
list of keys "e<i>" (entropy pool: biased MD), "r<i>" (random-MD pool) or "a<i>" (anchors), i the index in
that pool; holdout structures are never offered.

- stream (dael's default, the authors' protocol): the entropy pool's trajectories in an exploration order of
  the draw (`explore.order`, by default stratified over phases and conditions: dael.explore.order), snapshots in
  step order; those inside the energy window whose gain over the set as it is then exceeds min_gain join it
  at once (dual mode). The set of size N is the first N accepted: what `dael run` with budget N labels.
- stream-fill: `stream`, then, once the filter has taken all it will (it saturates: ΔH > 0 accepted ~10 % of
  the Si pool), the rest of the window's snapshots in the same exploration order: any N up to the pool.
- stream-md: `stream-fill` over the random-MD pool (plain MD, no bias): entropy selection without biased
  exploration.
- seeded: one random-MD snapshot per (phase, pressure, temperature) first (unbiased thermal structures, as
  a campaign starts), then `stream-fill` with the filter's state starting from them.
- mixed: `anchor_fraction` of N near-equilibrium anchors (greedy ΔH), the rest as `stream-fill`, interleaved.
- mixed-md: `anchor_fraction` of N drawn uniformly from the random-MD pool (thermal anchors at every phase,
  pressure and temperature of the grid, drawn as random MD draws them), the rest as `stream-fill`, interleaved.
- random-anchored: mixed's anchors, the rest a random permutation of the random-MD pool, interleaved: random
  MD plus relaxed and strained cells, what a user without dael would label; against `mixed` it isolates what
  the bias and the filter add to the anchors, against `random` what the anchors add to random MD.
- random-anchored-stream: `random-anchored` with a share of its random MD given to the biased pool: of N,
  `anchor_fraction` anchors (mixed's), the same share at most the streaming filter's acceptances over the
  biased pool with its state starting from the anchors and the set's random MD (a campaign whose first round
  is plain MD at the grid's conditions and whose later rounds explore with the bias), the rest random MD.
- greedy-atom / greedy-config: greedy D-optimal ΔH re-ranking of a random 80 % of the entropy pool.
- entropy-random: a random permutation of the entropy pool (the pool without selection).
- random: a random permutation of the random-MD pool (the baseline).
- direct: DIRECT-style stratified sampling (Qi et al. 2024): PCA of per-configuration fingerprints, k-means
  with k = N, the structure nearest each centroid.
- quests-msc / quests-fps / quests-kmeans: the QUESTS package's own compression methods (Schwalbe-Koda
  et al.; minimum set cover, farthest-point sampling, k-means) on its own descriptors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from dael.explore.order import grid_key, trajectory_order
from dael.explore.window import in_window
from dael.numeric.dual import new_state
from dael.numeric.entropy import GlobalEntropy
from dael.numeric.fingerprint import Fingerprints

STRATEGIES = ("stream", "stream-fill", "stream-md", "seeded", "mixed", "mixed-md", "random-anchored",
              "random-anchored-stream", "greedy-atom", "greedy-config", "entropy-random", "random", "direct",
              "quests-msc", "quests-fps", "quests-kmeans")
DEFAULT_STRATEGIES = ("stream", "stream-fill", "mixed", "random-anchored", "entropy-random", "random")
"""`dael benchmark`'s strategies: the filter, its filled and anchored sets, and three controls (the entropy pool
without selection, random MD with the same anchors, random MD)."""
DRAW_SHARE = 0.8
"""Share of the entropy and anchor pools each greedy draw selects from (draws differ by this subsample)."""


@dataclass
class Pools:
    """What the strategies choose from: labelled structures and per-atom fingerprints of the entropy and
    anchor pools (one set of settings), the random-MD pool, and the candidate indices (holdout removed)."""

    entropy: list[Atoms]
    random: list[Atoms]
    anchor: list[Atoms]
    fps: dict[str, Fingerprints]
    candidates: dict[str, np.ndarray]
    mode: str = "dual"
    eps: float = 1e-3
    min_gain: float = 0.01
    window: float | None = None
    anchor_fraction: float = 0.2
    order: str = "stratified"


Sets = dict[int, list[str]]
POOL_KEYS = {"e": "entropy", "r": "random", "a": "anchor"}
"""The pool of a key's first letter."""


def check_strategies(names: Sequence[str]) -> list[str]:
    bad = [n for n in names if n not in STRATEGIES]
    if bad:
        raise ValueError(f"unknown strategy {', '.join(bad)}; known: {', '.join(STRATEGIES)}")
    return list(names)


def select_sets(strategy: str, pools: Pools, sizes: Sequence[int], rng: np.random.Generator) -> Sets:
    """{N: keys} for each size N the strategy can fill (a stream that accepts fewer than N skips N)."""
    return STRATEGY_FUNCTIONS[check_strategies([strategy])[0]](pools, sorted(sizes), rng)


def _prefixes(order: Sequence[str], sizes: Sequence[int]) -> Sets:
    return {n: list(order[:n]) for n in sizes if len(order) >= n}


def stream_order(pools: Pools, rng: np.random.Generator, budget: int, fill: bool = False,
                 start: Sequence[np.ndarray] = (), pool: str = "entropy", spread: bool = False) -> list[str]:
    """Keys of `pool` in the order the streaming filter accepts them, trajectories in the exploration order
    `pools.order` of the draw (dael.explore.order);
    fill: followed by the snapshots it did not accept (inside the window), in the same order (spread: round-robin
    over their trajectories instead, benches/fill_spread.py); start: per-atom fingerprints (one block per
    structure) already in the dataset (the filter's state begins with them)."""
    structures, fps = getattr(pools, pool), pools.fps[pool]
    cand = pools.candidates[pool]
    names = [str(structures[i].info.get("trajectory", i)) for i in cand]
    trajectories = list(dict.fromkeys(names))
    tags = {name: structures[i].info for name, i in zip(names, cand, strict=True)}  # the same per trajectory
    keys = [grid_key(tags[t]) for t in trajectories]
    rank = {trajectories[i]: r for r, i in enumerate(trajectory_order(keys, pools.order, rng))}
    steps = [float(structures[i].info.get("step", 0)) for i in cand]
    ordered = cand[sorted(range(len(cand)), key=lambda k: (rank[names[k]], steps[k]))]
    ordered, accepted = filter_stream(structures, fps, ordered, pools.window, pools.mode, pools.eps, pools.min_gain,
                                      budget, start)
    order = ordered[accepted]
    if fill:
        rest = ordered[~accepted]
        if spread:
            trajectory = dict(zip(cand.tolist(), names, strict=True))
            rest = rest[round_robin([trajectory[i] for i in rest.tolist()])]
        order = np.concatenate([order, rest])
    return [f"{pool[0]}{i}" for i in order[:budget]]


def round_robin(groups: Sequence[str]) -> np.ndarray:
    """Indices of a sequence labelled by `groups` taken round-robin: every group's first member (groups in the
    order they first appear), then every group's second, ...; within a group the order is kept."""
    depth, seen = [], {}
    for g in groups:
        depth.append(seen.get(g, 0))
        seen[g] = depth[-1] + 1
    first = {g: i for i, g in enumerate(dict.fromkeys(groups))}
    return np.array(sorted(range(len(groups)), key=lambda k: (depth[k], first[groups[k]])), dtype=np.int64)


def filter_stream(structures: Sequence[Atoms], fps: Fingerprints, rows: np.ndarray, window: float | None,
                  mode: str, eps: float, min_gain: float, budget: int | None = None,
                  start: Sequence[np.ndarray] = ()) -> tuple[np.ndarray, np.ndarray]:
    """The streaming filter of a campaign over `rows` (indices into `structures` and their per-atom `fps`) in
    that order: returns the rows inside the energy window (`window` eV/atom above the relaxed phase; None: all)
    and the mask of those it accepts (ΔH > min_gain in `mode`, at most `budget`); `start`: per-atom blocks
    the state begins with."""
    rows = np.asarray(rows, dtype=np.int64)
    rows = rows[in_window([structures[i] for i in rows], window)]
    if not len(rows):
        return rows, np.zeros(0, dtype=bool)
    state = new_state(mode, eps, fps.settings)
    for block in start:
        state.add(block)
    return rows, state.stream(_subset(fps, rows), min_gain, budget)[1]


def _subset(fps: Fingerprints, rows: np.ndarray) -> list[np.ndarray]:
    return [fps.of(int(i)) for i in rows]


def _stream(fill: bool, pool: str = "entropy") -> Callable:
    def pick(pools: Pools, sizes: Sequence[int], rng: np.random.Generator) -> Sets:
        return _prefixes(stream_order(pools, rng, max(sizes), fill, pool=pool), sizes)

    return pick


def _anchor_picks(pools: Pools, n: int, rng: np.random.Generator) -> list[str]:
    """n near-equilibrium anchors: greedy ΔH over a random DRAW_SHARE of the anchor pool."""
    sub = np.sort(rng.choice(len(pools.anchor), size=max(1, int(DRAW_SHARE * len(pools.anchor))), replace=False))
    state = GlobalEntropy("atom", pools.eps, pools.fps["anchor"].settings)
    picks, _ = state.greedy(_subset(pools.fps["anchor"], sub), n, min_gain=-np.inf)
    return [f"a{sub[i]}" for i in picks]


def _thermal_picks(pools: Pools, n: int, rng: np.random.Generator) -> list[str]:
    """n random-MD snapshots drawn uniformly (thermal structures at every grid condition)."""
    cand = pools.candidates["random"]
    return [f"r{i}" for i in rng.choice(cand, size=min(n, len(cand)), replace=False)]


def _stream_rest(pools: Pools, n: int, rng: np.random.Generator) -> list[str]:
    return stream_order(pools, rng, n, fill=True)


def _shuffled(pools: Pools, pool: str, rng: np.random.Generator) -> list[str]:
    """The candidates of `pool` ('entropy' or 'random') as keys, in a random order."""
    return [f"{pool[0]}{i}" for i in rng.permutation(pools.candidates[pool])]


def _random_rest(pools: Pools, n: int, rng: np.random.Generator) -> list[str]:
    return _shuffled(pools, "random", rng)[:n]


def _anchored(anchor_picks: Callable, rest_picks: Callable = _stream_rest) -> Callable:
    """`anchor_fraction` of the largest N from anchor_picks(pools, n, rng), the rest from
    rest_picks(pools, n, rng) (`stream-fill` by default), interleaved so that every size holds its share."""
    def pick(pools: Pools, sizes: Sequence[int], rng: np.random.Generator) -> Sets:
        n_max = max(sizes)
        anchors = anchor_picks(pools, int(round(pools.anchor_fraction * n_max)), rng)
        rest = rest_picks(pools, n_max - len(anchors), rng)
        return _prefixes(interleave(anchors, rest, pools.anchor_fraction), sizes)

    return pick


def _anchored_stream(pools: Pools, sizes: Sequence[int], rng: np.random.Generator) -> Sets:
    """`random-anchored-stream` (module docstring): per size N, a = round(anchor_fraction·N) anchors and as many
    filter places; the filter streams the biased pool in one exploration order of the draw against the anchors
    and the first N − 2a of a random-MD permutation, and random MD fills what it leaves."""
    anchors = _anchor_picks(pools, int(round(pools.anchor_fraction * max(sizes))), rng)
    random = _shuffled(pools, "random", rng)
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


def _seeded(pools: Pools, sizes: Sequence[int], rng: np.random.Generator) -> Sets:
    """One random-MD snapshot per (phase, pressure, temperature) of the grid first — unbiased thermal
    structures, as a campaign starts — then `stream-fill` with the filter's state starting from them."""
    cand = pools.candidates["random"]
    groups: dict[tuple, list[int]] = {}
    for i in cand:
        info = pools.random[i].info
        groups.setdefault((info.get("phase"), info.get("pressure_GPa"), info.get("temperature_K")), []).append(i)
    seeds = [int(rng.choice(groups[g])) for g in sorted(groups, key=str)]
    seeds = [seeds[k] for k in rng.permutation(len(seeds))]
    rest = stream_order(pools, rng, max(sizes) - len(seeds), fill=True, start=_subset(pools.fps["random"], seeds))
    return _prefixes([f"r{i}" for i in seeds] + rest, sizes)


def interleave(anchors: list, rest: list, fraction: float) -> list:
    """Merge so that every prefix of size N holds about fraction·N anchors."""
    out, a, r = [], 0, 0
    while a < len(anchors) or r < len(rest):
        if a < len(anchors) and (r >= len(rest) or a < fraction * (len(out) + 1)):
            out.append(anchors[a])
            a += 1
        else:
            out.append(rest[r])
            r += 1
    return out


def _greedy(mode: str) -> Callable:
    def pick(pools: Pools, sizes: Sequence[int], rng: np.random.Generator) -> Sets:
        cand = pools.candidates["entropy"]
        sub = np.sort(rng.choice(cand, size=int(DRAW_SHARE * len(cand)), replace=False))
        state = GlobalEntropy(mode, pools.eps, pools.fps["entropy"].settings)
        picks, _ = state.greedy(_subset(pools.fps["entropy"], sub), max(sizes), min_gain=-np.inf,
                                lazy=len(sub) > 5000)
        return _prefixes([f"e{sub[i]}" for i in picks], sizes)

    return pick


def _permutation(pool: str) -> Callable:
    def pick(pools: Pools, sizes: Sequence[int], rng: np.random.Generator) -> Sets:
        return _prefixes(_shuffled(pools, pool, rng), sizes)

    return pick


def _config_vectors(pools: Pools) -> tuple[np.ndarray, np.ndarray]:
    cand = pools.candidates["entropy"]
    fps = pools.fps["entropy"]
    return cand, np.array([fps.of(int(i)).mean(axis=0) for i in cand])


def _direct(pools: Pools, sizes: Sequence[int], rng: np.random.Generator) -> Sets:
    """PCA (components explaining 99 % of the variance) → k-means (k = N) → the member nearest each centroid."""
    from scipy.cluster.vq import kmeans2

    cand, x = _config_vectors(pools)
    x = x - x.mean(axis=0)
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    k = int(np.searchsorted(np.cumsum(s**2) / np.sum(s**2), 0.99)) + 1
    z = u[:, :k] * s[:k]
    z /= z.std(axis=0) + 1e-12
    out: Sets = {}
    for n in sizes:
        if n > len(cand):
            continue
        centroids, labels = kmeans2(z, n, minit="++", seed=rng)
        chosen = []
        for c in np.unique(labels):
            members = np.flatnonzero(labels == c)
            chosen.append(members[np.argmin(np.linalg.norm(z[members] - centroids[c], axis=1))])
        out[n] = [f"e{cand[i]}" for i in chosen]
    return out


def _quests(method: str) -> Callable:
    def pick(pools: Pools, sizes: Sequence[int], rng: np.random.Generator) -> Sets:
        from quests.compression.baseline import k_means
        from quests.compression.fps import fps, msc
        from quests.descriptor import get_descriptors
        from quests.entropy import entropy

        cand = pools.candidates["entropy"]
        desc = [get_descriptors([pools.entropy[i]]) for i in cand]
        entropies = np.array([entropy(x) for x in desc])
        np.random.seed(int(rng.integers(2**31)))  # noqa: NPY002 (QUESTS draws from numpy's global generator)
        if method == "kmeans":
            return {n: [f"e{cand[i]}" for i in k_means(desc, entropies, n)] for n in sizes if n <= len(cand)}
        order = (msc if method == "msc" else fps)(desc, entropies, max(sizes))
        return _prefixes([f"e{cand[i]}" for i in order], sizes)

    return pick


STRATEGY_FUNCTIONS: dict[str, Callable] = {
    "stream": _stream(False), "stream-fill": _stream(True), "stream-md": _stream(True, "random"),
    "seeded": _seeded, "mixed": _anchored(_anchor_picks), "mixed-md": _anchored(_thermal_picks),
    "random-anchored": _anchored(_anchor_picks, _random_rest), "random-anchored-stream": _anchored_stream,
    "greedy-atom": _greedy("atom"),
    "greedy-config": _greedy("config"),
    "entropy-random": _permutation("entropy"), "random": _permutation("random"), "direct": _direct,
    "quests-msc": _quests("msc"), "quests-fps": _quests("fps"), "quests-kmeans": _quests("kmeans"),
}
