"""The research scripts of benches/experiments that handle labels or results: the pool subset (its labels go back
into the full folder, none lost), the strategy bars (mean ± standard error over draws), joined learning curves;
and every script of benches/ and benches/experiments imports against today's dael (experiments.md cites them)."""

import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
from ase.io import write

from dael.benchmark.pools import check_stored
from dael.data.dataset import Dataset, structure_hash

sys.path.insert(0, str(Path(__file__).parents[1] / "benches" / "experiments"))
import beta_tin_pbe  # noqa: E402  (benches/experiments is no package)
import check_table  # noqa: E402
import curves_by_system  # noqa: E402
import decision  # noqa: E402
import local_term  # noqa: E402
import pool_subset  # noqa: E402
import robustness_table  # noqa: E402
import set_composition  # noqa: E402
import signed_errors  # noqa: E402
import strategy_bars  # noqa: E402

ORACLE = "fake-dft"


def cell(k: int, **info):
    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    atoms.positions[0] += 0.01 * k
    atoms.info.update(info)
    return atoms


def full_folder(folder: Path, repeats: int = 1) -> dict[str, list]:
    """A benchmark folder of small pools (per repeat two trajectories of 4 snapshots per MD pool, named with
    their seeds as the benchmark's are; anchors, a test set) whose labels.db holds every structure, the first
    three entropy snapshots labelled by a fake oracle."""
    k = iter(range(1000))
    traj = [cell(next(k), phase="diamond", pressure_GPa=0.0, temperature_K=t,
                 trajectory=f"t{t:g}_s{7 + n + 10_000 * rep}", step=s)
            for rep in range(repeats) for n, t in enumerate((300.0, 1000.0)) for s in (10, 20, 30, 40)]
    pools = {"entropy": traj,
             "random": [cell(next(k), **{**a.info, "trajectory": "r" + a.info["trajectory"]}) for a in traj],
             "anchor": [cell(next(k), phase="diamond", pressure_GPa=0.0, kind=kind)
                        for kind in ("relaxed", "strain 0.95", "strain 0.97", "strain 1.05", "thermal", "thermal")],
             "test": [cell(next(k), phase="diamond", pressure_GPa=0.0, kind="strain 0.92")]
             + [cell(next(k), phase="diamond", pressure_GPa=0.0, temperature_K=2000.0, trajectory="x", step=s)
                for s in (10, 20, 30)]}
    (folder / "pools").mkdir(parents=True)
    for name, structures in pools.items():
        write(folder / "pools" / f"{name}.extxyz", structures, format="extxyz")
    write(folder / "pools" / "md-starts.extxyz", traj[:1], format="extxyz")
    db = Dataset(folder / "labels.db")
    for name, structures in pools.items():
        db.add(structures, oracle=ORACLE, source="test" if name == "test" else name)
    for i, (row, atoms) in enumerate(db.pending()[:3]):
        db.record_result(row, atoms, {"energy": -1.0 - i, "forces": np.zeros((8, 3))}, seconds=5.0)
    return pools


class PerAtom(Calculator):
    """A stand-in model: the same energy per atom (eV) for every structure."""

    implemented_properties = ["energy"]

    def __init__(self, value: float):
        super().__init__()
        self.value = value

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.results = {"energy": self.value * len(atoms)}


def test_signed_errors_give_each_models_error_per_test_structure_beside_its_oracle_energy(tmp_path):
    pools = full_folder(tmp_path)
    db = Dataset(tmp_path / "labels.db")
    pending = {structure_hash(atoms): (row, atoms) for row, atoms in db.pending()}
    hot = [pending[structure_hash(a)] for a in pools["test"] if a.info.get("temperature_K") == 2000.0]
    for (row, atoms), e in zip(hot, (-1.0, -0.95, -0.9), strict=True):  # eV/atom
        db.record_result(row, atoms, {"energy": 8 * e, "forces": np.zeros((8, 3))}, seconds=5.0)
    for name in ("random-N4-d0", "mixed-N4-d0", "mixed-N8-d0"):
        (tmp_path / "models" / name).mkdir(parents=True)
    models = {"mixed-N4-d0": PerAtom(-1.0), "random-N4-d0": PerAtom(-0.9)}
    text = signed_errors.table(tmp_path, "diamond 0 GPa 2000 K", 4, lambda path: models[path.parent.name])
    lines = text.splitlines()
    assert lines[1] == "| model | 0 | 50 | 100 | mean |"
    assert lines[3] == "| mixed-N4-d0 | +0.0 | -50.0 | -100.0 | -50.0 |"  # mixed before random; N = 8 left out
    assert lines[4] == "| random-N4-d0 | +100.0 | +50.0 | +0.0 | +50.0 |"
    assert lines[5].startswith("entropy pool at diamond 0 GPa 2000 K") and lines[5].endswith(": []")  # none there
    # the three labelled entropy snapshots at 300 K (-1, -2, -3 eV per 8 atoms), above -0.5 eV/atom
    assert signed_errors.pool_energies(tmp_path, "diamond 0 GPa 300 K", -0.5) == {"entropy": [125, 250, 375],
                                                                                   "random": []}
    with pytest.raises(SystemExit, match="no test structure"):
        signed_errors.table(tmp_path, "diamond 8 GPa 2000 K", 4, lambda path: models[path.parent.name])
    with pytest.raises(SystemExit, match="no label"):  # the 300 K test structures: none here, the strain probe
        signed_errors.condition_structures(tmp_path, "diamond 0 GPa strains")


