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
- Dask distributed (``dask=ADDRESS``, or ``'local'`` for a LocalCluster of one single-threaded worker
  process per core; Dask sets their OpenMP/BLAS threads to 1): each Dask worker thread builds its oracle
  once. On SLURM or PBS start the cluster with dask-jobqueue (``SLURMCluster(cores=..., memory=...,
  walltime=...).scale(jobs=...)``) and pass its ``scheduler_address``. A Dask job past ``timeout`` is
  cancelled and retried, but the worker thread finishes the running call first (a cluster's walltime is
  the hard limit).
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
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import BaseCalculator, PropertyNotImplementedError

from dael.calculators.registry import make_calculator
from dael.util.threads import limit_process, thread_env

__all__ = ["Attempt", "BadResult", "DaskPool", "InlinePool", "ProcessPool", "compute", "describe"]

Attempt = tuple[bool, Any, bool]
"""(ok, results dict or error message, whether a failure is final)."""


class BadResult(ValueError):
    """The oracle returned a non-finite or misshapen result."""


def compute(calc: BaseCalculator, atoms: Atoms) -> dict[str, Any]:
    """One oracle call: ``energy`` and ``free_energy`` (eV), ``forces`` (N, 3) in eV/Å, and for 3-D periodic
    cells ``stress`` (6,) in eV/Å³ (Voigt, ASE sign) when the oracle has it. Raises :class:`BadResult` for
    NaN, inf or wrong shapes."""
    atoms = atoms.copy()
    atoms.calc = calc
    results: dict[str, Any] = {"energy": float(atoms.get_potential_energy()),
                               "forces": np.array(atoms.get_forces(), dtype=float)}
    results["free_energy"] = float(getattr(calc, "results", {}).get("free_energy", results["energy"]))
    if atoms.pbc.all():
        try:
            results["stress"] = np.array(atoms.get_stress(voigt=True), dtype=float)
        except (PropertyNotImplementedError, NotImplementedError):
            pass
    shapes = {"forces": (len(atoms), 3), "stress": (6,)}
    wrong = [f"{k} {np.shape(v)} (expected {shapes[k]})" for k, v in results.items()
             if k in shapes and np.shape(v) != shapes[k]]
    bad = [k for k, v in results.items() if not np.all(np.isfinite(v))]
    if wrong or bad:
        problem = f"shapes {', '.join(wrong)}" if wrong else f"non-finite {', '.join(bad)} (NaN or inf)"
        raise BadResult(f"the oracle returned {problem}; energy = {results['energy']} eV")
    return results


def describe(exc: BaseException) -> str:
    """One line, ``"Type: message"``, at most 1000 characters."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= 1000 else text[:997] + "..."


def _attempt(calc: BaseCalculator | None, atoms: Atoms, broken: str | None = None) -> Attempt:
    if calc is None:
        return False, f"the oracle could not be built: {broken}", True
    try:
        return True, compute(calc, atoms), False
    except Exception as exc:  # any oracle failure becomes a recorded outcome
        return False, describe(exc), isinstance(exc, ValueError)


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


def dask_client(address: str) -> tuple[Any, Any]:
    """(client, cluster): a Dask client of the scheduler at `address`, or for 'local' of a new LocalCluster of
    one single-threaded worker process per core (Dask sets their OpenMP/BLAS threads to 1; close the
    cluster after the client). cluster is None for a remote scheduler."""
    from dask.distributed import Client, LocalCluster

    cluster = None
    if address == "local":
        cluster = LocalCluster(n_workers=os.cpu_count() or 1, threads_per_worker=1, processes=True,
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
    """A pool worker (its own interpreter): receive (oracle, params, parent pid), build the oracle once,
    then answer (job, atoms) messages on the socket ``fd`` until None or EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and ends the workers
    conn = multiprocessing.connection.Connection(fd)
    oracle, params, parent = conn.recv()
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
        conn.send(("done", job, *_attempt(calc, atoms, broken)))


@dataclass
class _Worker:
    proc: subprocess.Popen
    conn: Any
    state: str = "starting"  # 'starting' | 'idle' | 'busy'
    job: int | None = None


class ProcessPool:
    """``n`` worker processes (fresh interpreters, nothing inherited but the environment and import path),
    each holding its own oracle."""

    def __init__(self, n: int, oracle: str, params: dict[str, Any], threads: int) -> None:
        self.args, self.env = (oracle, params, os.getpid()), _worker_env(threads)
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

    def __init__(self, oracle: str, params: dict[str, Any]) -> None:
        self.calc, self.broken = _build(oracle, params)
        self.done: list[tuple[int, bool, Any, bool]] = []

    @property
    def free(self) -> int:
        return 0 if self.done else 1

    def submit(self, job: int, atoms: Atoms) -> None:
        self.done.append((job, *_attempt(self.calc, atoms, self.broken)))

    def wait(self, timeout: float | None) -> list[tuple[int, bool, Any, bool]]:
        done, self.done = self.done, []
        return done

    def cancel(self, job: int) -> None:  # pragma: no cover - jobs finish inside submit
        pass

    def close(self) -> None:
        pass


_DASK_ORACLES: dict[tuple[str, str, int], tuple[BaseCalculator | None, str | None]] = {}


def _dask_job(atoms: Atoms, oracle: str, params: dict[str, Any]) -> Attempt:
    """One job on a Dask worker; the oracle is built once per worker thread and kept."""
    key = (oracle, repr(sorted(params.items())), threading.get_ident())
    if key not in _DASK_ORACLES:
        _DASK_ORACLES[key] = _build(oracle, params)
    calc, broken = _DASK_ORACLES[key]
    return _attempt(calc, atoms, broken)


class DaskPool:
    """Jobs on a Dask cluster: at most one per worker thread in flight."""

    def __init__(self, address: str, oracle: str, params: dict[str, Any]) -> None:
        self.client, self.cluster = dask_client(address)
        self.args = (oracle, params)
        self.running: dict[Any, int] = {}

    @property
    def free(self) -> int:
        workers = self.client.scheduler_info().get("workers", {}).values()
        return max(1, sum(int(w.get("nthreads", 1)) for w in workers)) - len(self.running)

    def submit(self, job: int, atoms: Atoms) -> None:
        self.running[self.client.submit(_dask_job, atoms, *self.args, pure=False)] = job

    def wait(self, timeout: float | None) -> list[tuple[int, bool, Any, bool]]:
        from dask.distributed import wait

        if not self.running:
            return []
        try:
            done = wait(list(self.running), timeout=timeout, return_when="FIRST_COMPLETED").done
        except TimeoutError:
            return []
        out = []
        for future in done:
            job = self.running.pop(future)
            if future.status == "finished":
                out.append((job, *future.result()))
            else:
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


