"""Worker processes and pools: every dael worker process is made here (`init_worker`: it dies with its
parent and runs the threads it is given). `process_pool`: spawned processes for the explorer's trajectories;
`dask_client`: a Dask cluster (remote or local) for labelling and pool screening. The labelling pools call
an oracle on structures, one job at a time per worker; each job ends as an (ok, results or error, final)
attempt and never raises:

- local process pool (default, ``workers=N``): N worker processes (fresh interpreters with this one's
  import path), each with ``threads`` OpenMP / BLAS / rayon threads (1 by default), each building its
  oracle once and keeping it for every job it runs (a LAMMPS instance or a DFT calculator stays alive).
  A job that runs past ``timeout`` seconds has its worker killed and replaced; a worker that dies
  (segfault, out of memory) fails only its job. On Linux the workers die with the parent process, even
  under ``kill -9``.
- this process (``workers=0``): for debugging; ``timeout`` is not enforced.
- Dask distributed (``dask=ADDRESS``, or ``'local'`` for a LocalCluster of single-threaded worker processes;
  Dask sets their OpenMP/BLAS threads to 1): each Dask worker thread builds its oracle once and runs one job
  at a time; jobs wait here until a worker thread is free (batch jobs may take hours to start). A worker lost
  mid-job (killed, out of memory, its batch job ended) costs that calculation only: Dask runs the job again
  elsewhere, and a job that killed its worker several times (Dask's allowed-failures) fails as retryable.
  Batch jobs of SLURM, PBS or LSF come from :mod:`dael.label.cluster`. A Dask job past ``timeout`` is
  cancelled and retried, but the worker thread finishes the running call first (a cluster's walltime is
  the hard limit).

Oracles that write files work in a folder per structure (:class:`dael.label.calculation.Calculations`).
"""

from __future__ import annotations

import ctypes
import json
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from ase import Atoms
from ase.calculators.calculator import BaseCalculator

from dael.calculators.registry import make_calculator
from dael.label.calculation import IN_PLACE, Calculations, attempt, describe
from dael.util.extras import require
from dael.util.threads import limit_process, thread_env

__all__ = ["DaskPool", "InlinePool", "ProcessPool", "dask_client", "die_with_parent", "init_worker", "process_pool"]

POLL = 1.0
"""Seconds between looks at a Dask cluster while its workers are busy or not there yet."""

def _build(oracle: str, params: dict[str, Any]) -> tuple[BaseCalculator | None, str | None]:
    try:
        return make_calculator(oracle, **params), None
    except Exception as exc:
        return None, describe(exc)


def _worker_env(threads: int) -> dict[str, str]:
    """Environment of a worker process: this one's, its import path, ``threads`` OpenMP/BLAS threads."""
    return thread_env(threads, DAEL_WORKER_PATH=json.dumps(sys.path))


# ----------------------------------------------------------------------------------------- backends


def die_with_parent(parent: int) -> bool:
    """Have the kernel kill this worker process when its parent (pid `parent`) ends, even by kill -9 (Linux;
    elsewhere a no-op). False when the parent is already gone: the worker should end at once."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover
            pass
    return os.getppid() == parent


def process_pool(workers: int, threads: int = 1) -> Any:
    """A concurrent.futures pool of `workers` fresh (spawned) processes with `threads` threads each, which
    die with this process (the explorer's trajectories)."""
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=init_worker,
                               initargs=(threads, os.getpid()))


def dask_client(address: str, workers: int | None = None) -> tuple[Any, Any]:
    """(client, cluster): a Dask client of the scheduler at `address`, or for 'local' of a new LocalCluster of
    `workers` (None: one per core) single-threaded worker processes (Dask sets their OpenMP/BLAS threads to 1;
    close the cluster after the client). cluster is None for a remote scheduler."""
    require("pool", f"Dask ({address})", ("distributed",))
    from dask.distributed import Client, LocalCluster

    cluster = None
    if address == "local":
        cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                               dashboard_address=None)
    return Client(cluster if cluster is not None else address), cluster


def init_worker(threads: int, parent: int) -> None:
    """Initializer of every dael worker process (labelling, exploration): it dies with its parent and runs
    `threads` threads of every library (:func:`dael.util.threads.limit_process`)."""
    if not die_with_parent(parent):
        os._exit(0)
    limit_process(threads)

_WORKER_CODE = ("import json, os, sys; sys.path[:] = json.loads(os.environ['DAEL_WORKER_PATH']); "
                "from dael.label.workers import _worker_main; _worker_main({fd})")


