"""Does the MD driver's equilibrium agree with the oracle's? (the paper's regime, docs/method.md §6)

A campaign or benchmark that explores with a foundation model (or a base distilled from one) samples the
*driver's* phases: if the driver relaxes a phase to a shape the oracle does not hold at that pressure, every
pool (entropy-biased or random MD alike) lies away from the oracle's equilibrium, and a potential trained on
it misses the oracle's own phase. Measured on Si (a CHGNet-distilled base driving, the SNAP reference
labelling): the base's β-Sn has c/a 10 % below the oracle's; under the oracle its relaxed cells sit at
3–12 GPa above the target pressure with 14–28 GPa deviatoric stress (diamond: within 1 GPa; cells relaxed by
the oracle itself: within 0.6 GPa), and models fine-tuned on those pools erred by +250 meV/atom on the
oracle's β-Sn at 300 K.

The check costs nothing extra: the anchors (each phase relaxed by the driver at each pressure) are labelled
by the oracle anyway; `mismatch` reads the oracle's stress on them. Units: GPa.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms, units

__all__ = ["TOLERANCE_GPA", "describe", "mismatch"]

TOLERANCE_GPA = 2.0
"""Largest deviation (GPa) of the oracle's pressure from the target, or of its largest deviatoric stress
component, on a driver-relaxed cell that still counts as agreement (measured above: ≤ 1 GPa agreeing,
≥ 3 GPa not)."""


def mismatch(labelled: Sequence[Atoms], tolerance: float = TOLERANCE_GPA) -> list[dict]:
    """For each oracle-labelled structure tagged kind 'relaxed' (phase, pressure_GPa: an anchor relaxed by the
    driver), the oracle's pressure and largest deviatoric stress (GPa) and whether they lie within
    `tolerance` of hydrostatic equilibrium at the target pressure; sorted by phase and pressure."""
    rows = []
    for atoms in labelled:
        if atoms.info.get("kind") != "relaxed":
            continue
        sigma = atoms.get_stress(voigt=False) / units.GPa
        pressure = -float(np.trace(sigma)) / 3
        deviatoric = float(np.abs(sigma + pressure * np.eye(3)).max())
        target = float(atoms.info["pressure_GPa"])
        rows.append({"phase": str(atoms.info.get("phase", "?")), "pressure_GPa": target,
                     "oracle_pressure_GPa": pressure, "oracle_deviatoric_GPa": deviatoric,
                     "agrees": abs(pressure - target) <= tolerance and deviatoric <= tolerance})
    return sorted(rows, key=lambda r: (r["phase"], r["pressure_GPa"]))


def describe(rows: Sequence[dict], driver: str) -> str | None:
    """One sentence naming the phases and pressures where `driver`'s equilibrium is not the oracle's (None when
    every relaxed phase agrees)."""
    bad = [r for r in rows if not r["agrees"]]
    if not bad:
        return None
    cases = "; ".join(f"{r['phase']} at {r['pressure_GPa']:g} GPa: {r['oracle_pressure_GPa']:.1f} GPa, "
                      f"deviatoric {r['oracle_deviatoric_GPa']:.1f} GPa" for r in bad)
    return (f"The driver {driver} relaxes phases to cells the oracle does not hold in equilibrium ({cases} under "
            f"the oracle; tolerance {TOLERANCE_GPA:g} GPa): pools explored with it sample the driver's phase, not "
            "the oracle's, whatever the selection. Explore with a driver that agrees (in `dael run`, rounds after "
            "the first are driven by the model fine-tuned on the oracle's labels).")
