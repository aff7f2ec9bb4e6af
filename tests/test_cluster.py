"""Labelling on Dask and batch jobs: label.dask / label.cluster in campaign.yaml, the job scripts dask-jobqueue
submits, a stand-in SLURM (sbatch runs the job script here) with a job killed mid-labelling, a LocalCluster with a
worker killed mid-labelling, and the errors of a cluster that cannot start."""

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dael.campaign.config import Campaign
from dael.campaign.folder import write
from dael.campaign.presets import phases, preset
from dael.cli import app
from dael.data.dataset import Dataset, oracle_spec
from dael.label import cluster as cluster_module
from dael.label.cluster import check_cluster, cluster_settings, job_script, walltime_seconds
from dael.label.labelling import label_dataset

from oracle_helpers import FAKE, fake_batch

pytest.importorskip("dask_jobqueue")
distributed = pytest.importorskip("dask.distributed")

TESTS = Path(__file__).parent
SLURM = {"kind": "slurm", "cores": 16, "memory": "32GB", "walltime": "02:00:00", "queue": "debug",
         "account": "m1234", "directives": ["--qos=regular", "--constraint=cpu"],
         "prologue": ["module load vasp/6.4", "export OMP_NUM_THREADS=1"], "jobs": 8}

SBATCH = """#!/bin/bash
# a stand-in for SLURM's sbatch: runs the job script on this machine, in its own process group
if [ "$1" = "--test-only" ]; then shift; test_only=1; fi
if grep -q -- "-p nosuch" "$1"; then echo "sbatch: error: invalid partition specified: nosuch" >&2; exit 1; fi
if [ -n "$test_only" ]; then echo "sbatch: Job 1 to start at now on node1" >&2; exit 0; fi
script=$(mktemp "$FAKE_SLURM/job-XXXXXX.sh")  # sbatch keeps a copy: dask-jobqueue deletes its file at once
cp "$1" "$script"
setsid bash "$script" > "$script.out" 2>&1 < /dev/null &
echo "$!" >> "$FAKE_SLURM/submitted"
echo "Submitted batch job $!"
"""
SCANCEL = """#!/bin/bash
kill -TERM -- "-$1" 2> /dev/null
exit 0
"""


