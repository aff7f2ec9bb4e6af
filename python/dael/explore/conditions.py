"""What each phase's periodicity admits in the exploration (dael.util.periodicity: bulk, slab, wire, molecule).

- Bulk: relaxed under hydrostatic pressure (FIRE + FrechetCellFilter), NVT or NPT at each grid pressure.
- Slab or wire: no pressure and no NPT (a cell's stress is averaged over its vacuum, and an isotropic barostat
  closes the vacuum); NVT at 0 GPa. Its periodic cell stays as given (`slab_cell` 'fixed', the default) or is
  relaxed to zero stress along the periodic axes only ('relax'); the vacuum axis never changes.
- Molecule: no pressure, no NPT, no cell relaxation; NVT at 0 GPa. One read without a cell is boxed with
  `vacuum` Å on every side (an oracle such as GPAW needs a box; the box stays non-periodic).

Each rule broken is one ValueError that names the phase, the value and the fix, raised before any MD.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ase import Atoms, units
from ase.filters import FrechetCellFilter

from dael.util import periodicity
from dael.util.periodicity import BULK, MOLECULE

__all__ = ["SLAB_CELLS", "boxed_phases", "check_phase", "check_phases", "relaxation_target"]

SLAB_CELLS = ("fixed", "relax")
"""What happens to a slab's or wire's periodic cell in relaxations: kept as given, or relaxed to zero stress
along the periodic axes."""


def check_phase(name: str | None, atoms: Atoms, pressures: Sequence[float], ensemble: str = "nvt",
                slab_cell: str = "fixed") -> None:
    """Refuse (ValueError) exploring phase `name` (None: a structure without a phase name) at `pressures` (GPa) in
    `ensemble` with `slab_cell`, where its periodicity does not admit it (see the module docstring)."""
    if slab_cell not in SLAB_CELLS:
        raise ValueError(f"slab_cell must be one of {', '.join(SLAB_CELLS)}; got {slab_cell!r}")
    lengths = atoms.cell.lengths()
    flat = ["abc"[i] for i in range(3) if atoms.pbc[i] and lengths[i] < 1e-9]
    if flat:
        raise ValueError(f"{_named(name)} is periodic along {', '.join(flat)} but has no cell vector there: give its "
                         "cell, or set pbc False along that axis")
    what = periodicity.kind(atoms)
    if what == BULK:
        return
    described = f"{_named(name)} is {periodicity.describe(atoms)}"
    if ensemble == "npt":
        raise ValueError(f"{described}: NPT would change its cell along the vacuum; explore it "
                         "with ensemble nvt (--ensemble nvt; campaign.yaml explore.ensemble: nvt)")
    pressed = [p for p in pressures if float(p) != 0.0]
    if pressed:
        why = ("a molecule has no pressure" if what == MOLECULE else
               "its stress is averaged over the vacuum, and a pressure would act along the vacuum axis")
        raise ValueError(f"{described}: {why}; explore it at 0 GPa only (--pressure 0; "
                         f"campaign.yaml explore.pressures: [0.0]), not at {', '.join(f'{p:g}' for p in pressed)} "
                         "GPa; bulk phases at other pressures need a campaign of their own")
    if slab_cell == "relax" and what != MOLECULE:
        try:
            periodicity.cell_mask(atoms)
        except ValueError as exc:
            raise ValueError(f"{_named(name)}: slab_cell relax: {exc}; or keep slab_cell fixed") from None


def _named(name: str | None) -> str:
    return "the structure" if name is None else f"phase {name!r}"


def check_phases(phases: Mapping[str, Atoms], pressures: Sequence[float], ensemble: str = "nvt",
                 slab_cell: str = "fixed") -> None:
    """`check_phase` of every phase."""
    for name, atoms in phases.items():
        check_phase(name, atoms, pressures, ensemble, slab_cell)


def boxed_phases(phases: Mapping[str, Atoms], vacuum: float = periodicity.VACUUM) -> tuple[dict[str, Atoms],
                                                                                         list[str]]:
    """(the phases, each without a cell along a non-periodic axis boxed with `vacuum` Å on every side; one line
    per phase boxed, saying so)."""
    out, notes = {}, []
    for name, atoms in phases.items():
        box = periodicity.boxed(atoms, vacuum)
        out[name] = atoms if box is None else box
        if box is not None:
            notes.append(f"phase {name!r} is {periodicity.describe(atoms)} without a cell along its vacuum: boxed "
                         f"with {vacuum:g} Å of vacuum on each side, cell {box.cell.lengths().round(2).tolist()} Å "
                         "(--vacuum; campaign.yaml explore.vacuum)")
    return out, notes


def relaxation_target(atoms: Atoms, pressure: float, slab_cell: str = "fixed") -> Atoms | FrechetCellFilter:
    """What FIRE moves to relax `atoms` (which carries its calculator) at `pressure` GPa: a FrechetCellFilter under
    hydrostatic pressure (bulk), one masked to the periodic axes at zero stress (slab or wire, `slab_cell`
    'relax'), else the atoms themselves (positions only: a molecule, a slab with its cell fixed)."""
    check_phase(None, atoms, [pressure], "nvt", slab_cell)
    what = periodicity.kind(atoms)
    if what == BULK:
        return FrechetCellFilter(atoms, scalar_pressure=pressure * units.GPa)
    if what != MOLECULE and slab_cell == "relax":
        return FrechetCellFilter(atoms, mask=periodicity.cell_mask(atoms))
    return atoms
