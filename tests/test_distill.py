"""dael distill: a tiny distillation of EMT copper through the CLI (resumable, fine-tunable), the --device checks
and the base model in the loop and the benchmark. The module takes about a minute and a half on one thread."""

import json
import math
import os

import numpy as np
import pytest
from ase.build import bulk
from ase.io import read
from typer.testing import CliRunner

from dael.campaign.config import Campaign, Explore, Train
from dael.campaign.distill import DistillSettings, perturbations
from dael.campaign.folder import write
from dael.cli import app

pytest.importorskip("nequip")
pytest.importorskip("allegro")

runner = CliRunner()
EMT = "ase:ase.calculators.emt:EMT"


def cu_campaign(folder, base: str | None = None):
    """An 8-atom fcc Cu campaign with a one-point grid: one 20-step trajectory (and one melt) of 4 snapshots."""
    campaign = Campaign("Cu", name="Cu-distill", driver=EMT, train=Train(base=base),
                        explore=Explore(pressures=[0.0], temperatures=[300.0], steps=20, snapshots=4, thermalize=0,
                                        relax_steps=10, workers=1))
    write(folder, campaign, {"fcc": bulk("Cu", "fcc", a=3.6, cubic=True) * (2, 1, 1)})
    return folder


def distill_args(campaign, out) -> list[str]:
    return ["distill", str(campaign), "--teacher", EMT, "--out", str(out), "--epochs", "2", "--rattles", "2",
            "--strains", "2"]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """(campaign folder, base folder, CLI output) of a tiny distillation: 8 MD snapshots, 9 relaxed, strained and
    rattled cells, 2 epochs."""
    root = tmp_path_factory.mktemp("distill")
    campaign = cu_campaign(root / "campaign")
    result = runner.invoke(app, distill_args(campaign, root / "base"))
    assert result.exit_code == 0, result.output
    return campaign, root / "base", result.output


def test_distill_writes_a_base_model_and_its_errors_and_speed(base):
    _, out, output = base
    assert (out / "model.nequip.zip").is_file() and "accelerator: cpu" in (out / "config.yaml").read_text()
    report = json.loads((out / "distill.json").read_text())
    assert report["teacher"] == EMT and report["label_failures"] == 0
    assert report["structures"] == {"md": 4, "melt": 4, "relaxed": 1, "strain 0.9": 1, "strain 0.95": 1,
                                    "strain 1.05": 1, "strain 1.1": 1, "random strain": 2, "rattle": 2}
    assert report["n_train"] + report["n_holdout"] == 17 and report["n_holdout"] == 2
    for key in ("energy_mae", "energy_rmse", "force_mae", "force_rmse", "stress_mae", "stress_rmse"):
        assert math.isfinite(report["holdout"][key]) and math.isfinite(report["holdout_baseline"][key])
    speed = report["speed"]
    assert speed["atoms"] >= 64 and speed["base_ms_per_call"] > 0 and speed["teacher_ms_per_call"] > 0
    labelled = read(out / "labels" / "all.extxyz", ":")
    assert all(np.isfinite(a.get_stress()).all() and a.get_forces().shape == (len(a), 3) for a in labelled)
    melts = [a for a in labelled if a.info["kind"] == "melt"]
    assert {a.info["temperature_K"] for a in melts} == {450.0}  # 1.5 × the grid's 300 K
    assert "distill: training the base" in output and "distill: timing" in output


def test_a_rerun_redoes_nothing(base):
    campaign, out, _ = base
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    result = runner.invoke(app, distill_args(campaign, out))
    assert result.exit_code == 0, result.output
    assert "done before" in result.output
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before


def test_a_rerun_after_the_report_was_lost_retrains_nothing(base, tmp_path):
    """Each stage is cached: with only distill.json gone, the model and labels are reused."""
    import shutil

    campaign, out, _ = base
    copy = tmp_path / "base"
    shutil.copytree(out, copy)
    (copy / "distill.json").unlink()
    zipped = (copy / "model.nequip.zip").stat().st_mtime_ns
    result = runner.invoke(app, distill_args(campaign, copy))
    assert result.exit_code == 0, result.output
    assert "base model: done before" in result.output and "teacher labels: done before" in result.output
    assert (copy / "model.nequip.zip").stat().st_mtime_ns == zipped and (copy / "distill.json").is_file()


