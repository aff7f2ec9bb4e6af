"""One oracle call: the results it must return, the folder it works in, the versions that made it.

An oracle that runs a program through files (VASP, Quantum ESPRESSO, any ASE FileIOCalculator) or writes a
log (GPAW) works in a folder of its own per structure, `<root>/<structure hash>/` (the hash of
:func:`dael.data.dataset.structure_hash`, the row's `hash`): its inputs, outputs and log beside
`structure.extxyz`, the structure as sent. ``keep='failed'`` (default) deletes the folder after a success and
keeps it after a failure, whose error names it; ``keep='all'`` keeps every folder. A structure computed again (a
retry, or Dask recomputing after a lost worker) works in the same folder.

Each result carries ``versions`` (:func:`dael.util.provenance.versions`, with the oracle code's version where it
reports one), computed where the oracle ran.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import BaseCalculator, FileIOCalculator, PropertyNotImplementedError
from ase.calculators.espresso import Espresso
from ase.calculators.genericfileio import GenericFileIOCalculator
from ase.calculators.vasp import Vasp
from ase.io import write

from dael.data.dataset import structure_hash
from dael.util.provenance import distribution_version, versions

__all__ = ["IN_PLACE", "KEEP", "Attempt", "BadResult", "Calculations", "attempt", "code_version", "compute", "describe",
           "works_in_folder"]

KEEP = ("failed", "all")
"""Which calculation folders stay: those of failed calculations, or all."""
STRUCTURE = "structure.extxyz"

Attempt = tuple[bool, Any, bool]
"""(ok, results dict or error message, whether a failure is final)."""


class BadResult(ValueError):
    """The oracle returned a non-finite or misshapen result."""


@dataclass(frozen=True)
class Calculations:
    """Where calculations run: `root` (None: where the oracle itself says) and which folders stay (:data:`KEEP`)."""

    root: str | None = None
    keep: str = "failed"

    def __post_init__(self) -> None:
        if self.keep not in KEEP:
            raise ValueError(f"keep must be one of {', '.join(KEEP)}; got {self.keep!r}")


IN_PLACE = Calculations()
"""Calculations where the oracle itself puts its files (no folder per structure)."""


def compute(calc: BaseCalculator, atoms: Atoms) -> dict[str, Any]:
    """One oracle call: ``energy`` and ``free_energy`` (eV), ``forces`` (N, 3) in eV/Å, and for 3-D periodic
    cells ``stress`` (6,) in eV/Å³ (Voigt, ASE sign) when the oracle has it. Raises :class:`BadResult` for
    NaN, inf or wrong shapes."""
    atoms = atoms.copy()
    atoms.calc = calc
    results: dict[str, Any] = {"energy": float(atoms.get_potential_energy()),
                               "forces": np.array(atoms.get_forces(), dtype=float)}
    results["free_energy"] = float(getattr(calc, "results", {}).get("free_energy", results["energy"]))
    if atoms.pbc.all():
        try:
            results["stress"] = np.array(atoms.get_stress(voigt=True), dtype=float)
        except (PropertyNotImplementedError, NotImplementedError):
            pass
    shapes = {"forces": (len(atoms), 3), "stress": (6,)}
    wrong = [f"{k} {np.shape(v)} (expected {shapes[k]})" for k, v in results.items()
             if k in shapes and np.shape(v) != shapes[k]]
    bad = [k for k, v in results.items() if not np.all(np.isfinite(v))]
    if wrong or bad:
        problem = f"shapes {', '.join(wrong)}" if wrong else f"non-finite {', '.join(bad)} (NaN or inf)"
        raise BadResult(f"the oracle returned {problem}; energy = {results['energy']} eV")
    return results


def describe(exc: BaseException) -> str:
    """One line, ``"Type: message"``, at most 1000 characters."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= 1000 else text[:997] + "..."


def works_in_folder(calc: BaseCalculator) -> bool:
    """Whether `calc` writes files (a program run through files, or a log) and so gets a folder per structure."""
    return isinstance(calc, FileIOCalculator | GenericFileIOCalculator | Vasp) or getattr(calc, "works_in_folder",
                                                                                          False)


def attempt(calc: BaseCalculator | None, atoms: Atoms, where: Calculations = IN_PLACE,
            broken: str | None = None) -> Attempt:
    """:func:`compute` in the structure's folder (see the module docstring), with ``versions`` added; never
    raises: a failure is (False, "Type: message" naming the folder, final: a ValueError is bad input)."""
    if calc is None:
        return False, f"the oracle could not be built: {broken}", True
    folder = None
    try:
        if where.root is not None and works_in_folder(calc):
            folder = Path(where.root) / structure_hash(atoms)
            folder.mkdir(parents=True, exist_ok=True)
            write(folder / STRUCTURE, atoms, format="extxyz")
            calc.directory = folder if isinstance(calc, GenericFileIOCalculator) else str(folder)
        results = compute(calc, atoms)
        results["versions"] = versions(code_version(calc))
    except Exception as exc:  # any oracle failure becomes a recorded outcome
        kept = f" (its files: {folder})" if folder is not None else ""
        return False, describe(exc) + kept, isinstance(exc, ValueError)
    if folder is not None and where.keep == "failed":
        _remove(folder)
    return True, results, False


def _remove(folder: Path) -> None:
    """Delete a calculation folder (what a DFT code leaves behind can be large); a file that will not go stays."""
    for path in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        try:
            path.rmdir() if path.is_dir() and not path.is_symlink() else path.unlink()
        except OSError:
            pass
    try:
        folder.rmdir()
    except OSError:
        pass


def code_version(calc: BaseCalculator) -> str | None:
    """'NAME VERSION' of the program behind `calc`: its own `code_version()` (dael's oracles), VASP's OUTCAR,
    pw.x's output, else the version of the Python package that holds its class; None when unknown."""
    own = getattr(calc, "code_version", None)
    if callable(own):
        return own()
    if isinstance(calc, Vasp):
        version = calc.read_version() if Path(calc.directory, "OUTCAR").is_file() else None
        return f"VASP {version}" if version else None
    if isinstance(calc, Espresso):
        output = Path(calc.directory) / calc.template.outputname
        found = re.search(r"Program PWSCF v\.?\s*(\S+)", output.read_text(errors="replace")[:20000]) \
            if output.is_file() else None
        return f"Quantum ESPRESSO {found.group(1)}" if found else None
    top = type(calc).__module__.split(".")[0]
    version = distribution_version(top) or getattr(sys.modules.get(top), "__version__", None)
    return f"{top} {version}" if version and top not in ("ase", "dael") else None  # ase's: in the line anyway
