"""Batch jobs that label: a SLURM, PBS or LSF cluster started through dask-jobqueue for one labelling run
(campaign.yaml's `label.cluster`, docs/guide/cluster.md).

Each job runs `processes` Dask workers of one thread each, and a worker runs one oracle call at a time; the
job reserves `cores` CPUs, which the oracle's own parallel command uses (e.g. label.params' command
'srun vasp_std' or 'mpirun -np 16 pw.x'). :func:`job_cluster` submits as many jobs as the structures need
(at most `jobs`), resubmits a job that dies (its structures go back to Dask's queue: a worker or job lost
mid-calculation costs that calculation, never a label) and cancels them all at the end. The scheduler runs in
the `dael run` process: on a login node or inside an allocation, where the compute nodes reach it.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from dael.util.checks import number
from dael.util.extras import require

__all__ = ["DEATH_TIMEOUT", "KINDS", "Cluster", "check_cluster", "check_scheduler", "cluster_settings", "job_cluster",
           "job_script", "walltime_seconds"]

KINDS = {"slurm": ("SLURMCluster", "sbatch"), "pbs": ("PBSCluster", "qsub"), "lsf": ("LSFCluster", "bsub")}
"""Batch system → (dask-jobqueue cluster class, the command that submits a job)."""
DEATH_TIMEOUT = 60
"""Seconds a worker waits for a lost scheduler before it ends, so a killed `dael run` leaves no job running."""
HEAL_INTERVAL = 10.0
"""Seconds between checks that every job of the cluster is still there (a lost one is resubmitted)."""


@dataclass
class Cluster:
    """Batch jobs of Dask workers that run the oracle (dask-jobqueue), started by `dael run` for each round's
    labels and cancelled after them."""

    #: batch system: slurm, pbs or lsf
    kind: str = "slurm"
    #: CPU cores each job reserves (the oracle's command runs on them, e.g. mpirun -np 16)
    cores: int = 1
    #: memory each job reserves, e.g. 16GB
    memory: str = "4GB"
    #: wall time of each job (slurm, pbs: [D-]HH:MM:SS; lsf: [H:]M); longer than label.timeout
    walltime: str = "01:00:00"
    #: queue (SLURM partition); null: the system's default
    queue: str | None = None
    #: account (project) the jobs are charged to; null: the default
    account: str | None = None
    #: further job header lines, without '#SBATCH' / '#PBS' / '#BSUB', e.g. ['--qos=regular', '--constraint=cpu']
    directives: list[str] = field(default_factory=list)
    #: shell lines run before the worker starts, e.g. ['module load vasp/6.4', 'source ~/dael/bin/activate']
    prologue: list[str] = field(default_factory=list)
    #: most jobs at once (fewer when fewer structures wait)
    jobs: int = 4
    #: oracle calls each job runs at once (Dask workers per job)
    processes: int = 1
    #: network interface between workers and scheduler (e.g. ib0); null: the default route
    interface: str | None = None
    #: Python of the workers (dael installed); null: the one running `dael run`
    python: str | None = None
    #: seconds to wait for the first job to start its worker before giving up (null: as long as the queue takes)
    start_timeout: float | None = None


_TYPES = {"str": (str, "text"), "int": (int, "an integer"), "list[str]": (list, "a list of text lines"),
          "str | None": ((str, type(None)), "text or null"),
          "float | None": ((int, float, type(None)), "a number or null")}


def cluster_settings(data: Any, where: str = "label.cluster", timeout: float | None = None) -> Cluster:
    """campaign.yaml's `label.cluster` mapping as :class:`Cluster`, checked; `timeout` (s, label.timeout) must be
    shorter than the walltime. One ValueError names the key that is wrong."""
    if isinstance(data, Cluster):
        data = {f.name: getattr(data, f.name) for f in fields(Cluster)}
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be a mapping (kind: slurm, cores: 16, ...); got {data!r}")
    known = {f.name: f.type for f in fields(Cluster)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(known)}")
    for key, value in data.items():
        kind, words = _TYPES[known[key]]
        if isinstance(value, bool) or not isinstance(value, kind) or (
                isinstance(value, list) and not all(isinstance(v, str) for v in value)):
            quote = (" (YAML reads an unquoted H:MM:SS as a number: quote it, walltime: \"4:00:00\")"
                     if key == "walltime" and isinstance(value, int) else "")
            raise ValueError(f"{where}.{key} must be {words}; got {value!r}{quote}")
    c = Cluster(**data)
    if c.kind not in KINDS:
        raise ValueError(f"{where}.kind must be one of {', '.join(KINDS)}; got {c.kind!r}")
    for key in ("cores", "jobs", "processes"):
        number(f"{where}.{key}", getattr(c, key), low=1, integer=True)
    if c.processes > c.cores:
        raise ValueError(f"{where}: processes ({c.processes}) must not exceed cores ({c.cores})")
    if not re.fullmatch(r"\s*\d+(\.\d+)?\s*[KMGT]i?B\s*", c.memory, re.IGNORECASE):
        raise ValueError(f"{where}.memory must be an amount such as 16GB or 4000MB; got {c.memory!r}")
    if c.start_timeout is not None:
        number(f"{where}.start_timeout (s)", c.start_timeout, above=0)
    seconds = walltime_seconds(c.walltime, c.kind, f"{where}.walltime")
    if timeout is not None and timeout >= seconds:
        raise ValueError(f"{where}.walltime {c.walltime} ({seconds:g} s) is not longer than label.timeout "
                         f"({timeout:g} s): a job would end before its oracle call; raise the walltime or lower "
                         "the timeout")
    return c


def walltime_seconds(text: str, kind: str = "slurm", key: str = "walltime") -> float:
    """Seconds of a batch walltime: slurm and pbs M, M:S, H:M:S, D-H, D-H:M or D-H:M:S; lsf [H:]M."""
    parts = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", str(text).strip())
    form = "[H:]M" if kind == "lsf" else "[D-]HH:MM:SS"
    if parts is None or (kind == "lsf" and (parts[1] or parts[4])):
        raise ValueError(f"{key} must read {form} (e.g. {'4:00' if kind == 'lsf' else '04:00:00'}); got {text!r}")
    d, a, b, c = (int(p) if p else None for p in parts.groups())
    if kind == "lsf":
        seconds = 60.0 * (a if b is None else 60 * a + b)
    elif d is not None:  # D-H, D-H:M, D-H:M:S
        seconds = 86400.0 * d + 3600 * a + 60 * (b or 0) + (c or 0)
    else:  # M, M:S, H:M:S
        seconds = 60.0 * a if b is None else (60.0 * a + b if c is None else 3600.0 * a + 60 * b + c)
    if seconds <= 0:
        raise ValueError(f"{key} must be longer than zero; got {text!r}")
    return seconds


def _job_kwargs(c: Cluster, logs: Path) -> dict[str, Any]:
    """dask-jobqueue's keywords: one thread per Dask worker (one oracle call at a time), `cores` CPUs per job."""
    kwargs: dict[str, Any] = dict(
        cores=c.processes, processes=c.processes, memory=c.memory, walltime=c.walltime, queue=c.queue,
        job_extra_directives=list(c.directives), job_script_prologue=list(c.prologue),
        python=c.python or sys.executable, interface=c.interface, death_timeout=DEATH_TIMEOUT,
        log_directory=str(logs), job_name="dael-label")
    if c.kind == "slurm":
        kwargs.update(account=c.account, job_cpu=c.cores)
    elif c.kind == "pbs":
        from dask.utils import parse_bytes
        from dask_jobqueue.pbs import pbs_format_bytes_ceil

        kwargs.update(account=c.account,
                      resource_spec=f"select=1:ncpus={c.cores}:mem={pbs_format_bytes_ceil(parse_bytes(c.memory))}")
    else:
        kwargs.update(project=c.account, ncpus=c.cores, lsf_units="mb")
    return kwargs


