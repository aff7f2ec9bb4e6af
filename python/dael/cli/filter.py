"""`dael filter`: keep the pool structures that raise the dataset's global entropy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from dael.cli.common import Mode, app, checked, console, fail
from dael.numeric.entropy import MIN_GAIN
from dael.numeric.natx import run_settings
from dael.selection.index import NoveltyIndex
from dael.selection.pool import chunks, dataset_state, iter_pool
from dael.selection.screen import Screen, check_options, shortfall
from dael.util.checks import natx_value, output_file
from dael.util.extras import require


@app.command("filter")
def filter_(
    pool: Annotated[list[Path], typer.Argument(help="candidate files (extxyz, ASE db, traj, ...)")],
    budget: Annotated[int, typer.Option(help="most structures to keep")] = 100,
    dataset: Annotated[Path | None, typer.Option(help="ASE database of the labelled dataset")] = None,
    state: Annotated[Path | None, typer.Option(help="saved entropy state instead of --dataset")] = None,
    mode: Mode = "atom",
    min_gain: Annotated[float, typer.Option(help="smallest entropy gain ΔH worth keeping, nats")] = MIN_GAIN,
    method: Annotated[str, typer.Option(
        help="'stream' (in order; the authors'), or greedy by ΔH as in dael.select: 'auto' (exact up to 5000 "
             "shortlisted, lazy beyond), 'exact' or 'lazy'")] = "stream",
    out: Annotated[Path, typer.Option(help="selected structures (extxyz)")] = Path("selected.extxyz"),
    chunk: Annotated[int, typer.Option(help="structures per chunk (bounds memory)")] = 500,
    shortlist: Annotated[int, typer.Option(help="greedy: first-pass candidates kept (0: 20×budget)")] = 0,
    index: Annotated[Path | None, typer.Option(help="novelty index folder (pre-filter)")] = None,
    min_distance: Annotated[float, typer.Option(help="skip structures closer than this to the index")] = 0.0,
    dask: Annotated[str | None, typer.Option(help="Dask scheduler address, or 'local'")] = None,
    cutoff: Annotated[float, typer.Option(help="fingerprint sphere radius, Å")] = 5.0,
    natx: Annotated[str, typer.Option(help="atoms per sphere, or 'auto': 1.5× the first chunk's largest "
                                           "sphere (a saved state's own natx when one is given)")] = "auto",
    orbital: Annotated[str, typer.Option(help="'s' or 'sp'")] = "s",
    eps: Annotated[float, typer.Option(help="ε added to the covariance diagonal")] = 1e-3,
    save_state: Annotated[Path | None, typer.Option(help="write the final entropy state here")] = None,
) -> None:
    """Keep the pool structures that raise the dataset's global entropy (streaming, resumable)."""
    with checked():  # everything is checked before the pool is read or anything is written
        check_options(budget, min_gain, method, chunk, min_distance)
        if dask is not None:
            require("pool", f"--dask {dask}", ("distributed",))
        output_file(out)
        if save_state is not None:
            output_file(save_state, "--save-state")
        first = [a for _, _, a in next(chunks(iter_pool(pool), chunk), [])]
        if not first:
            raise fail("the pool holds no structures")
        atoms_per_sphere = natx_value(natx)
        settings = run_settings(first, cutoff, atoms_per_sphere, orbital)
        current = dataset_state(dataset, state, mode, eps, settings, chunk, adopt=atoms_per_sphere is None,
                                say=console.print)
        settings = current.settings or settings
        novelty = NoveltyIndex.load(index, settings) if index is not None else None
        before = current.logdet
        screen = Screen(pool, out, current, settings, budget, min_gain, method, chunk, shortlist or None,
                        novelty, min_distance, dask)
        with Progress(SpinnerColumn(), TextColumn("{task.description}", markup=False), TimeElapsedColumn(),
                      console=console, transient=True) as bar:
            task = bar.add_task("screening", total=None)
            result = screen.run(lambda seen, kept: bar.update(
                task, description=f"screened {seen:,} structures, kept {kept:,}"), say=console.print)
    if save_state is not None:
        result.state.save(save_state)
    rate = result.seen / max(result.seconds, 1e-9)
    console.print(f"{len(result.picks)} of {result.seen:,} structures kept -> {out} ({method}, mode {mode}, "
                  f"natx {settings.natx}); {result.skipped - result.dense:,} skipped by novelty; log det "
                  f"{before:.3f} -> {result.state.logdet:.3f} nats; {result.seconds:.1f} s ({rate:,.0f} "
                  "structures/s)")
    if result.dense:
        console.print(f"{result.dense:,} structures had a fingerprint sphere of more than natx = {settings.natx} "
                      "atoms (collapsed or over-dense cells) and were not judged; rerun with a larger --natx to "
                      "judge them")
    why = shortfall(result, budget, min_gain)
    if why:
        console.print(why)
