"""The exploration order of a grid's trajectories (dael.explore.order): what a small budget covers."""

import numpy as np
import pytest
from ase.build import bulk

import dael
from dael.benchmark.strategies import Pools, stream_order
from dael.explore.explorer import grid
from dael.explore.order import trajectory_order

GRID = [(phase, p, t, 0.25, 0.0) for phase in ("diamond", "graphite", "lonsdaleite") for p in (0.0, 20.0, 50.0)
        for t in (300.0, 1500.0, 3000.0) for _repeat in range(2)]


def test_stratified_order_balances_every_prefix():
    for seed in range(20):
        order = trajectory_order(GRID, "stratified", np.random.default_rng(seed))
        assert sorted(order) == list(range(len(GRID)))  # a permutation
        keys = [GRID[i] for i in order]
        assert len({k[0] for k in keys[:3]}) == 3  # the first three: one of each phase
        for phase in ("diamond", "graphite", "lonsdaleite"):  # the first nine: a Latin square per phase
            mine = [k for k in keys[:9] if k[0] == phase]
            assert sorted(k[1] for k in mine) == [0.0, 20.0, 50.0]
            assert sorted(k[2] for k in mine) == [300.0, 1500.0, 3000.0]
        assert len(set(keys[:27])) == 27  # every grid point before any repeat
    first = [trajectory_order(GRID, "stratified", np.random.default_rng(s))[:3].tolist() for s in range(5)]
    assert len({tuple(f) for f in first}) > 1  # random: another seed, another order


def test_random_order_can_miss_a_phase_the_stratified_cannot():
    """With 27 grid points of 3 phases the first 8 of a random order lack a phase with probability ≈ 0.06."""
    grid_points = GRID[::2]
    def missing(order: str) -> float:
        return np.mean([len({grid_points[i][0] for i in trajectory_order(grid_points, order,
                                                                          np.random.default_rng(s))[:8]}) < 3
                        for s in range(2000)])
    assert 0.04 < missing("random") < 0.08 and missing("stratified") == 0.0
    assert trajectory_order(grid_points, "grid", np.random.default_rng(0)).tolist() == list(range(27))
    with pytest.raises(ValueError, match="one of stratified, random, grid"):
        trajectory_order(grid_points, "shuffled", np.random.default_rng(0))


def test_grid_explores_in_the_stratified_order():
    phases = {"diamond": bulk("Si", "diamond", a=5.43, cubic=True),
              "beta-tin": bulk("Si", "diamond", a=5.1, cubic=True)}
    jobs = grid(phases, [0.0, 8.0, 15.0], [300.0, 2000.0], [0.25], seed=3, order="stratified")
    assert len({(j.phase, j.md.pressure, j.md.temperature) for j in jobs}) == 12
    assert jobs[0].phase != jobs[1].phase and len({j.md.pressure for j in jobs[:3]}) == 3
    assert [j.phase for j in grid(phases, [0.0, 8.0], [300.0], [0.25])] == ["diamond", "diamond", "beta-tin",
                                                                            "beta-tin"]  # the grid's own order


def test_stream_sets_take_trajectories_in_the_pools_order(rng):
    """The benchmark's stream strategies explore the pool's trajectories in `Pools.order`: stratified, every
    phase's first trajectory comes before any phase's second."""
    structures = []
    for t in range(8):
        for step in range(3):
            a = bulk("Si", "diamond", a=5.43 if t % 2 else 5.2, cubic=True)
            a.rattle(0.05, seed=int(rng.integers(1 << 30)))
            a.info.update({"trajectory": f"t{t}", "step": step, "phase": "diamond" if t % 2 else "squeezed",
                           "pressure_GPa": float(t // 4), "temperature_K": 300.0, "driver_energy": -5.0,
                           "relaxed_energy": -5.0})
            structures.append(a)
    fps = dael.fingerprint(structures, cutoff=4.0, natx=40)
    pools = Pools(structures, structures, structures, {"entropy": fps}, {"entropy": np.arange(len(structures))},
                  mode="atom", min_gain=-np.inf, order="stratified")
    for seed in range(5):
        keys = stream_order(pools, np.random.default_rng(seed), len(structures))
        phases = [structures[int(k[1:])].info["phase"] for k in keys]
        assert phases[0] != phases[3]  # trajectories of 3 snapshots: the second is of the other phase
        firsts = {structures[int(k[1:])].info["trajectory"] for k in keys[:12]}
        assert len({(structures[int(k[1:])].info["phase"], structures[int(k[1:])].info["pressure_GPa"])
                    for k in keys[:12]}) == 4 and len(firsts) == 4