def tests_on_pythonpath() -> str:
    """PYTHONPATH with tests/ first, so that worker processes import the tests' fake oracle."""
    return os.pathsep.join([str(TESTS), *os.environ.get("PYTHONPATH", "").split(os.pathsep)]).rstrip(os.pathsep)


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    """sbatch and scancel on PATH that run and end job scripts on this machine; the workers import the tests'
    fake oracle. Yields the folder whose `submitted` lists the jobs' process ids."""
    folder = tmp_path / "slurm"
    folder.mkdir()
    for name, text in (("sbatch", SBATCH), ("scancel", SCANCEL)):
        (folder / name).write_text(text)
        (folder / name).chmod((folder / name).stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM", str(folder))
    monkeypatch.setenv("PYTHONPATH", tests_on_pythonpath())
    yield folder
    for pid in _jobs(folder):  # whatever a failed test left running
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass


def _alive(groups: list[int]) -> list[int]:
    """The process groups of `groups` that still have a process."""
    alive = []
    for group in groups:
        try:
            os.killpg(group, 0)
            alive.append(group)
        except ProcessLookupError:
            pass
    return alive


def _jobs(folder: Path) -> list[int]:
    path = folder / "submitted"
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def test_a_campaign_yaml_yields_the_sbatch_script_dask_jobqueue_submits(tmp_path):
    write(tmp_path, preset("Si"), phases("Si"))
    data = yaml.safe_load((tmp_path / "campaign.yaml").read_text())
    data["label"].update(cluster=SLURM, timeout=3600)
    (tmp_path / "campaign.yaml").write_text(yaml.safe_dump(data))
    res = CliRunner().invoke(app, ["run", "--dir", str(tmp_path), "--job-script"])
    assert res.exit_code == 0, res.output
    script = res.output
    for line in ("#SBATCH -p debug", "#SBATCH -A m1234", "#SBATCH -n 1", "#SBATCH --cpus-per-task=16",
                 "#SBATCH --mem=30G", "#SBATCH -t 02:00:00", "#SBATCH --qos=regular", "#SBATCH --constraint=cpu",
                 f"#SBATCH -o {tmp_path.resolve()}/labels/jobs/dael-label-%J.out", "module load vasp/6.4"):
        assert line + "\n" in script, line
    worker = script.strip().splitlines()[-1]
    assert "-m distributed.cli.dask_worker tcp://" in worker and "--nthreads 1 " in worker  # one call at a time
    assert "--death-timeout 60" in worker and "--nworkers" not in worker
    assert script.index("module load vasp/6.4") < script.index("distributed.cli.dask_worker")
    assert not (tmp_path / "labels").exists()  # printing the script writes nothing
    import dask_jobqueue  # the same text as dask-jobqueue's own cluster, given the same settings

    with dask_jobqueue.SLURMCluster(**cluster_module._job_kwargs(cluster_settings(SLURM), tmp_path / "logs"),
                                    scheduler_options={"dashboard_address": None}) as direct:
        own = direct.job_script()
    address = own.strip().splitlines()[-1].split()[3]
    own = own.replace(address, "tcp://SCHEDULER:8786").replace("dummy-name", "dael-label")
    assert own == job_script(cluster_settings(SLURM), tmp_path / "logs")


@pytest.mark.parametrize("kind, walltime, header", [("pbs", "02:00:00", "#PBS -l select=1:ncpus=16:mem=30GB"),
                                                    ("lsf", "2:00", "#BSUB -n 16")])
def test_pbs_and_lsf_jobs_reserve_the_cores_and_run_one_call_per_worker(kind, walltime, header):
    settings = cluster_settings({**SLURM, "kind": kind, "walltime": walltime, "processes": 4})
    script = job_script(settings, "/scratch/logs")
    assert header in script and "--nthreads 1 " in script and "--nworkers 4" in script
    assert "-m distributed.cli.dask_worker" in script


def test_walltimes_and_the_settings_errors():
    assert walltime_seconds("90") == 5400 and walltime_seconds("1:30") == 90
    assert walltime_seconds("02:00:00") == 7200 and walltime_seconds("1-2") == 93600
    assert walltime_seconds("1-00:30:10") == 88210 and walltime_seconds("2:30", "lsf") == 9000
    bad = {"kind": "sge"}, {"walltime": "2h"}, {"memory": "lots"}, {"cores": 2, "processes": 4}, {"queue": 3}, \
        {"directives": "--qos=x"}, {"jobs": 0}, {"walltimes": "1:00:00"}, {"kind": "lsf", "walltime": "1:00:00"}
    for data, message in zip(bad, ("kind must be one of", "walltime must read", "memory must be an amount",
                                   "must not exceed cores", "queue must be text or null", "directives must be a list",
                                   "jobs must be >= 1", "unknown key", "walltime must read [H:]M"), strict=True):
        with pytest.raises(ValueError, match=message.replace("[", "\\[")):
            cluster_settings({**SLURM, **data})
    with pytest.raises(ValueError, match="label.cluster.walltime 01:00:00 \\(3600 s\\) is not longer than label."
                                         "timeout"):
        Campaign.from_dict({"system": "Si", "label": {"timeout": 3600, "cluster": {**SLURM, "walltime": "01:00:00"}}})
    unquoted = yaml.safe_load("walltime: 4:00:00")  # YAML 1.1: a number of seconds in base 60
    with pytest.raises(ValueError, match="walltime must be text; got 14400 \\(YAML reads an unquoted H:MM:SS"):
        cluster_settings({**SLURM, **unquoted})
    with pytest.raises(ValueError, match="label.dask and label.cluster exclude each other"):
        Campaign.from_dict({"system": "Si", "label": {"dask": "local", "cluster": SLURM}})
    with pytest.raises(ValueError, match="label.keep must be one of failed, all"):
        Campaign.from_dict({"system": "Si", "label": {"keep": "some"}})
    assert Campaign.from_dict({"system": "Si", "label": {"cluster": SLURM}}).label.cluster == SLURM


def test_a_cluster_that_cannot_start_is_one_error_and_the_campaign_stays_unchanged(tmp_path, fake_slurm, monkeypatch):
    write(tmp_path, preset("Si"), phases("Si"))
    data = yaml.safe_load((tmp_path / "campaign.yaml").read_text())
    data["label"]["cluster"] = {**SLURM, "queue": "nosuch"}
    (tmp_path / "campaign.yaml").write_text(yaml.safe_dump(data))
    before = sorted(p.name for p in tmp_path.iterdir())
    res = CliRunner().invoke(app, ["run", "--dir", str(tmp_path)])
    assert res.exit_code == 2 and "invalid partition specified: nosuch" in res.output, res.output
    assert "sbatch --test-only refused" in res.output and len(res.output.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing explored, nothing written
    # a partition refused only at submission (sbatch --test-only passed): the rows stay pending
    dataset = Dataset(tmp_path / "d.db")
    dataset.add(fake_batch([None, None]), oracle=FAKE)
    with pytest.raises(ValueError, match="the slurm jobs could not be submitted \\(sbatch: error: invalid partition"):
        label_dataset(dataset, FAKE, cluster={**SLURM, "queue": "nosuch"})
    assert dataset.counts() == {"pending": 2}
    # jobs that end at once (here: no such python on the nodes): an error after start_timeout, rows still pending
    monkeypatch.setattr(cluster_module, "HEAL_INTERVAL", 0.2)
    with pytest.raises(ValueError, match="no job started its worker within start_timeout \\(2 s\\); the jobs' output "
                                         f"is in {tmp_path.resolve()}/labels/jobs"):
        label_dataset(dataset, FAKE, cluster={**SLURM, "python": "/nonexistent/python", "start_timeout": 2})
    assert dataset.counts() == {"pending": 2}
    data["label"]["cluster"], data["label"]["dask"] = None, "tcp://127.0.0.1:9"  # no scheduler there
    (tmp_path / "campaign.yaml").write_text(yaml.safe_dump(data))
    res = CliRunner().invoke(app, ["run", "--dir", str(tmp_path)])
    assert res.exit_code == 2 and "label.dask: no Dask scheduler answers at tcp://127.0.0.1:9" in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*before, "d.db", "labels"])  # (this test's files)
    monkeypatch.setenv("PATH", "/nonexistent")  # no batch system on this machine
    with pytest.raises(ValueError, match="sbatch, which is not on this machine's PATH"):
        check_cluster(cluster_settings(SLURM))


