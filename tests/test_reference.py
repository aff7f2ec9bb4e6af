"""The reference oracle (LAMMPS potentials standing in for DFT) and the oracle factory.

Forces and stress are checked against central finite differences of the energy, frames against
rotations and lattice-basis changes, and the phase ordering of each system against its documented
enthalpy crossings.
"""

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.calculator import PropertyNotImplementedError
from ase.filters import FrechetCellFilter
from ase.optimize import BFGS
from ase.units import GPa
from scipy.spatial.transform import Rotation

from dael.calculators.lammps import import_lammps
from dael.calculators.reference import ReferenceCalculator, reference_calculator
from dael.calculators.registry import make_calculator

from conftest import skewed


@pytest.fixture(scope="module", autouse=True)
def _lammps() -> None:
    try:
        import_lammps()
    except ImportError as exc:  # pragma: no cover
        pytest.skip(f"LAMMPS unavailable: {exc}")


@pytest.fixture(scope="module")
def calcs() -> dict[str, ReferenceCalculator]:
    """One calculator per system, shared by the tests (as a run would share them)."""
    return {name: ReferenceCalculator(system=name) for name in ("Si", "C", "NaCl")}


def graphite(a: float = 2.46, c: float = 6.7) -> Atoms:
    """AB-stacked graphite, 4 atoms."""
    cell = [[a, 0, 0], [-a / 2, a * np.sqrt(3) / 2, 0], [0, 0, c]]
    frac = [[0, 0, 0.25], [1 / 3, 2 / 3, 0.25], [0, 0, 0.75], [2 / 3, 1 / 3, 0.75]]
    return Atoms("C4", scaled_positions=frac, cell=cell, pbc=True)


def beta_tin(a: float = 4.8, c: float = 2.65) -> Atoms:
    """Si in the beta-tin structure (conventional body-centred tetragonal cell, 4 atoms)."""
    frac = [(0, 0, 0), (0.5, 0.5, 0.5), (0, 0.5, 0.25), (0.5, 0, 0.75)]
    return Atoms("Si4", scaled_positions=frac, cell=np.diag([a, a, c]), pbc=True)


def structures(rng: np.random.Generator) -> dict[str, Atoms]:
    s = {
        "Si diamond": bulk("Si", "diamond", a=5.43, cubic=True),
        "C diamond": bulk("C", "diamond", a=3.567, cubic=True),
        "C graphite": graphite() * (1, 1, 2),
        "NaCl rocksalt": bulk("NaCl", "rocksalt", a=5.64, cubic=True),
    }
    for k, atoms in s.items():
        atoms.rattle(0.04, seed=len(k))
    s["Si skewed"] = skewed(bulk("Si", "diamond", a=5.43, cubic=True), rng, strain=0.12, rattle=0.05)
    s["NaCl skewed"] = skewed(bulk("NaCl", "rocksalt", a=5.64, cubic=True), rng, strain=0.12, rattle=0.05)
    s["C skewed"] = skewed(bulk("C", "diamond", a=3.567, cubic=True), rng, strain=0.06, rattle=0.03)
    return s


NAMES = ["Si diamond", "C diamond", "C graphite", "NaCl rocksalt", "Si skewed", "NaCl skewed", "C skewed"]


def with_calc(atoms: Atoms, calcs: dict[str, ReferenceCalculator]) -> Atoms:
    system = "NaCl" if "Na" in atoms.symbols else atoms.get_chemical_symbols()[0]
    atoms.calc = calcs[system]
    return atoms


def energy(atoms: Atoms, calc: ReferenceCalculator) -> float:
    a = atoms.copy()
    a.calc = calc
    return a.get_potential_energy()


@pytest.mark.parametrize("name", NAMES)
def test_forces_are_minus_energy_gradient(name: str, rng: np.random.Generator, calcs) -> None:
    atoms = with_calc(structures(rng)[name], calcs)
    forces = atoms.get_forces()
    assert np.abs(forces).max() > 0.05, "rattled structure should have forces"
    h = 1e-4
    for i in (0, 1, len(atoms) - 1):
        for k in range(3):
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions[i, k] += h
            minus.positions[i, k] -= h
            fd = -(energy(plus, atoms.calc) - energy(minus, atoms.calc)) / (2 * h)
            assert forces[i, k] == pytest.approx(fd, abs=1e-4), (name, i, k)


