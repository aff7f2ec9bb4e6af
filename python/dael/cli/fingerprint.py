"""Commands on fingerprints: `dael fingerprint`, `dael entropy`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from dael.cli.common import app, checked, console, print_json, read_inputs
from dael.numeric.entropy import GlobalEntropy, knn_entropy
from dael.numeric.fingerprint import fingerprint as compute
from dael.util.checks import natx_value, number, output_file
from dael.util.files import savez_atomic


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
    with checked():
        output_file(out)
    structures = read_inputs(files, index)
    start = time.perf_counter()
    with checked():
        fp = compute(structures, cutoff=cutoff, natx=natx_value(natx), orbital=orbital, per=per)
    seconds = time.perf_counter() - start
    savez_atomic(out, values=fp.values, offsets=fp.offsets, sphere=fp.sphere, cutoff=cutoff,
                 natx=fp.settings.natx, orbital=orbital, per=per)
    console.print(f"{len(structures)} structures, {len(fp.sphere)} atoms -> {out} "
                  f"(values {fp.values.shape}, natx {fp.settings.natx}) in {seconds:.2f} s")


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
    with checked():
        number("--k", k, low=1, integer=True)
    structures = read_inputs(files, index)
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
        print_json({"structures": len(structures), "cutoff": cutoff, "natx": fps.settings.natx,
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