def test_a_pool_subset_is_balanced_and_its_labels_go_back_into_the_full_folder(tmp_path):
    full_folder(tmp_path / "full")
    pool_subset.write_subset(tmp_path / "full", tmp_path / "sub")
    sub = Dataset(tmp_path / "sub" / "labels.db")
    # every other snapshot per trajectory (2 × 2 + 2 × 2), four anchor kinds, the probe and the middle MD snapshot
    assert len(sub) == 8 + 4 + 2 and sub.counts()["labeled"] == 2  # entropy steps 10 and 30 of t300 were labelled
    steps = sorted(a.info["step"] for a in sub.structures(None, sources=["entropy"]))
    assert steps == [10, 10, 30, 30]
    assert sorted(a.info.get("kind", "md") for a in sub.structures(None, sources=["test"])) == ["md", "strain 0.92"]
    assert (tmp_path / "sub" / "pools" / "transfer.extxyz").stat().st_size == 0
    assert not (tmp_path / "sub" / "labels.done").exists()  # rows still pending
    with pytest.raises(SystemExit, match="exists"):
        pool_subset.write_subset(tmp_path / "full", tmp_path / "sub")
    # the subset's run labels the rest; merge records them on the full folder's pending rows, once
    for i, (row, atoms) in enumerate(sub.pending()):
        sub.record_result(row, atoms, {"energy": -10.0 - i, "forces": np.full((8, 3), 0.1)}, seconds=7.0)
    assert pool_subset.mark_if_labelled(tmp_path / "sub") == "labelled 14, pending 0, failed 0"
    energies = {a.info["hash"]: a.get_potential_energy() for a in sub.structures()}
    pool_subset.merge(tmp_path / "full", tmp_path / "sub")
    pool_subset.merge(tmp_path / "full", tmp_path / "sub")
    full = Dataset(tmp_path / "full" / "labels.db")
    labelled = {a.info["hash"]: a for a in full.structures()}
    assert len(labelled) == 3 + 12 and len(full) == 8 + 8 + 6 + 4
    for h, e in energies.items():
        assert labelled[h].get_potential_energy() == pytest.approx(e)
    assert all(np.allclose(labelled[h].get_forces(), 0.1) for h in energies if energies[h] <= -10.0)
    assert not (tmp_path / "full" / "labels.done").exists()  # the full folder still has pending rows
    check_stored(tmp_path / "sub")  # a subset labelled in full is what --no-oracle needs


def test_a_pool_subset_keeps_the_named_pools_whole(tmp_path):
    pools = full_folder(tmp_path / "full")
    pool_subset.write_subset(tmp_path / "full", tmp_path / "sub", whole=("entropy", "random", "anchor"))
    sub = Dataset(tmp_path / "sub" / "labels.db")
    # the training pools whole (8 + 8 + 6), the test set cut to its probe and its middle MD snapshot
    assert len(sub) == 8 + 8 + 6 + 2 and sub.counts()["labeled"] == 3
    for name in ("entropy", "random", "anchor"):
        kept = {a.info["hash"] for a in sub.structures(None, sources=[name])}
        assert len(kept) == len(pools[name])
    assert len(list(sub.structures(None, sources=["test"]))) == 2