def _classes(c: Cluster) -> tuple[type, type]:
    """(cluster class, job class) of `c.kind`."""
    require("cluster", f"label.cluster (kind {c.kind})")
    import dask_jobqueue

    cluster = getattr(dask_jobqueue, KINDS[c.kind][0])
    return cluster, cluster.job_cls


def job_script(c: Cluster, logs: str | Path, scheduler: str = "tcp://SCHEDULER:8786") -> str:
    """The batch script dask-jobqueue submits for each job of `c` (its worker connects to `scheduler`; job logs
    go to the folder `logs`, which is not created here)."""
    _, job = _classes(c)
    with tempfile.TemporaryDirectory() as tmp:  # dask-jobqueue creates the log folder it is given
        script = job(scheduler, name="dael-label", **_job_kwargs(c, Path(tmp))).job_script()
    return script.replace(tmp, str(logs))


def _last_line(text: str) -> str:
    lines = [x.strip() for x in str(text).splitlines() if x.strip()]
    return lines[-1] if lines else "no output"


def check_cluster(c: Cluster, where: str = "label.cluster") -> None:
    """Fail before any job is submitted when `c` cannot work here: dask-jobqueue missing, no submit command on
    this machine, or (SLURM) a job script that `sbatch --test-only` refuses (a bad partition, account or
    directive). Writes nothing."""
    script = job_script(c, tempfile.gettempdir())
    submit = KINDS[c.kind][1]
    if shutil.which(submit) is None:
        raise ValueError(f"{where}: kind {c.kind} submits jobs with {submit}, which is not on this machine's PATH: "
                         f"run `dael run` on the cluster's login node or inside an allocation, or label without "
                         "jobs (label.dask: local or a scheduler's address)")
    if c.kind != "slurm":
        return
    with tempfile.NamedTemporaryFile("w", suffix=".sh") as f:
        f.write(script)
        f.flush()
        test = subprocess.run([submit, "--test-only", f.name], capture_output=True, text=True, timeout=60)
    if test.returncode != 0:
        raise ValueError(f"{where}: sbatch --test-only refused the job script ({_last_line(test.stderr)}); fix "
                         "queue, account or directives in campaign.yaml (`dael run --job-script` prints the script)")


