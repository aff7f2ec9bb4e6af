"""dael.campaign.agreement: the oracle's stress on the driver's relaxed phases: do the two agree on equilibrium?"""

import numpy as np
import pytest
from ase import units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

from dael.campaign.agreement import TOLERANCE_GPA, describe, mismatch
from dael.explore.anchors import anchors

DRIVER = "ase:ase.calculators.emt:EMT"


def labelled(atoms):
    """`atoms` with the oracle's (EMT's) energy, forces and stress stored, as a labelled dataset row."""
    atoms = atoms.copy()
    atoms.calc = EMT()
    results = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces(), "stress": atoms.get_stress()}
    atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms


def test_the_oracle_agrees_with_its_own_relaxed_phases_and_not_with_a_distorted_one():
    relaxed = [a for a in anchors({"fcc": bulk("Cu", "fcc", a=3.7, cubic=True)}, DRIVER, [0.0, 5.0], strains=(),
                                  thermal=0)]
    assert [a.info["kind"] for a in relaxed] == ["relaxed", "relaxed"]
    rows = mismatch([labelled(a) for a in relaxed])
    assert [(r["phase"], r["pressure_GPa"]) for r in rows] == [("fcc", 0.0), ("fcc", 5.0)]
    for r in rows:  # relaxed to fmax 0.05 eV/Å (atoms and cell) by FIRE: within 1 GPa of the target
        assert r["agrees"] and abs(r["oracle_pressure_GPa"] - r["pressure_GPa"]) < 1.0
        assert r["oracle_deviatoric_GPa"] < 1.0
    assert describe(rows, DRIVER) is None
    # a driver whose phase has another c/a: the oracle holds it under a large deviatoric stress
    distorted = relaxed[0].copy()
    distorted.set_cell(distorted.cell.array @ np.diag([1.0, 1.0, 1.08]), scale_atoms=True)
    row = mismatch([labelled(distorted)])[0]
    assert not row["agrees"] and row["oracle_deviatoric_GPa"] > TOLERANCE_GPA
    text = describe([row], "chgnet")
    assert "The driver chgnet relaxes phases to cells the oracle does not hold" in text and "fcc at 0 GPa" in text


def test_only_relaxed_structures_are_judged_and_hydrostatic_stress_is_read_as_pressure():
    cell = bulk("Cu", "fcc", a=3.6, cubic=True)
    stress = -6.5 * units.GPa * np.array([1, 1, 1, 0, 0, 0])  # 6.5 GPa hydrostatic (ASE: stress = −pressure)
    rows = []
    for kind in ("relaxed", "thermal"):
        a = cell.copy()
        a.info.update({"kind": kind, "phase": "fcc", "pressure_GPa": 5.0})
        a.calc = SinglePointCalculator(a, energy=0.0, forces=np.zeros((4, 3)), stress=stress)
        rows.append(a)
    (row,) = mismatch(rows)
    assert row["oracle_pressure_GPa"] == pytest.approx(6.5) and row["oracle_deviatoric_GPa"] == pytest.approx(0.0)
    assert row["agrees"]  # 1.5 GPa off the target: within the tolerance
    assert not mismatch(rows, tolerance=1.0)[0]["agrees"]
