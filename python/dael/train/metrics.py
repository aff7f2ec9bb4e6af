"""Labelled structures and the errors of models on them.

`load_structures` reads labelled structures (a dael dataset's labelled rows, any file ASE reads, or Atoms with
results) as clean copies carrying only the reference energy, forces and stress; `MeanBaseline` is the constant
model every error is compared with; `evaluate` gives the MAE and RMSE of a model per quantity, `evaluate_sets`
the same for overlapping named sets, each structure predicted once.

Units: Å, eV, eV/Å, eV/Å³ (ASE's stress sign); errors in meV/atom, meV/Å and meV/Å³.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.singlepoint import SinglePointCalculator
from ase.stress import full_3x3_to_voigt_6_stress

from dael.calculators.deploy import load_calculator, with_calculator
from dael.data.structures import read_structures

__all__ = ["Dataset", "MeanBaseline", "evaluate", "evaluate_sets", "load_structures", "per_type_energies",
           "reference_results", "structure_errors"]

Dataset = str | Path | Sequence[Atoms]


def _labelled(atoms: Atoms, where: str) -> Atoms:
    """A clean copy carrying only the reference energy (eV), forces (eV/Å) and stress (eV/Å³ Voigt, NaN if the
    structure has none) in a SinglePointCalculator; ValueError when energy or forces are missing."""
    results = dict(atoms.calc.results) if atoms.calc is not None else {}
    for key in ("energy", "forces"):
        if results.get(key) is None:
            raise ValueError(f"{where} has no reference {key}: label the structures before training")
    stress = results.get("stress")
    if stress is None or not atoms.pbc.all():
        stress = np.full(6, np.nan)
    stress = np.asarray(stress, dtype=float)
    if stress.shape == (3, 3):
        stress = full_3x3_to_voigt_6_stress(stress)
    clean = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    clean.calc = SinglePointCalculator(clean, energy=float(results["energy"]),
                                       forces=np.asarray(results["forces"], dtype=float), stress=stress)
    return clean


def load_structures(source: Dataset, sources: Sequence[str] | None = None) -> list[Atoms]:
    """Labelled structures of a dael dataset (its labelled rows of `sources`; None: all but 'test'), of any
    file ASE reads (extxyz, ASE db, ...; every frame) or of a sequence of Atoms with results attached;
    clean copies (see `_labelled`). The files go through `dael.data.structures.read_structures`."""
    if isinstance(source, str | Path):
        structures, name = read_structures(source, sources=sources), str(source)
    else:
        structures, name = list(source), "the dataset"
        if not structures:
            raise ValueError(f"{name} holds no structures")
    return [_labelled(a, f"structure {k} of {name}") for k, a in enumerate(structures)]


def reference_results(atoms: Atoms) -> tuple[float, np.ndarray, np.ndarray]:
    """(energy eV, forces eV/Å (n, 3), stress eV/Å³ (6,), NaN if none) of a structure from `load_structures`."""
    r = atoms.calc.results
    return r["energy"], r["forces"], r["stress"]


def per_type_energies(structures: Sequence[Atoms], energies: np.ndarray, types: Sequence[str]) -> np.ndarray:
    """Per-type energies e (eV/atom, shape (len(types),)) minimising Σ_k (energies_k − Σ_t n_kt e_t)²
    (minimum-norm when compositions do not tell the types apart); the per-atom mean for one type."""
    counts = np.array([[np.count_nonzero(np.array(a.get_chemical_symbols()) == t) for t in types]
                       for a in structures], dtype=float)
    return np.linalg.lstsq(counts, np.asarray(energies, dtype=float), rcond=None)[0]


class MeanBaseline(Calculator):
    """The constant baseline: energy Σ_atoms e_type (per-type least-squares energies of `structures`; the mean
    energy per atom for one element), zero forces, the mean stress of `structures`."""

    implemented_properties = ["energy", "forces", "stress"]

    def __init__(self, structures: Sequence[Atoms]) -> None:
        super().__init__()
        labelled = [_labelled(a, f"structure {k}") for k, a in enumerate(structures)]
        self.types = sorted({s for a in labelled for s in a.get_chemical_symbols()})
        energies = np.array([reference_results(a)[0] for a in labelled])
        self.per_type = dict(zip(self.types, per_type_energies(labelled, energies, self.types), strict=True))
        stresses = np.array([reference_results(a)[2] for a in labelled])
        finite = np.isfinite(stresses).all(axis=1)
        self.stress = stresses[finite].mean(axis=0) if finite.any() else np.zeros(6)

    def calculate(self, atoms: Atoms | None = None, properties: Sequence[str] = ("energy",),
                  system_changes: Sequence[str] = all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        energy = sum(self.per_type.get(sym, 0.0) for sym in self.atoms.get_chemical_symbols())
        self.results = {"energy": float(energy), "forces": np.zeros((len(self.atoms), 3)),
                        "stress": self.stress.copy()}


Errors = tuple[float, np.ndarray, np.ndarray | None]
"""One structure's errors: energy per atom (eV/atom), force components (eV/Å), Voigt stress (eV/Å³; None when
the structure has no reference stress)."""


def structure_errors(atoms: Atoms, calc: Calculator) -> Errors:
    """The calculator's errors on one structure from `load_structures`."""
    energy, forces, stress = reference_results(atoms)
    probe = with_calculator(atoms, calc)
    de = (probe.get_potential_energy() - energy) / len(atoms)
    df = (probe.get_forces() - forces).ravel()
    ds = probe.get_stress(voigt=True) - stress if np.isfinite(stress).all() else None
    return de, df, ds