def test_slurm_jobs_label_everything_once_when_a_job_dies(tmp_path, fake_slurm, monkeypatch):
    """Two jobs of the stand-in SLURM label 8 structures; one job is killed (kill -9 of its process group) while
    it computes: Dask runs its structure again on the other job, the lost job is resubmitted, every structure is
    stored once, and every job is cancelled at the end."""
    monkeypatch.setattr(cluster_module, "HEAL_INTERVAL", 0.5)
    log = tmp_path / "calls.log"
    params = {"delay": 1.5, "log": str(log)}
    dataset = Dataset(tmp_path / "d.db")
    dataset.add(fake_batch([None] * 8), oracle=oracle_spec(FAKE, params))
    killed = []

    def kill_a_busy_job():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            jobs = _jobs(fake_slurm)
            if len(jobs) == 2 and log.exists() and log.read_text().count("\n") >= 2:
                time.sleep(0.5)  # both jobs are inside their next call
                os.killpg(jobs[0], signal.SIGKILL)
                killed.append(jobs[0])
            time.sleep(0.2)

    killer = threading.Thread(target=kill_a_busy_job, daemon=True)
    killer.start()
    settings = {"kind": "slurm", "cores": 1, "memory": "1GB", "walltime": "00:10:00", "jobs": 2}
    import dask

    with dask.config.set({"distributed.deploy.lost-worker-timeout": "1s"}):
        summary = label_dataset(dataset, FAKE, params, cluster=settings)
    killer.join()
    assert killed, "no job was killed: the test did not test anything"
    assert summary.labeled == 8 and summary.failed == 0, summary.errors
    rows = list(dataset.structures())
    assert len(rows) == 8 and len({a.info["hash"] for a in rows}) == 8  # each stored once
    assert all(a.info["versions"].startswith("dael ") for a in rows)
    assert len(_jobs(fake_slurm)) >= 3  # the killed job was resubmitted
    deadline = time.monotonic() + 60
    while _alive(_jobs(fake_slurm)) and time.monotonic() < deadline:  # scancel'ed: the workers shut down
        time.sleep(0.5)
    assert not _alive(_jobs(fake_slurm))
    assert (tmp_path / "labels" / "jobs").is_dir()


