"""Checks of a model (dael.check, `dael check`): MD robustness, phase retention, equation of state, phonons, on
cheap ASE calculators (EMT, Lennard-Jones) and small cells."""

import json

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones
from ase.calculators.singlepoint import SinglePointCalculator
from typer.testing import CliRunner

from dael.campaign.config import Campaign, Explore
from dael.campaign.folder import write
from dael.check import CheckSettings, check_model, lines
from dael.check.physics import eos_verdict, phase_retention, phonon_stability
from dael.check.robustness import FailureGuard, md_robustness
from dael.check.settings import conditions
from dael.cli import app

CU = {"fcc": bulk("Cu", "fcc", a=3.6, cubic=True)}
SOFT = {"sigma": 1.5, "epsilon": 0.01, "rc": 4.0, "smooth": True}
"""A broken model of Cu: Lennard-Jones with a bond length of 1.7 Å and a 0.01 eV well, too soft to keep hot atoms
apart."""
TINY = {"md_ps": 0.1, "seeds": 1, "atoms": 32}


def test_conditions_are_the_hottest_and_highest_and_one_step_beyond():
    assert conditions([0.0, 8.0, 15.0], [300.0, 1000.0, 2000.0]) == [(15.0, 2000.0), (17.2, 2300.0)]
    assert conditions([0.0], [600.0]) == [(0.0, 600.0), (5.0, 690.0)]
    assert conditions([0.0], [600.0], step_beyond=False) == [(0.0, 600.0)]


def test_a_broken_model_fails_its_own_md_with_a_close_contact_and_a_time():
    result = md_robustness(LennardJones(**SOFT), CU, [0.0], [2000.0], CheckSettings(md_ps=0.3, seeds=2, atoms=32))
    assert result["trajectories"] == 4 and result["failed"] == 4 and result["failure_fraction"] == 1.0
    assert result["by_kind"] == {"close contact": 4} and not result["passed"]
    times = [r["time_to_failure_ps"] for r in result["runs"]]
    assert all(0 < t < 0.3 for t in times) and result["median_time_to_failure_ps"] == pytest.approx(np.median(times))
    assert all("closer than 0.5 × the sum of their covalent radii" in r["reason"] for r in result["runs"])
    assert {(r["pressure_GPa"], r["temperature_K"]) for r in result["runs"]} == {(0.0, 2000.0), (5.0, 2300.0)}
    json.dumps(result, allow_nan=False)


def test_a_sound_model_passes_its_own_md():
    result = md_robustness(EMT(), CU, [0.0], [600.0], CheckSettings(**TINY))
    assert result["passed"] and result["failed"] == 0 and result["median_time_to_failure_ps"] is None
    assert [r["ps"] for r in result["runs"]] == [0.1, 0.1] and {r["atoms"] for r in result["runs"]} == {32}


def test_trajectories_run_in_worker_processes_from_a_registry_name(monkeypatch):
    """workers > 1: each trajectory is submitted with the model's registry name, which the worker builds (a pool
    that runs each job at once stands in for dael.label.workers.process_pool, whose processes the explorer's tests
    spawn); the same runs result."""
    from concurrent.futures import Future

    class AtOnce:
        submitted: list = []

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def submit(self, fn, *args):
            AtOnce.submitted.append(args[0])
            done = Future()
            done.set_result(fn(*args))
            return done

    monkeypatch.setattr("dael.check.robustness.process_pool", lambda workers: AtOnce())
    settings = CheckSettings(**TINY, workers=2)
    parallel = md_robustness("ase:ase.calculators.emt:EMT", CU, [0.0], [600.0], settings)
    serial = md_robustness(EMT(), CU, [0.0], [600.0], CheckSettings(**TINY))
    assert _without_seconds(parallel) == _without_seconds(serial)
    assert AtOnce.submitted == ["ase:ase.calculators.emt:EMT"] * 2
    with pytest.raises(ValueError, match="registry name"):
        md_robustness(EMT(), CU, [0.0], [600.0], settings)


