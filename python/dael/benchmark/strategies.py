"""Training-set selection strategies compared by the benchmark (docs/method.md §6), listed once in `STRATEGIES`
(the CLI's help and the report read it).

Every strategy picks, for one draw, training sets of the requested sizes from labelled pools. A set is a list of
keys "e<i>" (entropy pool: biased MD), "r<i>" (random-MD pool) or "a<i>" (anchors), i the index in that pool;
holdout structures are never offered.

dael's:
- stream (the authors' protocol): the entropy pool's trajectories in an exploration order of the draw
  (`explore.order`, by default stratified over phases and conditions: dael.explore.order), snapshots in step
  order; those inside the energy window whose gain over the set as it is then exceeds min_gain join it at once
  (dael.selection.stream). The set of size N is the first N accepted: what `dael run` with budget N labels.
- stream-fill: `stream`, then, once the filter has taken all it will (it saturates: ΔH > 0 accepted ~10 % of
  the Si pool), the rest of the window's snapshots in the same exploration order: any N up to the pool.
- mixed: `anchor_fraction` of N near-equilibrium anchors (greedy ΔH), the rest as `stream-fill`, interleaved:
  what a campaign labels.
Controls:
- random-anchored: mixed's anchors, the rest a random permutation of the random-MD pool, interleaved: random MD
  plus relaxed and strained cells, what a user without dael would label; against `mixed` it isolates what the
  bias and the filter add to the anchors, against `random` what the anchors add to random MD.
- entropy-random: a random permutation of the entropy pool (the pool without selection).
- random: a random permutation of the random-MD pool (the baseline).
Peers' methods on the same pools (`--strategies peers`): dael.benchmark.peers.
Research strategies register themselves from benches/experiments/strategies.py (`register`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.util import find_spec

import numpy as np
from ase import Atoms

from dael.explore.order import grid_key, trajectory_order
from dael.numeric.entropy import GlobalEntropy
from dael.numeric.fingerprint import Fingerprints
from dael.selection.stream import filter_rows

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
Pick = Callable[[Pools, Sequence[int], np.random.Generator], Sets]
POOL_KEYS = {"e": "entropy", "r": "random", "a": "anchor"}
"""The pool of a key's first letter."""


@dataclass(frozen=True)
class Strategy:
    """A selection strategy: its picks, its group ('dael', 'control', 'peer' or 'experiment'), its colour in the
    report, one line saying what it is, and the optional package it needs (and the extra that installs it)."""

    pick: Pick
    group: str
    colour: str
    summary: str
    package: str | None = None
    extra: str | None = None


STRATEGIES: dict[str, Strategy] = {}
"""Every strategy by name, in the order the help and the report list them."""
DEFAULT_STRATEGIES = ("stream", "stream-fill", "mixed", "random-anchored", "entropy-random", "random")
"""`dael benchmark`'s strategies: the filter, its filled and anchored sets, and three controls (the entropy pool
without selection, random MD with the same anchors, random MD)."""
GROUP_NAMES = {"peers": "peer"}
"""Names on the command line that stand for a group of strategies ('all': every registered one)."""


def register(name: str, strategy: Strategy) -> None:
    """Add a strategy (research scripts register theirs before they run a benchmark)."""
    if name in STRATEGIES or name in GROUP_NAMES or name == "all":
        raise ValueError(f"a strategy named {name!r} exists already")
    STRATEGIES[name] = strategy


def check_strategies(names: Sequence[str]) -> list[str]:
    """The strategies `names` stand for ('peers' and 'all' expanded), each known and with its package installed;
    one ValueError naming the first problem and its fix."""
    out: list[str] = []
    for name in names:
        if name == "all":
            out += list(STRATEGIES)
        elif name in GROUP_NAMES:
            out += [s for s, strategy in STRATEGIES.items() if strategy.group == GROUP_NAMES[name]]
        elif name in STRATEGIES:
            out.append(name)
        else:
            raise ValueError(f"unknown strategy {name!r}; known: {', '.join(STRATEGIES)}, or "
                             f"{', '.join([*GROUP_NAMES, 'all'])}")
    for name in dict.fromkeys(out):
        strategy = STRATEGIES[name]
        if strategy.package and find_spec(strategy.package) is None:
            raise ValueError(f"strategy {name} needs the {strategy.package} package: pip install "
                             f"'dael[{strategy.extra}]'")
    return list(dict.fromkeys(out))


def select_sets(strategy: str, pools: Pools, sizes: Sequence[int], rng: np.random.Generator) -> Sets:
    """{N: keys} for each size N the strategy can fill (a stream that accepts fewer than N skips N)."""
    return STRATEGIES[check_strategies([strategy])[0]].pick(pools, sorted(sizes), rng)


def prefixes(order: Sequence[str], sizes: Sequence[int]) -> Sets:
    """The first N keys of `order` for each N it can fill."""
    return {n: list(order[:n]) for n in sizes if len(order) >= n}


