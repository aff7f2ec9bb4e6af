"""Label structures with an oracle (any ASE calculator, :func:`dael.calculators.registry.make_calculator`), in parallel.

The worker pools (process pool with timeouts, this process, Dask) are in :mod:`dael.label.workers`, batch jobs
(SLURM, PBS, LSF) in :mod:`dael.label.cluster`, one call in its folder with its versions in
:mod:`dael.label.calculation`.

Structures are screened before they reach an oracle (:func:`refusal`): non-finite positions or cell, a
singular periodic cell, or two atoms closer than half the sum of their covalent radii are refused and the
row is stored failed with the reason.

Failures never stop a run: each job ends as an :class:`Outcome` with results or an error message
(``"Type: message"``). A ValueError from the oracle means the input cannot be labelled by it (unknown
element, a non-periodic cell where one is required, a NaN result) and is final; other errors, timeouts
and dead workers are retried up to ``retries`` times.
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.data import covalent_radii
from ase.neighborlist import neighbor_list

from dael.calculators.registry import make_calculator
from dael.data.dataset import Dataset, oracle_spec
from dael.label.calculation import IN_PLACE, Calculations
from dael.label.cluster import Cluster, cluster_settings, job_cluster
from dael.label.workers import DaskPool, InlinePool, ProcessPool
from dael.util.extras import require

__all__ = ["LABELS", "LabelSummary", "Outcome", "check_label", "check_options", "label", "label_batches",
           "label_dataset", "label_options", "refusal"]

LABELS = "labels"
"""The folder beside a dataset where calculations that write files run (`labels/<structure hash>/`)."""
EXCLUSIVE = ("label.dask and label.cluster exclude each other: give label.dask (local, or a running scheduler's "
             "address) or label.cluster (batch jobs dael starts), not both")


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


CLOSEST = 0.5
"""Atoms closer than CLOSEST × the sum of their covalent radii (ASE's table) are refused: no oracle result
there is physical (at 0.5, Si–Si 1.11 Å; the shortest bonds under 100 GPa are ~0.8 × the sum)."""


def refusal(atoms: Atoms, closest: float = CLOSEST) -> str | None:
    """Why `atoms` must not be sent to an oracle, or None: non-finite positions or cell, a singular cell
    along a periodic direction, or two atoms (or an atom and its own periodic image) closer than
    `closest` × the sum of their covalent radii (Å)."""
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


# ----------------------------------------------------------------------------------------- executor


def check_options(workers: int = 1, timeout: float | None = None, retries: int = 0, threads: int = 1,
                  dask: str | None = None, cluster: Cluster | dict | None = None, keep: str = "failed") -> None:
    """Raise ValueError for options :func:`label` cannot run with (or whose extra is not installed)."""
    if dask is not None and cluster is not None:
        raise ValueError(EXCLUSIVE)
    if dask is not None:
        require("pool", f"labelling on Dask ({dask})", ("distributed",))
    if cluster is not None:
        require("cluster", "label.cluster")
        cluster_settings(cluster, timeout=timeout)
    Calculations(keep=keep)  # keep must be one of dael.label.calculation.KEEP
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
          threads: int = 1, where: Calculations = IN_PLACE, heal: Callable[[], None] | None = None
          ) -> Iterator[Outcome]:
    """Label ``structures`` with the oracle ``make_calculator(oracle, **params)``; yields one :class:`Outcome`
    per structure as each finishes (not in input order).

    workers: local worker processes (0: this process; with dask 'local', the LocalCluster's workers); dask: a
    Dask scheduler address or 'local'; timeout: seconds per call (None: no limit); retries: extra calls after
    a retryable failure; threads: OpenMP/BLAS threads per worker process; where: the calculations' folders;
    heal: called while waiting on Dask (batch jobs resubmitted). The oracle is built once here first, so a bad
    name or parameter raises ValueError before any work starts.
    """
    batches = label_batches(structures, oracle, params, workers=workers, dask=dask, timeout=timeout,
                            retries=retries, threads=threads, where=where, heal=heal)
    return (out for batch in batches for out in batch)


def label_batches(structures: Sequence[Atoms], oracle: str = "reference", params: dict[str, Any] | None = None,
                  *, workers: int = 1, dask: str | None = None, timeout: float | None = None, retries: int = 0,
                  threads: int = 1, where: Calculations = IN_PLACE,
                  heal: Callable[[], None] | None = None) -> Iterator[list[Outcome]]:
    """:func:`label`, yielding the outcomes that finish together as one list (store them in one
    transaction); the workers are handed new jobs before each yield, so they compute meanwhile."""
    params = dict(params or {})
    check_options(workers, timeout, retries, threads, dask)
    make_calculator(oracle, **params)
    return _schedule(list(structures), oracle, params, workers, dask, timeout, retries, threads, where, heal)


def _schedule(structures: list[Atoms], oracle: str, params: dict[str, Any], workers: int, dask: str | None,
              timeout: float | None, retries: int, threads: int, where: Calculations,
              heal: Callable[[], None] | None) -> Iterator[list[Outcome]]:
    if not structures:
        return
    if dask is not None:
        local = min(workers, len(structures)) or None if dask == "local" else None
        pool: Any = DaskPool(dask, oracle, params, where, workers=local, heal=heal)
    elif workers == 0:
        pool = InlinePool(oracle, params, where)
    else:
        pool = ProcessPool(min(workers, len(structures)), oracle, params, threads, where)
    queue = deque(range(len(structures)))
    attempts = [0] * len(structures)
    first: dict[int, str] = {}  # the first error of each job: a retry's error is often a symptom of it
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
                    error = first.get(job, payload)
                    tries = "" if attempts[job] == 1 else f" ({attempts[job]} attempts" + (
                        f"; the last: {payload})" if payload != error else ")")
                    batch.append(Outcome(job, None, error + tries, attempts[job], seconds))
                else:
                    first.setdefault(job, payload)
                    queue.appendleft(job)
            fill()
            if batch:
                yield batch
    finally:
        pool.close()


def check_label(lab: Any, where: str) -> None:
    """campaign.yaml's label section (:class:`dael.campaign.config.Label`) beyond single values: label.dask and
    label.cluster not both, label.cluster's keys (its walltime longer than label.timeout), label.keep. One
    ValueError naming the key; installed packages are checked later (:func:`check_options`)."""
    if lab.dask is not None and lab.cluster is not None:
        raise ValueError(f"{where}: {EXCLUSIVE}")
    if lab.dask is not None and not lab.dask.strip():
        raise ValueError(f"{where}: label.dask must be 'local' or a scheduler's address (tcp://host:8786), or null")
    if lab.cluster is not None:
        cluster_settings(lab.cluster, f"{where}: label.cluster", lab.timeout)
    try:
        Calculations(keep=lab.keep)
    except ValueError as exc:  # "keep must be one of ..."
        raise ValueError(f"{where}: label.{exc}") from exc


def label_options(lab: Any) -> dict[str, Any]:
    """:func:`label_dataset`'s options from campaign.yaml's label section (:class:`dael.campaign.config.Label`)."""
    return {"workers": lab.workers, "timeout": lab.timeout, "retries": lab.retries, "dask": lab.dask,
            "cluster": lab.cluster, "keep": lab.keep}


@dataclass
class LabelSummary:
    """Counts of one :func:`label_dataset` run and its wall time (s)."""

    labeled: int = 0
    failed: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


def label_dataset(dataset: Dataset, oracle: str = "reference", params: dict[str, Any] | None = None, *,
                  progress: Callable[[LabelSummary, int], None] | None = None, keep: str = "failed",
                  cluster: Cluster | dict | None = None, **options: Any) -> LabelSummary:
    """Label the dataset's pending rows of this oracle (see :func:`label` for ``options``), committing
    each result or failure as it arrives (those that arrive together in one transaction) with the versions
    that made it (the row's ``versions``); ``progress(summary, total)`` is called after each commit.

    Calculations that write files run in ``labels/<structure hash>/`` beside the dataset, kept as ``keep`` says
    (:mod:`dael.label.calculation`). cluster: batch jobs (:class:`dael.label.cluster.Cluster` or its mapping)
    started for the pending rows, their logs in ``labels/jobs/``, cancelled at the end (instead of ``dask``)."""
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
    check_options(options.get("workers", 1), options.get("timeout"), options.get("retries", 0), 1,
                  options.get("dask"), cluster, keep)
    folder = Path(dataset.path).resolve().parent / LABELS
    options["where"] = Calculations(str(folder), keep)
    with ExitStack() as stack:
        if cluster is not None and rows:
            settings = cluster_settings(cluster, timeout=options.get("timeout"))
            options["dask"], options["heal"] = stack.enter_context(job_cluster(settings, folder / "jobs", len(rows)))
        _store(dataset, rows, oracle, params, summary, total, progress, start, options)
    summary.seconds = time.perf_counter() - start
    return summary


def _store(dataset: Dataset, rows: list[tuple[int, Atoms]], oracle: str, params: dict[str, Any] | None,
           summary: LabelSummary, total: int, progress: Callable[[LabelSummary, int], None] | None, start: float,
           options: dict[str, Any]) -> None:
    """Label `rows` and store each outcome as it arrives."""
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
