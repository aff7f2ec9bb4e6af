"""Campaign config and presets, the loop (one tiny real round, resumed without relabelling), status, report."""

import json

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from dael.campaign.config import Campaign
from dael.campaign.folder import load, write
from dael.campaign.presets import PRESET_ANCHOR_FRACTION, PRESET_K_GLOBAL, phases, preset
from dael.campaign.sections import K_GLOBAL
from dael.cli import app
from dael.data.dataset import Dataset


@pytest.mark.parametrize("system", ["Si", "C", "NaCl"])
def test_presets_round_trip(system, tmp_path):
    campaign = preset(system)
    seeds = phases(system)
    assert all(len(a) == 8 and a.pbc.all() for a in seeds.values())
    write(tmp_path, campaign, seeds)
    back, back_seeds = load(tmp_path)
    assert back == campaign and list(back_seeds) == list(seeds)
    written = yaml.safe_load((tmp_path / "campaign.yaml").read_text())
    assert written["explore"]["k_global"] == [PRESET_K_GLOBAL[system]]  # what `dael init` gives a user
    with pytest.raises(ValueError, match="exists; pass --force"):
        write(tmp_path, campaign, seeds)


def test_demo_explores_with_the_si_preset_bias():
    """The demo cuts the Si preset's grid down but keeps its bias strength and anchor share."""
    from dael.benchmark.demo import demo_campaign

    assert demo_campaign().explore.k_global == preset("Si").explore.k_global == [PRESET_K_GLOBAL["Si"]]
    assert demo_campaign().budget.anchor_fraction == preset("Si").budget.anchor_fraction == PRESET_ANCHOR_FRACTION
    assert PRESET_K_GLOBAL["Si"] != K_GLOBAL and Campaign("Si").explore.k_global == [K_GLOBAL]


def test_natx_covers_the_highest_pressure():
    """natx of a preset run exceeds every sphere of the phases relaxed (reference oracle) at the grid's highest
    pressure by the thermal margin; the uncompressed seeds would not have given it."""
    from dael.calculators.registry import make_calculator
    from dael.campaign.loop import fingerprint_settings
    from dael.explore.md import relax
    from dael.numeric.fingerprint import fingerprint
    from dael.numeric.natx import padded_settings

    campaign, seeds = preset("NaCl"), phases("NaCl")
    p_max = max(campaign.explore.pressures)
    settings = fingerprint_settings(campaign, seeds)
    relaxed = [relax(a, make_calculator("reference"), p_max, fmax=0.05, steps=150) for a in seeds.values()]
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
    with pytest.raises(ValueError, match="benchmark.test_repeats must be >= 1"):
        Campaign.from_dict({"system": "Si", "benchmark": {"test_repeats": 0}})
    with pytest.raises(ValueError, match="no preset for system"):
        preset("Cu")
    res = CliRunner().invoke(app, ["status", "--dir", str(tmp_path / "nothing")])
    assert res.exit_code == 2 and "dael init" in res.output