def _without_seconds(result: dict) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in result["runs"]]


def test_an_interrupted_md_check_resumes_from_its_journal(tmp_path, monkeypatch):
    """Each finished run is in the journal at once; a rerun after a kill (two runs and a half-written line
    left) runs only the missing two and returns what the uninterrupted check returns; a journal of another model
    or other MD settings is refused."""
    journal = tmp_path / "check.runs.jsonl"
    settings = CheckSettings(md_ps=0.05, seeds=2, atoms=32)
    whole = md_robustness(EMT(), CU, [0.0], [600.0], settings, journal=journal, identity="emt")
    lines = journal.read_text().splitlines()
    assert len(lines) == 5 and json.loads(lines[0])["settings"]["md_ps"] == 0.05
    journal.write_text("\n".join(lines[:3]) + "\n" + lines[3][:40])
    ran = []
    import dael.check.robustness as robustness
    real = robustness.run_one
    monkeypatch.setattr(robustness, "run_one", lambda *args: ran.append(args[5]) or real(*args))
    resumed = md_robustness(EMT(), CU, [0.0], [600.0], settings, journal=journal, identity="emt")
    assert sorted(ran) == sorted(r["seed"] for r in whole["runs"] if json.dumps(r) not in lines[1:3])
    assert len(ran) == 2 and _without_seconds(resumed) == _without_seconds(whole)
    assert len(journal.read_text().splitlines()) == 5
    ran.clear()
    again = md_robustness(EMT(), CU, [0.0], [600.0], settings, journal=journal, identity="emt")
    assert ran == [] and again["runs"] == resumed["runs"]
    with pytest.raises(ValueError, match="other MD settings \\(md_ps\\)"):
        md_robustness(EMT(), CU, [0.0], [600.0], CheckSettings(md_ps=0.1, seeds=2, atoms=32), journal=journal,
                      identity="emt")
    with pytest.raises(ValueError, match="another model"):
        md_robustness(EMT(), CU, [0.0], [600.0], settings, journal=journal, identity="lj")


def test_a_model_file_rewritten_in_place_is_another_model_to_its_journal(tmp_path):
    import os

    from dael.check.journal import identity, journal_of

    model = tmp_path / "model.nequip.zip"
    model.write_bytes(b"weights")
    first = identity(f"allegro:{model}")
    assert identity(f"allegro:{model}") == first and identity("reference") == {"name": "reference"}
    os.utime(model, ns=(1, 1))
    assert identity(f"allegro:{model}") != first
    assert journal_of(tmp_path / "check.json") == tmp_path / "check.runs.jsonl"


def _frame(atoms: Atoms, energy: float) -> Atoms:
    atoms = atoms.copy()
    atoms.calc = SinglePointCalculator(atoms, energy=energy * len(atoms), forces=np.zeros((len(atoms), 3)))
    return atoms


def test_the_guard_sees_a_lost_neighbour_and_an_energy_drop():
    cell = bulk("Cu", "fcc", a=3.6, cubic=True) * (2, 2, 2)
    guard = FailureGuard()
    guard.start(_frame(cell, -3.0))
    assert guard.check(_frame(cell, -3.0)) is None and guard.check(_frame(cell, -3.6)) is None  # 0.6 eV/atom
    assert "below the relaxed start" in guard.check(_frame(cell, -4.2)) and guard.kind == "energy drop"
    lonely = cell.copy()
    lonely.set_cell(cell.cell * 3)  # the atoms stay put; one is moved far from every other
    lonely.positions[0] = [10.0, 10.0, 10.0]
    guard.start(_frame(lonely, -3.0))
    assert "atom 0 (Cu) has no neighbour within 2 ×" in guard.check(_frame(lonely, -3.0))
    assert guard.kind == "lost neighbours" and guard.checks == 0
    nan = cell.copy()
    nan.positions[3, 1] = np.nan
    assert guard.check(nan) == "non-finite positions or cell" and guard.kind == "non-finite"


