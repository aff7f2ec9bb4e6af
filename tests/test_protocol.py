"""The default protocol's pieces: the size-independent (k_B·T) bias, dual covariance modes, the energy window,
and the selection strategies of the benchmark."""

import numpy as np
import pytest
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress
from ase.calculators.lj import LennardJones

import dael
from dael.benchmark.strategies import Pools, select_sets
from dael.explore.md import GlobalEntropyBias
from dael.explore.window import excess_energy, in_window
from dael.numeric.dual import DISORDER, DualEntropy, disorder, load_state, modes
from dael.numeric.entropy import GlobalEntropy

from conftest import skewed

SETTINGS = dael.FingerprintSettings(4.0, 40, "s")


def lj():
    return LennardJones(sigma=2.0, epsilon=0.01, rc=5.0, smooth=True)


def si_cells(n, rng, rattle=0.1, cubic=True):
    return [skewed(bulk("Si", "diamond", a=5.43, cubic=cubic), rng, strain=0.02, rattle=rattle) for _ in range(n)]


@pytest.mark.parametrize("mode", ["atom", "config"])
def test_kT_bias_forces_and_stress_are_exact_derivatives(mode, rng):
    state = GlobalEntropy(mode, settings=SETTINGS)
    for atoms in si_cells(4, rng):
        state.add(dael.fingerprint(atoms, cutoff=4.0, natx=40))
    atoms = si_cells(1, rng, rattle=0.12)[0]
    atoms.calc = GlobalEntropyBias(lj(), dataset=state, k=0.5, scale="kT", temperature=1000.0)
    forces, stress = atoms.get_forces(), atoms.get_stress()
    np.testing.assert_allclose(forces, calculate_numerical_forces(atoms, eps=1e-5), rtol=1e-5, atol=2e-6)
    np.testing.assert_allclose(stress, calculate_numerical_stress(atoms, eps=1e-6), rtol=1e-5, atol=2e-7)


def test_kT_bias_pushes_each_atom_alike_whatever_the_cell_and_dataset_size(rng):
    """The same local environment gets the same bias force in an 8-atom and a 64-atom cell, and against a
    dataset of 4 or of 32 structures (of one distribution); the paper's scale does not."""
    cells = si_cells(32, rng)
    small, large = GlobalEntropy("atom", settings=SETTINGS), GlobalEntropy("atom", settings=SETTINGS)
    small.add(dael.fingerprint(cells[:4], cutoff=4.0, natx=40))
    large.add(dael.fingerprint(cells, cutoff=4.0, natx=40))
    probe = si_cells(1, rng, rattle=0.05)[0]
    big = probe.repeat((2, 2, 2))

    def bias_force(atoms, state, scale):
        calc = GlobalEntropyBias(lj(), dataset=state.copy(), k=0.5 if scale == "kT" else 2.0, scale=scale,
                                 temperature=1000.0)
        atoms = atoms.copy()
        atoms.calc = calc
        forces = atoms.get_forces()
        atoms.calc = lj()
        return np.abs(forces - atoms.get_forces()).mean()

    kt = [bias_force(a, s, "kT") for a in (probe, big) for s in (small, large)]
    paper = [bias_force(a, s, "paper") for a in (probe, big) for s in (small, large)]
    assert max(kt) / min(kt) < 2.5
    assert max(paper) / min(paper) > 5


def test_kT_scale_needs_a_temperature():
    with pytest.raises(ValueError, match="temperature"):
        GlobalEntropyBias(lj(), k=0.5, scale="kT")
    with pytest.raises(ValueError, match="bias scale"):
        GlobalEntropyBias(lj(), k=0.5, scale="huge", temperature=300)


def test_disorder_separates_a_crystal_from_a_random_cell(rng):
    crystal = skewed(bulk("Si", "diamond", a=5.43, cubic=True), rng, strain=0.0, rattle=0.02)
    amorphous = Atoms("Si8", scaled_positions=rng.random((8, 3)), cell=crystal.cell, pbc=True)
    fps = dael.fingerprint([crystal, amorphous], cutoff=5.0, natx=None)
    assert disorder(fps.of(0)) < DISORDER < disorder(fps.of(1))
    assert list(modes(fps)) == ["config", "atom"]


