"""Campaign config and presets, the loop (one tiny real round, resumed without relabelling), status, report."""

import json

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from dael.benchmark import _interleave
from dael.campaign import Campaign, load, phases, preset, write
from dael.cli import app
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
    labelled = 5 + second["selected"]
    assert res.exit_code == 0 and f"{labelled} / 10" in res.output and f"labeled {labelled}" in res.output
    assert np.isfinite(second["logdet"])
