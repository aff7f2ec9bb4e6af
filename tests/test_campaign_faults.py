"""The campaign never dead-ends: kill -9 at every stage then rerun, two runners at once, campaign.yaml edited
between runs (a fingerprint setting, a natx too small for every snapshot), a barely trained model driving MD.
Each ends with the budget labelled exactly once, or with one actionable error after which the rerun finishes."""

import json
import os
import signal
import subprocess
import sys
import time

import yaml
from typer.testing import CliRunner

from dael.campaign.folder import write
from dael.campaign.presets import phases, preset
from dael.cli import app
from dael.data.dataset import Dataset
from dael.util.lock import holder

RUN_TIMEOUT = 600  # s; a tiny round takes ~30 s on an idle 2-core box


def _campaign(folder, total=8, per_round=4, **explore):
    campaign = preset("Si")
    e = campaign.explore
    e.pressures, e.temperatures, e.steps, e.snapshots, e.thermalize, e.relax_steps, e.workers = \
        [0.0], [900.0], 60, 4, 10, 10, 1
    for key, value in explore.items():
        setattr(e, key, value)
    campaign.budget.total, campaign.budget.per_round = total, per_round
    campaign.train.epochs, campaign.train.settings = 2, {}
    campaign.model_check.enabled = False  # dael check has tests of its own; minutes per round here
    write(folder, campaign, phases("Si"))
    return campaign


def _start(folder):
    return subprocess.Popen([sys.executable, "-m", "dael.cli", "run", "--dir", str(folder)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _kill_when(proc, condition, what):
    """kill -9 `proc` as soon as condition() holds; True if it was killed, False if it finished first."""
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        if condition():
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        if proc.poll() is not None:
            assert proc.returncode == 0, f"before {what}: {proc.stdout.read()}"
            return False
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"{what} did not happen within {RUN_TIMEOUT} s")


def _labelled(db):
    try:
        return db.exists() and Dataset(db).counts()["labeled"] > 0
    except Exception:  # the runner is writing it
        return False


def test_kill_9_at_every_stage_then_an_edited_config_and_a_second_runner(tmp_path):
    _campaign(tmp_path, model_gate={"energy_mae": 1e6})  # round 1's 2-epoch model drives round 2
    db, r1 = tmp_path / "dataset.db", tmp_path / "rounds" / "round-01"
    first = _start(tmp_path)
    deadline = time.monotonic() + RUN_TIMEOUT
    while holder(db) is None and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    second = CliRunner().invoke(app, ["run", "--dir", str(tmp_path)])
    assert second.exit_code == 2 and f"PID {first.pid}" in second.output, second.output
    trajectories = r1 / "explore" / "trajectories.jsonl"  # opened before the first trajectory; one line per finished
    killed = [_kill_when(first, lambda: trajectories.exists() and trajectories.stat().st_size > 0, "a trajectory")]
    # campaign.yaml edited before the rerun: another cutoff (the round's state is rebuilt) and a natx smaller
    # than any sphere of Si at 5 Å (29 atoms): every snapshot outgrows it, and the state grows
    config = yaml.safe_load((tmp_path / "campaign.yaml").read_text())
    config["filter"]["cutoff"], config["filter"]["natx"] = 4.8, 20
    (tmp_path / "campaign.yaml").write_text(yaml.safe_dump(config))
    for condition, what in ((lambda: (r1 / "done-select").exists(), "the selection"),
                            (lambda: _labelled(db), "a label"),
                            (lambda: (tmp_path / "models" / "round-01" / "config.yaml").exists(), "training"),
                            (lambda: (tmp_path / "rounds" / "round-02" / "explore").exists(), "round 2")):
        killed.append(_kill_when(_start(tmp_path), condition, what))
    last = _start(tmp_path)
    output, _ = last.communicate(timeout=RUN_TIMEOUT)
    assert last.returncode == 0, output
    assert killed[0], "the first kill must land mid-exploration for this test to mean anything"
    rows = Dataset(db)
    counts = rows.counts()
    assert len(rows) == 8 and counts["labeled"] + counts["failed"] == 8  # the budget, each structure once
    assert len({a.info["hash"] for s in ("labeled", "failed") for a in rows.structures(s)}) == 8
    log = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    select = next(e for e in log if e["stage"] == "select" and e["round"] == 1)
    assert any("fingerprint settings changed" in note for note in select["notes"])
    assert select["natx"] > 20 and select["stop"]  # grown for the snapshots; why the exploration stopped
    assert log[-1]["stage"] == "end" and "budget is spent" in log[-1]["reason"]
    state = json.loads(CliRunner().invoke(app, ["status", "--dir", str(tmp_path), "--json"]).output)
    assert state["budget"]["used"] == 8 and "budget is spent" in state["stopped"]
    assert [r["round"] for r in state["rounds"]] == [1, 2] and all(r["stop"] for r in state["rounds"])
    assert state["rounds"][1]["driver"].startswith("allegro:")


def test_the_weak_model_scenario_spends_its_budget(tmp_path):
    """The reported dead end: Si, 0 GPa, 600/1500 K, 120 steps, 8 snapshots, 24 labels in rounds of 12, the tiny
    model at 4 epochs, one explore worker, and round 1's model driving round 2 whatever its errors."""
    campaign = preset("Si")
    e = campaign.explore
    e.pressures, e.temperatures, e.steps, e.snapshots, e.workers = [0.0], [600.0, 1500.0], 120, 8, 1
    e.model_gate = {"energy_mae": 1e6, "force_mae": 1e6}
    campaign.budget.total, campaign.budget.per_round = 24, 12
    campaign.train.epochs, campaign.train.settings = 4, {}
    campaign.model_check.enabled = False
    write(tmp_path, campaign, phases("Si"))
    res = CliRunner().invoke(app, ["run", "--dir", str(tmp_path)])
    assert res.exit_code == 0, res.output
    counts = Dataset(tmp_path / "dataset.db").counts()
    assert counts["labeled"] + counts["failed"] == 24 and "budget is spent" in res.output


def test_a_gated_round_names_the_driver_and_why(tmp_path):
    """Round r > 1 is driven by the previous model only within explore.model_gate; the reason is logged."""
    from dael.campaign.loop import round_driver
    from dael.campaign.paths import Paths
    from dael.util.files import mark

    campaign = _campaign(tmp_path)
    paths = Paths(tmp_path)
    paths.round(1).mkdir(parents=True)
    assert round_driver(campaign, paths, 1, "reference") == ("reference", "the campaign's driver")
    mark(paths.done(1, "train"), {"validation": {"energy_mae": 45.0, "force_mae": 90.0}})
    driver, why = round_driver(campaign, paths, 2, "reference")
    assert driver == "reference" and "above explore.model_gate (energy_mae 45.0" in why
    campaign.explore.model_gate = {"energy_mae": 50.0}
    assert round_driver(campaign, paths, 2, "reference")[0] == f"allegro:{paths.model(1)}"
    campaign.explore.next_driver = "driver"
    assert round_driver(campaign, paths, 2, "reference") == ("reference", "explore.next_driver: driver")
