"""Campaign config and presets, the loop (one tiny real round, resumed without relabelling), status, report."""

import json

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from dael.benchmark.report import condition_tables, markdown_table, ratios, summarize, verdict, write_report
from dael.benchmark.strategies import interleave
from dael.campaign.config import (
    K_GLOBAL,
    PRESET_ANCHOR_FRACTION,
    PRESET_K_GLOBAL,
    Benchmark,
    Campaign,
    load,
    phases,
    preset,
    write,
)
from dael.cli import app
from dael.data.dataset import Dataset
from dael.train.training import still_improving


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


def test_report_tables_ratios_and_html(tmp_path):
    records = []
    for pool, scale in (("stream", 1.0), ("random", 3.0), ("mixed", 1.5)):
        for n in (10, 20):
            for d in range(2):
                records.append({"pool": pool, "size": n, "draw": d, "set": "test", "energy_mae": scale * (10 + d) / n,
                                "force_mae": scale * 100 / n, "stress_mae": scale})
    rows = summarize(records)
    entropy10 = next(r for r in rows if r["pool"] == "stream" and r["size"] == 10)
    assert entropy10["energy_mae"] == pytest.approx(1.05) and entropy10["energy_mae_std"] == pytest.approx(0.05)
    assert all(r["energy_mae"] == pytest.approx(3.0) for r in ratios(rows))
    assert "| test | stream | 10 | 2 | 1.05 ± 0.05" in markdown_table(rows)
    html = write_report(records, tmp_path, "t", {"a": 1}, ["note"]).read_text()
    assert "3.00×" in html and (tmp_path / "curves-test.png").stat().st_size > 1000
    assert "test, N = 20: stream is best (0.53); random MD 1.57 (3.00× the error)." in html
    assert (tmp_path / "results.csv").read_text().count("\n") == 7


def test_verdict_compares_the_best_selection_with_random_md_and_its_anchored_control():
    records = [{"pool": pool, "size": 20, "draw": 0, "set": "test", "energy_mae": e, "force_mae": 1.0,
                "stress_mae": 1.0}
               for pool, e in (("stream-fill", 3.0), ("mixed", 2.0), ("random-anchored", 1.6), ("random", 4.0))]
    assert verdict(summarize(records)) == [
        "test, N = 20: random-anchored is best (1.60); random MD 4.00 (2.50× the error); random MD with the same"
        " anchors (random-anchored) 1.60 (0.80× mixed's error)."]
    without = verdict(summarize([r for r in records if r["pool"] != "random-anchored"]))
    assert without == ["test, N = 20: mixed is best (2.00); random MD 4.00 (2.00× the error)."]
    thermal = verdict(summarize([{**r, "energy_mae": 1.0} if r["pool"] == "random" else r for r in records]))
    assert thermal == ["test, N = 20: random is best (1.00); the best selection, mixed, has 2.00× random MD's error;"
                       " random MD with the same anchors (random-anchored) 1.60 (0.80× mixed's error)."]


def test_condition_tables_say_where_on_the_grid_each_set_errs(tmp_path):
    """Per-condition test errors are tabled at the largest N with random MD's error over the best other
    strategy's, and kept out of the plots and the verdict."""
    records = [{"pool": pool, "size": n, "draw": 0, "set": f"test@B2 0 GPa {t} K", "energy_mae": e * t / 300,
                "force_mae": 2 * e, "stress_mae": 1.0}
               for pool, e in (("mixed", 2.0), ("stream-fill", 4.0), ("random", 1.0)) for n in (10, 20)
               for t in (300, 1000)]
    records += [{**r, "set": "test"} for r in records if r["set"].endswith("300 K")]
    energy, force = condition_tables(summarize(records))
    assert energy.splitlines()[0] == "Test energy MAE (meV/atom) by condition, N = 20:"
    assert "| condition | stream-fill | mixed | random | random / best other |" in energy
    assert "| B2 0 GPa 1000 K | 13.33 | 6.67 | 3.33 | 0.50 |" in energy
    assert "| B2 0 GPa 300 K | 8.00 | 4.00 | 2.00 | 0.50 |" in force
    zero = [{**r, "force_mae": 1e-4 if r["pool"] == "random" else 1e-3} for r in records]  # symmetric cells
    assert "| B2 0 GPa 300 K | 0.00 | 0.00 | 0.00 | – |" in condition_tables(summarize(zero))[1]
    html = write_report(records, tmp_path, "t", {}).read_text()
    assert "B2 0 GPa 1000 K | 13.33" in html and "test@" not in "".join(verdict(summarize(records)))
    assert [p.name for p in tmp_path.glob("curves-*.png")] == ["curves-test.png"]


