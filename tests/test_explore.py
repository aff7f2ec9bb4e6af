"""The explorer: a grid of biased trajectories filtered into the dataset state, in parallel, resumable,
with the random-MD baseline; the `dael explore` command; failures recorded, not raised."""

import json
import os
import warnings
from dataclasses import replace

import numpy as np
import pytest
from ase.build import bulk
from ase.io import read
from typer.testing import CliRunner

import dael
from dael.calculators.registry import make_calculator
from dael.cli import app
from dael.explore.explorer import Explorer, grid
from dael.explore.md import MDSettings
from dael.numeric.entropy import GlobalEntropy

SETTINGS = dael.FingerprintSettings(4.5, 40, "s")
MD = MDSettings(steps=30, snapshots=3, relax_steps=10, thermalize=10)


def si8():
    return bulk("Si", "diamond", a=5.43, cubic=True)


def test_grid_runs_filters_and_resumes(tmp_path):
    jobs = grid({"diamond": si8()}, [0.0, 5.0], [300.0], [2.0], md=MD)
    assert len(jobs) == 2 and {j.md.pressure for j in jobs} == {0.0, 5.0}
    explorer = Explorer("reference", GlobalEntropy("atom", settings=SETTINGS), tmp_path, min_gain=0.01)
    result = explorer.run(jobs[:1])
    assert [t["status"] for t in result.trajectories] == ["ok"]
    result = Explorer("reference", GlobalEntropy("atom", settings=SETTINGS), tmp_path, workers=2).run(jobs)
    assert len(result.trajectories) == 2  # the first was not run again
    lines = [json.loads(x) for x in (tmp_path / "trajectories.jsonl").read_text().splitlines()]
    assert [x["name"] for x in lines] == [j.name for j in jobs]
    snaps = read(tmp_path / "snapshots.extxyz", ":")
    assert len(snaps) == 6
    info = snaps[4].info
    assert (info["phase"], info["pressure_GPa"], info["k_global"], info["driver"], info["source"]) == \
        ("diamond", 5.0, 2.0, "reference", "entropy")
    assert info["step"] in (10, 20, 30) and "gain" in info
    accepted = read(tmp_path / "accepted.extxyz", ":")
    assert len(accepted) == result.accepted == sum(s.info["accepted"] for s in snaps) > 0
    # the state holds exactly the accepted snapshots
    check = GlobalEntropy("atom")
    check.add(dael.fingerprint(accepted, cutoff=4.5, natx=40))
    assert result.state.logdet == pytest.approx(check.logdet, rel=1e-10)
    assert result.state.n == 8 * len(accepted)


def test_parallel_exploration_stops_once_enough_is_accepted(tmp_path):
    """With `stop_after` reached while trajectories are still queued, two workers finish what runs and leave
    the rest (this once spun forever at 100 % CPU in `make demo` when the budget filled before the queue
    emptied); a watchdog fails the test instead of hanging the suite."""
    import threading

    jobs = grid({"diamond": si8()}, [0.0, 2.0, 4.0, 6.0, 8.0, 10.0], [300.0], [0.25], md=MD)
    explorer = Explorer("reference", GlobalEntropy("atom", settings=SETTINGS), tmp_path, min_gain=-np.inf,
                        workers=2, stop_after=1)
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.update(result=explorer.run(jobs)), daemon=True)
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive(), "the explorer did not stop after the budget was accepted"
    ran = outcome["result"].trajectories
    assert 2 <= len(ran) < len(jobs)  # the two started together finish; no new one starts after the first
    assert outcome["result"].accepted >= 1


def test_random_baseline_has_no_bias_and_random_steps():
    jobs = grid({"diamond": si8()}, [0.0], [300.0, 600.0], [2.0, 5.0], md=MD, random_baseline=True)
    assert all(j.k_global == 0 and j.k_local == 0 and j.source == "random" for j in jobs)
    steps = [tuple(j.md.snapshot_steps()) for j in jobs]
    assert len(set(steps)) > 1


def test_failures_are_recorded(tmp_path):
    jobs = grid({"copper": bulk("Cu", "fcc", a=3.6, cubic=True)}, [0.0], [300.0], [0.0], md=MD)
    environment, threads = dict(os.environ), dael.get_num_threads()
    result = Explorer("reference", GlobalEntropy("atom", settings=SETTINGS), tmp_path, workers=1).run(jobs)
    assert dict(os.environ) == environment and dael.get_num_threads() == threads  # one worker: caller untouched
    assert result.trajectories[0]["status"].startswith("failed: ValueError")
    assert result.trajectories[0]["snapshots"] == 0
    with pytest.raises(ValueError, match="unknown calculator"):
        make_calculator("mace")
    with pytest.raises(ValueError, match="does not exist"):
        make_calculator("allegro:/nonexistent/model")


