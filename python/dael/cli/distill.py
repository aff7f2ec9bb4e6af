"""`dael distill`: an Allegro base distilled from a teacher (a foundation model or any ASE calculator)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dael.campaign.distill import DistillSettings
from dael.campaign.distill import distill as run_distill
from dael.campaign.folder import load_or_preset
from dael.cli.common import Device, app, console, fail, key_values

_DISTILL = DistillSettings()


@app.command()
def distill(
    system: Annotated[str, typer.Argument(help="preset (Si, C, NaCl) or a campaign folder")],
    teacher: Annotated[str, typer.Option(help="chgnet | sevennet | allegro:PATH | ase:module:Class | reference")]
    = "chgnet",
    teacher_param: Annotated[list[str] | None, typer.Option(
        help="teacher parameter key=value (value read as JSON, else text); repeatable")] = None,
    out: Annotated[Path, typer.Option(help="folder of the base model (resumable)")] = Path("base"),
    device: Device = "cpu",
    epochs: Annotated[int, typer.Option(help="most training epochs")] = _DISTILL.epochs,
    steps: Annotated[int, typer.Option(help="MD steps per trajectory (0: the campaign's)")] = 0,
    snapshots: Annotated[int, typer.Option(help="snapshots per trajectory (0: the campaign's)")] = 0,
    repeats: Annotated[int, typer.Option(help="MD seeds per phase, pressure and temperature")] = _DISTILL.repeats,
    rattles: Annotated[int, typer.Option(help="rattled copies (0.05-0.15 Å) per relaxed phase and pressure")]
    = _DISTILL.rattles,
    strains: Annotated[int, typer.Option(help="random strains (up to ±10 %) per relaxed phase and pressure")]
    = _DISTILL.strains,
    r_max: Annotated[float, typer.Option(help="cutoff of the base, Å")] = _DISTILL.r_max,
    l_max: Annotated[int, typer.Option(help="largest rotation order of the base")] = _DISTILL.l_max,
    num_layers: Annotated[int, typer.Option(help="Allegro layers")] = _DISTILL.num_layers,
    scalar_features: Annotated[int, typer.Option(help="scalar features")] = _DISTILL.num_scalar_features,
    tensor_features: Annotated[int, typer.Option(help="tensor features")] = _DISTILL.num_tensor_features,
    workers: Annotated[int, typer.Option(help="MD trajectories in parallel (0: the campaign's)")] = 0,
    threads: Annotated[int, typer.Option(help="torch threads of training and timing")] = _DISTILL.threads,
) -> None:
    """Distil a teacher (foundation model or any ASE calculator) into an Allegro base: broad random MD, melts,
    strains and rattles labelled by the teacher, a 10 % holdout; writes model.nequip.zip and distill.json
    (errors against the teacher, speed of both). Fine-tune it with `--from OUT` or campaign.yaml's train.base
    (with `driver: base`, the campaign and the benchmark also explore with it: the paper's regime)."""
    teacher_params = key_values(teacher_param, "--teacher-param", "--teacher-param model_paths=my.model")
    settings = DistillSettings(epochs=epochs, steps=steps or None, snapshots=snapshots or None, repeats=repeats,
                               rattles=rattles, strains=strains, r_max=r_max, l_max=l_max, num_layers=num_layers,
                               num_scalar_features=scalar_features, num_tensor_features=tensor_features,
                               workers=workers or None, threads=threads, device=device)
    try:
        campaign, seeds = load_or_preset(system)
        result = run_distill(campaign, seeds, out, teacher, settings,
                             say=lambda line: console.print(line, markup=False, highlight=False),
                             teacher_params=teacher_params)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        raise fail(str(exc)) from exc
    console.print(f"base model: {out / result['model']} (errors and timings: {out / 'distill.json'})")