def test_a_grown_folder_cut_to_its_first_repeat_is_the_folder_before_it_grew(tmp_path):
    before = full_folder(tmp_path / "one")
    grown = full_folder(tmp_path / "full", repeats=3)
    assert len(grown["entropy"]) == 3 * len(before["entropy"])
    everything = ("entropy", "random", "anchor", "test")
    for repeats in (1, 2):
        pool_subset.write_subset(tmp_path / "full", tmp_path / f"sub{repeats}", whole=everything, repeats=repeats)
    cut = {name: [a.info["hash"] for a in Dataset(tmp_path / "sub1" / "labels.db").structures(None, sources=[name])]
           for name in everything}
    assert cut == {name: [structure_hash(a) for a in grown[name][:len(before[name])]] for name in everything}
    two = Dataset(tmp_path / "sub2" / "labels.db")
    assert {a.info["trajectory"] for a in two.structures(None, sources=["random"])} == {
        "rt300_s7", "rt1000_s8", "rt300_s10007", "rt1000_s10008"}
    with pytest.raises(SystemExit, match="'t300' does not end in _s<seed>"):
        pool_subset.first_repeats([cell(0, trajectory="t300")], 1)
    # a grown anchor pool appends: --anchors keeps the first ones, in stored order
    pool_subset.write_subset(tmp_path / "full", tmp_path / "sub-a4", whole=everything, repeats=2, anchors=4)
    kept = [a.info["hash"] for a in Dataset(tmp_path / "sub-a4" / "labels.db").structures(None, sources=["anchor"])]
    assert kept == [structure_hash(a) for a in grown["anchor"][:4]]
    with pytest.raises(SystemExit, match="--anchors 7: .* holds 6"):
        pool_subset.write_subset(tmp_path / "full", tmp_path / "sub-a7", whole=everything, anchors=7)


def test_strategy_bars_average_the_draws_of_one_size():
    records = [{"set": "test", "pool": "mixed", "size": 50, "draw": d, "energy_mae": v}
               for d, v in enumerate([1.0, 2.0, 3.0])]
    records += [{"set": "test", "pool": "mixed", "size": 100, "draw": 0, "energy_mae": 9.0},
                {"set": "test", "pool": "random", "size": 50, "draw": 0, "energy_mae": float("nan")}]
    values = strategy_bars.bars(records, 50, ["test"], ["mixed", "random"], "energy_mae")
    assert list(values) == [("test", "mixed")]
    mean, se, n = values[("test", "mixed")]
    assert (mean, n) == (2.0, 3) and se == pytest.approx(1.0 / np.sqrt(3))


def test_the_local_term_is_adopted_only_if_mixed_keeps_the_test_and_gains_on_the_holdout_or_its_own_md():
    def folder(test, held_mixed, held_random, md):
        values = {("test", "mixed"): test, ("holdout-entropy-accepted", "mixed"): held_mixed,
                  ("holdout-entropy-accepted", "random"): held_random, ("md", "mixed"): md}
        return decision.table([{"set": s, "pool": p, "size": 400, "draw": d, "energy_mae": v[d]}
                               for (s, p), v in values.items() for d in range(2)])

    without = folder([5.0, 5.2], [4.0, 4.2], [8.0, 8.4], [10.0, 10.4])   # held ratio 2.0
    gains = folder([5.2, 5.4], [2.0, 2.2], [8.0, 8.4], [10.0, 10.4])     # test 0.96x, held ratio 3.9
    assert local_term.verdict(without, gains, 400).endswith("k_l > 0 for this system")
    costs = folder([7.0, 7.2], [2.0, 2.2], [8.0, 8.4], [4.0, 4.2])       # test 0.72x, outside the errors
    assert "-> worse" in local_term.verdict(without, costs, 400)
    assert local_term.verdict(without, costs, 400).endswith("k_l = 0 stays for this system")
    level = folder([5.0, 5.2], [4.0, 4.4], [8.0, 8.4], [9.8, 10.6])      # gains within the errors
    assert local_term.verdict(without, level, 400).endswith("k_l = 0 stays for this system")
    md_only = folder([5.0, 5.2], [4.0, 4.2], [8.0, 8.4], [6.0, 6.2])
    assert "own MD energy of mixed 10.20 ± 0.20 without, 6.10 ± 0.10 with -> better" in local_term.verdict(
        without, md_only, 400)
    r, se = local_term.ratio((8.2, 0.2, 2), (4.1, 0.1, 2))
    assert r == pytest.approx(2.0) and se == pytest.approx(2.0 * np.hypot(0.2 / 8.2, 0.1 / 4.1))
    with pytest.raises(SystemExit, match=r"not evaluated: md of mixed \(with the local term\)"):
        local_term.verdict(without, folder([5.0, 5.2], [4.0, 4.2], [8.0, 8.4], [float("nan")] * 2), 400)
    table = local_term.rows(without, gains, 400, sets=("test",))
    assert table[2] == "| test | mixed | 5.10 ± 0.10 | – | 5.30 ± 0.10 | – |"
    hot = {("test-3000K", "mixed", 400): {}, ("test-300K", "mixed", 400): {}}
    assert local_term.by_temperature(hot, {("test-1500K", "random", 400): {}, ("test", "mixed", 400): {}}) == [
        "test-300K", "test-1500K", "test-3000K"]  # C's grid: by temperature, not by name