@pytest.mark.parametrize("name", NAMES)
def test_stress_is_strain_derivative(name: str, rng: np.random.Generator, calcs) -> None:
    """ASE convention: stress = (1/V) dE/d(strain); deformation F = 1 + h e_ij, atoms scaled along."""
    atoms = with_calc(structures(rng)[name], calcs)
    stress = atoms.get_stress(voigt=False)
    volume, h = atoms.get_volume(), 1e-5
    fd = np.zeros((3, 3))
    for i in range(3):
        for j in range(3):
            e = []
            for sign in (1, -1):
                deform = np.eye(3)
                deform[i, j] += sign * h
                strained = atoms.copy()
                strained.set_cell(atoms.cell.array @ deform.T, scale_atoms=True)
                e.append(energy(strained, atoms.calc))
            fd[i, j] = (e[0] - e[1]) / (2 * h) / volume
    np.testing.assert_allclose(stress, fd, rtol=0, atol=5e-6)  # eV/Å^3 (5e-6 eV/Å^3 = 0.8 MPa)
    np.testing.assert_allclose(stress, stress.T, atol=1e-10)


@pytest.mark.parametrize("system", ["Si", "C", "NaCl"])
def test_compressed_cell_has_negative_stress(system: str, calcs) -> None:
    lattice = {"Si": ("diamond", 5.2), "C": ("diamond", 3.4), "NaCl": ("rocksalt", 5.2)}[system]
    atoms = bulk(system, lattice[0], a=lattice[1], cubic=True)
    atoms.calc = calcs[system]
    assert np.all(atoms.get_stress()[:3] < 0)  # compressed: positive pressure, negative ASE stress


@pytest.mark.parametrize("name", ["Si skewed", "NaCl skewed", "C skewed"])
def test_frames_rotation_and_lattice_basis(name: str, rng: np.random.Generator, calcs) -> None:
    atoms = with_calc(structures(rng)[name], calcs)
    e0, f0, s0 = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress(voigt=False)
    rot = Rotation.random(random_state=11).as_matrix()
    turned = atoms.copy()
    turned.set_cell(atoms.cell.array @ rot.T)
    turned.positions = atoms.positions @ rot.T
    turned.calc = atoms.calc
    assert turned.get_potential_energy() == pytest.approx(e0, abs=1e-7)
    np.testing.assert_allclose(turned.get_forces(), f0 @ rot.T, atol=1e-6)
    np.testing.assert_allclose(turned.get_stress(voigt=False), rot @ s0 @ rot.T, atol=1e-8)
    # the same crystal described by a strongly sheared, left-handed basis, atoms moved by lattice vectors
    a, b, c = atoms.cell.array
    other = atoms.copy()
    other.set_cell([b + 3 * a, a, c - 2 * b + a], scale_atoms=False)
    other.positions += rng.integers(-2, 3, (len(atoms), 3)) @ atoms.cell.array
    other.calc = atoms.calc
    assert other.get_potential_energy() == pytest.approx(e0, abs=1e-7)
    np.testing.assert_allclose(other.get_forces(), f0, atol=1e-6)
    np.testing.assert_allclose(other.get_stress(voigt=False), s0, atol=1e-8)


def test_supercell_is_extensive(calcs) -> None:
    for atoms in (bulk("Si", "diamond", a=5.43), bulk("NaCl", "rocksalt", a=5.64), graphite()):
        atoms.rattle(0.03, seed=3)
        big = atoms * (2, 2, 2)
        with_calc(atoms, calcs), with_calc(big, calcs)
        assert big.get_potential_energy() == pytest.approx(8 * atoms.get_potential_energy(), abs=1e-6)
        np.testing.assert_allclose(big.get_forces()[: len(atoms)], atoms.get_forces(), atol=1e-6)
        np.testing.assert_allclose(big.get_stress(), atoms.get_stress(), atol=1e-8)


def test_energies_per_atom_are_sane(si64: Atoms, nacl64: Atoms, calcs) -> None:
    """Known cohesive scales: Si about -5.4, C about -7.4, NaCl about -4.0 eV/atom."""
    diamond = bulk("C", "diamond", a=3.567, cubic=True) * (2, 2, 2)
    cases = [(si64, -5.6, -5.2), (diamond, -7.6, -7.2), (graphite(), -7.6, -7.2), (nacl64, -4.2, -3.8)]
    for atoms, lo, hi in cases:
        with_calc(atoms, calcs)
        assert lo < atoms.get_potential_energy() / len(atoms) < hi
        assert np.abs(atoms.get_forces()).max() < 1e-6  # perfect crystals: forces vanish by symmetry
        assert np.isfinite(atoms.get_stress()).all()
    assert set(calcs["Si"].implemented_properties) == {"energy", "free_energy", "forces", "stress"}
    assert si64.get_potential_energy(force_consistent=True) == si64.get_potential_energy()