def test_two_rounds_run_and_resume_without_relabelling(tmp_path):
    from ase.io import read

    campaign = preset("Si")
    campaign.explore.pressures, campaign.explore.temperatures = [0.0], [900.0]
    campaign.explore.steps, campaign.explore.snapshots, campaign.explore.thermalize = 40, 4, 10
    campaign.explore.relax_steps = 10
    campaign.budget.total, campaign.budget.per_round = 10, 5
    campaign.train.epochs, campaign.train.settings = 2, {}  # dael.train.training's tiny model: fast
    campaign.explore.model_gate = {"energy_mae": 1e6}  # let round 1's barely trained model drive round 2
    campaign.model_check.checks, campaign.model_check.md_ps, campaign.model_check.seeds = ["md"], 0.02, 1
    campaign.model_check.settings = {"atoms": 8}
    write(tmp_path, campaign, phases("Si"))
    res = CliRunner().invoke(app, ["run", "--dir", str(tmp_path)])
    assert res.exit_code == 0, res.output
    rounds = sorted(tmp_path.glob("rounds/round-*/done-select"))
    selected = [json.loads(f.read_text())["selected"] for f in rounds]
    spent = 1 + sum(selected)  # round 0 labelled the smallest seed (driver and oracle take every element)
    assert selected[0] == 5 and spent <= 10  # per round and in all, never beyond the budget
    if spent < 10:  # rounds go on until the budget is spent, unless one finds nothing new
        assert selected[-1] == 0 and "nothing new worth labelling" in res.output
    else:
        assert "nothing new" not in res.output
    first = json.loads((tmp_path / "rounds" / "round-01" / "done-train").read_text())
    assert first["structures"] == 6 and "energy_mae" in first["validation"]  # the seed and the round's 5
    second = json.loads((tmp_path / "rounds" / "round-02" / "done-select").read_text())
    assert second["driver"] == f"allegro:{tmp_path / 'models' / 'round-01'}"  # the trained model drove round 2
    assert second["driver_reason"].startswith("round 1's model") and second["stop"]
    checked = json.loads((tmp_path / "models" / "round-01" / "check.json").read_text())  # each round's model
    assert checked["model"] == second["driver"] and checked["md"]["trajectories"] == 4
    # round 2's anchors: relaxed by round 1's driver (a barely trained model can collapse the cells it relaxes)
    picked = read(tmp_path / "rounds" / "round-02" / "selected.extxyz", ":")
    assert [a.info["driver"] for a in picked if a.info.get("source") == "anchor"] == ["reference"]
    log = (tmp_path / "log.jsonl").read_text()
    (tmp_path / "rounds" / "round-02" / "done-label").unlink()  # as if killed after labelling
    res = CliRunner().invoke(app, ["run", "--dir", str(tmp_path)])
    assert res.exit_code == 0, res.output
    new = (tmp_path / "log.jsonl").read_text()[len(log):]
    assert '"labeled": 0' in new and '"stage": "train"' not in new  # nothing relabelled or retrained
    res = CliRunner().invoke(app, ["status", "--dir", str(tmp_path)])
    labelled = spent
    assert res.exit_code == 0 and f"{labelled} / 10" in res.output
    # a barely trained driver can push atoms together: such snapshots are refused, not labelled
    counts = Dataset(tmp_path / "dataset.db").counts()
    assert counts["labeled"] + counts["failed"] == labelled and f"labeled {counts['labeled']}" in res.output
    refused = [a.info["error"] for a in Dataset(tmp_path / "dataset.db").structures("failed")]
    assert all(e.startswith("refused before labelling") for e in refused)
    assert np.isfinite(second["logdet"])


def test_status_lists_trajectories_stopped_or_run_unbiased(tmp_path):
    """`dael status` counts the explorer's trajectories that stopped early, those an unstable phase ran
    unbiased (their log lines carry unstable_drop, dael.explore.md.quench_drop) and those that went on with a
    halved bias after a guard stop (bias_halved)."""
    write(tmp_path, preset("NaCl"), phases("NaCl"))
    log = tmp_path / "rounds" / "round-01" / "explore" / "trajectories.jsonl"
    log.parent.mkdir(parents=True)
    lines = [{"name": "B2_P0_T300", "status": "ok", "unstable_drop": 0.1063}, {"name": "B1_P0_T300", "status": "ok"},
             {"name": "B1_P0_T1000", "status": "stopped at step 40: force 80.0 eV/Å above 50.0"},
             {"name": "B1_P8_T2000", "status": "ok", "bias_halved": ["step 230: atoms 0.45 Å apart (floor 0.7 Å)"]}]
    log.write_text("".join(json.dumps(x) + "\n" for x in lines))
    res = CliRunner().invoke(app, ["status", "--dir", str(tmp_path), "--json"])
    state = json.loads(res.output)
    assert state["trajectories_unbiased"] == ["B2_P0_T300: quench +0.106 eV/atom"]
    assert state["trajectories_stopped"] == ["B1_P0_T1000: stopped at step 40: force 80.0 eV/Å above 50.0"]
    table = CliRunner().invoke(app, ["status", "--dir", str(tmp_path)]).output
    assert "trajectories unbiased (unstable phase)" in table
    assert state["trajectories_bias_halved"] == ["B1_P8_T2000: step 230: atoms 0.45 Å apart (floor 0.7 Å)"]
    assert "trajectories with the bias halved (guard)" in table