def test_interleave_keeps_the_anchor_share_in_every_prefix():
    order = interleave([f"a{i}" for i in range(4)], [f"e{i}" for i in range(16)], 0.2)
    assert len(order) == 20
    for n in (5, 10, 20):
        assert sum(k[0] == "a" for k in order[:n]) == n // 5


def test_two_rounds_run_and_resume_without_relabelling(tmp_path):
    from ase.io import read

    campaign = preset("Si")
    campaign.explore.pressures, campaign.explore.temperatures = [0.0], [900.0]
    campaign.explore.steps, campaign.explore.snapshots, campaign.explore.thermalize = 40, 4, 10
    campaign.explore.relax_steps = 10
    campaign.budget.total, campaign.budget.per_round = 10, 5
    campaign.train.epochs, campaign.train.settings = 2, {}  # dael.train.training's tiny model: fast
    write(tmp_path, campaign, phases("Si"))
    res = CliRunner().invoke(app, ["run", "--dir", str(tmp_path)])
    assert res.exit_code == 0, res.output
    rounds = sorted(tmp_path.glob("rounds/round-*/done-select"))
    selected = [json.loads(f.read_text())["selected"] for f in rounds]
    assert selected[0] == 5 and sum(selected) <= 10  # per round and in all, never beyond the budget
    if sum(selected) < 10:  # rounds go on until the budget is spent, unless one finds nothing new
        assert selected[-1] == 0 and "nothing new worth labelling" in res.output
    else:
        assert "nothing new" not in res.output
    first = json.loads((tmp_path / "rounds" / "round-01" / "done-train").read_text())
    assert first["structures"] == 5 and "energy_mae" in first["validation"]
    second = json.loads((tmp_path / "rounds" / "round-02" / "done-select").read_text())
    assert second["driver"] == f"allegro:{tmp_path / 'models' / 'round-01'}"  # the trained model drove round 2
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
    labelled = sum(selected)
    assert res.exit_code == 0 and f"{labelled} / 10" in res.output
    # a barely trained driver can push atoms together: such snapshots are refused, not labelled
    counts = Dataset(tmp_path / "dataset.db").counts()
    assert counts["labeled"] + counts["failed"] == labelled and f"labeled {counts['labeled']}" in res.output
    refused = [a.info["error"] for a in Dataset(tmp_path / "dataset.db").structures("failed")]
    assert all(e.startswith("refused before labelling") for e in refused)
    assert np.isfinite(second["logdet"])


def test_status_lists_trajectories_stopped_or_run_unbiased(tmp_path):
    """`dael status` counts the explorer's trajectories that stopped early and those an unstable phase ran
    unbiased (their log lines carry unstable_drop, dael.explore.md.quench_drop)."""
    write(tmp_path, preset("NaCl"), phases("NaCl"))
    log = tmp_path / "rounds" / "round-01" / "explore" / "trajectories.jsonl"
    log.parent.mkdir(parents=True)
    lines = [{"name": "B2_P0_T300", "status": "ok", "unstable_drop": 0.1063}, {"name": "B1_P0_T300", "status": "ok"},
             {"name": "B1_P0_T1000", "status": "stopped at step 40: force 80.0 eV/Å above 50.0"}]
    log.write_text("".join(json.dumps(x) + "\n" for x in lines))
    res = CliRunner().invoke(app, ["status", "--dir", str(tmp_path), "--json"])
    state = json.loads(res.output)
    assert state["trajectories_unbiased"] == ["B2_P0_T300: quench +0.106 eV/atom"]
    assert state["trajectories_stopped"] == ["B1_P0_T1000: stopped at step 40: force 80.0 eV/Å above 50.0"]
    table = CliRunner().invoke(app, ["status", "--dir", str(tmp_path)]).output
    assert "trajectories unbiased (unstable phase)" in table


