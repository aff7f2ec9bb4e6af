"""Allegro training through nequip: a real (tiny) run on reference-labelled Si, deployment, metrics, warm
starts and the errors of bad input. The whole file takes about a minute and a half on one CPU thread."""

import json

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator
from ase.db import connect
from ase.io import write
from typer.testing import CliRunner

from dael.calculators.deploy import load_calculator, resolve_parent
from dael.calculators.reference import reference_calculator
from dael.cli import app
from dael.train.metrics import MeanBaseline, evaluate, load_structures
from dael.train.nequip_config import metric_terms
from dael.train.training import TrainSettings, still_improving, train

from conftest import skewed

pytest.importorskip("nequip")
pytest.importorskip("allegro")

runner = CliRunner()


def labelled_si(n: int, seed: int) -> list:
    """`n` strained, rattled 8-atom Si cells labelled by the reference (SNAP) oracle."""
    rng = np.random.default_rng(seed)
    calc = reference_calculator("Si")
    frames = []
    for _ in range(n):
        atoms = skewed(bulk("Si", "diamond", a=5.43, cubic=True), rng, strain=0.03, rattle=0.1)
        atoms.calc = calc
        energy, forces, stress = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces, stress=stress)
        frames.append(atoms)
    return frames


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple:
    """(ASE database of 40 training structures, extxyz of 12 test structures)."""
    folder = tmp_path_factory.mktemp("data")
    with connect(folder / "dataset.db") as db:
        for atoms in labelled_si(40, seed=1):
            db.write(atoms)
    write(folder / "test.extxyz", labelled_si(12, seed=2))
    return folder / "dataset.db", folder / "test.extxyz"


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory):
    db, test = dataset
    lines = []
    result = train(db, tmp_path_factory.mktemp("models") / "round-01", settings=TrainSettings(epochs=15),
                   test=test, progress=lines.append)
    return result, lines