def test_a_round_labels_its_anchors_and_exactly_what_the_streaming_filter_accepted_first(tmp_path):
    """Budget N with anchor share a: the round labels round(a·N) near-equilibrium anchors, exploration stops once
    the other N − round(a·N) snapshots are accepted, and the round labels those in the order the filter took them
    (dual mode, energy window, size-independent bias, a fifth anchors: the defaults)."""
    from ase.io import read

    campaign = preset("Si")
    assert (campaign.filter.mode, campaign.filter.selection, campaign.explore.bias_scale) == ("dual", "stream", "kT")
    assert campaign.budget.anchor_fraction == 0.2
    e = campaign.explore
    e.pressures, e.temperatures, e.steps, e.snapshots, e.thermalize, e.relax_steps = [0.0], [600.0, 1200.0], 36, 9, 5, 5
    e.workers = 1
    campaign.budget.total, campaign.budget.per_round = 10, 9  # round 0's seed, then 2 anchors + 7 accepted
    campaign.train.epochs, campaign.train.settings = 1, {}
    campaign.model_check.enabled = False
    write(tmp_path, campaign, phases("Si"))
    res = CliRunner().invoke(app, ["run", "--dir", str(tmp_path), "--rounds", "1"])
    assert res.exit_code == 0, res.output
    folder = tmp_path / "rounds" / "round-01"
    explored = [json.loads(x) for x in (folder / "explore" / "trajectories.jsonl").read_text().splitlines()]
    counts = [t["accepted"] for t in explored]
    assert sum(counts[:-1]) < 7 <= sum(counts)  # exploration stopped once the budget was accepted
    accepted = [a for t in explored for a in read(folder / "explore" / "trajectories" / f"{t['name']}.extxyz", ":")
                if a.info["accepted"]]
    selected = read(folder / "selected.extxyz", ":")
    assert len(selected) == 9 and len(accepted) >= 7
    assert [a.info["source"] for a in selected[:2]] == ["anchor", "anchor"]
    for a, b in zip(selected[2:], accepted[:7], strict=True):
        np.testing.assert_allclose(a.positions, b.positions)
    sources = [a.info["source"] for a in Dataset(tmp_path / "dataset.db").structures()]
    assert sorted(sources) == ["anchor"] * 3 + ["entropy"] * 7  # labelled, each under its source (+ the seed)
    assert {a.info["mode"] for a in accepted} <= {"atom", "config"}


def test_state_follows_the_labelled_dataset_when_a_pick_fails(tmp_path):
    """A round whose picks are saved in state.npz before labelling, one of which fails: the next round's
    state is that of the labelled rows only."""
    from ase.build import bulk
    from ase.io import read
    from ase.io import write as write_structures

    from dael.campaign.loop import current_state, fingerprint_settings, label_round, log_stage
    from dael.campaign.paths import Paths
    from dael.data.dataset import Dataset
    from dael.numeric.dual import new_state
    from dael.numeric.fingerprint import fingerprint

    from conftest import si8_cells

    campaign = preset("Si")
    campaign.label.workers = 0
    write(tmp_path, campaign, phases("Si"))
    campaign, seeds = load(tmp_path)
    paths, settings = Paths(tmp_path), fingerprint_settings(campaign, seeds)
    good, bad = si8_cells(4, seed=3, strain=0.02, rattle=0.05), bulk("Cu", "fcc", a=3.6, cubic=True)
    picked = new_state(campaign.filter.mode, campaign.filter.eps, settings)
    picked.add(fingerprint(good + [bad], cutoff=settings.cutoff, natx=settings.natx))
    paths.round(1).mkdir(parents=True)
    write_structures(paths.round(1) / "selected.extxyz", good + [bad], format="extxyz")
    picked.save(paths.round(1) / "state.npz")  # what selection saves: the state with every pick
    log_stage(paths, 1, "select", {"selected": 5, "logdet": picked.logdet})
    dataset = Dataset(paths.dataset)
    label_round(campaign, paths, 1, dataset, settings, say=lambda line: None)
    assert dataset.counts() == {"labeled": 4, "failed": 1}
    expected = new_state(campaign.filter.mode, campaign.filter.eps, settings)
    labelled = read(paths.round(1) / "selected.extxyz", ":4")  # as labelled: extxyz rounds positions
    expected.add(fingerprint(labelled, cutoff=settings.cutoff, natx=settings.natx))
    state = current_state(paths, campaign, settings)
    assert state.n == expected.n and state.logdet == pytest.approx(expected.logdet, abs=1e-9)
    assert state.config.logdet == pytest.approx(expected.config.logdet, abs=1e-9)  # the default dual state
    assert state.settings == settings
    assert current_state(Paths(tmp_path / "new"), campaign, settings).n == 0  # empty before any label