def test_round_one_of_a_campaign_fine_tunes_the_base(base, tmp_path):
    """train.base (relative to the campaign folder, a model directory) → loop._train → train(parent=the zip):
    1 epoch on 6 structures."""
    from dael.calculators.deploy import resolve_parent
    from dael.campaign.folder import load
    from dael.campaign.loop import train_round
    from dael.campaign.paths import Paths
    from dael.data.dataset import Dataset, oracle_spec
    from dael.label.labelling import label_dataset

    _, out, _ = base
    package = (out / "model.nequip.zip").resolve()
    assert resolve_parent(out) == package  # `--from base/` resolves to the package
    folder = cu_campaign(tmp_path / "campaign", base=os.path.relpath(out, tmp_path / "campaign"))
    campaign, _ = load(folder)
    campaign.train.epochs = 1
    dataset = Dataset(folder / "dataset.db")
    dataset.add(read(out / "labels" / "train.extxyz", ":6"), oracle=oracle_spec(EMT))
    label_dataset(dataset, EMT, workers=0)
    lines, paths = [], Paths(folder)
    paths.round(1).mkdir(parents=True)
    train_round(campaign, paths, 1, dataset, say=lines.append)
    metrics = json.loads((folder / "models" / "round-01" / "metrics.json").read_text())
    assert metrics["parent"] == str(package) and metrics["epochs"] == 1 and metrics["n_train"] == 5
    assert math.isfinite(metrics["validation"]["force_mae"]) and "warm start from" in lines[0]


def test_benchmark_from_the_base_explores_with_it_and_fine_tunes_it(base, tmp_path):
    """`dael benchmark CAMPAIGN --from BASE` with `driver: base` (the paper's regime): the pools are MD of the
    base (their per-atom driver energies are the base's), the test set is MD of the oracle (its are EMT's),
    and every model is fine-tuned from the base; 2 models of 4 structures, 1 epoch."""
    import yaml

    from dael.calculators.deploy import load_calculator
    from dael.calculators.registry import make_calculator

    campaign_dir, out, _ = base
    config = yaml.safe_load((campaign_dir / "campaign.yaml").read_text())
    config["driver"] = "base"
    config["label"]["oracle"] = EMT
    config["benchmark"] = {"sizes": [4], "draws": 1, "epochs": 1, "min_steps": 0, "repeats": 1, "snapshots": 10,
                           "md_steps": 5, "workers": 1}
    folder = tmp_path / "campaign"
    folder.mkdir()
    (folder / "campaign.yaml").write_text(yaml.safe_dump(config))
    (folder / "seeds.extxyz").write_bytes((campaign_dir / "seeds.extxyz").read_bytes())
    bench = tmp_path / "bench"
    result = runner.invoke(app, ["benchmark", str(folder), "--from", str(out), "--out", str(bench),
                                 "--strategies", "stream-fill,random"])
    assert result.exit_code == 0, result.output
    package = (out / "model.nequip.zip").resolve()
    for name, calc in (("random", load_calculator(out)), ("test", make_calculator(EMT))):
        snaps = [a for a in read(bench / "pools" / f"{name}.extxyz", ":") if "driver_energy" in a.info]
        assert snaps
        for atoms in snaps[:2]:
            atoms.calc = calc
            assert atoms.get_potential_energy() / len(atoms) == pytest.approx(atoms.info["driver_energy"], abs=1e-4)
    for model in ("stream-fill-N4-d0", "random-N4-d0"):
        metrics = json.loads((bench / "models" / model / "metrics.json").read_text())
        assert metrics["parent"] == str(package) and metrics["n_train"] == 3
    assert f"MD driver of the pools allegro:{package}, of the test sets {EMT}" in (bench / "report.html").read_text()


def test_driver_base_needs_a_base_model(tmp_path):
    campaign = Campaign("Cu", driver="base")
    with pytest.raises(ValueError, match="driver: 'base' needs a base model: set train.base"):
        campaign.exploration_driver()
    assert campaign.exploration_driver("m.nequip.zip") == "allegro:m.nequip.zip"
    campaign.train.base = "base/"
    assert campaign.exploration_driver() == "allegro:base/"
    folder = cu_campaign(tmp_path / "campaign")
    text = (folder / "campaign.yaml").read_text().replace(f"driver: {EMT}", "driver: base")
    (folder / "campaign.yaml").write_text(text)
    run = runner.invoke(app, ["run", "--dir", str(folder)])
    assert run.exit_code == 2 and "driver: 'base' needs a base model" in run.output
    assert not (folder / "rounds").exists()