def test_dual_stream_judges_each_snapshot_in_its_mode_and_saves(rng, tmp_path):
    crystals = si_cells(6, rng, rattle=0.02)
    melts = [Atoms("Si8", scaled_positions=rng.random((8, 3)), cell=crystals[0].cell, pbc=True) for _ in range(3)]
    order = [crystals[0], melts[0], crystals[1], crystals[2], melts[1], crystals[3], melts[2]]
    fps = dael.fingerprint(order, cutoff=4.0, natx=40)
    dual = DualEntropy(settings=SETTINGS)
    gains, accepted = dual.stream(fps, -np.inf)
    assert accepted.all() and list(dual.last_modes) == ["config", "atom", "config", "config", "atom", "config", "atom"]
    # the same gains from single-mode states that see every accepted snapshot
    atom, config = GlobalEntropy("atom", settings=SETTINGS), GlobalEntropy("config", settings=SETTINGS)
    for k, mode in enumerate(dual.last_modes):
        expected = (atom if mode == "atom" else config).gain(fps.of(k))
        assert gains[k] == pytest.approx(expected, abs=1e-9)
        atom.add(fps.of(k))
        config.add(fps.of(k))
    assert dual.atom.logdet == pytest.approx(atom.logdet) and dual.config.logdet == pytest.approx(config.logdet)
    dual.save(tmp_path / "state.npz")
    back = load_state(tmp_path / "state.npz")
    assert isinstance(back, DualEntropy) and back.config.logdet == pytest.approx(config.logdet)
    # a budget stops the stream
    fresh = DualEntropy(settings=SETTINGS)
    assert fresh.stream(fps, -np.inf, budget=3)[1].sum() == 3


def test_energy_window_drops_snapshots_far_above_the_thermal_expectation():
    def snap(excess, t=1000.0):
        atoms = Atoms("Si")
        atoms.info.update({"driver_energy": -5.0 + 1.5 * units.kB * t + excess, "relaxed_energy": -5.0,
                           "temperature_K": t})
        return atoms

    assert excess_energy(snap(0.3)) == pytest.approx(0.3)
    assert list(in_window([snap(0.1), snap(0.7), snap(0.49, 3000), Atoms("Si")], 0.5)) == [True, False, True, True]
    assert in_window([snap(5.0)], None).all()


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


def test_round_robin_takes_every_group_before_any_repeats(rng):
    """The spread fill (benches/fill_spread.py): the filter's rejects round-robin over their trajectories,
    each trajectory's own order kept; the filter's picks and the set's members do not change."""
    from dael.benchmark.strategies import round_robin, stream_order

    groups = ["a", "a", "a", "b", "c", "c"]
    assert round_robin(groups).tolist() == [0, 3, 4, 1, 5, 2]
    assert round_robin([]).tolist() == []
    pools = synthetic_pools(rng)
    n = len(pools.candidates["entropy"])
    plain = stream_order(pools, np.random.default_rng(3), n, fill=True)
    spread = stream_order(pools, np.random.default_rng(3), n, fill=True, spread=True)
    taken = stream_order(pools, np.random.default_rng(3), n)
    assert plain[:len(taken)] == spread[:len(taken)] == taken and sorted(plain) == sorted(spread)
    rest = [pools.entropy[int(k[1:])].info["trajectory"] for k in spread[len(taken):]]
    first_pass = list(dict.fromkeys(rest))
    assert rest[:len(first_pass)] == first_pass  # every trajectory once before any twice


