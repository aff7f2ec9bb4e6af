"""Bias calculators: forces are −dE/dR and stress the finite-strain derivative / V (central differences) for
the local and global entropy terms, alone and chained; trajectories, snapshots and the blow-up guard."""

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress
from ase.calculators.lj import LennardJones

import dael
from dael.explore.md import GlobalEntropyBias, Guard, LocalEntropyBias, MDSettings, run_md
from dael.numeric.entropy import GlobalEntropy

from conftest import skewed


def driver():
    return LennardJones(sigma=2.0, epsilon=0.01, rc=5.0, smooth=True)


def systems(rng):
    return {
        "Si": skewed(bulk("Si", "diamond", a=5.43, cubic=True), rng, strain=0.04, rattle=0.12),
        "NaCl": skewed(bulk("NaCl", "rocksalt", a=5.64, cubic=True), rng, strain=0.04, rattle=0.12),
        "C": skewed(bulk("C", "diamond", a=3.57, cubic=True), rng, strain=0.04, rattle=0.08),
    }


def dataset_for(atoms, mode, rng, n=4):
    state = GlobalEntropy(mode)
    for _ in range(n):
        state.add(dael.fingerprint(skewed(atoms, rng, strain=0.02, rattle=0.1), cutoff=4.0, natx=60))
    return state


def check_derivatives(atoms, calc):
    atoms = atoms.copy()
    atoms.calc = calc
    forces, stress = atoms.get_forces(), atoms.get_stress()
    results = dict(calc.results)
    np.testing.assert_allclose(forces, calculate_numerical_forces(atoms, eps=1e-5), rtol=1e-5, atol=2e-6)
    np.testing.assert_allclose(stress, calculate_numerical_stress(atoms, eps=1e-6), rtol=1e-5, atol=2e-7)
    return results


@pytest.mark.parametrize("name", ["Si", "NaCl", "C"])
def test_local_bias_forces_and_stress(name, rng):
    atoms = systems(rng)[name]
    results = check_derivatives(atoms, LocalEntropyBias(driver(), k=1.0, cutoff=4.0))
    assert results["bias_energy"] == pytest.approx(-results["entropy"])


@pytest.mark.parametrize("mode", ["atom", "config"])
@pytest.mark.parametrize("name", ["Si", "NaCl", "C"])
def test_global_bias_forces_and_stress(name, mode, rng):
    atoms = systems(rng)[name]
    state = dataset_for(atoms, mode, rng)
    calc = GlobalEntropyBias(driver(), dataset=state, k=2.0, mode=mode, cutoff=4.0)
    results = check_derivatives(atoms, calc)
    expected = state.logdet_with(dael.fingerprint(atoms, cutoff=4.0, natx=60).of(0))[0]
    assert results["entropy"] == pytest.approx(expected, rel=1e-12)


def test_chained_biases_add_up(rng):
    atoms = systems(rng)["Si"]
    local = LocalEntropyBias(driver(), k=0.5, cutoff=4.0)
    chained = GlobalEntropyBias(local, dataset=dataset_for(atoms, "atom", rng), k=2.0, cutoff=4.0)
    results = check_derivatives(atoms, chained)
    base = atoms.copy()
    base.calc = driver()
    e_local = local.get_potential_energy(atoms)
    assert e_local == pytest.approx(base.get_potential_energy() - 0.5 * local.results["entropy"], rel=1e-12)
    assert results["energy"] == pytest.approx(e_local - 2.0 * results["entropy"], rel=1e-12)


def test_biased_md_snapshots_and_guard(rng):
    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    calc = LocalEntropyBias(driver(), k=1.0)
    md = MDSettings(temperature=300, steps=40, snapshots=4, relax_steps=5, thermalize=20, seed=1)
    traj = run_md(atoms, driver(), calc, md)
    assert traj.status == "ok" and [s.info["step"] for s in traj.snapshots] == [10, 20, 30, 40]
    random = MDSettings(temperature=300, steps=40, snapshots=4, relax_steps=0, random_snapshots=True, seed=1)
    steps = random.snapshot_steps()
    assert len(set(steps)) == 4 and steps.min() >= 1 and steps.max() <= 40
    hot = run_md(atoms, driver(), driver(), MDSettings(temperature=300, steps=40, snapshots=2, relax_steps=0,
                                                       guard=Guard(min_distance=2.3)))
    assert hot.status.startswith("stopped at step 10: atoms") and hot.snapshots == []


def test_npt_under_pressure_shrinks_the_cell():
    atoms = bulk("Si", "diamond", a=5.43, cubic=True) * (2, 2, 2)
    v0 = atoms.get_volume()
    from dael.calculators.reference import reference_calculator

    md = MDSettings(temperature=300, pressure=5.0, ensemble="npt", steps=20, snapshots=2, relax_steps=30,
                    pdamp=100.0)
    traj = run_md(atoms, reference_calculator(atoms), reference_calculator(atoms), md)
    assert traj.status == "ok" and traj.snapshots[-1].get_volume() < 0.99 * v0


def test_bad_settings():
    with pytest.raises(ValueError, match="ensemble must be"):
        MDSettings(ensemble="nve")
    with pytest.raises(ValueError, match="snapshots"):
        MDSettings(steps=5, snapshots=10)


def test_npt_at_100_gpa_compresses_carbon():
    from dael.calculators.reference import reference_calculator

    atoms = bulk("C", "diamond", a=3.57, cubic=True)
    md = MDSettings(temperature=1000, pressure=100.0, ensemble="npt", steps=30, snapshots=3, relax_steps=50,
                    pdamp=100.0)
    traj = run_md(atoms, reference_calculator(atoms), reference_calculator(atoms), md)
    assert traj.status == "ok"
    assert traj.snapshots[-1].get_volume() < 0.93 * atoms.get_volume()  # diamond C: B ≈ 440 GPa
