"""A fake oracle for the labelling tests, used as ``ase:oracle_helpers:FakeOracle`` (tests/ on the path).

Energy 0.005 Σ|r|² eV, forces −0.01 r eV/Å, a constant stress. What else it does comes from the
parameter ``fake`` or, taking precedence, ``atoms.info['fake']``:
'slow' (sleeps 60 s), 'slow-once' (60 s on the first call per structure, marked in the folder
``marks``), 'nan' (NaN energy), 'crash' (the process exits at once). ``delay`` (s) sleeps on every
call; ``log`` appends "<pid> <structure hash>" to a file after each finished computation.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes

from dael.data.dataset import structure_hash

FAKE = "ase:oracle_helpers:FakeOracle"
"""The fake oracle's registry name (dael.calculators.registry)."""


def fake_batch(kinds: list[str | None]) -> list[Atoms]:
    """Distinct 2-atom Si cells telling the fake oracle how to behave (atoms.info['fake'])."""
    out = []
    for i, kind in enumerate(kinds):
        atoms = bulk("Si", "diamond", a=5.43 + 0.01 * i)
        atoms.info["fake"] = kind
        out.append(atoms)
    return out


class FakeOracle(Calculator):
    implemented_properties = ["energy", "free_energy", "forces", "stress"]
    default_parameters: dict[str, Any] = {"delay": 0.0, "log": None, "fake": None, "marks": None}

    def calculate(self, atoms=None, properties=("energy",), system_changes=tuple(all_changes)) -> None:
        super().calculate(atoms, properties, system_changes)
        p = self.parameters
        behaviour = self.atoms.info.get("fake", p["fake"])
        key = structure_hash(self.atoms)
        if behaviour == "crash":
            os._exit(3)
        if behaviour == "slow" or (behaviour == "slow-once" and not (Path(p["marks"]) / key).exists()):
            if behaviour == "slow-once":
                (Path(p["marks"]) / key).touch()
            time.sleep(60)
        time.sleep(float(p["delay"]))
        r = self.atoms.positions
        energy = float("nan") if behaviour == "nan" else 0.005 * float((r**2).sum())
        self.results = {"energy": energy, "free_energy": energy, "forces": -0.01 * r,
                        "stress": np.array([0.01, 0.02, 0.03, 0.0, 0.0, 0.0])}
        if p["log"]:
            with open(p["log"], "a") as f:
                f.write(f"{os.getpid()} {key}\n")
