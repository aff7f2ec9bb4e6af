"""The seed phases of a campaign on the user's own material, from structure files (`dael init --structures`;
dael.campaign.config.Campaign.from_structures), and the MD driver that covers their elements.

A file gives one phase: its last frame, or frame N with FILE@N (ASE's index). The phase is named by
atoms.info['phase'], else the file's stem; names must be unique. A molecule (no periodic axis, no cell) is boxed
in `vacuum` Å on every side.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ase import Atoms
from ase.data import chemical_symbols

from dael.calculators.registry import NAMES
from dael.data.structures import read_structures
from dael.explore.conditions import boxed_phases
from dael.util.periodicity import VACUUM

__all__ = ["FOUNDATION_ELEMENTS", "TEMPERATURES", "default_driver", "formula", "read_seeds"]

FOUNDATION_ELEMENTS = {"chgnet": 94}
"""The default MD driver of a campaign and the heaviest element it covers (CHGNet 0.3 is trained on the
Materials Project's trajectories, H to Pu)."""
TEMPERATURES = [300.0, 1000.0]
"""Default temperatures (K) of a campaign on the user's structures: near equilibrium and hot."""



def _path_and_index(spec: str) -> tuple[Path, str]:
    """'FILE' (last frame) or 'FILE@N' (frame N, ASE's index syntax)."""
    head, at, tail = str(spec).rpartition("@")
    if at and tail.lstrip("-").isdigit():
        return Path(head), tail
    return Path(spec), "-1"


def read_seeds(files: Sequence[str | os.PathLike], vacuum: float = VACUUM) -> tuple[dict[str, Atoms], list[str]]:
    """The seed phases of `files` by name, and notes on what was done to them (molecules boxed). One ValueError
    names a file that is missing, empty or unreadable, or a phase name given twice."""
    seeds: dict[str, Atoms] = {}
    origin: dict[str, str] = {}
    if not files:
        raise ValueError("--structures needs at least one structure file")
    for spec in files:
        path, index = _path_and_index(str(spec))
        atoms = read_structures(path, index)[-1].copy()
        atoms.calc = None
        name = str(atoms.info.get("phase") or path.stem)
        if name in seeds:
            raise ValueError(f"phase name {name!r} is given twice ({origin[name]} and {spec}): set atoms.info['phase'] "
                             "in one of them or rename a file")
        if len(atoms) == 0:
            raise ValueError(f"{spec}: the structure holds no atoms")
        atoms.info["phase"] = name
        seeds[name], origin[name] = atoms, str(spec)
    return boxed_phases(seeds, vacuum)


def default_driver(seeds: dict[str, Atoms]) -> str:
    """The foundation model that covers every element of the seeds (FOUNDATION_ELEMENTS); one ValueError naming
    the elements when none does."""
    heaviest = max(int(z) for atoms in seeds.values() for z in atoms.numbers)
    for name, last in FOUNDATION_ELEMENTS.items():
        if heaviest <= last:
            return name
    raise ValueError(f"no default MD driver covers {chemical_symbols[heaviest]}: give --driver (a model file as "
                     f"allegro:PATH, or ase:module:Class; names: {NAMES})")


def formula(seeds: dict[str, Atoms]) -> str:
    """The seeds' empirical formulas, distinct, joined by '-' (the default name of the material)."""
    formulas = list(dict.fromkeys(a.get_chemical_formula(empirical=True) for a in seeds.values()))
    return "-".join(formulas)
