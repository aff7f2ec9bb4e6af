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
