"""Which space group does a phase relax to, under each model and under the oracle? The `phases` check of
`dael check` (dael.check.physics.phase_retention) relaxes each seed phase, perturbed, at each pressure. When models
disagree on a phase (experiments.md section 31 (ii), item 4: Si β-tin at 8 and 15 GPa stays I4_1/amd under two
N = 400 models and goes Imma under two others), this script asks the oracle:

1. each model relaxes the check's own perturbed start (same rattle, strain and random stream), and its result is
   reported: space group (spglib, the check's tolerance), conventional a, b, c (Å), enthalpy (eV/atom);
2. each model, then the oracle, relaxes the idealised primitive cell of each distinct result (2 atoms for β-tin
   and Imma, 1 for simple hexagonal), its space group held by ASE's FixSymmetry (a supergroup stays reachable:
   an Imma start can go back to I4_1/amd), to `--fmax`; reported: the space group it ends in, a, b, c, and its
   enthalpy, so each calculator's enthalpy differences between the phases stand beside the oracle's.

    python benches/experiments/beta_tin_pbe.py CAMPAIGN MODEL... --phase beta-tin --pressures 8 15 \\
        --oracle gpaw --param ecut=300 --param 'kpts={"density": 3.5, "gamma": true}'

One JSON line per result on stdout (the models' relaxations of the check's start, then the symmetric ones);
`beta_tin_pbe.py table ROWS.jsonl...` prints the symmetric ones as a table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from itertools import product
from pathlib import Path

import numpy as np
import spglib
from ase import Atoms
from ase.constraints import FixSymmetry
from ase.units import GPa

from dael.calculators.registry import make_calculator
from dael.campaign.folder import load_or_preset
from dael.check.physics import perturbed, space_group
from dael.check.settings import CheckSettings
from dael.cli.check import model_name
from dael.cli.label import key_values
from dael.explore.md import enthalpy, relax


def standard(atoms: Atoms, symprec: float, to_primitive: bool = False) -> Atoms:
    """The idealised conventional (or primitive) standard cell spglib finds at tolerance `symprec` Å."""
    cell, positions, numbers = spglib.standardize_cell(
        (atoms.cell.array, atoms.get_scaled_positions(wrap=True), atoms.numbers), to_primitive=to_primitive,
        symprec=symprec)
    return Atoms(numbers=numbers, cell=cell, scaled_positions=positions, pbc=True)


def primitive(atoms: Atoms, symprec: float) -> Atoms:
    """The idealised primitive cell spglib finds at tolerance `symprec` Å."""
    return standard(atoms, symprec, to_primitive=True)


def conventional_abc(atoms: Atoms, symprec: float) -> list[float]:
    """a, b, c (Å) of the conventional standard cell spglib finds."""
    return [round(float(x), 4) for x in standard(atoms, symprec).cell.lengths()]


def describe(atoms: Atoms, pressure: float, s: CheckSettings) -> dict:
    """Space group, conventional a, b, c and enthalpy (eV/atom) of a relaxed structure."""
    return {"space_group": space_group(atoms, s.symprec), "space_group_tight": space_group(atoms, 0.01),
            "abc": conventional_abc(atoms, s.symprec), "enthalpy_eV_atom": round(enthalpy(atoms, pressure), 6),
            "volume_A3_atom": round(atoms.get_volume() / len(atoms), 4)}


def label(model: str) -> str:
    """A model's name in the rows: a file's name without .nequip.zip, or for FOLDER/model.nequip.zip the folder's."""
    path = Path(model)
    name = path.parent.name if path.name == "model.nequip.zip" else path.name
    return name.removesuffix(".nequip.zip")


def split(row: dict) -> float:
    """|a − b| of a row's conventional cell, Å: 0 in β-tin and simple hexagonal, the orthorhombic splitting in
    Imma."""
    return abs(row["abc"][0] - row["abc"][1])