def test_the_filter_accepts_in_pool_order_inside_the_window(rng):
    """The paper's holdout subset: what a campaign's filter accepts in exploration (pool) order — never a
    snapshot outside the window, the first one always, the rejected ones never changing what follows (the
    accepted ones alone are all accepted again), and in another order another set."""
    from dael.benchmark.run import accepted_by_filter
    from dael.campaign.config import preset

    pools = synthetic_pools(rng)
    far = pools.entropy[5]  # outside the window, and novel: compressed by 15 %
    far.set_cell(0.85 * far.cell, scale_atoms=True)
    campaign = preset("Si")
    campaign.filter.mode, campaign.filter.min_gain, campaign.explore.window = "dual", 0.0, 0.5
    def accepted_by(structures):
        return accepted_by_filter(campaign, structures, dael.fingerprint(structures, cutoff=4.0, natx=40))

    accepted = accepted_by(pools.entropy)
    assert accepted[0] and not accepted[5] and 5 < accepted.sum() < len(accepted) - 5
    again = accepted_by([pools.entropy[i] for i in np.flatnonzero(accepted)])
    assert again.all()
    backwards = accepted_by(pools.entropy[::-1])[::-1]
    assert (backwards != accepted).any() and backwards[-1]
    campaign.explore.window = None  # the window acts as if the snapshot outside had never been produced
    assert accepted_by(pools.entropy)[5]
    rest = [a for k, a in enumerate(pools.entropy) if k != 5]
    assert list(accepted_by(rest)) == list(np.delete(accepted, 5))


@pytest.mark.parametrize("strategy", ["stream-fill", "stream-md", "seeded", "mixed", "mixed-md", "random-anchored",
                                      "random-anchored-stream", "greedy-atom", "greedy-config", "entropy-random",
                                      "random", "direct", "quests-fps", "quests-msc", "quests-kmeans"])
def test_every_strategy_fills_its_sets_from_candidates_only(strategy, rng):
    pools = synthetic_pools(rng)
    pools.candidates = {"entropy": np.arange(10, 60), "random": np.arange(10, 60)}
    sets = select_sets(strategy, pools, [4, 8], np.random.default_rng(0))
    assert set(sets) == {4, 8}
    for n, keys in sets.items():
        assert len(set(keys)) == len(keys) and n - 1 <= len(keys) <= n  # QUESTS' k-means may drop a cluster
        for key in keys:
            assert key[0] == "a" or int(key[1:]) >= 10
    if strategy == "stream-md":
        assert all(k[0] == "r" for k in sets[8])
    if strategy == "seeded":  # one random-MD structure per grid point first (the synthetic pool has one)
        assert sets[4][0][0] == "r" and all(k[0] == "e" for k in sets[8][1:])
    if strategy == "mixed":
        assert sum(k[0] == "a" for k in sets[8]) == round(0.2 * 8)
    if strategy == "mixed-md":  # the anchor share drawn from the random-MD pool, the rest the biased pool's
        assert sum(k[0] == "r" for k in sets[8]) == round(0.2 * 8) and sum(k[0] == "e" for k in sets[8]) == 6
    if strategy == "random-anchored":  # mixed's anchors, the rest random MD
        assert sum(k[0] == "a" for k in sets[8]) == round(0.2 * 8) and sum(k[0] == "r" for k in sets[8]) == 6
        mixed = select_sets("mixed", pools, [4, 8], np.random.default_rng(0))
        assert [k for k in sets[8] if k[0] == "a"] == [k for k in mixed[8] if k[0] == "a"]
    if strategy == "random-anchored-stream":  # mixed's anchors, at most as many filter picks, random MD
        mixed = select_sets("mixed", pools, [4, 8], np.random.default_rng(0))
        assert [k for k in sets[8] if k[0] == "a"] == [k for k in mixed[8] if k[0] == "a"]
        assert 1 <= sum(k[0] == "e" for k in sets[8]) <= 2 and sum(k[0] == "r" for k in sets[8]) >= 4