def _summary(labelled: Sequence[Atoms], errors: Sequence[Errors]) -> dict[str, Any]:
    """Counts and MAE / RMSE (meV/atom, meV/Å, meV/Å³) of the structures' errors."""
    result: dict[str, Any] = {"structures": len(labelled), "atoms": int(sum(len(a) for a in labelled)),
                              "stress_structures": sum(e[2] is not None for e in errors)}
    for k, name in enumerate(("energy", "force", "stress")):
        parts = [np.ravel(e[k]) for e in errors if e[k] is not None]
        values = 1e3 * np.abs(np.concatenate(parts)) if parts else None
        result[f"{name}_mae"] = None if values is None else float(values.mean())
        result[f"{name}_rmse"] = None if values is None else float(np.sqrt((values**2).mean()))
    return result


def evaluate(model: Calculator | str | Path, structures: Dataset) -> dict[str, Any]:
    """Errors of a calculator (or of a model directory / package / checkpoint) on labelled structures.

    Returns counts and MAE / RMSE of the energy per atom (energy_*, meV/atom), of all force components
    (force_*, meV/Å) and of the six Voigt stress components of structures with a reference stress
    (stress_*, meV/Å³; None when there are none).
    """
    calc = load_calculator(model) if isinstance(model, str | Path) else model
    labelled = load_structures(structures)
    return _summary(labelled, [structure_errors(atoms, calc) for atoms in labelled])


def evaluate_sets(model: Calculator | str | Path, sets: dict[str, Sequence[Atoms]]) -> dict[str, dict[str, Any]]:
    """`evaluate` of each named set of labelled Atoms, every structure (the same object) predicted once: the
    benchmark's evaluation sets share their structures (the test set and its parts by kind and condition,
    the union holdout and its parts), so a model is evaluated on the union, not once per set."""
    calc = load_calculator(model) if isinstance(model, str | Path) else model
    seen: dict[int, tuple[Atoms, Errors]] = {}

    def one(atoms: Atoms, where: str) -> tuple[Atoms, Errors]:
        if id(atoms) not in seen:  # the sets hold every structure alive, so ids stay unique during the call
            clean = _labelled(atoms, where)
            seen[id(atoms)] = clean, structure_errors(clean, calc)
        return seen[id(atoms)]

    result = {}
    for name, structures in sets.items():
        if not structures:
            raise ValueError(f"the evaluation set {name!r} holds no structures")
        pairs = [one(atoms, f"structure {k} of {name}") for k, atoms in enumerate(structures)]
        result[name] = _summary([p[0] for p in pairs], [p[1] for p in pairs])
    return result
