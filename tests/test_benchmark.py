"""The benchmark: pools, labels, holdouts and evaluation sets, training sets that follow the sizes asked for,
the records of every model, and a tiny benchmark end to end."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms

import dael
from dael.campaign.config import Benchmark
from dael.campaign.presets import phases, preset
from dael.train.training import still_improving

from pool_helpers import labelled_copies, synthetic_pools


def labelled(k: int) -> Atoms:
    """A 4-atom Cu cell (a = 3.6 + 0.01 k Å) labelled with energy -k eV and zero forces."""
    from ase.build import bulk
    from ase.calculators.singlepoint import SinglePointCalculator

    atoms = bulk("Cu", "fcc", a=3.6 + 0.01 * k, cubic=True)
    atoms.calc = SinglePointCalculator(atoms, energy=-1.0 * k, forces=np.zeros((4, 3)))
    return atoms


def test_the_filter_accepts_in_pool_order_inside_the_window(rng):
    """The paper's holdout subset: what a campaign's filter accepts in exploration (pool) order — never a
    snapshot outside the window, the first one always, the rejected ones never changing what follows (the
    accepted ones alone are all accepted again), and in another order another set."""
    from dael.benchmark.evaluation import accepted_by_filter
    from dael.campaign.presets import preset

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


def test_benchmark_sets_follow_the_sizes_asked_for(tmp_path, monkeypatch):
    """A rerun with more sizes draws the new ones (from the same seed stream) and keeps the saved ones; a
    rerun with fewer reports only those; a size a strategy cannot fill is remembered, not recomputed."""
    import dael.benchmark.sets as sets
    from dael.campaign.presets import preset

    calls = []

    def fake_select(strategy, pools, sizes, rng):
        calls.append((strategy, list(sizes)))
        order = [f"r{i}" for i in rng.permutation(50)]
        return {n: order[:n] for n in sizes if n <= 20}  # 40 cannot be filled

    monkeypatch.setattr(sets, "select_sets", fake_select)
    monkeypatch.setattr(sets, "Pools", lambda *args, **kwargs: None)
    campaign = preset("Si")
    data = {name: [Atoms("H", info={"hash": f"{name}{i}"}) for i in range(50)]
            for name in ("entropy", "random", "anchor")}
    settings = campaign.benchmark
    settings.sizes, settings.draws = [5], 1
    fp = dict.fromkeys(data)  # fingerprints are not read: the strategy and Pools are stand-ins
    first = sets.training_sets(campaign, data, fp, tmp_path, ["random"])
    settings.sizes = [5, 10, 40]
    more = sets.training_sets(campaign, data, fp, tmp_path, ["random"])
    assert set(more) == {("random", 0, 5), ("random", 0, 10)} and more[("random", 0, 5)] == first[("random", 0, 5)]
    assert more[("random", 0, 10)][:5] == first[("random", 0, 5)]  # nested: the same stream of picks
    settings.sizes = [10, 40]
    fewer = sets.training_sets(campaign, data, fp, tmp_path, ["random"])
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


def test_tiny_benchmark_reports_every_test_kind_and_resumes(tmp_path, monkeypatch):
    """Pools → labels → nested sets (a pools-only run stops there) → 6 trained models → report; the per-kind
    test errors recombine into the whole test set's, and a rerun trains nothing; a copy of the stored pools
    trains and evaluates without the oracle (no MD evaluation), and a later run with it adds the MD only."""
    from dael.benchmark.report import records_from_csv
    from dael.benchmark.run import run_benchmark

    campaign = preset("Si")
    e = campaign.explore
    e.pressures, e.temperatures, e.steps, e.thermalize, e.relax_steps = [0.0], [900.0], 40, 10, 10
    campaign.benchmark = Benchmark(sizes=[8, 16], draws=1, epochs=2, min_steps=0, repeats=2, snapshots=10,
                                   md_steps=20, robustness_sizes=[16], robustness_ps=0.02, robustness_seeds=1)
    campaign.model_check.settings = {"atoms": 8}
    campaign.train.settings = {}
    strategies = ["stream", "stream-fill", "mixed", "random"]
    assert run_benchmark(campaign, phases("Si"), tmp_path, say=lambda line: None, strategies=strategies,
                         pools_only=True) == tmp_path
    drawn = json.loads((tmp_path / "sets.json").read_text())
    assert set(drawn) == {f"{s}/0" for s in strategies} and not (tmp_path / "models").exists()
    report = run_benchmark(campaign, phases("Si"), tmp_path, say=lambda line: None, strategies=strategies)
    assert json.loads((tmp_path / "sets.json").read_text()) == drawn  # the sets the pools-only run drew
    assert report.exists() and (tmp_path / "curves-test-strain.png").exists()
    assert (tmp_path / "energies-hist.png").exists() and "MD stability" in report.read_text()
    records = records_from_csv(tmp_path / "records.csv")
    trained = {(r["pool"], int(r["size"])) for r in records}
    filled = {(p, n) for p in ("stream-fill", "mixed", "random") for n in (8, 16)}
    assert filled <= trained and trained - filled <= {("stream", 8), ("stream", 16)}
    if len(trained - filled) < 2:  # a size the saturated filter could not fill is named in the report
        assert "Sets a strategy could not fill" in report.read_text()
    improving = [still_improving(json.loads(m.read_text())) for m in (tmp_path / "models").glob("*/metrics.json")]
    assert ("still improving:" in report.read_text()) == any(improving)  # training-limited models are named
    conditions = {f"test@{p} 0 GPa {c}" for p in ("diamond", "beta-tin") for c in ("900 K", "strains", "equilibrium")}
    assert {r["set"] for r in records} == {"holdout", "holdout-entropy", "holdout-entropy-window",
                                           "holdout-entropy-accepted", "holdout-random", "test", "test-900K",
                                           "test-strain", "test-equilibrium", "indtest", "transfer",
                                           "transfer-beyond", "md", "robustness"} | conditions
    evaluation = json.loads((tmp_path / "models" / "stream-fill-N16-d0" / "evaluation.json").read_text())
    for split in (("test-900K", "test-strain", "test-equilibrium"), sorted(conditions)):  # kinds, conditions recombine
        kinds = [evaluation[k] for k in split]
        assert sum(k["structures"] for k in kinds) == evaluation["test"]["structures"]
        combined = sum(k["energy_mae"] * k["structures"] for k in kinds) / evaluation["test"]["structures"]
        assert combined == pytest.approx(evaluation["test"]["energy_mae"], rel=1e-6)
    # benchmark.test_repeats (3) independent oracle runs per condition, 5 snapshots each; 2 strains, no relaxed
    # cell but a rattled copy of it; the broad indtest: every strain and 5 hottest-MD snapshots per phase
    assert evaluation["test@diamond 0 GPa 900 K"]["structures"] == 3 * 5
    assert evaluation["test@diamond 0 GPa strains"]["structures"] == 2
    assert evaluation["test@diamond 0 GPa equilibrium"]["structures"] == 1
    assert evaluation["indtest"]["structures"] == 2 * 2 + 2 * 5
    assert "Test force MAE (meV/Å) by condition, N = 16:" in (tmp_path / "results.md").read_text()
    assert not list(tmp_path.glob("curves-test@*"))
    union = evaluation["holdout"]["structures"]
    assert union == evaluation["holdout-entropy"]["structures"] + evaluation["holdout-random"]["structures"]
    assert 0 < evaluation["md"]["survived"] <= 1 and evaluation["md"]["energy_mae"] > 0
    # the MD-robustness check of the N = 16 models: 2 phases × (900 K at 0 GPa, 1035 K at 5 GPa) × 1 seed, 8 atoms
    robust = evaluation["robustness"]
    assert robust["trajectories"] == 4 and {r["atoms"] for r in robust["runs"]} == {8}
    assert {(r["pressure_GPa"], r["temperature_K"]) for r in robust["runs"]} == {(0.0, 900.0), (5.0, 1035.0)}
    assert {int(r["size"]) for r in records if r["set"] == "robustness"} == {16}
    assert 0 <= min(r["failure_fraction"] for r in records if r["set"] == "robustness")
    assert "MD robustness" in report.read_text() and not (tmp_path / "curves-robustness.png").exists()
    table = (tmp_path / "results.md").read_text().split("MD robustness")[1]  # results.md has it too, a row a model
    assert len([line for line in table.splitlines() if line.startswith("| ") and " | 16 | 1 | " in line]) == 4
    # the strategies see the explorer's tags (trajectory, step, energies), kept with the dataset's rows
    from ase.io import read

    from dael.benchmark.pools import label_pools

    names = ("entropy", "random", "anchor", "test", "transfer")
    pools = {name: read(tmp_path / "pools" / f"{name}.extxyz", ":") for name in names}
    data = label_pools(campaign, pools, tmp_path, say=lambda line: None)
    # transfer: 2×2×2 cells at conditions off the grid (0 GPa, 900 K → 5 GPa, 1035 K), never trained on
    seed_atoms = {name: len(a) for name, a in phases("Si").items()}
    assert len(data["transfer"]) == evaluation["transfer"]["structures"] == len(pools["transfer"]) > 0
    assert all(len(a) == 8 * seed_atoms[a.info["phase"]] for a in data["transfer"])
    assert {(a.info["pressure_GPa"], a.info["temperature_K"]) for a in data["transfer"]} == {(5.0, 1035.0)}
    assert evaluation["transfer-beyond"]["structures"] == evaluation["transfer"]["structures"]  # no midpoint
    assert len(data["test"]) == evaluation["test"]["structures"]  # the test set holds no transfer structure
    from dael.benchmark.evaluation import overlap

    assert overlap(data) == 0 and "also in a training pool" not in report.read_text()  # no test structure trained on
    assert overlap({**data, "anchor": data["anchor"] + data["test"][:3]}) == 3
    assert all({"trajectory", "step", "driver_energy"} <= set(a.info) for a in data["entropy"])
    assert all(a.info["status"] == "labeled" for a in data["entropy"])
    # the entropy holdout within the energy window: the snapshots a windowed strategy could have picked
    from dael.benchmark.evaluation import accepted_by_filter, holdout_indices, in_distribution_holdouts
    from dael.benchmark.pools import pool_fingerprints
    from dael.selection.window import in_window

    held = [data["entropy"][i] for i in holdout_indices(data, campaign.seed)["entropy"]]
    inside = int(in_window(held, e.window).sum())
    assert [a.info["hash"] for a in in_distribution_holdouts(data, campaign.seed, e.window)["holdout-entropy-window"]
            ] == [a.info["hash"] for a, ok in zip(held, in_window(held, e.window), strict=True) if ok]
    assert 0 < evaluation["holdout-entropy-window"]["structures"] == inside <= len(held)
    accepted = accepted_by_filter(campaign, data["entropy"], pool_fingerprints(data, campaign.filter.cutoff)["entropy"])
    taken = int(accepted[holdout_indices(data, campaign.seed)["entropy"]].sum())
    assert 0 < evaluation["holdout-entropy-accepted"]["structures"] == taken <= inside
    outside = int((~in_window(data["entropy"], e.window)).sum())
    assert f"({inside} inside the energy window, {taken} accepted by the filter)" in report.read_text()
    assert f"outside the window (kept in the pool, taken by no windowed strategy): {outside}." in report.read_text()
    trained = {p: p.stat().st_mtime for p in tmp_path.glob("models/*/model.nequip.zip")}
    run_benchmark(campaign, phases("Si"), tmp_path, say=lambda line: None, strategies=strategies)
    assert {p: p.stat().st_mtime for p in tmp_path.glob("models/*/model.nequip.zip")} == trained
    # without the oracle: the stored, labelled pools of another folder, another model; nothing explored or labelled
    import shutil

    from dael.benchmark.pools import check_stored

    offline = tmp_path / "offline"
    with pytest.raises(ValueError, match=r"missing: pools/entropy.extxyz.*labels of the transfer pool"):
        check_stored(offline)
    shutil.copytree(tmp_path / "pools", offline / "pools")
    for name in ("labels.db", "labels.done", "holdouts.json", "sets.json"):
        shutil.copy(tmp_path / name, offline / name)

    def refuse(*args, **kwargs):
        raise AssertionError("a run without the oracle built a calculator")

    campaign.train.settings = {"num_layers": 2}
    campaign.benchmark.sizes = [16]  # one size of the stored sets is enough here
    with monkeypatch.context() as patched:  # wherever dael builds a calculator by name
        for module in [m for name, m in sys.modules.items() if name.startswith("dael.")]:
            if hasattr(module, "make_calculator"):
                patched.setattr(module, "make_calculator", refuse)
        report = run_benchmark(campaign, phases("Si"), offline, say=lambda line: None, strategies=["random"],
                               oracle=False)
    offline_model = offline / "models" / "random-N16-d0"
    evaluation = json.loads((offline_model / "evaluation.json").read_text())
    assert "md" not in evaluation and evaluation["test"]["structures"] == len(data["test"])
    assert "Run without the oracle (--no-oracle)" in report.read_text()
    assert "num_layers: 2" in (offline_model / "config.yaml").read_text()
    stamp = (offline_model / "model.nequip.zip").stat().st_mtime
    run_benchmark(campaign, phases("Si"), offline, say=lambda line: None, strategies=["random"])
    evaluation = json.loads((offline_model / "evaluation.json").read_text())
    assert 0 < evaluation["md"]["survived"] <= 1 and (offline_model / "model.nequip.zip").stat().st_mtime == stamp


def test_each_pools_holdout_depends_on_that_pool_alone_and_is_kept(tmp_path):
    """One pool's holdout does not move when the oracle labels one structure fewer of another pool; it is
    kept in holdouts.json; a folder whose sets were drawn by an older dael without it is refused with the fix."""
    from ase import Atoms

    from dael.benchmark.evaluation import holdout_indices

    def pool(tag, n):
        return [Atoms("H", info={"hash": f"{tag}{i}"}) for i in range(n)]

    data = {"entropy": pool("e", 50), "random": pool("r", 40)}
    held = holdout_indices(data, 7)
    assert len(held["entropy"]) == 5 and len(held["random"]) == 4
    fewer = holdout_indices({"entropy": data["entropy"][1:], "random": data["random"]}, 7)
    assert held["random"].tolist() == fewer["random"].tolist()  # one permutation stream over both moved it
    assert holdout_indices(data, 8)["random"].tolist() != held["random"].tolist()  # the seed draws another
    kept = holdout_indices(data, 7, tmp_path)
    assert (tmp_path / "holdouts.json").exists() and kept["random"].tolist() == held["random"].tolist()
    reordered = {"entropy": data["entropy"][::-1], "random": data["random"]}
    again = holdout_indices(reordered, 7, tmp_path)  # read back by content hash, not by position
    assert sorted(reordered["entropy"][i].info["hash"] for i in again["entropy"]) == sorted(
        data["entropy"][i].info["hash"] for i in held["entropy"])
    old = tmp_path / "old"
    old.mkdir()
    (old / "sets.json").write_text("{}")
    with pytest.raises(ValueError, match="remove sets.json and models/ from the folder and rerun"):
        holdout_indices(data, 7, old)


def test_spread_keeps_every_condition_and_broad_indtest_follows_the_authors(tmp_path):
    """A transfer subset takes conditions round-robin; the broad indtest holds every strain probe and 5 snapshots
    per phase of the hottest MD, spread over the pressures, and no equilibrium probe or cooler snapshot."""
    from ase import Atoms

    from dael.benchmark.evaluation import broad_indtest
    from dael.benchmark.pools import spread

    made = iter(range(10**6))

    def snap(phase, p, t, k, kind=None):  # every structure distinct (the sets match by content hash)
        atoms = Atoms("H", positions=[[0.001 * next(made), 0, 0]], cell=[5, 5, 5], pbc=True,
                      info={"phase": phase, "pressure_GPa": p, "temperature_K": t})
        if kind:
            atoms.info["kind"] = kind
        return atoms

    from dael.benchmark.pools import read_pool

    (Path(tmp_path) / "empty.extxyz").write_text("")  # benchmark.transfer_labels 0 stores an empty pool
    assert read_pool(Path(tmp_path) / "empty.extxyz") == []
    many = [snap(ph, p, t, k) for ph in "ab" for p in (0.0, 5.0) for t in (300.0, 900.0) for k in range(4)]
    picked = spread(many, 8, seed=0)
    assert len(picked) == 8 and len({(a.info["phase"], a.info["pressure_GPa"], a.info["temperature_K"])
                                     for a in picked}) == 8
    assert spread(many, 100, seed=0) == spread(many, 100, seed=0) and len(spread(many, 100, seed=0)) == len(many)
    test = many + [snap(ph, p, None, 10 + k, kind) for ph in "ab" for p in (0.0, 5.0)
                   for k, kind in enumerate(("strain 0.92", "strain 1.08", "equilibrium"))]
    chosen = broad_indtest(test, labelled_copies(test), seed=0)
    kinds = [a.info.get("kind") or ("hot" if a.info["temperature_K"] == 900.0 else "cool") for a in chosen]
    assert kinds.count("strain 0.92") == kinds.count("strain 1.08") == 4 and "equilibrium" not in kinds
    assert kinds.count("hot") == 10 and "cool" not in kinds
    hot_a = [a.info["pressure_GPa"] for a in chosen if a.info.get("phase") == "a" and a.info["temperature_K"]]
    assert sorted(hot_a).count(0.0) >= 2 and sorted(hot_a).count(5.0) >= 2  # round-robin over the pressures


def test_benchmark_drivers_of_the_paper_regime(tmp_path):
    """benchmark.test_driver 'base' is the base model (as `driver: base` explores with it); without one it is one
    error naming the key; transfer_labels must be a count."""
    from dael.campaign.config import Campaign

    campaign = preset("Si")
    campaign.benchmark.test_driver = "base"
    assert campaign.test_md_driver(tmp_path / "base") == f"allegro:{tmp_path / 'base'}"
    with pytest.raises(ValueError, match="benchmark.test_driver: 'base' needs a base model"):
        campaign.test_md_driver()
    data = campaign.to_dict()
    data["benchmark"]["transfer_labels"] = -1
    with pytest.raises(ValueError, match="transfer_labels must be >= 0"):
        Campaign.from_dict(data)


def test_md_stability_without_the_oracle_reports_survival_only():
    """benchmark.md_errors false: the models' own MD is judged by survival, no oracle label of its cells."""
    from ase.build import bulk
    from ase.calculators.emt import EMT

    from dael.explore.stability import md_stability

    start = bulk("Cu", "fcc", a=3.61, cubic=True) * (2, 2, 2)
    result = md_stability(EMT(), [start], None, 300.0, steps=20)
    assert result["survived"] == 1.0 and result["energy_mae"] is None and result["force_mae"] is None
    judged = md_stability(EMT(), [start], EMT(), 300.0, steps=20)
    assert judged["energy_mae"] == pytest.approx(0.0, abs=1e-9)