def test_a_round_labels_its_anchors_and_exactly_what_the_streaming_filter_accepted_first(tmp_path):
    """Budget N with anchor share a: the round labels round(a·N) near-equilibrium anchors, exploration stops once
    the other N − round(a·N) snapshots are accepted, and the round labels those in the order the filter took them
    (dual mode, energy window, size-independent bias, a fifth anchors: the defaults)."""
    from ase.io import read

    campaign = preset("Si")
    assert (campaign.filter.mode, campaign.filter.selection, campaign.explore.bias_scale) == ("dual", "stream", "kT")
    assert campaign.budget.anchor_fraction == 0.2
    e = campaign.explore
    e.pressures, e.temperatures, e.steps, e.snapshots, e.thermalize, e.relax_steps = [0.0], [600.0, 1200.0], 30, 5, 5, 5
    e.workers = 1
    campaign.budget.total, campaign.budget.per_round = 9, 9  # 2 anchors + 7 accepted
    campaign.train.epochs, campaign.train.settings = 1, {}
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
    assert sorted(sources) == ["anchor"] * 2 + ["entropy"] * 7  # labelled, each under its source
    assert {a.info["mode"] for a in accepted} <= {"atom", "config"}


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
                                   md_steps=20)
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
    conditions = {f"test@{p} 0 GPa {c}" for p in ("diamond", "beta-tin") for c in ("900 K", "strains")}
    assert {r["set"] for r in records} == {"holdout", "holdout-entropy", "holdout-entropy-window",
                                           "holdout-entropy-accepted", "holdout-random",
                                           "test", "test-900K", "test-strain", "transfer", "transfer-beyond",
                                           "md"} | conditions
    evaluation = json.loads((tmp_path / "models" / "stream-fill-N16-d0" / "evaluation.json").read_text())
    for split in (("test-900K", "test-strain"), sorted(conditions)):  # kinds and conditions recombine
        kinds = [evaluation[k] for k in split]
        assert sum(k["structures"] for k in kinds) == evaluation["test"]["structures"]
        combined = sum(k["energy_mae"] * k["structures"] for k in kinds) / evaluation["test"]["structures"]
        assert combined == pytest.approx(evaluation["test"]["energy_mae"], rel=1e-6)
    # benchmark.test_repeats (3) independent oracle runs per condition, 5 snapshots each; 2 strains, no relaxed
    assert evaluation["test@diamond 0 GPa 900 K"]["structures"] == 3 * 5
    assert evaluation["test@diamond 0 GPa strains"]["structures"] == 2
    assert "Test force MAE (meV/Å) by condition, N = 16:" in (tmp_path / "results.md").read_text()
    assert not list(tmp_path.glob("curves-test@*"))
    union = evaluation["holdout"]["structures"]
    assert union == evaluation["holdout-entropy"]["structures"] + evaluation["holdout-random"]["structures"]
    assert 0 < evaluation["md"]["survived"] <= 1 and evaluation["md"]["energy_mae"] > 0
    # the strategies see the explorer's tags (trajectory, step, energies), kept with the dataset's rows
    from ase.io import read

    from dael.benchmark.run import _labelled

    names = ("entropy", "random", "anchor", "test", "transfer")
    pools = {name: read(tmp_path / "pools" / f"{name}.extxyz", ":") for name in names}
    data = _labelled(campaign, pools, tmp_path, say=lambda line: None)
    # transfer: 2×2×2 cells at conditions off the grid (0 GPa, 900 K → 5 GPa, 1035 K), never trained on
    seed_atoms = {name: len(a) for name, a in phases("Si").items()}
    assert len(data["transfer"]) == evaluation["transfer"]["structures"] == len(pools["transfer"]) > 0
    assert all(len(a) == 8 * seed_atoms[a.info["phase"]] for a in data["transfer"])
    assert {(a.info["pressure_GPa"], a.info["temperature_K"]) for a in data["transfer"]} == {(5.0, 1035.0)}
    assert evaluation["transfer-beyond"]["structures"] == evaluation["transfer"]["structures"]  # no midpoint
    assert len(data["test"]) == evaluation["test"]["structures"]  # the test set holds no transfer structure
    from dael.benchmark.run import overlap

    assert overlap(data) == 0 and "also in a training pool" not in report.read_text()  # no test structure trained on
    assert overlap({**data, "anchor": data["anchor"] + data["test"][:3]}) == 3
    assert all({"trajectory", "step", "driver_energy"} <= set(a.info) for a in data["entropy"])
    assert all(a.info["status"] == "labeled" for a in data["entropy"])
    # the entropy holdout within the energy window: the snapshots a windowed strategy could have picked
    from dael.benchmark.run import accepted_by_filter, holdout_indices, in_distribution_holdouts, pool_fingerprints
    from dael.explore.window import in_window

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

    import dael.calculators.registry
    from dael.benchmark.run import check_stored

    offline = tmp_path / "offline"
    with pytest.raises(ValueError, match=r"missing: pools/entropy.extxyz.*labels of the transfer pool"):
        check_stored(offline)
    shutil.copytree(tmp_path / "pools", offline / "pools")
    for name in ("labels.db", "labels.done", "holdouts.json", "sets.json"):
        shutil.copy(tmp_path / name, offline / name)
    built = dael.calculators.registry.make_calculator

    def refuse(*args, **kwargs):
        raise AssertionError("a run without the oracle built a calculator")

    monkeypatch.setattr(dael.calculators.registry, "make_calculator", refuse)
    campaign.train.settings = {"num_layers": 2}
    report = run_benchmark(campaign, phases("Si"), offline, say=lambda line: None, strategies=["random"],
                           oracle=False)
    offline_model = offline / "models" / "random-N16-d0"
    evaluation = json.loads((offline_model / "evaluation.json").read_text())
    assert "md" not in evaluation and evaluation["test"]["structures"] == len(data["test"])
    assert "Run without the oracle (--no-oracle)" in report.read_text()
    assert "num_layers: 2" in (offline_model / "config.yaml").read_text()
    monkeypatch.setattr(dael.calculators.registry, "make_calculator", built)
    stamp = (offline_model / "model.nequip.zip").stat().st_mtime
    run_benchmark(campaign, phases("Si"), offline, say=lambda line: None, strategies=["random"])
    evaluation = json.loads((offline_model / "evaluation.json").read_text())
    assert 0 < evaluation["md"]["survived"] <= 1 and (offline_model / "model.nequip.zip").stat().st_mtime == stamp