def check_scheduler(address: str, seconds: float = 10.0, where: str = "label.dask") -> None:
    """Fail unless a Dask scheduler answers at `address` within `seconds` ('local' needs none)."""
    if address == "local":
        return
    require("pool", f"{where} {address}", ("distributed",))
    from dask.distributed import Client

    try:
        Client(address, timeout=seconds).close()
    except (OSError, TimeoutError, ValueError) as exc:
        raise ValueError(f"{where}: no Dask scheduler answers at {address} ({_last_line(str(exc))}); start it (dask "
                         "scheduler), fix the address, or use label.dask: local") from exc


def _submission_error(exc: BaseException) -> str:
    """The submit command's own last line of a dask-jobqueue RuntimeError."""
    text = str(exc)
    return _last_line(text.split("stderr:", 1)[1]) if "stderr:" in text else _last_line(text)


@contextmanager
def job_cluster(c: Cluster, logs: str | Path, structures: int,
                where: str = "label.cluster") -> Iterator[tuple[str, Callable[[], None]]]:
    """Start the jobs of `c` for `structures` structures (ceil(structures / processes) jobs, at most c.jobs),
    yield (scheduler address, heal); cancel every job on leaving. heal() (call it while waiting; it acts every
    HEAL_INTERVAL s) resubmits the jobs that died or whose submission failed; it raises ValueError when no
    worker is left and three resubmissions in a row failed, or when no worker came within c.start_timeout s.
    ValueError when the first submission fails. Job logs go to `logs`."""
    klass, _ = _classes(c)
    from distributed.core import Status

    Path(logs).mkdir(parents=True, exist_ok=True)
    jobs = max(1, min(c.jobs, math.ceil(structures / c.processes)))
    cluster = klass(scheduler_options={"dashboard_address": None}, **_job_kwargs(c, Path(logs)))
    started = time.monotonic()
    state = {"last": started, "failures": 0, "seen": False}

    def forget_failed() -> None:
        for name, job in list(cluster.workers.items()):
            if getattr(job, "job_id", "") is None:  # its submission failed: no job to wait for or cancel
                job.status = Status.failed  # (dask-jobqueue leaves it 'created', which close() refuses)
                del cluster.workers[name]

    def resubmit() -> None:
        forget_failed()  # so that it is submitted again
        while len(cluster.worker_spec) < jobs:  # one spec per job (not cluster.scale: its errors are only logged)
            cluster.worker_spec.update(cluster.new_worker_spec())
        cluster.sync(cluster._correct_state)  # submits what is missing; raises the submit command's error

    def heal() -> None:
        if time.monotonic() - state["last"] < HEAL_INTERVAL:
            return
        state["last"] = time.monotonic()
        state["seen"] = state["seen"] or bool(cluster.scheduler_info.get("workers"))
        if not state["seen"] and c.start_timeout is not None and state["last"] - started > c.start_timeout:
            raise ValueError(f"{where}: no job started its worker within start_timeout ({c.start_timeout:g} s); "
                             f"the jobs' output is in {logs} (a job that ends at once: check prologue and python); "
                             "rerun `dael run` to resume")
        try:
            resubmit()
            state["failures"] = 0
        except (RuntimeError, OSError) as exc:
            state["failures"] += 1
            if state["failures"] >= 3 and not cluster.scheduler_info.get("workers"):
                raise ValueError(f"{where}: no worker left and {KINDS[c.kind][1]} keeps failing "
                                 f"({_submission_error(exc)}); rerun `dael run` to resume") from exc

    try:
        try:
            resubmit()
        except (RuntimeError, OSError) as exc:
            raise ValueError(f"{where}: the {c.kind} jobs could not be submitted ({_submission_error(exc)}); fix "
                             "label.cluster in campaign.yaml and rerun `dael run`: it resumes with the structures "
                             "still pending") from exc
        yield cluster.scheduler_address, heal
    finally:
        forget_failed()
        cluster.close()
