"""`dael train`: an Allegro potential trained (or fine-tuned) on a labelled dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from dael.cli.common import Device, app, console, fail
from dael.train.settings import TrainSettings
from dael.train.training import train as run
from dael.util.lock import locked


@app.command()
def train(
    db: Annotated[Path, typer.Option(help="labelled dataset: a dael dataset (its labelled rows but the 'test' "
                                           "ones), an ASE database or extxyz")],
    out: Annotated[Path, typer.Option(help="model directory to create (e.g. models/round-03)")],
    from_: Annotated[str | None, typer.Option(
        "--from", help="warm start: a local .nequip.zip (foundation model or previous round), a .ckpt or a "
                       "dael model directory; hub ids are not fetched")] = None,
    epochs: Annotated[int, typer.Option(help="most epochs (early stopping may end sooner)")] = TrainSettings.epochs,
    seed: Annotated[int, typer.Option(help="seed of the split, shuffling and initialisation")] = TrainSettings.seed,
    test: Annotated[Path | None, typer.Option(
        help="extra labelled structures to evaluate on (of a dael dataset: its 'test' rows)")] = None,
    lr: Annotated[float | None, typer.Option(help="learning rate (default: 1e-2 new, 3e-3 warm)")] = None,
    energy_weight: Annotated[float, typer.Option(
        help="loss weight of the energy per atom (forces: 1)")] = TrainSettings.energy_weight,
    stress_weight: Annotated[float, typer.Option(
        help="loss weight of stress (forces: 1)")] = TrainSettings.stress_weight,
    val_fraction: Annotated[float, typer.Option(
        help="share of structures held out for validation")] = TrainSettings.val_fraction,
    threads: Annotated[int, typer.Option(help="torch/OpenMP threads of the training process")] = TrainSettings.threads,
    device: Device = "cpu",
    overwrite: Annotated[bool, typer.Option(help="replace a previous run in --out")] = False,
) -> None:
    """Train an Allegro potential on a labelled dataset (new, or fine-tuned with --from); writes the model
    directory with model.nequip.zip and metrics.json."""
    try:
        settings = TrainSettings(epochs=epochs, seed=seed, lr=lr, energy_weight=energy_weight,
                                 stress_weight=stress_weight, val_fraction=val_fraction, threads=threads, device=device)
        settings.check()  # refused before the lock file is written
        if not db.is_file():
            raise ValueError(f"--db {db}: no such file (a dael or ASE SQLite database of labelled structures)")
        with locked(db, "dael train"):  # not while another command writes the dataset
            result = run(db, out, parent=from_, settings=settings, test=test, overwrite=overwrite,
                         progress=console.print)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        raise fail(str(exc)) from exc
    table = Table(title=f"Errors of {result.package} (MAE / RMSE)")
    for col in ("set", "structures", "E meV/atom", "F meV/Å", "S meV/Å³"):
        table.add_column(col, justify="right" if col != "set" else "left")
    for name in ("validation", "validation_baseline", "test", "test_baseline"):
        if name in result.metrics:
            m = result.metrics[name]
            cells = [f"{m[f'{q}_mae']:.{d}f} / {m[f'{q}_rmse']:.{d}f}" if m[f"{q}_mae"] is not None else "n/a"
                     for q, d in (("energy", 2), ("force", 1), ("stress", 2))]
            table.add_row(name.replace("_", " "), str(m["structures"]), *cells)
    console.print(table)