def relaxed_enthalpy(atoms: Atoms, calc: ReferenceCalculator, pressure_gpa: float) -> float:
    """Enthalpy per atom (eV) after relaxing positions and cell at the given pressure."""
    atoms = atoms.copy()
    atoms.calc = calc
    BFGS(FrechetCellFilter(atoms, scalar_pressure=pressure_gpa * GPa), logfile=None).run(fmax=1e-4, steps=300)
    return (atoms.get_potential_energy() + pressure_gpa * GPa * atoms.get_volume()) / len(atoms)


def test_nacl_b1_to_b2_transition(calcs) -> None:
    """Rocksalt below CsCl up to the crossing at 19.0 GPa, above it beyond (experiment about 30 GPa)."""
    b1, b2 = bulk("NaCl", "rocksalt", a=5.64), bulk("NaCl", "cesiumchloride", a=3.4)
    calc = calcs["NaCl"]
    dh = {p: relaxed_enthalpy(b2, calc, p) - relaxed_enthalpy(b1, calc, p) for p in (0, 16, 22, 30)}
    assert dh[0] > 0.1 and dh[16] > 0 and dh[22] < 0 and dh[30] < 0, dh


def test_si_diamond_to_beta_tin_transition(calcs) -> None:
    """Diamond below beta-tin up to the crossing at 6.0 GPa, beta-tin below from there on."""
    diamond = bulk("Si", "diamond", a=5.45)
    calc = calcs["Si"]
    dh = {
        p: relaxed_enthalpy(beta_tin(), calc, p) - relaxed_enthalpy(diamond, calc, p) for p in (0, 4, 8, 12)
    }
    assert dh[0] > 0.1 and dh[4] > 0 and dh[8] < 0 and dh[12] < 0, dh


def test_carbon_graphite_below_diamond_at_zero_pressure(calcs) -> None:
    """Graphite is the ground state at 0 GPa (interlayer binding included); diamond wins by 4 GPa."""
    diamond = bulk("C", "diamond", a=3.567)
    calc = calcs["C"]
    dh = {p: relaxed_enthalpy(diamond, calc, p) - relaxed_enthalpy(graphite(), calc, p) for p in (0, 4)}
    assert 0.01 < dh[0] < 0.08 and dh[4] < 0, dh
    layers_apart = graphite(c=20.0)
    layers_apart.calc = calcs["C"]
    stacked = graphite()
    stacked.calc = calcs["C"]
    binding = (layers_apart.get_potential_energy() - stacked.get_potential_energy()) / len(stacked)
    assert 0.02 < binding < 0.1  # interlayer binding, eV/atom (experiment about 0.05)


@pytest.mark.parametrize("system", ["Si", "C"])
def test_open_boundaries_equal_large_vacuum_box(system: str, calcs) -> None:
    crystal = bulk(system, "diamond", a={"Si": 5.43, "C": 3.567}[system], cubic=True) * (2, 2, 2)
    crystal.rattle(0.05, seed=5)
    cases = {"cluster": (crystal[:20], (False, False, False)), "slab": (crystal, (True, True, False))}
    for label, (atoms, pbc) in cases.items():
        open_ = atoms.copy()
        open_.pbc = pbc
        open_.calc = calcs[system]
        boxed = atoms.copy()
        cell = boxed.cell.array.copy()
        cell[2] = [0, 0, 60.0]
        if label == "cluster":
            cell = np.diag([60.0, 61.0, 62.0])
        boxed.set_cell(cell)
        boxed.pbc = True
        boxed.calc = calcs[system]
        assert open_.get_potential_energy() == pytest.approx(boxed.get_potential_energy(), abs=1e-6), label
        np.testing.assert_allclose(open_.get_forces(), boxed.get_forces(), atol=1e-6)
        with pytest.raises(PropertyNotImplementedError):
            open_.get_stress()


def test_calculator_reuse_equals_fresh_calculator(calcs) -> None:
    """One LAMMPS instance serves structures of different sizes, cells and compositions."""
    shared = make_calculator("reference")
    seq = [
        bulk("Si", "diamond", a=5.43, cubic=True),
        bulk("Si", "diamond", a=5.5) * (2, 1, 1),
        bulk("NaCl", "rocksalt", a=5.6),
        bulk("NaCl", "rocksalt", a=5.7, cubic=True),
        bulk("Si", "diamond", a=5.43, cubic=True),
    ]
    for k, atoms in enumerate(seq):
        atoms.rattle(0.05, seed=k)
        atoms.calc = shared
        e, f = atoms.get_potential_energy(), atoms.get_forces()
        fresh = atoms.copy()
        fresh.calc = reference_calculator(atoms)
        assert e == pytest.approx(fresh.get_potential_energy(), abs=1e-9)
        np.testing.assert_allclose(f, fresh.get_forces(), atol=1e-9)
        fresh.calc.close()
    assert shared.system == "Si"
    copy = pickle.loads(pickle.dumps(shared))  # picklable; the copy starts its own LAMMPS
    clone = seq[-1].copy()
    clone.calc = copy
    assert clone.get_potential_energy() == pytest.approx(seq[-1].get_potential_energy(), abs=1e-9)


