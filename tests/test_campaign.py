"""Campaign config and presets, the loop (one tiny real round, resumed without relabelling), status, report."""

import json

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from dael.benchmark import _interleave
from dael.campaign import Benchmark, Campaign, load, phases, preset, write
from dael.cli import app
from dael.dataset import Dataset
from dael.report import markdown_table, ratios, summarize, write_report


@pytest.mark.parametrize("system", ["Si", "C", "NaCl"])
def test_presets_round_trip(system, tmp_path):
    campaign = preset(system)
    seeds = phases(system)
    assert all(len(a) == 8 and a.pbc.all() for a in seeds.values())
    write(tmp_path, campaign, seeds)
    back, back_seeds = load(tmp_path)
    assert back == campaign and list(back_seeds) == list(seeds)
    with pytest.raises(ValueError, match="exists; pass --force"):
        write(tmp_path, campaign, seeds)


def test_natx_covers_the_highest_pressure():
    """natx of a preset run exceeds every sphere of the phases relaxed (reference oracle) at the grid's highest
    pressure by the thermal margin; the uncompressed seeds would not have given it."""
    from dael.explore import make_driver
    from dael.fingerprint import fingerprint, padded_settings
    from dael.loop import fingerprint_settings
    from dael.md import relax

    campaign, seeds = preset("NaCl"), phases("NaCl")
    p_max = max(campaign.explore.pressures)
    settings = fingerprint_settings(campaign, seeds)
    relaxed = [relax(a, make_driver("reference"), p_max, fmax=0.05, steps=150) for a in seeds.values()]
    largest = fingerprint(relaxed, cutoff=settings.cutoff, natx=None).settings.natx
    assert largest > max(fingerprint(list(seeds.values()), cutoff=settings.cutoff, natx=None).settings.natx, 27)
    assert settings.natx >= 1.5 * largest > padded_settings(list(seeds.values()), settings.cutoff).natx