@pytest.fixture
def no_gpu(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.mark.parametrize("command", [
    ["distill", "Si", "--teacher", EMT],
    ["train", "--db", "missing.db", "--out", "model"],
    ["benchmark", "Si"],
])
def test_device_cuda_without_a_gpu_is_one_clear_error(no_gpu, tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, [*command, "--device", "cuda"])
    assert result.exit_code == 2, result.output
    assert "device 'cuda'" in result.output and "--device cpu" in result.output
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


def test_drivers_take_their_device_from_the_argument_or_dael_device(no_gpu, tmp_path, monkeypatch):
    from dael.calculators.registry import make_calculator

    with pytest.raises(ValueError, match="device 'cuda'"):
        make_calculator(f"allegro:{tmp_path}", device="cuda")
    monkeypatch.setenv("DAEL_DEVICE", "cuda")
    with pytest.raises(ValueError, match="device 'cuda'"):
        make_calculator(f"allegro:{tmp_path}")
    monkeypatch.setenv("DAEL_DEVICE", "gpu")
    with pytest.raises(ValueError, match="device must be one of cpu, cuda"):
        make_calculator(f"allegro:{tmp_path}")


def test_a_missing_base_fails_before_any_work(tmp_path):
    missing = tmp_path / "no-base"
    bench = runner.invoke(app, ["benchmark", "Si", "--from", str(missing), "--out", str(tmp_path / "bench")])
    assert bench.exit_code == 2 and "no such file or directory" in bench.output
    assert not (tmp_path / "bench").exists()
    campaign = cu_campaign(tmp_path / "campaign", base="../no-base")
    run = runner.invoke(app, ["run", "--dir", str(campaign)])
    assert run.exit_code == 2 and "train.base '../no-base'" in run.output
    assert not (campaign / "rounds").exists()


def test_perturbations_and_settings():
    cell = bulk("Cu", "fcc", a=3.6, cubic=True)
    cell.info["kind"] = "relaxed"
    out = perturbations([cell], DistillSettings(strains=3, rattles=2, max_strain=0.1), seed=1)
    assert [a.info["kind"] for a in out] == ["random strain"] * 3 + ["rattle"] * 2
    for a in out[:3]:
        strain = np.linalg.solve(cell.cell.array, a.cell.array) - np.eye(3)
        assert np.allclose(strain, strain.T) and 0 < np.abs(strain).max() <= 0.1
    assert [a.info["rattle_A"] for a in out[3:]] == [0.05, 0.15]
    assert 0.01 < np.abs(out[3].positions - cell.positions).max() < 0.5
    for bad in (dict(holdout=0.0), dict(repeats=0), dict(max_strain=0.6), dict(melt_factor=0.5), dict(epochs=0)):
        with pytest.raises(ValueError):
            DistillSettings(**bad).check()


def test_teacher_parameters_reach_the_teacher_and_one_it_does_not_take_stops_dael_distill_first(tmp_path):
    from dael.campaign.distill import perturbed_phases
    from dael.campaign.folder import load

    campaign = cu_campaign(tmp_path / "campaign")
    out = tmp_path / "base"
    result = runner.invoke(app, [*distill_args(campaign, out), "--teacher-param", "fixed_cutof=true"])
    assert result.exit_code == 2 and "takes no parameter 'fixed_cutof'" in result.output and not out.exists()
    lj = {"epsilon": 0.4, "sigma": 2.0, "rc": 5.0, "smooth": True}
    config, seeds = load(campaign)
    relaxed = perturbed_phases(config, seeds, "ase:ase.calculators.lj:LennardJones",
                               DistillSettings(rattles=0, strains=0), lambda line: None, lj)
    assert len(relaxed) == 5 and all(json.loads(a.info["driver_params"]) == lj for a in relaxed)
    cell = relaxed[0].cell.lengths()
    assert np.all(cell < 0.95 * seeds["fcc"].cell.lengths())  # relaxed by LJ with σ = 2 Å, not by EMT (Cu)