def test_cli_explore(tmp_path):
    seed = tmp_path / "si.extxyz"
    si8().write(seed)
    out = tmp_path / "run"
    args = ["explore", str(seed), "--out", str(out), "--driver", "reference", "--temperature", "300",
            "--k-global", "2", "--steps", "20", "--snapshots", "2", "--relax-steps", "5", "--cutoff", "4.5",
            "--natx", "40"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "accepted" in res.output and len(read(out / "snapshots.extxyz", ":")) == 2
    res = CliRunner().invoke(app, args[:5] + ["nonsense"])
    assert res.exit_code == 2 and "unknown calculator" in res.output


def test_explore_workers_die_with_the_cli_under_kill_9(tmp_path):
    """SIGKILL `dael explore --workers 2` mid-run: its trajectory workers end too (none keeps burning a core)."""
    import signal
    import subprocess
    import sys
    import time

    import psutil

    seed = tmp_path / "si.extxyz"
    si8().write(seed)
    cmd = [sys.executable, "-m", "dael.cli", "explore", str(seed), "--out", str(tmp_path / "run"), "--driver",
           "reference", "--temperature", "300", "--temperature", "600", "--steps", "100000", "--snapshots", "2",
           "--relax-steps", "0", "--cutoff", "4.5", "--natx", "40", "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    parent, deadline = psutil.Process(proc.pid), time.monotonic() + 120
    workers: list = []
    while len(workers) < 2:  # the spawn workers (the resource tracker is a child too, not a worker)
        assert proc.poll() is None and time.monotonic() < deadline, "the workers did not start"
        workers = [c for c in parent.children() if "spawn_main" in " ".join(c.cmdline())]
        time.sleep(0.2)
    time.sleep(3.0)  # the trajectories are under way
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    gone, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, f"{len(alive)} explore worker(s) outlived the killed CLI"


def test_biased_md_is_more_diverse_than_plain_md(tmp_path):
    """At equal steps and temperature, snapshots of globally biased MD span more of fingerprint space."""
    md = MDSettings(steps=60, snapshots=6, relax_steps=10, thermalize=20)
    logdets = {}
    for k in (0.0, 5.0):
        jobs = grid({"diamond": si8()}, [0.0], [600.0], [k], md=md)
        Explorer("reference", GlobalEntropy("atom", settings=SETTINGS), tmp_path / str(k), -np.inf).run(jobs)
        snaps = read(tmp_path / str(k) / "snapshots.extxyz", ":")
        state = GlobalEntropy("atom")
        state.add(dael.fingerprint(snaps, cutoff=4.5, natx=40))
        logdets[k] = state.logdet
    assert logdets[5.0] > logdets[0.0]


@pytest.mark.parametrize("name", ["chgnet", "sevennet"])
def test_foundation_model_drivers_work_offline(name):
    pytest.importorskip({"chgnet": "chgnet", "sevennet": "sevenn"}[name])
    atoms = bulk("Si", "diamond", a=5.43)
    atoms.rattle(0.05, seed=1)
    atoms.calc = make_calculator(name)
    with warnings.catch_warnings(record=True) as caught:  # a user's MD log stays clean (CHGNet warned per call)
        warnings.simplefilter("always")
        assert -6.0 < atoms.get_potential_energy() / len(atoms) < -4.5  # PBE-like Si: about -5.4 eV/atom
        assert np.all(np.isfinite(atoms.get_forces())) and np.all(np.isfinite(atoms.get_stress()))
    assert not [str(w.message) for w in caught if "requires_grad" in str(w.message)]


@pytest.mark.parametrize("name", ["reference", "chgnet", "sevennet", "ase:ase.calculators.emt:EMT"])
def test_readme_explore_runs_with_the_default_bias_on_every_driver(name, tmp_path):
    """`dael explore SEEDS --steps 20 --snapshots 1` with the default global bias: every built-in driver
    yields its snapshot (CHGNet once failed here: it computes no free_energy)."""
    package = {"chgnet": "chgnet", "sevennet": "sevenn"}.get(name)
    if package:
        pytest.importorskip(package)
    seed = tmp_path / "diamond.extxyz"
    (bulk("Cu", "fcc", a=3.6, cubic=True) if name.startswith("ase:") else si8()).write(seed)
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["explore", str(seed), "--out", str(out), "--driver", name, "--steps", "20",
                                   "--snapshots", "1", "--relax-steps", "3", "--temperature", "300"])
    assert res.exit_code == 0, res.output
    log = [json.loads(x) for x in (out / "trajectories.jsonl").read_text().splitlines()]
    assert [t["status"] for t in log] == ["ok"] and all(t["snapshots"] == 1 for t in log)
    snap = read(out / "snapshots.extxyz")
    assert snap.info["k_global"] > 0 and snap.info["driver"] == name


def test_thermal_anchors_are_equilibrated_independent_runs():
    """Thermal anchors come from independent runs (new seeds), ANCHOR_SPACING fs apart after ANCHOR_THERMALIZE
    steps: their mean potential energy above the relaxed cell is equipartition's 3/2 k_B·T per atom, which a
    snapshot taken right after the start from the relaxed cell is not."""
    from ase import units
    from ase.calculators.emt import EMT

    from dael.explore.anchors import ANCHOR_PER_RUN, ANCHOR_SPACING, anchors

    cu = bulk("Cu", "fcc", a=3.61, cubic=True) * (2, 2, 2)
    out = anchors({"fcc": cu}, "ase:ase.calculators.emt:EMT", [0.0], strains=(0.97,), thermal=12, seed=3)
    kinds = [a.info["kind"] for a in out]
    assert kinds == ["relaxed", "strain 0.97"] + ["thermal"] * 12
    steps = [int(a.info["step"]) for a in out[2:]]
    spaced = [ANCHOR_SPACING * (i + 1) for i in range(ANCHOR_PER_RUN)]
    assert steps == spaced + spaced + spaced[:2]  # runs of 5, 5, 2 snapshots
    calc = EMT()

    def energy(atoms):
        atoms = atoms.copy()
        atoms.calc = calc
        return atoms.get_potential_energy() / len(atoms)

    rise = np.array([energy(a) for a in out[2:]]) - energy(out[0])
    equipartition = 1.5 * units.kB * 300.0
    assert 0.6 * equipartition < rise.mean() < 1.4 * equipartition, (rise.mean(), equipartition)
    firsts = [out[2 + i * ANCHOR_PER_RUN].positions for i in range(3)]
    assert all(np.abs(a - b).max() > 0.01 for a, b in [(firsts[0], firsts[1]), (firsts[1], firsts[2])])


def test_unstable_phase_runs_unbiased_and_stable_ones_stay_biased(tmp_path):
    """NaCl's B2 (CsCl) cell at 0 GPa is a saddle of the reference potential: relaxation keeps it (symmetry),
    100 fs of plain MD leave it and its quench lands in a basin far below (measured: 0.07-0.15 eV/atom), so
    the trajectory runs on the driver alone; B1 at 0 GPa and B2 at 20 GPa quench back to their start (< 1e-3
    eV/atom) and stay biased. With the check off, B2 at 0 GPa is biased like any other."""
    from dael.campaign.presets import phases
    from dael.explore.explorer import run_job

    seeds = phases("NaCl")
    md = MDSettings(steps=20, snapshots=2, relax_steps=100, thermalize=100, unstable=0.01)
    state = GlobalEntropy("atom", settings=SETTINGS)
    runs = {}
    for phase, pressure, check in (("B2", 0.0, 0.01), ("B1", 0.0, 0.01), ("B2", 20.0, 0.01), ("B2", 0.0, None)):
        job = grid({phase: seeds[phase]}, [pressure], [300.0], [1.0], md=replace(md, unstable=check))[0]
        runs[phase, pressure, check] = run_job(job, "reference", state)
    b2 = runs["B2", 0.0, 0.01]
    assert b2["status"] == "ok" and b2["unstable_drop"] > 0.05
    assert all(not s.info["biased"] and s.info["quench_drop"] == pytest.approx(b2["unstable_drop"], abs=1e-4)
               for s in b2["snapshots"])
    for key in (("B1", 0.0, 0.01), ("B2", 20.0, 0.01)):
        snaps = runs[key]["snapshots"]
        assert runs[key]["unstable_drop"] is None and all(s.info["biased"] for s in snaps)
        assert abs(snaps[0].info["quench_drop"]) < 1e-3
    off = runs["B2", 0.0, None]
    assert off["unstable_drop"] is None and all(s.info["biased"] and np.isnan(s.info["quench_drop"])
                                                for s in off["snapshots"])


LJ = "ase:ase.calculators.lj:LennardJones"
ARGON = {"epsilon": 0.0104, "rc": 7.0, "sigma": 3.4, "smooth": True}
"""Lennard-Jones argon: with ASE's defaults (σ = 1 Å) its fcc crystal would have next to no energy."""


def test_driver_parameters_reach_the_driver_and_a_misspelt_one_stops_dael_explore_first(tmp_path):
    from ase.calculators.lj import LennardJones

    seed = tmp_path / "ar.extxyz"
    bulk("Ar", "fcc", a=5.26, cubic=True).write(seed)
    out = tmp_path / "run"
    args = ["explore", str(seed), "--out", str(out), "--driver", LJ, "--temperature", "40", "--steps", "10",
            "--snapshots", "2", "--relax-steps", "5", "--thermalize", "0", "--cutoff", "4.5", "--natx", "40"]
    res = CliRunner().invoke(app, [*args, "--driver-param", "sigmaa=3.4"])
    assert res.exit_code == 2 and "takes no parameter 'sigmaa' (did you mean 'sigma'?)" in res.output
    assert not out.exists()  # refused before anything was written
    given = [x for key, value in ARGON.items() for x in ("--driver-param", f"{key}={json.dumps(value)}")]
    res = CliRunner().invoke(app, [*args, *given])
    assert res.exit_code == 0, res.output
    snaps = read(out / "snapshots.extxyz", ":")
    assert len(snaps) == 2 and json.loads(snaps[0].info["driver_params"]) == ARGON
    check = snaps[0].copy()
    check.calc = LennardJones(**ARGON)
    assert snaps[0].info["driver_energy"] == pytest.approx(check.get_potential_energy() / len(check), rel=1e-5)
    assert snaps[0].info["driver_energy"] < -0.05  # σ = 3.4 Å, not ASE's default 1 Å