def test_joined_folders_are_one_curve_of_different_sizes():
    a = [{"set": "test", "pool": "mixed", "size": 50, "draw": d, "energy_mae": 2.0} for d in range(3)]
    b = [{"set": "test", "pool": "mixed", "size": 100, "draw": d, "energy_mae": 1.0} for d in range(3)]
    assert len(curves_by_system.joined([a, b])) == 6
    with pytest.raises(SystemExit, match=r"N = \[50\] is in two"):
        curves_by_system.joined([a, a])



def test_robustness_table_pools_the_draws_runs_per_condition(tmp_path):
    def run(phase, failed, t=None, kind=None):
        return {"phase": phase, "pressure_GPa": 15.0, "temperature_K": 2000.0, "failed": failed, "kind": kind,
                "time_to_failure_ps": t, "ps": 1.0}

    for d, runs in enumerate([[run("diamond", False), run("beta-tin", True, 0.4, "close contact")],
                              [run("diamond", True, 0.2, "energy drop"), run("beta-tin", True, 0.6, "close contact")]]):
        (tmp_path / "models" / f"random-anchored-N100-d{d}").mkdir(parents=True)
        (tmp_path / "models" / f"random-anchored-N100-d{d}" / "evaluation.json").write_text(
            json.dumps({"robustness": {"runs": runs}}))
    (tmp_path / "models" / "random-N100-d0").mkdir()
    (tmp_path / "models" / "random-N100-d0" / "evaluation.json").write_text("{}")  # no robustness: left out
    runs = robustness_table.pooled(tmp_path)
    assert list(runs) == [("random-anchored", 100)] and len(runs[("random-anchored", 100)]) == 4
    row = robustness_table.table(runs).splitlines()[-1]
    assert row.startswith("| random-anchored | 100 | 3/4 | 1 | 2/2 | 1/2 |")  # beta-tin, then diamond
    assert "close contact 2, energy drop 1" in row and "median 0.40 (0.20, 0.40, 0.60)" in row


def test_check_table_pools_the_md_and_lists_each_models_physics(tmp_path):
    """Two `dael check` results of one model (md, physics: EMT on fcc Cu) and a second draw whose phase was lost
    (edited, as a model that relaxed it into another space group): the MD runs pooled, one physics row a draw."""
    from ase.calculators.emt import EMT

    from dael.check import CheckSettings, check_model

    cu = {"fcc": bulk("Cu", "fcc", a=3.6, cubic=True)}
    md = check_model(EMT(), cu, [0.0], [600.0], CheckSettings(checks=["md"], md_ps=0.02, seeds=1, atoms=4))
    physics = check_model(EMT(), cu, [0.0], [600.0], CheckSettings(checks=["phases", "eos", "phonons"],
                                                                   phonon_atoms=4))
    (tmp_path / "mixed-N400-d0-md.json").write_text(json.dumps(md))
    (tmp_path / "mixed-N400-d0-physics.json").write_text(json.dumps(physics))
    physics["phases"]["phases"][0] |= {"kept": False, "relaxed": "P6/mmm (191)"}
    (tmp_path / "mixed-N400-d1-physics.json").write_text(json.dumps(physics))
    checks = check_table.results(sorted(tmp_path.glob("*.json")))
    assert set(checks) == {("mixed", 400, 0), ("mixed", 400, 1)} and "md" in checks[("mixed", 400, 0)]
    rows = check_table.physics(checks).splitlines()[2:]
    assert rows[0].startswith("| mixed | 400 | 0 | 1/1 | – | smooth, one minimum | ")
    assert rows[1].startswith("| mixed | 400 | 1 | 0/1 | fcc 0 → P6/mmm (191) | ")
    lowest = min(e["lowest_cm1"] for e in physics["phonons"]["phases"])
    assert rows[0].endswith(f"| {lowest:.1f} |")
    with pytest.raises(SystemExit, match="not named"):
        check_table.results([tmp_path / "x.json"])