def test_a_stored_evaluation_is_redone_only_on_sets_whose_structures_changed(tmp_path, monkeypatch):
    """A test set labelled further after the models were trained: a rerun evaluates each model again on that set
    (not on the others, and without retraining); a second rerun evaluates nothing."""
    from ase.calculators.emt import EMT

    from dael.benchmark import run
    from dael.util.files import mark, marked

    job = ("mixed", 0, 16)
    folder = tmp_path / "bench"
    out = run.model_dir(folder, job)
    out.mkdir(parents=True)
    calls = []
    monkeypatch.setattr(run, "load_calculator", lambda path, device="cpu": EMT())
    monkeypatch.setattr(run, "evaluate_sets", lambda calc, sets: calls.append(sorted(sets)) or {
        name: {"structures": len(s), "energy_mae": float(len(s)), "force_mae": 0.0} for name, s in sets.items()})

    def evaluation(test: list[Atoms]) -> run.Evaluation:
        return run.Evaluation(folder, {}, {}, {"test": test, "holdout-random": [labelled(9)]}, {}, None, [], None,
                              md=False)

    mark(out / "evaluation.json", {"test": {"structures": 2, "energy_mae": 2.0, "force_mae": 0.0},  # no digest
                                   "holdout-random": {"structures": 1, "energy_mae": 1.0}})
    said = []
    run.evaluate_job(preset("Si"), evaluation([labelled(1), labelled(2)]), job, said.append)
    assert calls == []  # same counts, no digest yet: kept
    run.evaluate_job(preset("Si"), evaluation([labelled(1), labelled(2), labelled(3)]), job, said.append)
    assert calls == [["test"]] and "evaluated again on test" in said[-2]
    stored = marked(out / "evaluation.json")
    assert stored["test"]["energy_mae"] == 3.0 and stored["holdout-random"]["energy_mae"] == 1.0
    assert stored["test"]["set"] == run.set_digest([labelled(3), labelled(2), labelled(1)])  # order-free
    run.evaluate_job(preset("Si"), evaluation([labelled(3), labelled(1), labelled(2)]), job, said.append)
    assert calls == [["test"]]
    # the same count, other structures: the digest tells
    run.evaluate_job(preset("Si"), evaluation([labelled(1), labelled(2), labelled(4)]), job, said.append)
    assert calls == [["test"], ["test"]]