def test_anchored_stream_filters_the_biased_pool_against_random_md_and_anchors(rng):
    """random-anchored-stream's filter is dataset-aware: its picks are what the filter accepts in the draw's
    exploration order with the state starting from the set's anchors and random MD (not from an empty
    state: there it would pick others), and random MD fills the places the filter leaves."""
    from dael.benchmark.strategies import POOL_KEYS, _anchor_picks, _shuffled, stream_order

    pools = synthetic_pools(rng, n=60)
    sets = select_sets("random-anchored-stream", pools, [20, 40], np.random.default_rng(4))
    draw = np.random.default_rng(4)  # the draw's stream: anchors, random-MD order, exploration order
    anchors, random = _anchor_picks(pools, 8, draw), _shuffled(pools, "random", draw)
    order = int(draw.integers(2**63))
    for n, keys in sets.items():
        a = round(0.2 * n)
        base = anchors[:a] + random[: n - 2 * a]
        start = [pools.fps[POOL_KEYS[k[0]]].of(int(k[1:])) for k in base]
        picks = stream_order(pools, np.random.default_rng(order), a, start=start)
        assert keys == base + picks + random[n - 2 * a: n - a - len(picks)] and len(set(keys)) == n
        assert picks != stream_order(pools, np.random.default_rng(order), a)


def test_benchmark_sets_follow_the_sizes_asked_for(tmp_path, monkeypatch):
    """A rerun with more sizes draws the new ones (from the same seed stream) and keeps the saved ones; a
    rerun with fewer reports only those; a size a strategy cannot fill is remembered, not recomputed."""
    import dael.benchmark.run as benchmark
    import dael.benchmark.strategies as strategies
    from dael.campaign.config import preset

    calls = []

    def fake_select(strategy, pools, sizes, rng):
        calls.append((strategy, list(sizes)))
        order = [f"r{i}" for i in rng.permutation(50)]
        return {n: order[:n] for n in sizes if n <= 20}  # 40 cannot be filled

    monkeypatch.setattr(strategies, "select_sets", fake_select)
    monkeypatch.setattr(strategies, "Pools", lambda *args, **kwargs: None)
    campaign = preset("Si")
    data = {name: [Atoms("H", info={"hash": f"{name}{i}"}) for i in range(50)]
            for name in ("entropy", "random", "anchor")}
    settings = campaign.benchmark
    settings.sizes, settings.draws = [5], 1
    fp = dict.fromkeys(data)  # fingerprints are not read: the strategy and Pools are stand-ins
    first = benchmark._training_sets(campaign, data, fp, tmp_path, ["random"])
    settings.sizes = [5, 10, 40]
    more = benchmark._training_sets(campaign, data, fp, tmp_path, ["random"])
    assert set(more) == {("random", 0, 5), ("random", 0, 10)} and more[("random", 0, 5)] == first[("random", 0, 5)]
    assert more[("random", 0, 10)][:5] == first[("random", 0, 5)]  # nested: the same stream of picks
    settings.sizes = [10, 40]
    fewer = benchmark._training_sets(campaign, data, fp, tmp_path, ["random"])
    assert set(fewer) == {("random", 0, 10)}
    assert calls == [("random", [5]), ("random", [10, 40])]  # 40 was remembered as unfillable


def test_folder_records_read_every_evaluated_model_of_a_benchmark_folder(tmp_path):
    """folder_records: one record per model and evaluation set, named as model_dir names them; only errors
    and the MD share are kept, unevaluated or foreign folders are skipped."""
    from dael.benchmark.run import folder_records, job_records, model_dir
    from dael.util.files import mark

    result = {"test": {"structures": 3, "energy_mae": 1.5, "force_rmse": 2.0}, "md": {"survived": 0.5}}
    for folder in (model_dir(tmp_path, ("random-anchored", 1, 400)), model_dir(tmp_path, ("mixed", 0, 100)),
                   tmp_path / "models" / "notes"):
        folder.mkdir(parents=True)
    mark(model_dir(tmp_path, ("random-anchored", 1, 400)) / "evaluation.json", result)
    mark(tmp_path / "models" / "notes" / "evaluation.json", result)  # not a model's name; mixed: not evaluated
    records = folder_records(tmp_path)
    assert records == job_records(("random-anchored", 1, 400), result) == [
        {"pool": "random-anchored", "size": 400, "draw": 1, "set": "test", "energy_mae": 1.5, "force_rmse": 2.0},
        {"pool": "random-anchored", "size": 400, "draw": 1, "set": "md", "survived": 0.5}]