def test_beta_tin_strained_is_imma_and_its_primitive_cell_keeps_it_and_the_table_reads_rows():
    """β-tin Si (a = 4.686, c = 2.585 Å, 4 atoms): a ±1 % a/b strain lowers I4_1/amd to Imma, which its
    primitive cell (2 atoms) keeps; the table gives each start's enthalpy above the seed group's."""
    from ase.spacegroup import crystal

    from dael.check.physics import space_group

    tin = crystal("Si", [(0, 0, 0)], spacegroup=141, cellpar=[4.686, 4.686, 2.585, 90, 90, 90])  # 4a, 4 atoms
    assert space_group(tin, 0.01) == "I4_1/amd (141)"
    strained = beta_tin_pbe.strained(tin, 0.01, 0.1)
    assert space_group(strained, 1e-3) == "Imma (74)" and len(strained) == 4
    assert len(beta_tin_pbe.primitive(strained, 1e-4)) == 2
    assert space_group(beta_tin_pbe.primitive(tin, 0.1), 1e-3) == "I4_1/amd (141)"
    assert beta_tin_pbe.split({"abc": [4.64, 4.73, 2.58]}) == pytest.approx(0.09)
    row = {"space_group": "I4_1/amd (141)", "abc": [4.7, 4.7, 2.6], "pressure_GPa": 15.0}
    rows = [{**row, "by": "gpaw", "from": "I4_1/amd (141)", "enthalpy_eV_atom": -3.742},
            {**row, "by": "gpaw", "from": "P6/mmm (191)", "space_group": "P6/mmm (191)", "enthalpy_eV_atom": -3.758}]
    assert beta_tin_pbe.enthalpy_table(rows).splitlines()[-1] == "| gpaw | 15 | P6/mmm (191) (0.000), -16.0 |"
    strained_first = [{**rows[0], "from": "I4_1/amd (141) strained ±0.01", "enthalpy_eV_atom": -3.7425}, *rows]
    table = beta_tin_pbe.enthalpy_table(strained_first).splitlines()  # files read strained-rows first
    assert table[0].count("from ") == 2
    assert table[-1] == "| gpaw | 15 | I4_1/amd (141) (0.000), -0.5 | P6/mmm (191) (0.000), -16.0 |"


BENCHES = Path(__file__).parents[1] / "benches"


@pytest.mark.parametrize("script", sorted([*BENCHES.glob("*.py"), *(BENCHES / "experiments").glob("*.py")]),
                         ids=lambda p: p.relative_to(BENCHES).as_posix())
def test_every_bench_and_research_script_imports(script, monkeypatch):
    monkeypatch.syspath_prepend(str(script.parent))
    module = importlib.import_module(script.stem)
    assert module.__file__ == str(script)


def test_set_composition_counts_a_models_structures_by_pool_and_condition_beside_its_test_error(tmp_path):
    pools = full_folder(tmp_path)
    model = tmp_path / "models" / "mixed-N4-d0"
    (model / "data").mkdir(parents=True)
    stranger = cell(999)
    write(model / "data" / "train.extxyz", [pools["entropy"][0], pools["entropy"][5], pools["anchor"][1]],
          format="extxyz")
    write(model / "data" / "val.extxyz", [pools["random"][6], stranger], format="extxyz")
    (model / "evaluation.json").write_text(json.dumps({
        "test": {"energy_mae": 9.0}, "test@diamond 0 GPa 1000 K": {"energy_mae": 3.5},
        "test@diamond 0 GPa 300 K": {"energy_mae": 1.25}, "test@diamond 0 GPa strains": {"energy_mae": 7.0}}))
    counts = set_composition.composition(model, set_composition.pool_index(tmp_path))
    assert counts == {("entropy", "test@diamond 0 GPa 300 K"): 1, ("entropy", "test@diamond 0 GPa 1000 K"): 1,
                      ("anchor", "strain 0.95"): 1, ("random", "test@diamond 0 GPa 1000 K"): 1, ("unknown", None): 1}
    assert set_composition.condition_errors(model) == {"test@diamond 0 GPa 1000 K": 3.5,
                                                       "test@diamond 0 GPa 300 K": 1.25,
                                                       "test@diamond 0 GPa strains": 7.0}
    text = set_composition.tables(tmp_path, 4, 1000)
    assert "| 0 | 2 / 3.50 | strain 0.95 1 |" in text  # one entropy and one random-MD snapshot at 1000 K
    assert "| 0 | 1 / 1.25 | strain 0.95 1 |" in set_composition.tables(tmp_path, 4, 300)
