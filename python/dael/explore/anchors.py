"""Near-equilibrium anchors (docs/method.md §3, the mixed pool): each phase relaxed by the driver at each
pressure, its isotropic strains and short thermal MD, the structures a fine-tuned model must keep right."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import product
from typing import Any

import numpy as np
from ase import Atoms

from dael.calculators.registry import make_calculator
from dael.explore.conditions import check_phases
from dael.explore.explorer import driver_tags
from dael.explore.md import MDSettings, relax, run_md
from dael.util import periodicity

__all__ = ["ANCHOR_STRAINS", "anchors"]

ANCHOR_STRAINS = (0.95, 0.97, 1.03, 1.05)
ANCHOR_THERMALIZE = 100
"""Unbiased MD steps (1 fs) before a thermal anchor run's first snapshot: the run starts from the relaxed
cell, whose potential energy is still far below the thermal average for the first ~50 fs."""
ANCHOR_SPACING = 50
"""fs between two thermal anchors of one run (the explorer's 1000 steps / 10 snapshots spacing is 100 fs)."""
ANCHOR_PER_RUN = 5
"""Thermal anchors per independent run: more come from more runs (new seeds), not from a longer one."""


def anchors(phases: dict[str, Atoms], driver: str, pressures: Sequence[float],
            strains: Sequence[float] = ANCHOR_STRAINS, thermal: int = 2, temperature: float = 300.0,
            seed: int = 0, relaxed: bool = True, rattle: float = 0.0,
            driver_params: dict[str, Any] | None = None, slab_cell: str = "fixed") -> list[Atoms]:
    """Near-equilibrium structures (docs/method.md §3, the mixed pool): each phase relaxed with the driver at each
    pressure (GPa; the relaxed cell itself kept only with `relaxed`; with `rattle` > 0 a copy rattled by that
    Gaussian σ in Å, kind 'equilibrium': a probe of the equilibrium that is not the relaxed cell), its isotropic
    strains (linear factors, of the periodic axes only: a slab's in-plane cell, none of a molecule), and
    `thermal` snapshots of plain NVT MD at `temperature` K: independent runs of ANCHOR_PER_RUN snapshots each,
    ANCHOR_SPACING fs apart after ANCHOR_THERMALIZE steps of 1 fs; the driver built with `driver_params`, a slab's
    cell relaxed per `slab_cell`. Tagged phase, pressure_GPa, source='anchor', kind, driver (and driver_params)."""
    check_phases(phases, pressures, "nvt", slab_cell)
    calc = make_calculator(driver, **(driver_params or {}))
    out: list[Atoms] = []
    for n, (phase, pressure) in enumerate(product(phases, pressures)):
        tags = {"phase": phase, "pressure_GPa": float(pressure), "source": "anchor",
                **driver_tags(driver, driver_params)}
        cell = relax(phases[phase], calc, float(pressure), fmax=0.05, steps=200, slab_cell=slab_cell)
        cell.calc = None
        if relaxed:
            out.append(_tagged(cell, tags, "relaxed"))
        if rattle > 0:
            probe = _tagged(cell, tags, "equilibrium")
            probe.positions += np.random.default_rng([seed, n]).normal(0.0, rattle, probe.positions.shape)
            out.append(probe)
        for f in strains if periodicity.kind(cell) != periodicity.MOLECULE else ():
            out.append(_tagged(periodicity.scaled(cell, f), tags, f"strain {f:g}"))
        for run in range(-(-thermal // ANCHOR_PER_RUN)):
            count = min(ANCHOR_PER_RUN, thermal - run * ANCHOR_PER_RUN)
            md = MDSettings(temperature=temperature, pressure=float(pressure), steps=ANCHOR_SPACING * count,
                            snapshots=count, thermalize=ANCHOR_THERMALIZE, relax_steps=0,
                            seed=seed + n + 1000 * run, slab_cell=slab_cell)
            traj = run_md(cell, calc, calc, md)
            out += [_tagged(s, tags, "thermal") for s in traj.snapshots]
    return out


def _tagged(atoms: Atoms, tags: dict, kind: str) -> Atoms:
    atoms = atoms.copy()
    atoms.calc = None
    atoms.info.update(tags)
    atoms.info["kind"] = kind
    return atoms