def test_config_errors_name_the_key(tmp_path):
    write(tmp_path, preset("Si"), phases("Si"))
    data = yaml.safe_load((tmp_path / "campaign.yaml").read_text())
    data["explore"]["temprature"] = [300]
    (tmp_path / "campaign.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match="unknown key\\(s\\) temprature in 'explore'"):
        load(tmp_path)
    with pytest.raises(ValueError, match="filter.mode must be"):
        Campaign.from_dict({"system": "Si", "filter": {"mode": "atoms"}})
    with pytest.raises(ValueError, match="no preset for system"):
        preset("Cu")
    res = CliRunner().invoke(app, ["status", "--dir", str(tmp_path / "nothing")])
    assert res.exit_code == 2 and "dael init" in res.output


def test_report_tables_ratios_and_html(tmp_path):
    records = []
    for pool, scale in (("entropy", 1.0), ("random", 3.0), ("mixed", 1.5)):
        for n in (10, 20):
            for d in range(2):
                records.append({"pool": pool, "size": n, "draw": d, "set": "test", "energy_mae": scale * (10 + d) / n,
                                "force_mae": scale * 100 / n, "stress_mae": scale})
    rows = summarize(records)
    entropy10 = next(r for r in rows if r["pool"] == "entropy" and r["size"] == 10)
    assert entropy10["energy_mae"] == pytest.approx(1.05) and entropy10["energy_mae_std"] == pytest.approx(0.05)
    assert all(r["energy_mae"] == pytest.approx(3.0) for r in ratios(rows))
    assert "| test | entropy | 10 | 2 | 1.05 ± 0.05" in markdown_table(rows)
    html = write_report(records, tmp_path, "t", {"a": 1}, ["note"]).read_text()
    assert "3.00×" in html and (tmp_path / "curves-test.png").stat().st_size > 1000
    assert (tmp_path / "results.csv").read_text().count("\n") == 7


def test_interleave_keeps_the_anchor_share_in_every_prefix():
    order = _interleave([f"a{i}" for i in range(4)], [f"e{i}" for i in range(16)], 0.2)
    assert len(order) == 20
    for n in (5, 10, 20):
        assert sum(k[0] == "a" for k in order[:n]) == n // 5


def test_two_rounds_run_and_resume_without_relabelling(tmp_path):
    campaign = preset("Si")
    campaign.explore.pressures, campaign.explore.temperatures = [0.0], [900.0]
    campaign.explore.steps, campaign.explore.snapshots, campaign.explore.thermalize = 40, 4, 10
    campaign.explore.relax_steps = 10
    campaign.budget.total, campaign.budget.per_round = 10, 5
    campaign.train.epochs = 2
    write(tmp_path, campaign, phases("Si"))
    res = CliRunner().invoke(app, ["run", "--dir", str(tmp_path)])
    assert res.exit_code == 0, res.output
    rounds = sorted(tmp_path.glob("rounds/round-*/done-select"))
    selected = [json.loads(f.read_text())["selected"] for f in rounds]
    assert sum(selected) == 10 or "nothing new worth labelling" in res.output  # rounds go on until spent
    first = json.loads((tmp_path / "rounds" / "round-01" / "done-train").read_text())
    assert first["structures"] == 5 and "energy_mae" in first["validation"]
    second = json.loads((tmp_path / "rounds" / "round-02" / "done-select").read_text())
    assert second["driver"] == f"allegro:{tmp_path / 'models' / 'round-01'}"  # the trained model drove round 2
    log = (tmp_path / "log.jsonl").read_text()
    (tmp_path / "rounds" / "round-02" / "done-label").unlink()  # as if killed after labelling
    res = CliRunner().invoke(app, ["run", "--dir", str(tmp_path)])
    assert res.exit_code == 0, res.output
    new = (tmp_path / "log.jsonl").read_text()[len(log):]
    assert '"labeled": 0' in new and '"stage": "train"' not in new  # nothing relabelled or retrained
    res = CliRunner().invoke(app, ["status", "--dir", str(tmp_path)])
    labelled = sum(selected)
    assert res.exit_code == 0 and f"{labelled} / 10" in res.output
    # a barely trained driver can push atoms together: such snapshots are refused, not labelled
    counts = Dataset(tmp_path / "dataset.db").counts()
    assert counts["labeled"] + counts["failed"] == labelled and f"labeled {counts['labeled']}" in res.output
    refused = [a.info["error"] for a in Dataset(tmp_path / "dataset.db").structures("failed")]
    assert all(e.startswith("refused before labelling") for e in refused)
    assert np.isfinite(second["logdet"])


def test_tiny_benchmark_reports_every_test_kind_and_resumes(tmp_path):
    """Pools → labels → nested sets → 6 trained models → report; the per-kind test errors recombine into the
    whole test set's, and a rerun trains nothing."""
    from dael.benchmark import run_benchmark
    from dael.report import records_from_csv

    campaign = preset("Si")
    e = campaign.explore
    e.pressures, e.temperatures, e.steps, e.thermalize, e.relax_steps = [0.0], [900.0], 40, 10, 10
    campaign.benchmark = Benchmark(sizes=[8, 16], draws=1, epochs=2, min_steps=0, repeats=2, snapshots=10)
    report = run_benchmark(campaign, phases("Si"), tmp_path, say=lambda line: None)
    assert report.exists() and (tmp_path / "curves-test-strain.png").exists()
    records = records_from_csv(tmp_path / "records.csv")
    assert {(r["pool"], int(r["size"])) for r in records} == {(p, n) for p in ("entropy", "mixed", "random")
                                                             for n in (8, 16)}
    assert {r["set"] for r in records} == {"holdout", "test", "test-900K", "test-strain"}
    evaluation = json.loads((tmp_path / "models" / "entropy-N16-d0" / "evaluation.json").read_text())
    kinds = [evaluation[k] for k in ("test-900K", "test-strain")]
    assert sum(k["structures"] for k in kinds) == evaluation["test"]["structures"]
    combined = sum(k["energy_mae"] * k["structures"] for k in kinds) / evaluation["test"]["structures"]
    assert combined == pytest.approx(evaluation["test"]["energy_mae"], rel=1e-6)
    trained = {p: p.stat().st_mtime for p in tmp_path.glob("models/*/model.nequip.zip")}
    run_benchmark(campaign, phases("Si"), tmp_path, say=lambda line: None)
    assert {p: p.stat().st_mtime for p in tmp_path.glob("models/*/model.nequip.zip")} == trained
