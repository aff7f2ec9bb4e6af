"""The research strategies of benches/experiments/strategies.py (registered with the benchmark when imported)."""

import sys
from pathlib import Path

import numpy as np
import pytest

from dael.benchmark.strategies import POOL_KEYS, anchor_picks, select_sets, shuffled, stream_order

from pool_helpers import synthetic_pools

sys.path.insert(0, str(Path(__file__).parents[1] / "benches" / "experiments"))
import strategies as experiments  # noqa: E402  (benches/experiments is no package)


def test_round_robin_takes_every_group_before_any_repeats(rng):
    """The spread fill (benches/experiments/fill_spread.py): the filter's rejects round-robin over their
    trajectories, each trajectory's own order kept; the filter's picks and the set's members do not change."""
    round_robin = experiments.round_robin

    groups = ["a", "a", "a", "b", "c", "c"]
    assert round_robin(groups).tolist() == [0, 3, 4, 1, 5, 2]
    assert round_robin([]).tolist() == []
    pools = synthetic_pools(rng)
    n = len(pools.candidates["entropy"])
    plain = stream_order(pools, np.random.default_rng(3), n, fill=True)
    spread = experiments.stream_order_spread(pools, np.random.default_rng(3), n, fill=True)
    taken = stream_order(pools, np.random.default_rng(3), n)
    assert plain[:len(taken)] == spread[:len(taken)] == taken and sorted(plain) == sorted(spread)
    rest = [pools.entropy[int(k[1:])].info["trajectory"] for k in spread[len(taken):]]
    first_pass = list(dict.fromkeys(rest))
    assert rest[:len(first_pass)] == first_pass  # every trajectory once before any twice


def test_anchored_stream_filters_the_biased_pool_against_random_md_and_anchors(rng):
    """random-anchored-stream's filter is dataset-aware: its picks are what the filter accepts in the draw's
    exploration order with the state starting from the set's anchors and random MD (not from an empty
    state: there it would pick others), and random MD fills the places the filter leaves."""

    pools = synthetic_pools(rng, n=60)
    sets = select_sets("random-anchored-stream", pools, [20, 40], np.random.default_rng(4))
    draw = np.random.default_rng(4)  # the draw's stream: anchors, random-MD order, exploration order
    anchors, random = anchor_picks(pools, 8, draw), shuffled(pools, "random", draw)
    order = int(draw.integers(2**63))
    for n, keys in sets.items():
        a = round(0.2 * n)
        base = anchors[:a] + random[: n - 2 * a]
        start = [pools.fps[POOL_KEYS[k[0]]].of(int(k[1:])) for k in base]
        picks = stream_order(pools, np.random.default_rng(order), a, start=start)
        assert keys == base + picks + random[n - 2 * a: n - a - len(picks)] and len(set(keys)) == n
        assert picks != stream_order(pools, np.random.default_rng(order), a)


@pytest.mark.parametrize("strategy", list(experiments.EXPERIMENTS))
def test_every_research_strategy_fills_its_sets_from_candidates_only(strategy, rng):
    pools = synthetic_pools(rng)
    pools.candidates = {"entropy": np.arange(10, 60), "random": np.arange(10, 60)}
    sets = select_sets(strategy, pools, [4, 8], np.random.default_rng(0))
    assert set(sets) == {4, 8}
    for n, keys in sets.items():
        assert len(set(keys)) == len(keys) == n and all(key[0] == "a" or int(key[1:]) >= 10 for key in keys)
    mixed = select_sets("mixed", pools, [4, 8], np.random.default_rng(0))
    if strategy == "stream-md":
        assert all(k[0] == "r" for k in sets[8])
    if strategy == "seeded":  # one random-MD structure per grid point first (the synthetic pool has one)
        assert sets[4][0][0] == "r" and all(k[0] == "e" for k in sets[8][1:])
    if strategy == "mixed-md":  # the anchor share drawn from the random-MD pool, the rest the biased pool's
        assert sum(k[0] == "r" for k in sets[8]) == round(0.2 * 8) and sum(k[0] == "e" for k in sets[8]) == 6
    if strategy == "random-anchored-stream":  # mixed's anchors, at most as many filter picks, random MD
        assert [k for k in sets[8] if k[0] == "a"] == [k for k in mixed[8] if k[0] == "a"]
        assert 1 <= sum(k[0] == "e" for k in sets[8]) <= 2 and sum(k[0] == "r" for k in sets[8]) >= 4
    if strategy.startswith("greedy"):
        assert all(k[0] == "e" for k in sets[8]) and sets[4] == sets[8][:4]