def test_every_streaming_filter_starts_from_one_threshold():
    """`dael run` (campaign.yaml's filter.min_gain), `dael explore`, `dael filter`, Explorer and Screen share one
    default ΔH threshold (they once differed: 0 in campaigns, 0.01 nats on the command line)."""
    import inspect

    from dael.cli.explore import explore
    from dael.cli.filter import filter_
    from dael.explore.explorer import Explorer
    from dael.numeric.entropy import MIN_GAIN
    from dael.selection.screen import Screen

    defaults = {inspect.signature(f).parameters["min_gain"].default for f in (explore, filter_, Explorer, Screen)}
    assert defaults == {Campaign("Si").filter.min_gain} == {MIN_GAIN}


def test_every_campaign_key_is_documented_and_the_reference_is_current():
    """Every field of campaign.yaml has a `#:` comment, and docs/guide/campaign-yaml.md is what the generator
    writes from them (regenerate: python -m dael.campaign.reference > docs/guide/campaign-yaml.md)."""
    from pathlib import Path

    from dael.campaign.config import Campaign
    from dael.campaign.reference import SUBSECTIONS, field_docs, yaml_reference
    from dael.campaign.sections import SECTIONS

    for klass in (Campaign, *SECTIONS.values(), *SUBSECTIONS.values()):
        missing = [name for name, doc in field_docs(klass).items() if not doc and name not in SECTIONS]
        assert not missing, f"{klass.__name__}: no #: comment above {missing}"
    page = Path(__file__).parents[1] / "docs" / "guide" / "campaign-yaml.md"
    assert page.read_text() == yaml_reference(), "regenerate docs/guide/campaign-yaml.md"


LJ = "ase:ase.calculators.lj:LennardJones"
ARGON = {"epsilon": 0.0104, "rc": 7.0, "sigma": 3.4, "smooth": True}


def argon_campaign(folder, driver_params):
    from ase.build import bulk

    from dael.campaign.config import Budget, Explore, Label

    campaign = Campaign("Ar", driver=LJ, driver_params=driver_params, label=Label(oracle=LJ, params=ARGON),
                        explore=Explore(pressures=[0.0], temperatures=[40.0], steps=20, snapshots=4, thermalize=0,
                                        relax_steps=5, workers=1),
                        budget=Budget(total=4, per_round=4, anchor_fraction=0.5))
    write(folder, campaign, {"fcc": bulk("Ar", "fcc", a=5.26, cubic=True)})
    return folder


def test_driver_params_reach_round_one_and_its_anchors_and_a_wrong_one_stops_dael_run_first(tmp_path):
    from ase.io import read

    from dael.campaign.loop import explore_round, fingerprint_settings
    from dael.campaign.paths import Paths

    folder = argon_campaign(tmp_path / "bad", {**ARGON, "sigmaa": 3.4})
    res = CliRunner().invoke(app, ["run", "--dir", str(folder)])
    assert res.exit_code == 2 and "driver (driver_params" in res.output and "'sigmaa'" in res.output
    assert sorted(p.name for p in folder.iterdir()) == ["campaign.yaml", "seeds.extxyz"]  # nothing written
    with pytest.raises(ValueError, match="driver_params must be a mapping"):
        Campaign.from_dict({"system": "Ar", "driver_params": "sigma=3.4"})
    campaign, seeds = load(argon_campaign(tmp_path / "good", ARGON))
    assert campaign.driver_params == ARGON
    paths = Paths(tmp_path / "good")
    explore_round(campaign, seeds, paths, 1, (LJ, "the campaign's driver"), LJ, Dataset(paths.dataset),
                  fingerprint_settings(campaign, seeds), 0, say=lambda line: None)
    picked = read(paths.round(1) / "selected.extxyz", ":")
    assert sorted(a.info["source"] for a in picked) == ["anchor", "anchor", "entropy", "entropy"]
    assert all(json.loads(a.info["driver_params"]) == ARGON for a in picked)