def enthalpy_table(rows: list[dict]) -> str:
    """From this script's rows: per calculator and pressure, the space group (at the check's tolerance) each
    symmetric start ended in, its |a − b| (Å), and its enthalpy above the seed group's (meV/atom); markdown."""
    by: dict[tuple[str, float], dict[str, dict]] = {}
    for row in rows:
        if "from" in row:
            by.setdefault((row["by"], row["pressure_GPa"]), {})[row["from"]] = row
    starts = list(dict.fromkeys(g for v in by.values() for g in v))
    # the seed's own group: the one a strained start is named after, else the first found (the rows of one run)
    own = next((g.split(" strained ")[0] for g in starts if " strained " in g), starts[0])
    starts = [own, *(g for g in starts if g != own)]
    lines = ["| calculator | GPa | " + " | ".join(f"from {g}: ends in (\\|a − b\\|, Å), ΔH (meV/atom)"
                                                 for g in starts[1:]) + " |",
             "|---|---:|" + "---|" * (len(starts) - 1)]
    for (calc, pressure), v in sorted(by.items(), key=lambda kv: (kv[0][1], kv[0][0] != "gpaw", kv[0][0])):
        if own not in v:
            continue
        cells = [f"{v[g]['space_group']} ({split(v[g]):.3f}), "
                 f"{1000 * (v[g]['enthalpy_eV_atom'] - v[own]['enthalpy_eV_atom']):+.1f}" if g in v else "–"
                 for g in starts[1:]]
        lines.append(f"| {calc} | {pressure:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    if sys.argv[1:2] == ["table"]:  # beta_tin_pbe.py table ROWS.jsonl...: the enthalpy table of earlier runs
        print(enthalpy_table([json.loads(x) for f in sys.argv[2:] for x in Path(f).read_text().splitlines()]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("campaign", help="campaign folder or preset: the seed phases and the check's pressures")
    parser.add_argument("models", nargs="+", help="model files or calculator names")
    parser.add_argument("--phase", default="beta-tin")
    parser.add_argument("--pressures", type=float, nargs="+", required=True, help="GPa, each on the check's grid")
    parser.add_argument("--oracle", default=None, help="calculator name of the oracle (none: models only)")
    parser.add_argument("--param", action="append", default=None, help="oracle parameter key=value (JSON)")
    parser.add_argument("--fmax", type=float, default=0.01, help="eV/Å of the oracle's relaxation")
    parser.add_argument("--steps", type=int, default=80, help="FIRE steps of the oracle's relaxation at most")
    parser.add_argument("--strain", type=float, default=0.0,
                        help="also start from the seed's own space group, its conventional a and b strained by "
                             "-/+ this (an orthorhombic distortion: is that phase a local minimum?)")
    parser.add_argument("--only", choices=["models", "oracle"], default=None,
                        help="symmetric relaxations by the models only, or by the oracle only")
    parser.add_argument("--starts", nargs="+", default=None,
                        help="symmetric relaxations only from the starts whose name holds one of these, e.g. strained")
    args = parser.parse_args()
    config, seeds = load_or_preset(args.campaign)
    s = CheckSettings()
    grid = [float(p) for p in config.explore.pressures]
    models = {model: make_calculator(model_name(model)[0]) for model in args.models}
    found: dict[tuple[float, str], tuple[Atoms, float]] = {}  # a start and the tolerance that idealises it
    for pressure in args.pressures:
        n = list(product(seeds, grid)).index((args.phase, pressure))  # the check's random stream for this start
        start = perturbed(seeds[args.phase], s.rattle, s.strain, np.random.default_rng([s.seed, n]))
        for model, calc in models.items():
            atoms = relax(start, calc, pressure, fmax=s.relax_fmax, steps=s.relax_steps)
            row = {"by": label(model), "pressure_GPa": pressure, **describe(atoms, pressure, s)}
            print(json.dumps(row), flush=True)
            found.setdefault((pressure, row["space_group"]), (atoms, s.symprec))
        if args.strain:
            own = space_group(seeds[args.phase], s.symprec)
            mine = next((a for (p, g), (a, _) in found.items() if p == pressure and g == own), None)
            if mine is None:
                raise SystemExit(f"--strain: no model of {', '.join(args.models)} keeps {own} at {pressure:g} GPa "
                                 "under the check's relaxation; give one that does (its β-tin is the strained start)")
            found[(pressure, f"{own} strained ±{args.strain:g}")] = (strained(mine, args.strain, s.symprec), 1e-4)
    calcs = {} if args.only == "oracle" else dict(models)
    if args.oracle is not None and args.only != "models":
        calcs[args.oracle] = make_calculator(args.oracle, **key_values(args.param, example="--param ecut=300"))
    for by, calc in calcs.items():
        for (pressure, group), (atoms, tolerance) in found.items():
            if args.starts and not any(x in group for x in args.starts):
                continue
            print(json.dumps({"by": label(by), "pressure_GPa": pressure, "from": group,
                              **symmetric(atoms, tolerance, calc, pressure, s, args.fmax, args.steps)}), flush=True)


def strained(atoms: Atoms, strain: float, symprec: float) -> Atoms:
    """The conventional standard cell of `atoms` with a multiplied by 1 - strain and b by 1 + strain (atoms at
    their fractional positions)."""
    cell = standard(atoms, symprec)
    cell.set_cell(np.diag([1 - strain, 1 + strain, 1.0]) @ cell.cell.array, scale_atoms=True)
    return cell


def symmetric(atoms: Atoms, tolerance: float, calc, pressure: float, s: CheckSettings, fmax: float,
              steps: int) -> dict:
    """The primitive cell of `atoms` idealised at `tolerance` Å, relaxed by `calc` at `pressure` GPa with its
    space group held (FixSymmetry: a supergroup stays reachable) to `fmax` eV/Å: describe()'s fields, the largest
    force, the diagonal of the pressure tensor (GPa) and the seconds it took."""
    began = time.perf_counter()
    cell = primitive(atoms, tolerance)
    cell.set_constraint(FixSymmetry(cell, symprec=1e-3))
    relaxed = relax(cell, calc, pressure, fmax=fmax, steps=steps)
    return {"atoms": len(cell), **describe(relaxed, pressure, s),
            "max_force_eV_A": round(float(np.abs(relaxed.get_forces()).max()), 4),
            "pressure_diag_GPa": np.round(-relaxed.get_stress(voigt=True)[:3] / GPa, 3).tolist(),
            "seconds": round(time.perf_counter() - began, 1)}


if __name__ == "__main__":
    main()
