"""Commands on fingerprints: `dael fingerprint`, `dael filter`, `dael entropy`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from dael.cli.common import Mode, _print_json, _read, app, checked, console, fail
from dael.numeric.entropy import MIN_GAIN
from dael.util.checks import natx_value, number, output_file


@app.command()
def fingerprint(
    files: Annotated[list[Path], typer.Argument(help="structure files (extxyz, ASE db, traj, POSCAR, ...)")],
    out: Annotated[Path, typer.Option(help="output .npz")] = Path("fingerprints.npz"),
    cutoff: Annotated[float, typer.Option(help="sphere radius, Å")] = 5.0,
    natx: Annotated[str, typer.Option(help="most atoms per sphere, or 'auto': the largest sphere")] = "50",
    orbital: Annotated[str, typer.Option(help="'s' or 'sp'")] = "s",
    per: Annotated[str, typer.Option(help="'atom' or 'config'")] = "atom",
    index: Annotated[str, typer.Option(help="which frames of each file (ASE index syntax)")] = ":",
) -> None:
    """Compute OMFP fingerprints of structure files and save them as .npz."""
    from dael.numeric.fingerprint import fingerprint as compute
    from dael.util.files import savez_atomic

    with checked():
        output_file(out)
    structures = _read(files, index)
    start = time.perf_counter()
    with checked():
        fp = compute(structures, cutoff=cutoff, natx=natx_value(natx), orbital=orbital, per=per)
    seconds = time.perf_counter() - start
    savez_atomic(out, values=fp.values, offsets=fp.offsets, sphere=fp.sphere, cutoff=cutoff,
                 natx=fp.settings.natx, orbital=orbital, per=per)
    console.print(f"{len(structures)} structures, {len(fp.sphere)} atoms -> {out} "
                  f"(values {fp.values.shape}, natx {fp.settings.natx}) in {seconds:.2f} s")




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
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from dael.numeric.natx import run_settings
    from dael.selection.index import NoveltyIndex
    from dael.selection.screen import Screen, check_options, chunks, dataset_state, iter_pool, shortfall

    with checked():  # everything is checked before the pool is read or anything is written
        check_options(budget, min_gain, method, chunk, min_distance)
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
                  f"natx {settings.natx}); {result.skipped:,} skipped by novelty; log det {before:.3f} -> "
                  f"{result.state.logdet:.3f} nats; {result.seconds:.1f} s ({rate:,.0f} structures/s)")
    why = shortfall(result, budget, min_gain)
    if why:
        console.print(why)


@app.command()
def entropy(
    files: Annotated[list[Path], typer.Argument(help="structure files (extxyz, ASE db, traj, ...)")],
    k: Annotated[int, typer.Option(help="k-th neighbour of the kNN entropy")] = 1,
    cutoff: Annotated[float, typer.Option(help="fingerprint sphere radius, Å")] = 5.0,
    natx: Annotated[str, typer.Option(help="atoms per sphere, or 'auto': the largest sphere")] = "auto",
    orbital: Annotated[str, typer.Option(help="'s' or 'sp'")] = "s",
    eps: Annotated[float, typer.Option(help="ε added to the covariance diagonal")] = 1e-3,
    index: Annotated[str, typer.Option(help="which frames of each file (ASE index syntax)")] = ":",
    json_: Annotated[bool, typer.Option("--json", help="print one JSON object instead of the table")] = False,
) -> None:
    """Global entropy (log det of the fingerprint covariance) and kNN entropy, per atom and per structure."""
    from dael.numeric.entropy import GlobalEntropy, knn_entropy
    from dael.numeric.fingerprint import fingerprint as compute

    with checked():
        number("--k", k, low=1, integer=True)
    structures = _read(files, index)
    modes = {}
    with checked():
        fps = compute(structures, cutoff=cutoff, natx=natx_value(natx), orbital=orbital)
        for mode in ("atom", "config"):
            state = GlobalEntropy(mode, eps)
            state.add(fps)
            samples, _ = state.blocks(fps)
            modes[mode] = {"samples": state.n, "dimension": state.dim, "logdet": state.logdet,
                           "knn_entropy": knn_entropy(samples, k) if len(samples) > k else None}
    if json_:
        _print_json({"structures": len(structures), "cutoff": cutoff, "natx": fps.settings.natx,
                     "orbital": orbital, "eps": eps, "k": k, "units": "nats", "modes": modes})
        return
    table = Table(title=f"Entropies of {len(structures)} structures (OMFP {orbital}, {cutoff} Å, "
                        f"natx {fps.settings.natx}), nats")
    for col in ("mode", "samples", "dimension", "log det Σ", f"kNN entropy (k={k})"):
        table.add_column(col, justify="right" if col != "mode" else "left")
    for mode, m in modes.items():
        knn = "n/a (too few samples)" if m["knn_entropy"] is None else f"{m['knn_entropy']:.4f}"
        table.add_row(mode, str(m["samples"]), str(m["dimension"]), f"{m['logdet']:.4f}", knn)
    console.print(table)