def test_a_worker_killed_during_labelling_loses_nothing(tmp_path):
    """A Dask scheduler and two nanny-kept worker processes, started as `dask` commands outside this process
    (so the only event loop here is the labelling client's); one worker is killed (SIGKILL) inside its second
    call: its structure is computed again on the other worker (or the restarted one), every structure is stored
    once."""
    log = tmp_path / "calls.log"
    params = {"delay": 1.5, "log": str(log)}
    dataset = Dataset(tmp_path / "d.db")
    dataset.add(fake_batch([None] * 6), oracle=oracle_spec(FAKE, params))
    scheduler_file = tmp_path / "scheduler.json"
    env = {**os.environ, "PYTHONPATH": tests_on_pythonpath()}
    dask = [str(Path(sys.executable).parent / "dask")]
    common = ["--scheduler-file", str(scheduler_file), "--no-dashboard"]
    processes = [subprocess.Popen(dask + ["scheduler", *common], env=env, stderr=subprocess.DEVNULL)]
    killed = []

    def kill_a_busy_worker():  # each worker logs its pid after a call: both logged -> both are in their second
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            pids = {int(line.split()[0]) for line in log.read_text().splitlines()} if log.exists() else set()
            if len(pids) == 2:
                victim = min(pids)
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)
            time.sleep(0.1)

    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        processes.append(subprocess.Popen(dask + ["worker", *common, "--nworkers", "2", "--nthreads", "1"],
                                          env=env, stderr=subprocess.DEVNULL))
        address = json.loads(scheduler_file.read_text())["address"]
        killer = threading.Thread(target=kill_a_busy_worker, daemon=True)
        killer.start()
        summary = label_dataset(dataset, FAKE, params, dask=address)
        killer.join()
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=30)
    assert killed, "no worker was killed: the test did not test anything"
    assert summary.labeled == 6 and summary.failed == 0, summary.errors
    assert dataset.counts() == {"labeled": 6}
    assert len({a.info["hash"] for a in dataset.structures()}) == 6


def test_dael_run_labels_a_round_through_a_local_dask_cluster(tmp_path, monkeypatch):
    """label.dask: local — `dael run` labels its round on a LocalCluster (every pick submitted to Dask, stored once
    with its versions); the training is stubbed out (tests/test_campaign.py trains)."""
    from dael.campaign import loop
    from dael.label import labelling

    campaign = preset("Si")
    campaign.explore.pressures, campaign.explore.temperatures = [0.0], [900.0]
    campaign.explore.steps, campaign.explore.snapshots, campaign.explore.thermalize = 40, 4, 10
    campaign.explore.relax_steps = 10
    campaign.budget.total = campaign.budget.per_round = 5
    campaign.label.dask, campaign.label.workers = "local", 2
    campaign.model_check.enabled = False  # training is stubbed: no model to check
    write(tmp_path, campaign, phases("Si"))
    submitted = []

    class Spy(labelling.DaskPool):
        def submit(self, job, atoms):
            submitted.append(atoms.positions.round(6).tobytes())  # job numbers restart with each labelling call
            super().submit(job, atoms)

    monkeypatch.setattr(labelling, "DaskPool", Spy)
    monkeypatch.setattr(loop, "train_round", lambda campaign, paths, r, dataset, say: loop.log_stage(
        paths, r, "train", {"model": None, "structures": len(dataset), "validation": {}}))
    res = CliRunner().invoke(app, ["run", "--dir", str(tmp_path), "--rounds", "1"])
    assert res.exit_code == 0, res.output
    selected = yaml.safe_load((tmp_path / "rounds" / "round-01" / "done-select").read_text())["selected"]
    counts = Dataset(tmp_path / "dataset.db").counts()
    # round 0 labels beta-tin's seed (diamond's is covered by it: same element), counted in the budget of 5
    assert selected == 4 and counts["labeled"] + counts["failed"] == 5 and counts["labeled"] >= 3
    assert len(submitted) == len(set(submitted)) == 5 - counts["failed"]  # the seed too; refused picks never reach Dask
    rows = list(Dataset(tmp_path / "dataset.db").structures())
    assert all(a.info["versions"].startswith("dael ") and "LAMMPS " in a.info["versions"] for a in rows)
    assert not (tmp_path / "labels").exists()  # the reference oracle writes no files: no calculation folders
