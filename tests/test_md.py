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


class TripAt(Guard):
    """A guard that fails its checks at the given steps (counted in checks of 10 steps), `times` times each."""

    def __init__(self, steps, times=1):
        super().__init__()
        self.steps, self.times, self.checked, self.resumed = set(steps), times, [], 0
        self._step, self._tripped = 0, {}

    def check(self, atoms):
        self.checked.append(atoms.get_positions())
        self._step += 10
        if self._step in self.steps and self._tripped.get(self._step, 0) < self.times:
            self._tripped[self._step] = self._tripped.get(self._step, 0) + 1
            return "test trip"
        return None

    def resume(self):
        super().resume()
        self._step -= 10  # back to the last sane check
        self.resumed += 1


def test_a_guard_stop_halves_the_bias_and_goes_on_from_the_last_sane_state():
    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    calc = LocalEntropyBias(driver(), k=1.0)
    guard = TripAt([20])
    traj = run_md(atoms, driver(), calc, MDSettings(temperature=300, steps=40, snapshots=4, relax_steps=0, seed=1,
                                                    guard=guard))
    assert traj.status == "ok" and traj.halved == ["step 20: test trip"] and calc.k == 0.5
    assert [s.info["step"] for s in traj.snapshots] == [10, 20, 30, 40]
    assert [s.info["bias_factor"] for s in traj.snapshots] == [1.0, 0.5, 0.5, 0.5]
    # checks at 10, 20 (tripped), 20 again from step 10's state, 30, 40; the rerun starts where step 10 ended
    assert len(guard.checked) == 5 and guard.resumed == 1
    np.testing.assert_array_equal(traj.snapshots[0].positions, guard.checked[0])
    assert not np.allclose(guard.checked[2], guard.checked[1])  # the rerun with k / 2 took another path


def test_a_guard_stop_ends_the_run_after_its_backoffs_or_at_once_without_a_bias():
    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    calc = LocalEntropyBias(driver(), k=1.0)
    traj = run_md(atoms, driver(), calc, MDSettings(temperature=300, steps=40, snapshots=4, relax_steps=0, seed=1,
                                                    guard=TripAt([20], times=3)))
    assert traj.status == "stopped at step 20: test trip (bias halved 2×)" and calc.k == 0.25
    assert len(traj.halved) == 2 and [s.info["step"] for s in traj.snapshots] == [10]
    never = run_md(atoms, driver(), LocalEntropyBias(driver(), k=1.0),
                   MDSettings(temperature=300, steps=40, snapshots=4, relax_steps=0, backoff=0, guard=TripAt([20])))
    assert never.status == "stopped at step 20: test trip" and never.halved == []
    plain = run_md(atoms, driver(), driver(), MDSettings(temperature=300, steps=40, snapshots=4, relax_steps=0,
                                                         guard=TripAt([20])))
    assert plain.status == "stopped at step 20: test trip" and plain.halved == []
    with pytest.raises(ValueError, match="backoff"):
        MDSettings(backoff=-1)


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
