"""The `dael` command line: every command is declared here."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="dael: dataset-aware, entropy-maximized active learning of interatomic potentials.")
console = Console()
errors = Console(stderr=True, soft_wrap=True)


def fail(message: str) -> typer.Exit:
    """Print one clear error line and return the exit to raise (status 2)."""
    errors.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
    return typer.Exit(2)


def _read(paths: list[Path], index: str):
    """Every structure of every file (any format ASE reads); a clear error names the bad file."""
    from ase.io import read

    structures = []
    for path in paths:
        if not path.exists():
            raise fail(f"{path}: no such file")
        try:
            structures += read(path, index=index)
        except Exception as exc:  # ASE raises many types for unreadable input
            raise fail(f"{path}: ASE cannot read it ({exc})") from exc
    if not structures:
        raise fail("the files hold no structures")
    return structures


@app.command()
def fingerprint(
    files: Annotated[list[Path], typer.Argument(help="structure files (extxyz, ASE db, traj, POSCAR, ...)")],
    out: Annotated[Path, typer.Option(help="output .npz")] = Path("fingerprints.npz"),
    cutoff: Annotated[float, typer.Option(help="sphere radius, Å")] = 5.0,
    natx: Annotated[int, typer.Option(help="most atoms per sphere (0: size to the largest sphere)")] = 50,
    orbital: Annotated[str, typer.Option(help="'s' or 'sp'")] = "s",
    per: Annotated[str, typer.Option(help="'atom' or 'config'")] = "atom",
    index: Annotated[str, typer.Option(help="which frames of each file (ASE index syntax)")] = ":",
) -> None:
    """Compute OMFP fingerprints of structure files and save them as .npz."""
    from dael.fingerprint import fingerprint as compute

    structures = _read(files, index)
    start = time.perf_counter()
    try:
        fp = compute(structures, cutoff=cutoff, natx=natx or None, orbital=orbital, per=per)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    seconds = time.perf_counter() - start
    tmp = out.with_name(out.name + ".partial.npz")
    np.savez(tmp, values=fp.values, offsets=fp.offsets, sphere=fp.sphere, cutoff=cutoff,
             natx=fp.settings.natx, orbital=orbital, per=per)
    tmp.replace(out)  # never leave a half-written file under the real name
    console.print(f"{len(structures)} structures, {len(fp.sphere)} atoms -> {out} "
                  f"(values {fp.values.shape}, natx {fp.settings.natx}) in {seconds:.2f} s")


Mode = Annotated[str, typer.Option(help="'atom' (per-atom samples, disordered) or 'config' (per structure)")]


def _fingerprint_settings(structures: list, cutoff: float, natx: int, orbital: str, margin: float = 1.0):
    """Settings for a run: natx as given, or (natx 0) the largest sphere of `structures` times `margin`."""
    from dael.fingerprint import FingerprintSettings, fingerprint

    if natx:
        return FingerprintSettings(cutoff, natx, orbital)
    largest = fingerprint(structures, cutoff=cutoff, natx=None, orbital=orbital).settings.natx
    return FingerprintSettings(cutoff, int(np.ceil(largest * margin)), orbital)


def _dataset_state(dataset: Path | None, state: Path | None, mode: str, eps: float, settings, chunk: int):
    """The dataset's entropy state: a saved state, or the fingerprints of every row of an ASE database."""
    from dael.entropy import GlobalEntropy
    from dael.screen import chunks, fingerprint_chunk, iter_pool

    if state is not None:
        if not state.exists():
            raise fail(f"{state}: no such entropy state file")
        loaded = GlobalEntropy.load(state)
        if loaded.settings is not None and loaded.settings != settings:
            raise fail(f"{state} was built with {loaded.settings}; pass the same --cutoff/--natx/--orbital")
        if loaded.mode != mode:
            raise fail(f"{state} is a '{loaded.mode}'-mode state; pass --mode {loaded.mode}")
        return loaded
    current = GlobalEntropy(mode, eps, settings)
    if dataset is not None:
        if not dataset.exists():
            raise fail(f"{dataset}: no such dataset (an ASE database; omit --dataset to start empty)")
        for block in chunks(iter_pool([dataset]), chunk):
            current.add(fingerprint_chunk([a for _, _, a in block], settings))
    return current