def test_reference_calculator_selection() -> None:
    assert reference_calculator("Si").system == "Si"
    assert reference_calculator(["C", "C"]).system == "C"
    assert reference_calculator([11, 17]).system == "NaCl"
    assert reference_calculator("Na4Cl4").system == "NaCl"
    assert "SNAP" in reference_calculator(bulk("Si")).potential
    for bad in ("Fe", ["Si", "C"], "NaClK", Atoms()):
        with pytest.raises(ValueError, match="supported element sets"):
            reference_calculator(bad)
    with pytest.raises(ValueError, match="Fe"):
        reference_calculator(bulk("Fe"))


def test_errors_for_bad_structures(calcs) -> None:
    slab = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    slab.pbc = (True, True, False)
    slab.calc = calcs["NaCl"]
    with pytest.raises(ValueError, match="3-D periodic"):
        slab.get_potential_energy()
    charged = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    del charged[0]
    charged.calc = calcs["NaCl"]
    with pytest.raises(ValueError, match="charge neutral"):
        charged.get_potential_energy()
    wrong = bulk("Si", "diamond", a=5.43)
    wrong.calc = calcs["C"]
    with pytest.raises(ValueError, match="for C"):
        wrong.get_potential_energy()
    collapsed = bulk("C", "diamond", a=3.567, cubic=True)
    collapsed.positions[1] = collapsed.positions[0]
    collapsed.calc = calcs["C"]
    with pytest.raises(RuntimeError, match="non-finite"):
        collapsed.get_potential_energy()
    fine = bulk("C", "diamond", a=3.567, cubic=True)
    fine.calc = calcs["C"]
    assert np.isfinite(fine.get_potential_energy())  # the calculator survives the error


def test_make_calculator() -> None:
    assert isinstance(make_calculator("reference"), ReferenceCalculator)
    assert make_calculator("reference", system="NaCl").system == "NaCl"
    emt = make_calculator("ase:ase.calculators.emt:EMT")
    atoms = bulk("Cu", "fcc", a=3.6)
    atoms.calc = emt
    assert np.isfinite(atoms.get_potential_energy())
    for name, match in [
        ("nope", "unknown calculator"),
        ("vasp", "needs the command"),
        ("qe", "needs the command"),
        ("ase:no_such_module_xyz:Calc", "cannot import"),
        ("ase:ase.calculators.emt:Nope", "no attribute"),
        ("ase:numpy:ndarray", "not an ASE calculator"),
        ("ase:emt", "expected the form"),
    ]:
        with pytest.raises(ValueError, match=match):
            make_calculator(name)
    with pytest.raises(ValueError, match="unknown reference system"):
        make_calculator("reference", system="Fe")
    with pytest.raises(ValueError, match="takes no parameter 'xc'; it takes: system"):
        make_calculator("reference", xc="PBE")


def test_works_without_ld_library_path() -> None:
    """A fresh interpreter with no LD_LIBRARY_PATH finds mpich's libmpi by itself."""
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    env["OMP_NUM_THREADS"] = "1"
    code = (
        "from ase.build import bulk; from dael.calculators.reference import reference_calculator as r; "
        "a = bulk('NaCl', 'rocksalt', a=5.64); a.calc = r(a); print(a.get_potential_energy())"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout.split()[-1]) == pytest.approx(-8.05, abs=0.05)


def test_one_registry_for_drivers_oracles_and_models(tmp_path) -> None:
    """Every role (explore --driver, label --oracle, distill --teacher, campaign.yaml) parses names in
    dael.calculators.registry: the same name gives the same calculator or the same error everywhere."""
    from dael.calculators.registry import check_calculator

    check_calculator("reference", system="Si")
    check_calculator(" Reference ")
    for name, match in [("allegro:", "unknown calculator"), (f"allegro:{tmp_path}/none", "does not exist"),
                        ("ase:emt", "expected the form")]:
        with pytest.raises(ValueError, match=match):
            check_calculator(name)
    with pytest.raises(ValueError, match="takes no parameters"):
        check_calculator(f"allegro:{tmp_path}", compile=True)
    with pytest.raises(ValueError, match="takes no parameter 'xc'; it takes: system"):
        check_calculator("reference", xc="PBE")