def test_training_writes_a_model_directory_with_metrics(trained):
    result, lines = trained
    out = result.model_dir
    for name in ("config.yaml", "model.nequip.zip", "run/best.ckpt", "data/train.extxyz", "data/val.extxyz",
                 "data/test.extxyz", "train.log", "history.json"):
        assert (out / name).exists(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics == json.loads(json.dumps(result.metrics))
    assert metrics["n_train"] == 36 and metrics["n_val"] == 4 and metrics["epochs"] == metrics["epoch_limit"] == 15
    noted = [line for line in lines if line.startswith("note: the best validation score")]
    assert len(noted) == still_improving(metrics)  # the run says so when it stopped while still improving
    assert metrics["seconds_per_epoch"] > 0 and metrics["inference"]["threads"] == 1
    assert sum("epoch" in line and "meV/atom" in line for line in lines) == 15  # progress, one line per epoch
    for key in ("energy_mae", "energy_rmse", "force_mae", "force_rmse", "stress_mae", "stress_rmse"):
        assert np.isfinite(metrics["validation"][key]) and np.isfinite(metrics["test"][key])


def test_trained_model_beats_the_mean_baseline(trained, dataset):
    result, _ = trained
    test = load_structures(dataset[1])
    errors = evaluate(result.model_dir, test)
    baseline = evaluate(MeanBaseline(load_structures(dataset[0])), test)
    assert errors == pytest.approx(result.metrics["test"], rel=1e-6)
    for quantity in ("energy", "force", "stress"):
        assert errors[f"{quantity}_mae"] < 0.7 * baseline[f"{quantity}_mae"], quantity
        assert errors[f"{quantity}_rmse"] < 0.7 * baseline[f"{quantity}_rmse"], quantity


def test_deployed_calculator_is_finite_and_its_stress_is_the_strain_derivative(trained):
    calc = load_calculator(trained[0].model_dir)
    atoms = skewed(bulk("Si", "diamond", a=5.43, cubic=True) * (2, 1, 1), np.random.default_rng(3), 0.02)
    atoms.calc = calc
    energy, forces, stress = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
    assert np.isfinite(energy) and forces.shape == (16, 3) and np.isfinite(forces).all()
    assert stress.shape == (6,) and np.isfinite(stress).all()
    h, cell = 1e-3, atoms.cell.array.copy()
    for voigt, (a, b) in enumerate([(0, 0), (1, 1), (2, 2)]):
        energies = []
        for sign in (1, -1):
            strain = np.eye(3)
            strain[a, b] += sign * h
            atoms.set_cell(cell @ strain, scale_atoms=True)
            energies.append(atoms.get_potential_energy())
        atoms.set_cell(cell, scale_atoms=True)
        derivative = (energies[0] - energies[1]) / (2 * h) / atoms.get_volume()
        assert derivative == pytest.approx(stress[voigt], abs=1e-4)


def test_warm_start_from_the_packaged_previous_round(trained, dataset, tmp_path):
    db, test = dataset
    parent = trained[0].model_dir
    out = tmp_path / "round-02"
    args = ["train", "--db", str(db), "--out", str(out), "--from", str(parent), "--epochs", "2",
            "--test", str(test), "--seed", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "warm start" in result.output and "epoch    2/2" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["parent"] == str(parent / "model.nequip.zip") and metrics["epochs"] == 2
    for quantity in ("energy", "force", "stress"):  # starts from the parent, not from nothing
        assert metrics["test"][f"{quantity}_mae"] < 0.7 * metrics["test_baseline"][f"{quantity}_mae"]
    again = runner.invoke(app, args)  # a finished round is never overwritten by accident
    assert again.exit_code == 2 and "already holds a training run" in again.output


def test_bad_warm_start_sources_are_clear_errors(dataset, tmp_path):
    db = str(dataset[0])
    cases = {
        str(tmp_path / "missing.nequip.zip"): "no such file",
        "nequip.net:mir-group/Allegro-OAM-L:0.1": "looks like a model id",
        "mir-group/Allegro-OAM-L:0.1": "looks like a model id",
        "https://www.nequip.net/models/Allegro-OAM-L": "looks like a model id",
        str(tmp_path): "not a dael model directory",
        db: "expected a .nequip.zip package",
    }
    for source, message in cases.items():
        result = runner.invoke(app, ["train", "--db", db, "--out", str(tmp_path / "m"), "--from", source])
        assert result.exit_code == 2 and message in result.output, (source, result.output)
        if message in ("no such file", "looks like a model id"):  # says how to get a foundation model
            assert "pass its local path" in result.output
    missing = runner.invoke(app, ["train", "--db", str(tmp_path / "none.db"), "--out", str(tmp_path / "m")])
    assert missing.exit_code == 2 and "none.db: no such file" in missing.output
    negative = runner.invoke(app, ["train", "--db", db, "--out", str(tmp_path / "m"), "--energy-weight", "-1"])
    assert negative.exit_code == 2 and "energy_weight and stress_weight must be >= 0" in negative.output
    with pytest.raises(ValueError, match="model id"):
        resolve_parent("nequip.net:mir-group/NequIP-OAM-L:0.1")


def test_datasets_need_labels_and_read_every_format(dataset, tmp_path):
    frames = labelled_si(3, seed=4)
    from_db = load_structures(dataset[0])
    assert len(from_db) == 40 and np.isfinite(from_db[0].calc.results["stress"]).all()
    write(tmp_path / "three.extxyz", frames)
    for loaded in (load_structures(tmp_path / "three.extxyz"), load_structures(frames)):
        energies = [a.calc.results["energy"] for a in loaded]
        assert energies == pytest.approx([a.get_potential_energy() for a in frames])
    bare = frames[0].copy()
    with pytest.raises(ValueError, match="structure 0 of the dataset has no reference energy"):
        load_structures([bare])
    with pytest.raises(ValueError, match="at least 2"):
        train(frames[:1], tmp_path / "one")
    with pytest.raises(ValueError, match="val_fraction"):
        train(frames, tmp_path / "bad", settings=TrainSettings(val_fraction=1.5))
    with pytest.raises(ValueError, match="energy_weight and stress_weight must be >= 0"):
        train(frames, tmp_path / "bad", settings=TrainSettings(energy_weight=-1.0))


def test_loss_weights_reach_the_nequip_config():
    loss, maes = metric_terms(TrainSettings(energy_weight=3.0, stress_weight=7.0), scales=(0.1, 0.5, 0.02))
    assert [(term["name"], term["coeff"]) for term in loss] == [
        ("energy_huber", 3.0), ("forces_huber", 1.0), ("stress_huber", 7.0)]
    assert [term["metric"]["delta"] for term in loss] == [0.01, 0.01, 0.1]
    assert [term["coeff"] for term in maes] == pytest.approx([10.0, 2.0, 50.0])
    assert TrainSettings().stress_weight == 1.0 and TrainSettings().energy_weight == 1.0


def test_still_improving_means_best_epoch_near_the_limit_and_no_early_stop():
    run = {"epochs": 30, "epoch_limit": 30}
    assert still_improving(run | {"best_epoch": 30}) and still_improving(run | {"best_epoch": 28})
    assert not still_improving(run | {"best_epoch": 27})  # 10 % of 30: the last three epochs
    assert not still_improving({"epochs": 45, "epoch_limit": 200, "best_epoch": 45})  # early stopping ended it
    assert still_improving({"epochs": 5, "best_epoch": 5})  # metrics of older runs (no epoch_limit)
    assert not still_improving({"epochs": 0, "best_epoch": None})


def test_mean_baseline_fits_per_type_energies():
    rng = np.random.default_rng(5)
    e_na, e_cl = -2.5, -4.0
    frames = []
    for size in (1, 2, 2):
        atoms = bulk("NaCl", "rocksalt", a=5.64) * (size, 1, 1)
        atoms.symbols[0] = "Cl" if size == 2 else "Na"  # vary the composition
        n_na = atoms.get_chemical_symbols().count("Na")
        energy = e_na * n_na + e_cl * (len(atoms) - n_na)
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=rng.normal(size=(len(atoms), 3)),
                                           stress=np.full(6, 0.01 * size))
        frames.append(atoms)
    baseline = MeanBaseline(frames)
    assert baseline.per_type["Na"] == pytest.approx(e_na) and baseline.per_type["Cl"] == pytest.approx(e_cl)
    errors = evaluate(baseline, frames)
    assert errors["energy_mae"] == pytest.approx(0, abs=1e-9) and errors["stress_structures"] == 3
    assert errors["force_mae"] == pytest.approx(1e3 * np.mean(np.abs(np.concatenate(
        [a.calc.results["forces"].ravel() for a in frames]))))


def test_trained_model_drives_biased_md(trained):
    """allegro:PATH as the driver of globally biased MD (the explorer's default bias)."""
    import torch

    from dael.calculators.registry import make_calculator
    from dael.explore.md import GlobalEntropyBias, MDSettings, run_md

    result, _ = trained
    threads = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        driver = make_calculator(f"allegro:{result.model_dir}")
        assert torch.get_num_threads() == 3  # building a driver leaves the caller's threads alone
    finally:
        torch.set_num_threads(threads)
    calc = GlobalEntropyBias(driver, k=2.0, cutoff=4.5, natx=40)
    traj = run_md(bulk("Si", "diamond", a=5.43, cubic=True), driver, calc,
                  MDSettings(temperature=300, steps=10, snapshots=1, relax_steps=2))
    assert traj.status == "ok" and len(traj.snapshots) == 1
    assert calc.results["bias_energy"] == pytest.approx(-2.0 * calc.results["entropy"])


def test_training_ignores_the_missing_stress_of_slabs_and_molecules(tmp_path):
    """Al(111) slabs and boxed Al4 clusters (no stress: NaN in the training files) train beside bulk Al (with
    stress) from EMT labels; every loss stays finite and stress is scored on the bulk rows only. (The validation
    row drawn here is a slab: its stress MAE was NaN, and so the monitored score, which stopped the run after one
    epoch.)"""
    from ase import Atoms
    from ase.build import fcc111
    from ase.calculators.emt import EMT

    rng = np.random.default_rng(7)

    def labelled(atoms, stress):
        atoms.positions += 0.05 * rng.standard_normal(atoms.positions.shape)
        atoms.calc = EMT()
        results = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces()}
        if stress:
            results["stress"] = atoms.get_stress()
        atoms.calc = SinglePointCalculator(atoms, **results)
        return atoms

    def frames(n):
        cluster = Atoms("Al4", positions=[[0, 0, 0], [2.8, 0, 0], [1.4, 2.4, 0], [1.4, 0.8, 2.3]])
        cluster.center(vacuum=4.0)
        return ([labelled(bulk("Al", "fcc", a=4.05, cubic=True), True) for _ in range(n)]
                + [labelled(fcc111("Al", (1, 1, 3), vacuum=4.0), False) for _ in range(n)]
                + [labelled(cluster.copy(), False) for _ in range(n)])

    result = train(frames(4), tmp_path / "model", settings=TrainSettings(epochs=2), test=frames(2))
    history = json.loads((result.model_dir / "history.json").read_text())
    assert len(history) == 2 and all(np.isfinite(h["val"]["weighted_sum"]) for h in history)
    test = result.metrics["test"]
    assert test["structures"] == 6 and test["stress_structures"] == 2  # the bulk rows only
    assert all(np.isfinite(test[k]) for k in ("energy_mae", "force_mae", "stress_mae"))
    _, maes = metric_terms(TrainSettings(), (0.1, 0.5, 0.02), validate_stress=False)
    assert [m["name"] for m in maes] == ["energy_mae", "forces_mae"]  # a validation set without stress