def test_a_model_trained_before_an_interruption_is_evaluated_not_trained_again(tmp_path, monkeypatch):
    """Training finished, evaluation cut off (no evaluation.json): a rerun evaluates the stored model; a changed
    training set or epoch count trains again."""
    from ase.calculators.emt import EMT

    from dael.benchmark import run

    job = ("mixed", 0, 2)
    folder = tmp_path / "bench"
    trained, interrupt = [], [True]

    def fake_train(structures, out, **kwargs):
        trained.append((len(structures), kwargs["settings"].epochs))
        Path(out).mkdir(parents=True, exist_ok=True)

    def fake_evaluate(calc, sets):
        if interrupt[0]:
            raise KeyboardInterrupt
        return {name: {"structures": len(s), "energy_mae": 1.0, "force_mae": 0.0} for name, s in sets.items()}

    monkeypatch.setattr(run, "train", fake_train)
    monkeypatch.setattr(run, "load_calculator", lambda path, device="cpu": EMT())
    monkeypatch.setattr(run, "evaluate_sets", fake_evaluate)
    data = {"random": [labelled(1), labelled(2), labelled(3)]}
    campaign = preset("Si")

    def evaluation(keys: list[str]) -> run.Evaluation:
        return run.Evaluation(folder, data, {job: keys}, {"test": [labelled(5)]}, {}, None, [], None, md=False)

    with pytest.raises(KeyboardInterrupt):
        run.evaluate_job(campaign, evaluation(["r0", "r1"]), job, print)
    assert len(trained) == 1 and not (run.model_dir(folder, job) / "evaluation.json").exists()
    interrupt[0] = False
    run.evaluate_job(campaign, evaluation(["r0", "r1"]), job, print)
    assert len(trained) == 1  # resumed at the evaluation
    assert (run.model_dir(folder, job) / "evaluation.json").exists()
    (run.model_dir(folder, job) / "evaluation.json").unlink()
    run.evaluate_job(campaign, evaluation(["r0", "r2"]), job, print)  # another training set
    assert len(trained) == 2
    campaign.benchmark.min_steps += 500  # sets the epochs of so small a set
    (run.model_dir(folder, job) / "evaluation.json").unlink()
    run.evaluate_job(campaign, evaluation(["r0", "r2"]), job, print)  # other epochs
    assert len(trained) == 3 and trained[-1][1] > trained[-2][1]