def stream_order(pools: Pools, rng: np.random.Generator, budget: int, fill: bool = False,
                 start: Sequence[np.ndarray] = (), pool: str = "entropy") -> list[str]:
    """Keys of `pool` in the order the streaming filter accepts them, trajectories in the exploration order
    `pools.order` of the draw (dael.explore.order); fill: followed by the snapshots it did not accept (inside
    the window), in the same order; start: per-atom fingerprints (one block per structure) already in the
    dataset (the filter's state begins with them)."""
    ordered, accepted = filtered(pools, rng, budget, start, pool)
    order = ordered[accepted]
    if fill:
        order = np.concatenate([order, ordered[~accepted]])
    return [f"{pool[0]}{i}" for i in order[:budget]]


def filtered(pools: Pools, rng: np.random.Generator, budget: int, start: Sequence[np.ndarray] = (),
             pool: str = "entropy") -> tuple[np.ndarray, np.ndarray]:
    """The candidates of `pool` inside the window, in the draw's exploration order (trajectories ordered by
    dael.explore.order, snapshots by step), and the mask of those the streaming filter accepts (at most
    `budget`)."""
    structures, fps = getattr(pools, pool), pools.fps[pool]
    cand = pools.candidates[pool]
    names = [str(structures[i].info.get("trajectory", i)) for i in cand]
    trajectories = list(dict.fromkeys(names))
    tags = {name: structures[i].info for name, i in zip(names, cand, strict=True)}  # the same per trajectory
    keys = [grid_key(tags[t]) for t in trajectories]
    rank = {trajectories[i]: r for r, i in enumerate(trajectory_order(keys, pools.order, rng))}
    steps = [float(structures[i].info.get("step", 0)) for i in cand]
    ordered = cand[sorted(range(len(cand)), key=lambda k: (rank[names[k]], steps[k]))]
    return filter_rows(structures, fps, ordered, pools.window, pools.mode, pools.eps, pools.min_gain, budget,
                       start)


def blocks(fps: Fingerprints, rows: np.ndarray) -> list[np.ndarray]:
    """The per-atom fingerprint blocks of `rows`."""
    return [fps.of(int(i)) for i in rows]


def streamed(fill: bool, pool: str = "entropy") -> Pick:
    """`stream` (fill False) or `stream-fill` over `pool`."""
    def pick(pools: Pools, sizes: Sequence[int], rng: np.random.Generator) -> Sets:
        return prefixes(stream_order(pools, rng, max(sizes), fill, pool=pool), sizes)

    return pick


def anchor_picks(pools: Pools, n: int, rng: np.random.Generator) -> list[str]:
    """n near-equilibrium anchors: greedy ΔH over a random DRAW_SHARE of the anchor pool."""
    sub = np.sort(rng.choice(len(pools.anchor), size=max(1, int(DRAW_SHARE * len(pools.anchor))), replace=False))
    state = GlobalEntropy("atom", pools.eps, pools.fps["anchor"].settings)
    picks, _ = state.greedy(blocks(pools.fps["anchor"], sub), n, min_gain=-np.inf)
    return [f"a{sub[i]}" for i in picks]


def stream_rest(pools: Pools, n: int, rng: np.random.Generator) -> list[str]:
    return stream_order(pools, rng, n, fill=True)


def shuffled(pools: Pools, pool: str, rng: np.random.Generator) -> list[str]:
    """The candidates of `pool` ('entropy' or 'random') as keys, in a random order."""
    return [f"{pool[0]}{i}" for i in rng.permutation(pools.candidates[pool])]


def random_rest(pools: Pools, n: int, rng: np.random.Generator) -> list[str]:
    return shuffled(pools, "random", rng)[:n]


def anchored(anchors: Callable = anchor_picks, rest: Callable = stream_rest) -> Pick:
    """`anchor_fraction` of the largest N from anchors(pools, n, rng), the rest from rest(pools, n, rng)
    (`stream-fill` by default), interleaved so that every size holds its share."""
    def pick(pools: Pools, sizes: Sequence[int], rng: np.random.Generator) -> Sets:
        n_max = max(sizes)
        chosen = anchors(pools, int(round(pools.anchor_fraction * n_max)), rng)
        others = rest(pools, n_max - len(chosen), rng)
        return prefixes(interleave(chosen, others, pools.anchor_fraction), sizes)

    return pick


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


def permutation(pool: str) -> Pick:
    """A random permutation of `pool`."""
    def pick(pools: Pools, sizes: Sequence[int], rng: np.random.Generator) -> Sets:
        return prefixes(shuffled(pools, pool, rng), sizes)

    return pick


for _name, _strategy in {
    "stream": Strategy(streamed(False), "dael", "#1f77b4", "the filter's acceptances in exploration order"),
    "stream-fill": Strategy(streamed(True), "dael", "#aec7e8", "stream, then the rest of the biased pool"),
    "mixed": Strategy(anchored(), "dael", "#2ca02c", "near-equilibrium anchors + stream-fill (what a campaign "
                                                     "labels)"),
    "random-anchored": Strategy(anchored(rest=random_rest), "control", "#ff9f1c", "mixed's anchors + random MD"),
    "entropy-random": Strategy(permutation("entropy"), "control", "#17becf", "the biased pool, no selection"),
    "random": Strategy(permutation("random"), "control", "#d62728", "random MD (the baseline)"),
}.items():
    register(_name, _strategy)