def _worker_main(fd: int) -> None:
    """A pool worker (its own interpreter): receive (oracle, params, parent pid, calculations), build the
    oracle once, then answer (job, atoms) messages on the socket ``fd`` until None or EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and ends the workers
    conn = multiprocessing.connection.Connection(fd)
    oracle, params, parent, where = conn.recv()
    if not die_with_parent(parent):
        return
    calc, broken = _build(oracle, params)
    conn.send(("ready", broken))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        job, atoms = message
        conn.send(("done", job, *attempt(calc, atoms, where, broken)))


@dataclass
class _Worker:
    proc: subprocess.Popen
    conn: Any
    state: str = "starting"  # 'starting' | 'idle' | 'busy'
    job: int | None = None


class ProcessPool:
    """``n`` worker processes (fresh interpreters, nothing inherited but the environment and import path),
    each holding its own oracle."""

    def __init__(self, n: int, oracle: str, params: dict[str, Any], threads: int,
                 where: Calculations = IN_PLACE) -> None:
        self.args, self.env = (oracle, params, os.getpid(), where), _worker_env(threads)
        self.workers = [self._start() for _ in range(n)]

    def _start(self) -> _Worker:
        here, there = socket.socketpair()
        proc = subprocess.Popen([sys.executable, "-c", _WORKER_CODE.format(fd=there.fileno())],
                                pass_fds=(there.fileno(),), env=self.env, stdin=subprocess.DEVNULL)
        there.close()
        conn = multiprocessing.connection.Connection(here.detach())
        conn.send(self.args)
        return _Worker(proc, conn)

    def _replace(self, worker: _Worker) -> None:
        worker.proc.kill()
        worker.proc.wait()
        worker.conn.close()
        self.workers[self.workers.index(worker)] = self._start()

    @property
    def free(self) -> int:
        return sum(w.state == "idle" for w in self.workers)

    def submit(self, job: int, atoms: Atoms) -> None:
        worker = next(w for w in self.workers if w.state == "idle")
        worker.conn.send((job, atoms))
        worker.state, worker.job = "busy", job

    def wait(self, timeout: float | None) -> list[tuple[int, bool, Any, bool]]:
        """Finished jobs as (job, ok, payload, final); waits up to ``timeout`` s for the first."""
        handles = {w.conn: w for w in self.workers}
        done = []
        for handle in multiprocessing.connection.wait(list(handles), timeout):
            worker = handles[handle]
            try:
                message = worker.conn.recv()
            except (EOFError, OSError):  # the process is gone
                message = None
            if message is not None:
                if message[0] == "done":
                    done.append(message[1:])
                worker.state, worker.job = "idle", None
                continue
            code = worker.proc.wait()
            if worker.state == "starting":
                raise RuntimeError(f"a label worker process died while starting (exit code {code})")
            if worker.state == "busy":
                done.append((worker.job, False, f"the worker process died (exit code {code}) while "
                                                "labelling this structure", False))
            self._replace(worker)
        return done

    def cancel(self, job: int) -> None:
        """Stop ``job`` by killing its worker (a fresh one starts)."""
        self._replace(next(w for w in self.workers if w.job == job))

    def close(self) -> None:
        for w in self.workers:
            try:
                if w.state == "busy":
                    w.proc.kill()
                else:
                    w.conn.send(None)
            except OSError:
                pass
        for w in self.workers:
            try:
                w.proc.wait(2.0)
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait()
            w.conn.close()


class InlinePool:
    """This process, one job at a time (no timeouts)."""

    def __init__(self, oracle: str, params: dict[str, Any], where: Calculations = IN_PLACE) -> None:
        self.calc, self.broken = _build(oracle, params)
        self.where = where
        self.done: list[tuple[int, bool, Any, bool]] = []

    @property
    def free(self) -> int:
        return 0 if self.done else 1

    def submit(self, job: int, atoms: Atoms) -> None:
        self.done.append((job, *attempt(self.calc, atoms, self.where, self.broken)))

    def wait(self, timeout: float | None) -> list[tuple[int, bool, Any, bool]]:
        done, self.done = self.done, []
        return done

    def cancel(self, job: int) -> None:  # pragma: no cover - jobs finish inside submit
        pass

    def close(self) -> None:
        pass


_DASK_ORACLES: dict[tuple[str, str, int], tuple[BaseCalculator | None, str | None]] = {}


def _dask_job(atoms: Atoms, oracle: str, params: dict[str, Any], where: Calculations) -> tuple[bool, Any, bool]:
    """One job on a Dask worker; the oracle is built once per worker thread and kept."""
    key = (oracle, repr(sorted(params.items())), threading.get_ident())
    if key not in _DASK_ORACLES:
        _DASK_ORACLES[key] = _build(oracle, params)
    calc, broken = _DASK_ORACLES[key]
    return attempt(calc, atoms, where, broken)


class DaskPool:
    """Jobs on a Dask cluster, at most one per worker thread in flight (none while no worker is there).

    address: a scheduler's address or 'local' (a LocalCluster of `workers` processes, closed with the pool);
    heal: called at every look at the cluster (:func:`dael.label.cluster.job_cluster` resubmits lost jobs)."""

    def __init__(self, address: str, oracle: str, params: dict[str, Any], where: Calculations = IN_PLACE,
                 workers: int | None = None, heal: Any = None) -> None:
        self.client, self.cluster = dask_client(address, workers)
        self.args = (oracle, params, where)
        self.heal = heal
        self.running: dict[Any, int] = {}

    @property
    def free(self) -> int:
        workers = self.client.scheduler_info().get("workers", {}).values()
        return max(0, sum(int(w.get("nthreads", 1)) for w in workers) - len(self.running))

    def submit(self, job: int, atoms: Atoms) -> None:
        self.running[self.client.submit(_dask_job, atoms, *self.args, pure=False)] = job

    def wait(self, timeout: float | None) -> list[tuple[int, bool, Any, bool]]:
        """Finished jobs as (job, ok, payload, final); returns after at most POLL s (empty when none finished),
        so that jobs are handed to workers as they arrive."""
        from dask.distributed import wait

        if self.heal is not None:
            self.heal()
        poll = POLL if timeout is None else min(timeout, POLL)
        if not self.running:
            time.sleep(poll)
            return []
        try:
            done = wait(list(self.running), timeout=poll, return_when="FIRST_COMPLETED").done
        except TimeoutError:
            return []
        out = []
        for future in done:
            job = self.running.pop(future)
            if future.status == "finished":
                out.append((job, *future.result()))
            else:  # KilledWorker: the job's workers died (Dask's allowed-failures times); retryable
                out.append((job, False, f"the Dask job failed: {describe(future.exception())}", False))
        return out

    def cancel(self, job: int) -> None:
        future = next(f for f, j in self.running.items() if j == job)
        future.cancel()
        del self.running[future]

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()
