"""The energy window on exploration candidates (docs/method.md §5).

A snapshot's excess energy is its driver energy per atom above the relaxed phase it started from (at the
same pressure), less the potential energy a harmonic crystal holds at the MD temperature, (3/2)·k_B·T:

    excess = E_driver/n − E_relaxed/n − (3/2)·k_B·T        (eV/atom)

Plain MD stays within ~0.05 eV/atom of 0 (measured with the reference oracle: Si, NaCl and C, 8-atom cells,
300–3000 K); the paper-scaled global bias (k = 2 eV) on an empty dataset ran at +0.84 eV/atom (Si, 300 K).
Snapshots with excess > `window` are dropped and counted. The default, 0.5 eV/atom, is about the latent heat
of melting of Si (0.52 eV/atom): melts pass, states no thermal run of the phase reaches do not.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms, units

WINDOW = 0.5
"""Default energy window, eV/atom above the thermal expectation."""


def excess_energy(atoms: Atoms) -> float:
    """Excess energy (eV/atom) of an explorer snapshot (needs info driver_energy, relaxed_energy,
    temperature_K); NaN when one is missing."""
    info = atoms.info
    try:
        return float(info["driver_energy"]) - float(info["relaxed_energy"]) - 1.5 * units.kB * float(
            info["temperature_K"])
    except (KeyError, TypeError, ValueError):
        return float("nan")


def in_window(structures: Sequence[Atoms], window: float | None = WINDOW) -> np.ndarray:
    """Mask of the structures inside the window (all of them when window is None). A snapshot without the
    energies (not from the explorer) counts as inside."""
    if window is None:
        return np.ones(len(structures), dtype=bool)
    excess = np.array([excess_energy(a) for a in structures])
    return ~(excess > window)
