"""Commands on the dataset: `dael label`, `dael export`."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from dael.calculators.registry import check_calculator
from dael.cli.common import app, console, done, errors, fail, key_values, read_inputs
from dael.data.dataset import SOURCES, Dataset, oracle_spec
from dael.label.labelling import check_options, label_dataset
from dael.numeric.fingerprint import FingerprintSettings
from dael.util.checks import output_file
from dael.util.lock import locked


def _fingerprint_option(text: str | None):
    """``CUTOFF,NATX,ORBITAL`` (e.g. 5.0,50,s) as FingerprintSettings; None when not given."""
    if text is None:
        return None
    parts = text.split(",")
    try:
        return FingerprintSettings(float(parts[0]), int(parts[1]), parts[2].strip())
    except (IndexError, ValueError) as exc:
        raise ValueError(f"--fingerprint {text!r}: expected CUTOFF,NATX,ORBITAL (5.0,50,s); {exc}") from None


@app.command("label")
def label_(
    ctx: typer.Context,
    db: Annotated[Path, typer.Option(help="the dataset: an ASE SQLite database (.db), created if missing")],
    candidates: Annotated[list[Path] | None, typer.Argument(
        help="candidate files (extxyz, ASE db, ...); none: only label the pending rows")] = None,
    oracle: Annotated[str, typer.Option(help="reference | gpaw | vasp | qe | ase:module:Class (any name of "
                                                  "dael.calculators.registry)")]
    = "reference",
    param: Annotated[list[str] | None, typer.Option(
        help="oracle parameter key=value (value read as JSON, else text); repeatable")] = None,
    workers: Annotated[int | None, typer.Option(
        help="worker processes, 1 OpenMP thread each (0: this process) [default: 1]")] = None,
    dask: Annotated[str | None, typer.Option(
        help="Dask scheduler address (e.g. a dask-jobqueue SLURMCluster's), or 'local'")] = None,
    source: Annotated[str, typer.Option(help="entropy | random | anchor | test")] = "entropy",
    round_: Annotated[int, typer.Option("--round", help="active-learning round")] = 0,
    campaign: Annotated[str, typer.Option(help="campaign name")] = "default",
    timeout: Annotated[float | None, typer.Option(help="seconds per oracle call [default: no limit]")] = None,
    retries: Annotated[int, typer.Option(help="extra calls after a failure that is not bad input")] = 0,
    retry_failed: Annotated[bool, typer.Option(help="put this oracle's failed rows back to pending")] = False,
    relabel_failed: Annotated[bool, typer.Option(
        help="give every failed row, whatever oracle failed on it, to this --oracle/--param (pending)")] = False,
    relabel_pending: Annotated[bool, typer.Option(
        help="give the rows pending for other oracles to this --oracle/--param")] = False,
    fingerprint: Annotated[str | None, typer.Option(
        help="fingerprint settings the selection used, CUTOFF,NATX,ORBITAL (e.g. 5.0,50,s)")] = None,
    keep: Annotated[str, typer.Option(
        help="calculation folders (labels/<structure hash>/ beside --db) kept: 'failed' or 'all'")] = "failed",
) -> None:
    """Label candidate structures with an oracle into the dataset; rerun the same command to resume."""
    params = key_values(param)
    if workers is not None and dask is not None:
        raise fail("give --workers or --dask, not both")
    workers = (1 if dask is None else 0) if workers is None else workers  # --dask local: one worker per core
    if not candidates and not db.exists():
        raise fail(f"{db} does not exist yet: give the candidate files to label")
    try:  # everything is checked before the dataset is touched
        check_options(workers, timeout, retries, dask=dask, keep=keep)
        if source not in SOURCES:
            raise ValueError(f"--source must be one of {', '.join(SOURCES)}; got {source!r}")
        settings = _fingerprint_option(fingerprint)
        check_calculator(oracle, **params)
        ctx.with_resource(locked(db, "dael label"))  # one writer per dataset, released when the command ends
        dataset = Dataset(db)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    structures = read_inputs(candidates, ":") if candidates else []
    spec = oracle_spec(oracle, params)
    try:
        added = dataset.add(structures, oracle=spec, campaign=campaign, round=round_, source=source,
                            fingerprint=settings)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    if retry_failed:
        dataset.retry_failed(spec)
    statuses = ("failed",) * relabel_failed + ("pending",) * relabel_pending
    if statuses:
        moved = dataset.reassign(spec, statuses) + (dataset.retry_failed(spec) if relabel_failed else 0)
        console.print(f"{moved} {' and '.join(statuses)} rows given to {spec}")
    with Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task(f"labelling with {oracle}", total=None)
        try:
            summary = label_dataset(
                dataset, oracle, params, workers=workers, dask=dask, timeout=timeout, retries=retries, keep=keep,
                progress=lambda s, total: bar.update(task, total=total, completed=s.labeled + s.failed,
                                                     description=f"labelling, {s.failed} failed"))
        except KeyboardInterrupt:
            bar.stop()
            errors.print("interrupted: every finished label is saved; rerun the same command to resume")
            raise typer.Exit(130) from None
        except (OSError, RuntimeError, ValueError) as exc:  # no Dask scheduler there, jobs that cannot start
            bar.stop()
            raise fail(f"labelling stopped ({exc}); finished labels are saved, rerun to resume") from exc
    counts = dataset.counts()
    rate = (summary.labeled + summary.failed) / max(summary.seconds, 1e-9)
    console.print(f"{summary.labeled} labeled, {summary.failed} failed, {len(added.duplicates)} duplicates "
                  f"skipped, {summary.seconds:.1f} s ({rate:.1f} structures/s) -> {db} (rows: "
                  f"{counts['labeled']} labeled, {counts['failed']} failed, {counts['pending']} pending)")
    for message, n in Counter(summary.errors).most_common(3):
        console.print(Text.assemble((f"  {n} failed: ", "yellow"), message))
    if summary.failed:
        console.print("  after fixing the cause, --retry-failed labels them again with this oracle, "
                      "--relabel-failed with the --oracle/--param given")
    if counts["pending"]:
        others = sorted({a.info["oracle"] for a in dataset.structures("pending")})
        console.print(f"  {counts['pending']} rows wait for other oracles ({'; '.join(others)}): rerun with "
                      "that --oracle and --param, or give them to this one with --relabel-pending")
    done(summary.failed)


@app.command()
def export(
    db: Annotated[Path, typer.Option(help="the dataset (ASE database)")],
    out: Annotated[Path, typer.Option(help="extxyz with energy, forces, stress (nequip reads it as is)")]
    = Path("train.extxyz"),
    status: Annotated[str, typer.Option(help="labeled | pending | failed | all")] = "labeled",
    source: Annotated[list[str] | None, typer.Option(help="only rows of this source; repeatable")] = None,
    campaign: Annotated[str | None, typer.Option(help="only rows of this campaign")] = None,
    round_: Annotated[int | None, typer.Option("--round", help="only rows of this round")] = None,
) -> None:
    """Write dataset rows to an extxyz training file."""
    if not db.is_file():
        raise fail(f"{db}: no such dataset")
    query = {k: v for k, v in {"campaign": campaign, "round": round_}.items() if v is not None}
    try:
        output_file(out)
        n = Dataset(db).export(out, None if status == "all" else status, source, **query)
    except (ValueError, OSError) as exc:
        raise fail(str(exc)) from exc
    console.print(f"{n} structures -> {out}")