def test_phase_retention_sees_a_phase_that_relaxes_into_another():
    """Simple-cubic Cu is a saddle of EMT: from a rattled start it relaxes to fcc; fcc stays fcc."""
    seeds = {"sc": bulk("Cu", "sc", a=2.4), "fcc": bulk("Cu", "fcc", a=3.6)}
    quick = CheckSettings(relax_fmax=0.02)
    result = phase_retention(EMT(), seeds, [0.0], quick)
    kept = {e["phase"]: (e["kept"], e["seed"], e["relaxed"]) for e in result["phases"]}
    assert kept == {"sc": (False, "Pm-3m (221)", "Fm-3m (225)"), "fcc": (True, "Fm-3m (225)", "Fm-3m (225)")}
    assert not result["passed"]
    # against a reference that relaxes the same start the same way, the change is expected
    assert phase_retention(EMT(), {"sc": seeds["sc"]}, [0.0], quick, reference=EMT())["passed"]


def test_phonons_of_fcc_cu_are_real_and_a_saddle_is_flagged():
    seeds = {"sc": bulk("Cu", "sc", a=2.4), "fcc": bulk("Cu", "fcc", a=3.6)}
    result = phonon_stability(EMT(), seeds, [0.0])
    lowest = {e["phase"]: e["lowest_cm1"] for e in result["phases"]}
    assert lowest["fcc"] > -1.0 and lowest["sc"] < -50.0  # measured: -0.0 and -115 cm⁻¹
    assert [e["passed"] for e in result["phases"]] == [False, True] and not result["passed"]
    assert lines({"phonons": result}) == [f"phonons: lowest {lowest['sc']:g} cm⁻¹ (sc 0 GPa); failed: sc 0 GPa "
                                          f"{lowest['sc']} cm⁻¹"]
    # a reference that finds the same instability makes it expected
    expected = phonon_stability(EMT(), seeds, [0.0], reference=EMT())
    assert expected["passed"] and "(sc 0 GPa, unstable in the reference too), none failed" in lines(
        {"phonons": expected})[0]


def test_the_eos_criterion_on_synthetic_curves():
    s = np.round(np.linspace(0.9, 1.1, 11), 2)
    smooth = 5 * (s - 1.01) ** 2 - 2 * (s - 1.01) ** 3
    assert eos_verdict(s, smooth)["passed"] and eos_verdict(s, smooth)["minimum_scale"] == 1.02
    double = ((s - 1.0) ** 2 - 0.05**2) ** 2
    assert eos_verdict(s, double)["minima"] == 2 and not eos_verdict(s, double)["passed"]
    kink = 5 * (s - 1.0) ** 2 + 0.6 * np.abs(s - 1.04)
    verdict = eos_verdict(s, kink)
    assert not verdict["passed"] and verdict["reason"].startswith("a kink") and "1.04" in verdict["reason"]
    bump = 5 * (s - 1.0) ** 2 + 0.006 * (s > 1.05)  # a step: not convex
    assert eos_verdict(s, bump)["reason"].startswith("not convex")
    edge = 5 * (s - 1.2) ** 2
    assert "end of the range" in eos_verdict(s, edge)["reason"]
    assert eos_verdict(s, np.where(s == 1.0, np.nan, smooth))["reason"] == "non-finite energy"


def test_check_model_runs_every_check_and_is_strict_json():
    settings = CheckSettings(**TINY, checks=["md", "eos", "phases"])
    result = check_model(EMT(), CU, [0.0], [600.0], settings)
    assert result["passed"] and result["failed"] == [] and set(result["seconds"]) == {"md", "phases", "eos"}
    assert "phonons" not in result and result["eos"]["phases"][0]["minimum_scale"] == 1.0
    text = json.dumps(result, allow_nan=False)
    assert json.loads(text)["settings"]["md_ps"] == 0.1
    assert lines(result)[0] == "md: 0 of 2 trajectories of 0.1 ps failed"
    with pytest.raises(ValueError, match="checks must be some of"):
        CheckSettings(checks=["md", "dft"])
    with pytest.raises(ValueError, match="unknown key\\(s\\) md_steps"):
        CheckSettings.from_dict({"md_steps": 10})
    with pytest.raises(ValueError, match="isolated"):
        CheckSettings(isolated=0.4)


