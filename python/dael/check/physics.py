"""The physics checks of a model: does each seed phase keep its phase under the model's relaxation at each
pressure, is its equation of state smooth with one minimum, is it free of imaginary phonons?

- Phase retention: each seed, its positions rattled (σ `rattle` Å) and its cell strained (σ `strain`), relaxed
  by the model at each pressure (FIRE + FrechetCellFilter, dael.explore.md.relax); it keeps its phase when
  spglib (tolerance `symprec` Å) finds the seed's space group (or, with a reference calculator, the space group
  the reference's relaxation of the same start reaches). A perfect seed would keep its symmetry on any saddle
  point; the perturbation lets an unstable phase leave.
- Equation of state: the seed relaxed (unperturbed) at 0 GPa, its volume scaled isotropically by each of
  `eos_scales` (atoms at fixed fractional positions), the energies per atom judged by `eos_verdict`.
- Phonons: the seed relaxed (unperturbed) at each pressure, ASE's finite displacements (`phonon_delta` Å) in a
  supercell of at least `phonon_atoms` atoms (`dael.explore.stability.repeats`); the frequencies at every
  q-point commensurate with the supercell (Γ-centred grid); the lowest (imaginary ones negative), cm⁻¹, must
  not fall below `min_frequency`.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable
from itertools import product
from pathlib import Path

import numpy as np
import spglib
from ase import Atoms, units
from ase.calculators.calculator import Calculator
from ase.phonons import Phonons

from dael.check.settings import CheckSettings
from dael.explore.md import relax
from dael.explore.stability import repeats

Say = Callable[[str], None]


def space_group(atoms: Atoms, symprec: float) -> str | None:
    """'Fd-3m (227)': the international symbol and number spglib finds at tolerance `symprec` Å; None when it
    finds none (a broken cell)."""
    cell = (atoms.cell.array, atoms.get_scaled_positions(wrap=True), atoms.numbers)
    with warnings.catch_warnings():  # spglib 2.5+ warns of its own error-handling default at every call
        warnings.simplefilter("ignore", DeprecationWarning)
        data = spglib.get_symmetry_dataset(cell, symprec=symprec)
    return None if data is None else f"{data.international} ({data.number})"


def perturbed(seed: Atoms, rattle: float, strain: float, rng: np.random.Generator) -> Atoms:
    """A copy of `seed` with a random symmetric cell strain (Gaussian σ `strain`) and Gaussian displacements
    (σ `rattle` Å)."""
    atoms = seed.copy()
    e = strain * rng.standard_normal((3, 3))
    atoms.set_cell(atoms.cell.array @ (np.eye(3) + (e + e.T) / 2), scale_atoms=True)
    atoms.positions += rattle * rng.standard_normal(atoms.positions.shape)
    return atoms


def _relaxed(start: Atoms, calc: Calculator, pressure: float, s: CheckSettings) -> tuple[Atoms | None, str | None]:
    """(start relaxed at `pressure` GPa, None) or (None, why it could not be)."""
    try:
        atoms = relax(start, calc, pressure, fmax=s.relax_fmax, steps=s.relax_steps)
        energy = atoms.get_potential_energy()
    except Exception as exc:  # a model that raises fails the check
        return None, f"{type(exc).__name__}: {exc}"
    if not (np.isfinite(energy) and np.isfinite(atoms.positions).all() and np.isfinite(atoms.cell.array).all()):
        return None, "non-finite energy, positions or cell"
    return atoms, None


def phase_retention(calc: Calculator, seeds: dict[str, Atoms], pressures: list[float],
                    settings: CheckSettings | None = None, reference: Calculator | None = None,
                    say: Say | None = None) -> dict:
    """Phase retention (see the module's docstring) of every seed at every pressure (GPa). Returns passed and
    phases: per (phase, pressure) seed, expected and relaxed space groups, kept (bool) and the reason when the
    relaxation failed."""
    s = settings or CheckSettings()
    out = []
    for n, (phase, pressure) in enumerate(product(seeds, pressures)):
        start = perturbed(seeds[phase], s.rattle, s.strain, np.random.default_rng([s.seed, n]))
        seed_group = space_group(seeds[phase], s.symprec)
        expected, why = seed_group, None
        if reference is not None:
            ref, why = _relaxed(start, reference, pressure, s)
            expected = None if ref is None else space_group(ref, s.symprec)
        atoms, error = _relaxed(start, calc, pressure, s)
        relaxed = None if atoms is None else space_group(atoms, s.symprec)
        entry = {"phase": phase, "pressure_GPa": float(pressure), "seed": seed_group, "expected": expected,
                 "relaxed": relaxed, "kept": error is None and why is None and relaxed == expected}
        if error or why:
            entry["reason"] = error or f"the reference: {why}"
        out.append(entry)
        if say is not None:
            say(f"  phases {phase} {pressure:g} GPa: {relaxed or error} (expected {expected})")
    return {"passed": all(e["kept"] for e in out), "phases": out}


def eos_verdict(scales: np.ndarray, energies: np.ndarray, max_curvature_ratio: float = 5.0) -> dict:
    """Judge an equation of state: `energies` (eV/atom, shape (n,)) at increasing volume factors `scales`
    (shape (n,), evenly spaced). Smooth with one minimum means: every energy finite; exactly one local
    minimum, inside the range (not at either end); every second difference positive (convex over the range) and
    none above `max_curvature_ratio` × their median (a kink). Returns passed, minimum_scale, minima (count),
    min_second_difference and curvature_ratio (eV/atom; None where undefined) and the reason when it fails."""
    scales, energies = np.asarray(scales, dtype=float), np.asarray(energies, dtype=float)
    out: dict = {"passed": False, "minimum_scale": None, "minima": None, "min_second_difference": None,
                 "curvature_ratio": None}
    if not np.isfinite(energies).all():
        return {**out, "reason": "non-finite energy"}
    inner = energies[1:-1]
    minima = int(np.sum((inner < energies[:-2]) & (inner < energies[2:])))
    lowest = int(np.argmin(energies))
    d2 = energies[:-2] - 2 * inner + energies[2:]
    ratio = float(d2.max() / np.median(d2)) if np.median(d2) > 0 else None
    out.update(minimum_scale=float(scales[lowest]), minima=minima, min_second_difference=float(d2.min()),
               curvature_ratio=ratio)
    if lowest in (0, len(energies) - 1):
        return {**out, "reason": f"the lowest energy is at the end of the range (volume × {scales[lowest]:g})"}
    if minima != 1:
        return {**out, "reason": f"{minima} local minima"}
    if d2.min() <= 0:
        return {**out, "reason": f"not convex: second difference {d2.min():.2e} eV/atom at volume × "
                                 f"{scales[1 + int(np.argmin(d2))]:g}"}
    if ratio is None or ratio > max_curvature_ratio:
        return {**out, "reason": f"a kink: second difference {d2.max():.2e} eV/atom at volume × "
                                 f"{scales[1 + int(np.argmax(d2))]:g}, {ratio:.1f}× their median"}
    return {**out, "passed": True}


def eos_energies(atoms: Atoms, calc: Calculator, scales: list[float]) -> np.ndarray:
    """Energies per atom (eV/atom) of `atoms` with its volume scaled by each factor (fixed fractional
    positions); NaN where the model raised."""
    out = []
    for f in scales:
        scaled = atoms.copy()
        scaled.set_cell(atoms.cell.array * f ** (1 / 3), scale_atoms=True)
        scaled.calc = calc
        try:
            out.append(scaled.get_potential_energy() / len(scaled))
        except Exception:  # a model that raises makes the curve non-finite: the check fails
            out.append(np.nan)
    return np.array(out, dtype=float)


def equation_of_state(calc: Calculator, seeds: dict[str, Atoms], settings: CheckSettings | None = None,
                      relaxed: dict | None = None, say: Say | None = None) -> dict:
    """The equation-of-state check of every seed relaxed at 0 GPa (`relaxed`: {(phase, 0.0): atoms} already
    relaxed with these settings, else relaxed here). Returns passed and phases: per phase eos_verdict's result,
    the scales and the energies (eV/atom)."""
    s = settings or CheckSettings()
    relaxed = relaxed if relaxed is not None else relax_all(calc, seeds, [0.0], s)
    out = []
    for phase in seeds:
        atoms = relaxed[(phase, 0.0)]
        if isinstance(atoms, str):
            out.append({"phase": phase, "passed": False, "reason": f"relaxation: {atoms}"})
            continue
        energies = eos_energies(atoms, calc, s.eos_scales)
        verdict = eos_verdict(np.array(s.eos_scales), energies, s.max_curvature_ratio)
        out.append({"phase": phase, **verdict, "scales": list(s.eos_scales),
                    "energies": [float(e) if np.isfinite(e) else None for e in energies]})
        if say is not None:
            say(f"  eos {phase}: {'smooth, one minimum' if verdict['passed'] else verdict['reason']}")
    return {"passed": all(e["passed"] for e in out), "phases": out}


def relax_all(calc: Calculator, seeds: dict[str, Atoms], pressures: list[float], settings: CheckSettings
              ) -> dict[tuple[str, float], Atoms | str]:
    """Every seed relaxed (unperturbed) at every pressure (GPa): {(phase, pressure): atoms, or why the
    relaxation failed}."""
    out: dict[tuple[str, float], Atoms | str] = {}
    for phase, pressure in product(seeds, pressures):
        atoms, error = _relaxed(seeds[phase], calc, float(pressure), settings)
        out[(phase, float(pressure))] = atoms if atoms is not None else error
    return out


def lowest_frequency(atoms: Atoms, calc: Calculator, min_atoms: int = 64, delta: float = 0.01) -> float:
    """The lowest phonon frequency (cm⁻¹; an imaginary one negative) of `atoms` at every q-point commensurate
    with its supercell of at least `min_atoms` atoms (a Γ-centred grid), from ASE's finite displacements of
    `delta` Å with the acoustic sum rule imposed."""
    n = repeats(atoms, min_atoms)
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ASE warns about the imaginary frequencies this function looks for
        phonons = Phonons(atoms, calc, supercell=tuple(int(k) for k in n), delta=delta,
                          name=str(Path(folder) / "phonon"))
        phonons.run()
        phonons.read(acoustic=True)
        grid = np.array(list(product(*(range(k) for k in n))), dtype=float) / n
        frequencies = phonons.band_structure(grid, verbose=False) / units.invcm
    return float(np.min(frequencies))


def phonon_stability(calc: Calculator, seeds: dict[str, Atoms], pressures: list[float],
                     settings: CheckSettings | None = None, reference: Calculator | None = None,
                     relaxed: dict | None = None, say: Say | None = None) -> dict:
    """The phonon check (see the module's docstring) of every seed relaxed at every pressure (`relaxed` as from
    relax_all, else relaxed here). With a `reference` calculator, a phase the reference finds unstable is
    expected to be unstable under the model too. Returns passed and phases: per (phase, pressure) the lowest
    frequency (cm⁻¹), stable, expected_stable, passed, and the reason where it could not be computed."""
    s = settings or CheckSettings()
    relaxed = relaxed if relaxed is not None else relax_all(calc, seeds, pressures, s)
    out = []
    for phase, pressure in product(seeds, map(float, pressures)):
        entry: dict = {"phase": phase, "pressure_GPa": pressure, "lowest_cm1": None, "stable": False,
                       "expected_stable": True}
        if reference is not None:
            ref, why = _relaxed(seeds[phase], reference, pressure, s)
            entry["reference_lowest_cm1"] = None if ref is None else round(
                lowest_frequency(ref, reference, s.phonon_atoms, s.phonon_delta), 3)
            entry["expected_stable"] = ref is not None and entry["reference_lowest_cm1"] >= s.min_frequency
        atoms = relaxed[(phase, pressure)]
        try:
            if isinstance(atoms, str):
                raise ValueError(f"relaxation: {atoms}")
            lowest = lowest_frequency(atoms, calc, s.phonon_atoms, s.phonon_delta)
            if not np.isfinite(lowest):
                raise ValueError("non-finite frequency")
            entry.update(lowest_cm1=round(lowest, 3), stable=lowest >= s.min_frequency)
        except Exception as exc:  # a model that raises or gives NaN fails the check
            entry["reason"] = f"{type(exc).__name__}: {exc}"
        entry["passed"] = "reason" not in entry and entry["stable"] == entry["expected_stable"]
        out.append(entry)
        if say is not None:
            say(f"  phonons {phase} {pressure:g} GPa: lowest {entry['lowest_cm1']} cm⁻¹")
    return {"passed": all(e["passed"] for e in out), "phases": out}