def test_state_follows_the_labelled_dataset_when_a_pick_fails(tmp_path):
    """A round whose picks are saved in state.npz before labelling, one of which fails: the next round's
    state is that of the labelled rows only."""
    from ase.build import bulk
    from ase.io import read
    from ase.io import write as write_structures

    from dael.campaign.loop import Paths, _label, _mark, current_state, fingerprint_settings
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
    _mark(paths, 1, "select", {"selected": 5, "logdet": picked.logdet})
    dataset = Dataset(paths.dataset)
    _label(campaign, paths, 1, dataset, settings, say=lambda line: None)
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

    from dael.cli.exploring import explore
    from dael.cli.fingerprints import filter_
    from dael.explore.explorer import Explorer
    from dael.numeric.entropy import MIN_GAIN
    from dael.selection.screen import Screen

    defaults = {inspect.signature(f).parameters["min_gain"].default for f in (explore, filter_, Explorer, Screen)}
    assert defaults == {Campaign("Si").filter.min_gain} == {MIN_GAIN}


def test_each_pools_holdout_depends_on_that_pool_alone_and_is_kept(tmp_path):
    """One pool's holdout does not move when the oracle labels one structure fewer of another pool; it is
    kept in holdouts.json; a folder whose sets were drawn before that file keeps its original holdout."""
    from ase import Atoms

    from dael.benchmark.run import holdout_indices

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
    rng = np.random.default_rng(7)
    expected = {name: sorted(rng.permutation(len(data[name]))[: len(data[name]) // 10]) for name in data}
    assert {k: v.tolist() for k, v in holdout_indices(data, 7, old).items()} == expected
