"""Label structures with an oracle (any ASE calculator, :func:`dael.oracles.make_oracle`), in parallel.

Backends:

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

Structures are screened before they reach an oracle (:func:`refusal`): non-finite positions or cell, a
singular periodic cell, or two atoms closer than half the sum of their covalent radii are refused and the
row is stored failed with the reason.

Failures never stop a run: each job ends as an :class:`Outcome` with results or an error message
(``"Type: message"``). A ValueError from the oracle means the input cannot be labelled by it (unknown
element, a non-periodic cell where one is required, a NaN result) and is final; other errors, timeouts
and dead workers are retried up to ``retries`` times.
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
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import BaseCalculator, PropertyNotImplementedError

from dael.dataset import Dataset, oracle_spec
from dael.oracles import make_oracle

__all__ = ["BadResult", "LabelSummary", "Outcome", "check_options", "compute", "label", "label_batches",
           "label_dataset", "refusal"]

_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS")
Attempt = tuple[bool, Any, bool]
"""(ok, results dict or error message, whether a failure is final)."""


class BadResult(ValueError):
    """The oracle returned a non-finite or misshapen result."""


@dataclass(frozen=True)
class Outcome:
    """How labelling structure ``index`` (its position in the input) ended: ``results`` (see
    :func:`compute`) or ``error``, after ``attempts`` calls; ``seconds``: wall time of the last call."""

    index: int
    results: dict[str, Any] | None
    error: str | None
    attempts: int
    seconds: float

    @property
    def ok(self) -> bool:
        return self.error is None


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


CLOSEST = 0.5
"""Atoms closer than CLOSEST × the sum of their covalent radii (ASE's table) are refused: no oracle result
there is physical (at 0.5, Si–Si 1.11 Å; the shortest bonds under 100 GPa are ~0.8 × the sum)."""


def refusal(atoms: Atoms, closest: float = CLOSEST) -> str | None:
    """Why `atoms` must not be sent to an oracle, or None: non-finite positions or cell, a singular cell
    along a periodic direction, or two atoms (or an atom and its own periodic image) closer than
    `closest` × the sum of their covalent radii (Å)."""
    from ase.data import covalent_radii
    from ase.neighborlist import neighbor_list

    positions, cell = np.asarray(atoms.positions, float), np.asarray(atoms.cell.array, float)
    if not np.isfinite(positions).all():
        return f"non-finite position (NaN or inf) of atom {int(np.argwhere(~np.isfinite(positions))[0][0])}"
    if not np.isfinite(cell).all():
        return "non-finite cell (NaN or inf)"
    if atoms.pbc.any() and atoms.cell.rank < 3:
        return f"the cell {cell.round(4).tolist()} is singular but periodic along {atoms.pbc.tolist()}"
    radii = closest * covalent_radii[atoms.numbers]
    i, j, d = neighbor_list("ijd", atoms, radii.tolist(), self_interaction=False)
    if not len(d):
        return None
    k = int(np.argmin(d))
    a, b = int(i[k]), int(j[k])
    symbols = atoms.get_chemical_symbols()
    return (f"atoms {a} ({symbols[a]}) and {b} ({symbols[b]}) are {d[k]:.3f} Å apart, closer than {closest:g} × "
            f"the sum of their covalent radii ({radii[a] / closest:.2f} + {radii[b] / closest:.2f} Å)")


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
        return make_oracle(oracle, **params), None
    except Exception as exc:
        return None, describe(exc)


def _worker_env(threads: int) -> dict[str, str]:
    """Environment of a worker process: this one's, its import path, ``threads`` OpenMP/BLAS threads."""
    return {**os.environ, **{k: str(threads) for k in _THREAD_VARIABLES},
            "DAEL_WORKER_PATH": json.dumps(sys.path)}


# ----------------------------------------------------------------------------------------- backends

_WORKER_CODE = ("import json, os, sys; sys.path[:] = json.loads(os.environ['DAEL_WORKER_PATH']); "
                "from dael.label import _worker_main; _worker_main({fd})")


def _worker_main(fd: int) -> None:
    """A pool worker (its own interpreter): receive (oracle, params, parent pid), build the oracle once,
    then answer (job, atoms) messages on the socket ``fd`` until None or EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and ends the workers
    conn = multiprocessing.connection.Connection(fd)
    oracle, params, parent = conn.recv()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the parent
        except (OSError, AttributeError):  # pragma: no cover
            pass
    if os.getppid() != parent:  # the parent died before prctl took effect
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


class _ProcessPool:
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


class _InlinePool:
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


class _DaskPool:
    """Jobs on a Dask cluster: at most one per worker thread in flight."""

    def __init__(self, address: str, oracle: str, params: dict[str, Any]) -> None:
        from dask.distributed import Client, LocalCluster

        self.cluster = None
        if address == "local":  # Dask's worker environment sets OMP/BLAS threads to 1
            self.cluster = LocalCluster(n_workers=os.cpu_count() or 1, threads_per_worker=1, processes=True,
                                        dashboard_address=None)
        self.client = Client(self.cluster if self.cluster is not None else address)
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


# ----------------------------------------------------------------------------------------- executor


def check_options(workers: int = 1, timeout: float | None = None, retries: int = 0, threads: int = 1) -> None:
    """Raise ValueError for options :func:`label` cannot run with."""
    if workers < 0:
        raise ValueError(f"workers must be >= 0 (0: label in this process); got {workers}")
    if retries < 0:
        raise ValueError(f"retries must be >= 0; got {retries}")
    if threads < 1:
        raise ValueError(f"threads per worker must be >= 1; got {threads}")
    if timeout is not None and not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds; got {timeout}")


def label(structures: Sequence[Atoms], oracle: str = "reference", params: dict[str, Any] | None = None, *,
          workers: int = 1, dask: str | None = None, timeout: float | None = None, retries: int = 0,
          threads: int = 1) -> Iterator[Outcome]:
    """Label ``structures`` with the oracle ``make_oracle(oracle, **params)``; yields one :class:`Outcome`
    per structure as each finishes (not in input order).

    workers: local worker processes (0: this process); dask: a Dask scheduler address or 'local' (then
    ``workers`` is ignored); timeout: seconds per call (None: no limit); retries: extra calls after a
    retryable failure; threads: OpenMP/BLAS threads per worker process. The oracle is built once here
    first, so a bad name or parameter raises ValueError before any work starts.
    """
    batches = label_batches(structures, oracle, params, workers=workers, dask=dask, timeout=timeout,
                            retries=retries, threads=threads)
    return (out for batch in batches for out in batch)


def label_batches(structures: Sequence[Atoms], oracle: str = "reference", params: dict[str, Any] | None = None,
                  *, workers: int = 1, dask: str | None = None, timeout: float | None = None, retries: int = 0,
                  threads: int = 1) -> Iterator[list[Outcome]]:
    """:func:`label`, yielding the outcomes that finish together as one list (store them in one
    transaction); the workers are handed new jobs before each yield, so they compute meanwhile."""
    params = dict(params or {})
    check_options(workers, timeout, retries, threads)
    make_oracle(oracle, **params)
    return _schedule(list(structures), oracle, params, workers, dask, timeout, retries, threads)


def _schedule(structures: list[Atoms], oracle: str, params: dict[str, Any], workers: int, dask: str | None,
              timeout: float | None, retries: int, threads: int) -> Iterator[list[Outcome]]:
    if not structures:
        return
    if dask is not None:
        pool: Any = _DaskPool(dask, oracle, params)
    elif workers == 0:
        pool = _InlinePool(oracle, params)
    else:
        pool = _ProcessPool(min(workers, len(structures)), oracle, params, threads)
    queue = deque(range(len(structures)))
    attempts = [0] * len(structures)
    started: dict[int, float] = {}

    def fill() -> None:
        while queue and pool.free > 0:
            job = queue.popleft()
            attempts[job] += 1
            started[job] = time.monotonic()
            pool.submit(job, structures[job])

    try:
        fill()
        while queue or started:
            wait = None
            if timeout is not None and started:
                wait = max(0.0, min(started.values()) + timeout - time.monotonic())
            done = pool.wait(wait)
            now = time.monotonic()
            finished = {d[0] for d in done}
            for job in [j for j, t in started.items() if timeout is not None and now - t >= timeout]:
                if job not in finished:
                    pool.cancel(job)
                    done.append((job, False, f"TimeoutError: no result after {timeout:g} s", False))
            batch = []
            for job, ok, payload, final in done:
                seconds = now - started.pop(job)
                if ok:
                    batch.append(Outcome(job, payload, None, attempts[job], seconds))
                elif final or attempts[job] > retries:
                    tries = f" ({attempts[job]} attempts)" if attempts[job] > 1 else ""
                    batch.append(Outcome(job, None, payload + tries, attempts[job], seconds))
                else:
                    queue.appendleft(job)
            fill()
            if batch:
                yield batch
    finally:
        pool.close()


@dataclass
class LabelSummary:
    """Counts of one :func:`label_dataset` run and its wall time (s)."""

    labeled: int = 0
    failed: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


def label_dataset(dataset: Dataset, oracle: str = "reference", params: dict[str, Any] | None = None, *,
                  progress: Callable[[LabelSummary, int], None] | None = None,
                  **options: Any) -> LabelSummary:
    """Label the dataset's pending rows of this oracle (see :func:`label` for ``options``), committing
    each result or failure as it arrives (those that arrive together in one transaction);
    ``progress(summary, total)`` is called after each commit."""
    start = time.perf_counter()
    summary = LabelSummary()
    rows = []
    with dataset.transaction():
        for row_id, atoms in dataset.pending(oracle_spec(oracle, params)):
            reason = refusal(atoms)
            if reason is None:
                rows.append((row_id, atoms))
                continue
            error = f"refused before labelling: {reason}"
            dataset.record_failure(row_id, error, 0.0, 0)
            summary.failed += 1
            summary.errors.append(error)
    total = len(rows) + summary.failed
    for batch in label_batches([atoms for _, atoms in rows], oracle, params, **options):
        with dataset.transaction():  # the results that arrived together: one commit
            for out in batch:
                row_id, atoms = rows[out.index]
                if out.ok:
                    dataset.record_result(row_id, atoms, out.results or {}, out.seconds, out.attempts)
                    summary.labeled += 1
                else:
                    dataset.record_failure(row_id, out.error or "", out.seconds, out.attempts)
                    summary.failed += 1
                    summary.errors.append(out.error or "")
        summary.seconds = time.perf_counter() - start
        if progress is not None:
            progress(summary, total)
    summary.seconds = time.perf_counter() - start
    return summary
