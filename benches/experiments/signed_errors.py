"""Signed energy errors at one test condition: for each structure of the benchmark's per-condition test set
(experiments.md section 31 (ii): 'diamond 15 GPa 1000 K'), each model's energy minus the oracle's (meV/atom),
beside the oracle energy above the set's lowest (meV/atom). Tells an offset from an error that grows with how far
a snapshot is from the lattice. Below the table, the oracle energies (above the same lowest) of the entropy and
random-MD pools' snapshots at that condition: where the training pools sit against the test structures.

    python benches/experiments/signed_errors.py BENCHMARK_FOLDER "diamond 15 GPa 1000 K" --size 200

Reads FOLDER/pools/test.extxyz, its labels in FOLDER/labels.db (matched by content hash) and every model
FOLDER/models/*-N{size}-d*/model.nequip.zip.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.io import read
from set_composition import models_of  # benches/experiments, beside this script

from dael.benchmark.evaluation import condition_name
from dael.benchmark.report import CONDITION
from dael.data.dataset import Dataset, structure_hash


def labels_by_hash(folder: Path) -> dict[str, Atoms]:
    """Every labelled structure of folder/labels.db by its content hash."""
    return {a.info["hash"]: a for a in Dataset(folder / "labels.db").structures()}


def at_condition(structures: list[Atoms], condition: str) -> list[Atoms]:
    """The structures whose info places them in the per-condition set `condition` ('diamond 15 GPa 1000 K')."""
    return [a for a in structures if condition_name(a.info) == CONDITION + condition]


def condition_structures(folder: Path, condition: str, labels: dict[str, Atoms] | None = None) -> list[Atoms]:
    """The labelled test structures of `condition` ('diamond 15 GPa 1000 K'), in the test pool's order."""
    labels = labels_by_hash(folder) if labels is None else labels
    chosen = at_condition(read(folder / "pools" / "test.extxyz", ":"), condition)
    if not chosen:
        raise SystemExit(f"no test structure of condition {condition!r} in {folder / 'pools' / 'test.extxyz'}: "
                         "give one the benchmark's per-condition tables name, e.g. 'diamond 15 GPa 1000 K'")
    missing = [structure_hash(a) for a in chosen if structure_hash(a) not in labels]
    if missing:
        raise SystemExit(f"{len(missing)} test structures of {condition!r} have no label in {folder / 'labels.db'}")
    return [labels[structure_hash(a)] for a in chosen]


def pool_energies(folder: Path, condition: str, lowest: float,
                  labels: dict[str, Atoms] | None = None) -> dict[str, list[int]]:
    """{pool: sorted oracle energies above `lowest` (eV/atom), meV/atom} of the entropy and random-MD pools'
    labelled snapshots at `condition`."""
    labels = labels_by_hash(folder) if labels is None else labels
    out = {}
    for pool in ("entropy", "random"):
        at = [labels.get(structure_hash(a)) for a in at_condition(read(folder / "pools" / f"{pool}.extxyz", ":"),
                                                                     condition)]
        out[pool] = sorted(round(1000.0 * (oracle_per_atom(a) - lowest)) for a in at if a is not None)
    return out


def oracle_per_atom(atoms: Atoms) -> float:
    """The labelled (oracle) energy per atom, eV."""
    return atoms.get_potential_energy() / len(atoms)


def per_atom(atoms: Atoms, calc: Calculator) -> float:
    """Energy per atom (eV) of `atoms` under `calc`."""
    copy = atoms.copy()
    copy.calc = calc
    return copy.get_potential_energy() / len(copy)


def errors(structures: list[Atoms], calc: Calculator) -> np.ndarray:
    """Model minus oracle energy per atom, meV/atom, one per structure."""
    return np.array([1000.0 * (per_atom(a, calc) - oracle_per_atom(a)) for a in structures])


def table(folder: Path, condition: str, size: int, load: Callable[[Path], Calculator]) -> str:
    """A markdown table: one column per structure (headed by its oracle energy above the set's lowest), one row
    per model, its signed errors and their mean."""
    labels = labels_by_hash(folder)
    structures = condition_structures(folder, condition, labels)
    oracle = np.array([oracle_per_atom(a) for a in structures])
    above = 1000.0 * (oracle - oracle.min())
    models = models_of(folder, size)
    if not models:
        raise SystemExit(f"no model of N = {size} under {Path(folder) / 'models'}")
    lines = [f"{condition}, N = {size}: model - oracle energy (meV/atom) per test structure; header: the oracle "
             "energy above the set's lowest (meV/atom)",
             "| model | " + " | ".join(f"{e:.0f}" for e in above) + " | mean |",
             "|---|" + "---:|" * (len(structures) + 1)]
    for model in models:
        d = errors(structures, load(model / "model.nequip.zip"))
        lines.append(f"| {model.name} | " + " | ".join(f"{x:+.1f}" for x in d) + f" | {d.mean():+.1f} |")
    lines += [f"{pool} pool at {condition}, above the same lowest (meV/atom): {energies}"
              for pool, energies in pool_energies(folder, condition, oracle.min(), labels).items()]
    return "\n".join(lines)


def main() -> None:
    from dael.calculators.deploy import load_calculator

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("condition", help="as the per-condition tables name it: 'diamond 15 GPa 1000 K'")
    parser.add_argument("--size", type=int, required=True, help="N of the models")
    args = parser.parse_args()
    print(table(args.folder, args.condition, args.size, load_calculator))


if __name__ == "__main__":
    main()
