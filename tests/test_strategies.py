"""The benchmark's selection strategies: each fills its sets from the candidates only, as its definition says;
the registry the CLI and the report read."""

import numpy as np
import pytest

from dael.benchmark.strategies import interleave, select_sets
from dael.cli import app

from pool_helpers import synthetic_pools


def test_stream_sets_are_the_first_accepted_in_a_random_trajectory_order(rng):
    pools = synthetic_pools(rng)
    sets = select_sets("stream", pools, [5, 10], np.random.default_rng(1))
    assert sets[5] == sets[10][:5] and "e5" not in sets[10]
    steps = [(pools.entropy[int(k[1:])].info["trajectory"], pools.entropy[int(k[1:])].info["step"]) for k in sets[10]]
    for (t1, s1), (t2, s2) in zip(steps, steps[1:], strict=False):
        assert t1 != t2 or s1 < s2  # snapshots of one trajectory in step order
    other = select_sets("stream", pools, [10], np.random.default_rng(2))
    assert other[10] != sets[10]  # another draw explores in another order
    filled = select_sets("stream-fill", pools, [10, 50], np.random.default_rng(1))
    accepted = select_sets("stream", pools, [len(pools.entropy)], np.random.default_rng(1))
    assert not accepted  # the filter saturates before it takes the whole pool
    assert filled[10] == sets[10] and len(filled[50]) == 50 and "e5" not in filled[50]


@pytest.mark.parametrize("strategy", ["stream-fill", "mixed", "random-anchored", "entropy-random", "random", "direct",
                                      "quests-fps", "quests-msc", "quests-kmeans"])
def test_every_strategy_fills_its_sets_from_candidates_only(strategy, rng):
    pools = synthetic_pools(rng)
    pools.candidates = {"entropy": np.arange(10, 60), "random": np.arange(10, 60)}
    sets = select_sets(strategy, pools, [4, 8], np.random.default_rng(0))
    assert set(sets) == {4, 8}
    for n, keys in sets.items():
        assert len(set(keys)) == len(keys) and n - 1 <= len(keys) <= n  # QUESTS' k-means may drop a cluster
        for key in keys:
            assert key[0] == "a" or int(key[1:]) >= 10
    if strategy == "mixed":
        assert sum(k[0] == "a" for k in sets[8]) == round(0.2 * 8)
    if strategy == "random-anchored":  # mixed's anchors, the rest random MD
        assert sum(k[0] == "a" for k in sets[8]) == round(0.2 * 8) and sum(k[0] == "r" for k in sets[8]) == 6
        mixed = select_sets("mixed", pools, [4, 8], np.random.default_rng(0))
        assert [k for k in sets[8] if k[0] == "a"] == [k for k in mixed[8] if k[0] == "a"]


def test_interleave_keeps_the_anchor_share_in_every_prefix():
    order = interleave([f"a{i}" for i in range(4)], [f"e{i}" for i in range(16)], 0.2)
    assert len(order) == 20
    for n in (5, 10, 20):
        assert sum(k[0] == "a" for k in order[:n]) == n // 5


def test_the_help_and_the_report_read_the_one_list_of_strategies():
    """`dael benchmark --help` names every registered strategy and its default is DEFAULT_STRATEGIES; the report
    orders and colours pools by the same registry; research strategies are not part of the product."""
    import typer.main

    from dael.benchmark.report import pool_rank
    from dael.benchmark.strategies import DEFAULT_STRATEGIES, STRATEGIES

    bench = typer.main.get_command(app).get_command(None, "benchmark")
    option = next(p for p in bench.params if p.name == "strategies")
    product = {n for n, s in STRATEGIES.items() if s.group != "experiment"}
    assert all(name in option.help for name in product)
    assert option.default == ",".join(DEFAULT_STRATEGIES)
    assert [pool_rank(n) for n in STRATEGIES] == list(range(len(STRATEGIES))) and pool_rank("other") == len(STRATEGIES)
    assert all(s.colour.startswith("#") for s in STRATEGIES.values())
    assert {"stream", "stream-fill", "mixed", "random-anchored", "entropy-random", "random", "direct", "quests-msc",
            "quests-fps", "quests-kmeans"} <= product
    assert not {"stream-md", "seeded", "mixed-md", "greedy-atom"} & product


def test_strategy_names_groups_and_missing_packages(monkeypatch):
    """'peers' and 'all' stand for their groups; an unknown name is one error that lists the known ones; a
    strategy whose package is missing names the extra that installs it."""
    import dael.benchmark.strategies as strategies
    from dael.benchmark.strategies import check_strategies

    assert check_strategies(["mixed", "peers"]) == ["mixed", "direct", "quests-msc", "quests-fps", "quests-kmeans"]
    assert check_strategies(["random", "random"]) == ["random"]
    assert set(check_strategies(["all"])) == set(strategies.STRATEGIES)
    with pytest.raises(ValueError, match=r"unknown strategy 'mixd'; known: stream, .*peers, all"):
        check_strategies(["mixd"])
    monkeypatch.setattr(strategies, "find_spec", lambda name: None)
    with pytest.raises(ValueError, match=r"quests-msc needs the quests package: pip install 'dael\[peers\]'"):
        check_strategies(["peers"])
    with pytest.raises(ValueError, match="exists already"):
        strategies.register("mixed", strategies.STRATEGIES["mixed"])