def _campaign(tmp_path):
    write(tmp_path, Campaign("Cu", explore=Explore(pressures=[0.0], temperatures=[2000.0])), CU)
    return str(tmp_path)


def test_dael_check_exit_codes(tmp_path):
    runner = CliRunner()
    folder = _campaign(tmp_path)
    quick = ["--campaign", folder, "--ps", "0.1", "--seeds", "1", "--atoms", "32"]
    sound = runner.invoke(app, ["check", "ase:ase.calculators.emt:EMT", *quick, "--checks", "md,eos"])
    assert sound.exit_code == 0, sound.output
    assert "smooth with one minimum" in sound.output
    broken = runner.invoke(app, ["check", "ase:ase.calculators.lj:LennardJones", *quick, "--checks", "md",
                                 "--json", *[x for k, v in SOFT.items() for x in ("--param", f"{k}={json.dumps(v)}")]])
    assert broken.exit_code == 1, broken.output
    result = json.loads(broken.stdout)
    assert result["failed"] == ["md"] and result["md"]["by_kind"] == {"close contact": 2}
    for args, message in ((["check", "ase:ase.calculators.emt:EMT", *quick, "--checks", "md,dft"], "checks must be"),
                          (["check", "ase:ase.calculators.emt:EMT"], "--campaign is needed"),
                          (["check", "nosuchmodel", *quick], "unknown calculator"),
                          (["check", "ase:ase.calculators.emt:EMT", *quick, "--compile"],
                           "--compile needs a trained model"),
                          (["check", str(tmp_path), *quick], "not a trained model directory")):
        bad = runner.invoke(app, args)
        assert bad.exit_code == 2 and message in bad.output, bad.output


def test_dael_check_of_a_model_folder_finds_its_campaign_and_writes_check_json(tmp_path, monkeypatch):
    """A model folder CAMPAIGN/models/round-NN: no --campaign needed, the result lands in its check.json (EMT stands
    in for the trained model)."""
    folder = tmp_path / "models" / "round-02"
    folder.mkdir(parents=True)
    _campaign(tmp_path)
    monkeypatch.setattr("dael.cli.check.check_calculator", lambda name, **params: None)
    monkeypatch.setattr("dael.cli.check.make_calculator", lambda name, **params: EMT())
    result = CliRunner().invoke(app, ["check", str(folder), "--checks", "eos"])
    assert result.exit_code == 0, result.output
    saved = json.loads((folder / "check.json").read_text())
    assert saved["model"] == f"allegro:{folder}" and saved["passed"] and saved["grid"]["temperatures_K"] == [2000.0]
    assert f"-> {folder / 'check.json'}" in result.output


def test_dael_check_out_writes_the_result_and_resumes_its_md(tmp_path):
    """--out: the result and the MD runs' journal beside it; the same command again reads the runs back (to
    stderr under --json, stdout stays one JSON object); other MD settings on the same --out: exit 2, nothing run."""
    runner = CliRunner()
    out = tmp_path / "emt-check.json"
    args = ["check", "ase:ase.calculators.emt:EMT", "--campaign", _campaign(tmp_path), "--ps", "0.05", "--seeds",
            "1", "--atoms", "32", "--checks", "md", "--out", str(out)]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    journal = tmp_path / "emt-check.runs.jsonl"
    assert json.loads(out.read_text())["md"]["trajectories"] == 2 and len(journal.read_text().splitlines()) == 3
    again = runner.invoke(app, [*args, "--json"])
    assert again.exit_code == 0 and "2 trajectories read back" in again.stderr
    assert json.loads(again.stdout)["md"]["runs"] == json.loads(out.read_text())["md"]["runs"]
    other = runner.invoke(app, [*args[:4], "--ps", "0.1", *args[6:]])
    assert other.exit_code == 2 and "other MD settings (md_ps)" in other.output, other.output