@app.command("filter")
def filter_(
    pool: Annotated[list[Path], typer.Argument(help="candidate files (extxyz, ASE db, traj, ...)")],
    budget: Annotated[int, typer.Option(help="most structures to keep")] = 100,
    dataset: Annotated[Path | None, typer.Option(help="ASE database of the labelled dataset")] = None,
    state: Annotated[Path | None, typer.Option(help="saved entropy state instead of --dataset")] = None,
    mode: Mode = "atom",
    min_gain: Annotated[float, typer.Option(help="smallest entropy gain ΔH worth keeping, nats")] = 0.01,
    method: Annotated[str, typer.Option(help="'stream' (in order; the authors') or 'greedy'")] = "stream",
    out: Annotated[Path, typer.Option(help="selected structures (extxyz)")] = Path("selected.extxyz"),
    chunk: Annotated[int, typer.Option(help="structures per chunk (bounds memory)")] = 500,
    shortlist: Annotated[int, typer.Option(help="greedy: first-pass candidates kept (0: 20×budget)")] = 0,
    index: Annotated[Path | None, typer.Option(help="novelty index folder (pre-filter)")] = None,
    min_distance: Annotated[float, typer.Option(help="skip structures closer than this to the index")] = 0.0,
    dask: Annotated[str | None, typer.Option(help="Dask scheduler address, or 'local'")] = None,
    cutoff: Annotated[float, typer.Option(help="fingerprint sphere radius, Å")] = 5.0,
    natx: Annotated[int, typer.Option(help="fingerprint length (0: first chunk's largest sphere +25%)")] = 0,
    orbital: Annotated[str, typer.Option(help="'s' or 'sp'")] = "s",
    eps: Annotated[float, typer.Option(help="ε added to the covariance diagonal")] = 1e-3,
    save_state: Annotated[Path | None, typer.Option(help="write the final entropy state here")] = None,
) -> None:
    """Keep the pool structures that raise the dataset's global entropy (streaming, resumable)."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from dael.index import NoveltyIndex
    from dael.screen import Screen, chunks, iter_pool

    try:
        first = [a for _, _, a in next(chunks(iter_pool(pool), chunk), [])]
        if not first:
            raise fail("the pool holds no structures")
        settings = _fingerprint_settings(first, cutoff, natx, orbital, margin=1.25)
        if state is not None and natx == 0:
            from dael.entropy import GlobalEntropy

            settings = GlobalEntropy.load(state).settings or settings
        current = _dataset_state(dataset, state, mode, eps, settings, chunk)
        novelty = NoveltyIndex.load(index, settings) if index is not None else None
        before = current.logdet
        screen = Screen(pool, out, current, settings, budget, min_gain, method, chunk, shortlist or None,
                        novelty, min_distance, dask)
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                      console=console, transient=True) as bar:
            task = bar.add_task("screening", total=None)
            result = screen.run(lambda seen, kept: bar.update(
                task, description=f"screened {seen:,} structures, kept {kept:,}"))
    except ValueError as exc:
        raise fail(str(exc)) from exc
    if save_state is not None:
        result.state.save(save_state)
    rate = result.seen / max(result.seconds, 1e-9)
    console.print(f"{len(result.picks)} of {result.seen:,} structures kept -> {out} ({method}, mode {mode}, "
                  f"natx {settings.natx}); {result.skipped:,} skipped by novelty; log det {before:.3f} -> "
                  f"{result.state.logdet:.3f} nats; {result.seconds:.1f} s ({rate:,.0f} structures/s)")


@app.command()
def entropy(
    files: Annotated[list[Path], typer.Argument(help="structure files (extxyz, ASE db, traj, ...)")],
    k: Annotated[int, typer.Option(help="k-th neighbour of the kNN entropy")] = 1,
    cutoff: Annotated[float, typer.Option(help="fingerprint sphere radius, Å")] = 5.0,
    natx: Annotated[int, typer.Option(help="fingerprint length (0: largest sphere)")] = 0,
    orbital: Annotated[str, typer.Option(help="'s' or 'sp'")] = "s",
    eps: Annotated[float, typer.Option(help="ε added to the covariance diagonal")] = 1e-3,
    index: Annotated[str, typer.Option(help="which frames of each file (ASE index syntax)")] = ":",
) -> None:
    """Global entropy (log det of the fingerprint covariance) and kNN entropy, per atom and per structure."""
    from dael.entropy import GlobalEntropy, knn_entropy
    from dael.fingerprint import fingerprint as compute

    structures = _read(files, index)
    try:
        fps = compute(structures, cutoff=cutoff, natx=natx or None, orbital=orbital)
        table = Table(title=f"Entropies of {len(structures)} structures (OMFP {orbital}, {cutoff} Å, "
                            f"natx {fps.settings.natx}), nats")
        for col in ("mode", "samples", "dimension", "log det Σ", f"kNN entropy (k={k})"):
            table.add_column(col, justify="right" if col != "mode" else "left")
        for mode in ("atom", "config"):
            state = GlobalEntropy(mode, eps)
            state.add(fps)
            samples, _ = state.blocks(fps)
            knn = f"{knn_entropy(samples, k):.4f}" if len(samples) > k else "n/a (too few samples)"
            table.add_row(mode, str(state.n), str(state.dim), f"{state.logdet:.4f}", knn)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    console.print(table)


@app.command()
def demo() -> None:
    """What dael does today, on real structures: neighbour lists and fingerprints of Si, NaCl and C
    phases, timed against ASE and libfp where installed, and how far apart the phases are."""
    from ase.build import bulk
    from ase.neighborlist import neighbor_list as ase_neighbor_list

    import dael

    rng = np.random.default_rng(0)
    phases = {
        "Si diamond": bulk("Si", "diamond", a=5.43, cubic=True) * (2, 2, 2),
        "Si beta-tin": _beta_tin() * (2, 2, 4),
        "NaCl B1": bulk("NaCl", "rocksalt", a=5.64, cubic=True) * (2, 2, 2),
        "NaCl B2": bulk("NaCl", "cesiumchloride", a=3.0) * (4, 4, 4),
        "C diamond": bulk("C", "diamond", a=3.57, cubic=True) * (2, 2, 2),
        "C graphite": _graphite() * (4, 4, 2),
    }
    for atoms in phases.values():
        atoms.rattle(0.05, rng=rng)

    table = Table(title="Neighbour lists, cutoff 5 Å (full lists, pairs equal to ASE's)")
    for col in ("phase", "atoms", "pairs", "ASE ms", "dael ms", "speed-up"):
        table.add_column(col, justify="right" if col != "phase" else "left")
    for name, atoms in phases.items():
        t0 = time.perf_counter()
        ref = ase_neighbor_list("ij", atoms, 5.0)
        t1 = time.perf_counter()
        i, j = dael.neighbor_list(atoms, 5.0, "ij")
        t2 = time.perf_counter()
        assert len(i) == len(ref[0]), "pair counts differ from ASE"
        table.add_row(name, str(len(atoms)), str(len(i)), f"{(t1 - t0) * 1e3:.1f}", f"{(t2 - t1) * 1e3:.2f}",
                      f"{(t1 - t0) / (t2 - t1):.0f}x")
    console.print(table)

    structures = list(phases.values())
    natx = dael.fingerprint(structures, 5.0, natx=None).settings.natx
    t0 = time.perf_counter()
    fps = dael.fingerprint(structures, 5.0, natx=natx, per="config")
    seconds = time.perf_counter() - t0
    n_atoms = sum(len(a) for a in structures)
    console.print(f"\nOMFP (s, cutoff 5 Å, natx {natx} = largest sphere): {n_atoms} atoms in "
                  f"{seconds * 1e3:.1f} ms ({n_atoms / seconds:,.0f} atoms/s)")
    names = list(phases)
    dist = Table(title="Distance between per-configuration fingerprints (same element only)")
    dist.add_column("phase A")
    dist.add_column("phase B")
    dist.add_column("|X_A - X_B|", justify="right")
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            if names[a].split()[0] == names[b].split()[0]:
                d = np.linalg.norm(fps.values[a] - fps.values[b])
                dist.add_row(names[a], names[b], f"{d:.3f}")
    console.print(dist)

    grads = dael.fingerprint(phases["Si diamond"], 5.0, natx=natx, gradients=True, stress=True)
    console.print(f"Si diamond gradients: {len(grads.pairs)} sparse (centre, atom) blocks of shape "
                  f"{grads.grad.shape[1:]}, strain derivative {grads.strain.shape}")


def _beta_tin():
    from ase import Atoms

    frac = [[0, 0, 0], [0.5, 0.5, 0.5], [0, 0.5, 0.25], [0.5, 0, 0.75]]
    return Atoms("Si4", scaled_positions=frac, cell=[4.80, 4.80, 2.65], pbc=True)


def _graphite():
    from ase import Atoms

    a, c = 2.46, 6.70
    cell = [[a, 0, 0], [-a / 2, a * np.sqrt(3) / 2, 0], [0, 0, c]]
    frac = [[0, 0, 0.25], [0, 0, 0.75], [1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]]
    return Atoms("C4", scaled_positions=frac, cell=cell, pbc=True)


if __name__ == "__main__":
    app()