def test_dael_run_checks_each_rounds_model_once_and_status_shows_it(tmp_path, monkeypatch):
    """After a round's training `dael run` checks its model (campaign.yaml's model_check): models/round-NN/check.json,
    a 'check' log entry and done-check (a rerun does not check again); `dael status` shows the latest check. The
    trained model is stood in for by EMT (passes) and a too-soft Lennard-Jones (fails)."""
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from ase.calculators.lj import LennardJones

    from dael.campaign.config import Label, ModelCheck, Train
    from dael.campaign.loop import log_stage, run
    from dael.campaign.paths import Paths
    from dael.campaign.status import status as campaign_status

    emt = "ase:ase.calculators.emt:EMT"
    campaign = Campaign("Cu", driver=emt, label=Label(oracle=emt, workers=0), train=Train(settings={}),
                        model_check=ModelCheck(checks=["md", "eos"], md_ps=0.2, seeds=1, settings={"atoms": 16}))
    campaign.explore.temperatures = [2000.0]
    write(tmp_path, campaign, {"fcc": bulk("Cu", "fcc", a=3.6, cubic=True)})
    paths = Paths(tmp_path)
    paths.model(1).mkdir(parents=True)
    for stage, entry in (("select", {"selected": 3, "logdet": 0.0}), ("label", {"logdet": 0.0}),
                         ("train", {"model": str(paths.model(1)), "validation": {}})):
        paths.round(1).mkdir(parents=True, exist_ok=True)
        log_stage(paths, 1, stage, entry)
    model = {"calc": EMT()}
    monkeypatch.setattr("dael.check.report.make_calculator", lambda name, **kw: model["calc"])
    state = run(tmp_path, say=lambda _: None, max_rounds=1)
    assert state["check"]["round"] == 1 and state["check"]["passed"] and state["check"]["headline"] == "passed"
    saved = json.loads((paths.model(1) / "check.json").read_text())
    assert saved["model"] == f"allegro:{paths.model(1)}" and set(saved["seconds"]) == {"md", "eos"}
    assert saved["md"]["trajectories"] == 2 and saved["md"]["runs"][0]["ps"] == 0.2
    assert (paths.round(1) / "done-check").exists()
    def stages() -> list[str]:
        return [json.loads(x)["stage"] for x in (tmp_path / "log.jsonl").read_text().splitlines()]

    before = stages()
    run(tmp_path, say=lambda _: None, max_rounds=1)
    assert stages() == before + ["end"] and before.count("check") == 1  # resumed: checked once
    (paths.round(1) / "done-check").unlink()  # as if killed after the MD runs, before the check's end
    ran = []
    monkeypatch.setattr("dael.check.robustness.run_one", lambda *args: ran.append(args) or {})
    run(tmp_path, say=lambda _: None, max_rounds=1)
    assert ran == [] and json.loads((paths.model(1) / "check.json").read_text())["md"] == saved["md"]  # read back
    monkeypatch.undo()
    monkeypatch.setattr("dael.check.report.make_calculator", lambda name, **kw: model["calc"])
    (paths.round(1) / "done-check").unlink()  # the round's model trained again (another file): now it is broken
    (paths.model(1) / "model.nequip.zip").write_bytes(b"retrained")
    model["calc"] = LennardJones(sigma=1.5, epsilon=0.01, rc=4.0, smooth=True)
    said = []
    run(tmp_path, say=said.append, max_rounds=1)
    assert any("made with another model: checking afresh" in line for line in said), said
    check = campaign_status(tmp_path)["check"]
    assert not check["passed"] and check["failed"] == ["md"] and check["md"]["failure_fraction"] == 1.0
    table = CliRunner().invoke(app, ["status", "--dir", str(tmp_path)])
    assert table.exit_code == 0 and "round 1: failed: md (MD: 2 of 2 trajectories failed, median" in table.output
    assert "close contact" in table.output
