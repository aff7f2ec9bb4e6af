"""`dael deploy`: a trained model compiled (AOTInductor) for where production MD runs: ASE or LAMMPS."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dael.calculators.deploy import TARGETS, compile_model, compiled_metadata, lammps_lines
from dael.cli.common import Device, app, console, fail
from dael.util.extras import require


@app.command()
def deploy(
    model: Annotated[Path, typer.Argument(
        help="a dael model directory (e.g. al/models/round-03), .nequip.zip or .ckpt")],
    target: Annotated[str, typer.Option(
        help="'ase' (nequip's ASE calculator; what allegro:PATH loads compiled) or 'lammps' (pair_style allegro)")]
    = "ase",
    out: Annotated[Path | None, typer.Option(
        help="the compiled file, *.nequip.pt2 [default: beside the model; lammps: <stem>-lammps.nequip.pt2]")] = None,
    device: Device = "cpu",
    threads: Annotated[int, typer.Option(help="threads of the compilation")] = 1,
) -> None:
    """Compile a model for production MD (nequip-compile, AOTInductor; minutes, needs g++): run it on the machine
    (CPU type, GPU, torch version) the MD will run on."""
    try:
        require("train", "dael deploy")
        if target not in TARGETS:
            raise ValueError(f"--target must be one of {', '.join(TARGETS)}; got {target!r}")
        console.print(f"compiling {model} for {target} on {device} (nequip-compile, AOTInductor; minutes)")
        path = compile_model(model, target, out, device, threads)
        meta = compiled_metadata(path)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        raise fail(str(exc)) from exc
    console.print(f"{path}: types {meta['type_names']}, r_max {meta['r_max']} Å, {meta.get('model_dtype')}, "
                  f"built for {meta.get('AOTI_DEVICE_KEY')} ({meta.get('AOTI_CPU_ISA') or 'GPU'})")
    if target == "lammps":
        console.print("LAMMPS input (LAMMPS >= 10 Sep 2025 with pair_nequip_allegro, built with "
                      "-DNEQUIP_AOT_COMPILE=ON; LAMMPS types 1, 2, ... in this order of types):")
        console.print(lammps_lines(path), end="")
    else:
        console.print(f"ASE: NequIPCalculator.from_compiled_model('{path}', device='{device}', "
                      "chemical_species_to_atom_type_map=True), or dael.calculators.deploy.load_calculator("
                      f"'{model}', compile=True)")
