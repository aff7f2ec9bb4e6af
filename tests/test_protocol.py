"""The default protocol's pieces: the size-independent (k_B·T) bias, dual covariance modes, the energy window."""

import numpy as np
import pytest
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress
from ase.calculators.lj import LennardJones

import dael
from dael.explore.md import GlobalEntropyBias
from dael.numeric.dual import DISORDER, DualEntropy, disorder, load_state, modes
from dael.numeric.entropy import GlobalEntropy
from dael.selection.window import excess_energy, in_window

from conftest import skewed
from pool_helpers import si_cells

SETTINGS = dael.FingerprintSettings(4.0, 40, "s")


def lj():
    return LennardJones(sigma=2.0, epsilon=0.01, rc=5.0, smooth=True)


@pytest.mark.parametrize("mode", ["atom", "config"])
def test_kT_bias_forces_and_stress_are_exact_derivatives(mode, rng):
    state = GlobalEntropy(mode, settings=SETTINGS)
    for atoms in si_cells(4, rng):
        state.add(dael.fingerprint(atoms, cutoff=4.0, natx=40))
    atoms = si_cells(1, rng, rattle=0.12)[0]
    atoms.calc = GlobalEntropyBias(lj(), dataset=state, k=0.5, scale="kT", temperature=1000.0)
    forces, stress = atoms.get_forces(), atoms.get_stress()
    np.testing.assert_allclose(forces, calculate_numerical_forces(atoms, eps=1e-5), rtol=1e-5, atol=2e-6)
    np.testing.assert_allclose(stress, calculate_numerical_stress(atoms, eps=1e-6), rtol=1e-5, atol=2e-7)


def test_kT_bias_pushes_each_atom_alike_whatever_the_cell_and_dataset_size(rng):
    """The same local environment gets the same bias force in an 8-atom and a 64-atom cell, and against a
    dataset of 4 or of 32 structures (of one distribution); the paper's scale does not."""
    cells = si_cells(32, rng)
    small, large = GlobalEntropy("atom", settings=SETTINGS), GlobalEntropy("atom", settings=SETTINGS)
    small.add(dael.fingerprint(cells[:4], cutoff=4.0, natx=40))
    large.add(dael.fingerprint(cells, cutoff=4.0, natx=40))
    probe = si_cells(1, rng, rattle=0.05)[0]
    big = probe.repeat((2, 2, 2))

    def bias_force(atoms, state, scale):
        calc = GlobalEntropyBias(lj(), dataset=state.copy(), k=0.5 if scale == "kT" else 2.0, scale=scale,
                                 temperature=1000.0)
        atoms = atoms.copy()
        atoms.calc = calc
        forces = atoms.get_forces()
        atoms.calc = lj()
        return np.abs(forces - atoms.get_forces()).mean()

    kt = [bias_force(a, s, "kT") for a in (probe, big) for s in (small, large)]
    paper = [bias_force(a, s, "paper") for a in (probe, big) for s in (small, large)]
    assert max(kt) / min(kt) < 2.5
    assert max(paper) / min(paper) > 5


def test_kT_scale_needs_a_temperature():
    with pytest.raises(ValueError, match="temperature"):
        GlobalEntropyBias(lj(), k=0.5, scale="kT")
    with pytest.raises(ValueError, match="bias scale"):
        GlobalEntropyBias(lj(), k=0.5, scale="huge", temperature=300)


def test_disorder_separates_a_crystal_from_a_random_cell(rng):
    crystal = skewed(bulk("Si", "diamond", a=5.43, cubic=True), rng, strain=0.0, rattle=0.02)
    amorphous = Atoms("Si8", scaled_positions=rng.random((8, 3)), cell=crystal.cell, pbc=True)
    fps = dael.fingerprint([crystal, amorphous], cutoff=5.0, natx=None)
    assert disorder(fps.of(0)) < DISORDER < disorder(fps.of(1))
    assert list(modes(fps)) == ["config", "atom"]


def test_dual_stream_judges_each_snapshot_in_its_mode_and_saves(rng, tmp_path):
    crystals = si_cells(6, rng, rattle=0.02)
    melts = [Atoms("Si8", scaled_positions=rng.random((8, 3)), cell=crystals[0].cell, pbc=True) for _ in range(3)]
    order = [crystals[0], melts[0], crystals[1], crystals[2], melts[1], crystals[3], melts[2]]
    fps = dael.fingerprint(order, cutoff=4.0, natx=40)
    dual = DualEntropy(settings=SETTINGS)
    gains, accepted = dual.stream(fps, -np.inf)
    assert accepted.all() and list(dual.last_modes) == ["config", "atom", "config", "config", "atom", "config", "atom"]
    # the same gains from single-mode states that see every accepted snapshot
    atom, config = GlobalEntropy("atom", settings=SETTINGS), GlobalEntropy("config", settings=SETTINGS)
    for k, mode in enumerate(dual.last_modes):
        expected = (atom if mode == "atom" else config).gain(fps.of(k))
        assert gains[k] == pytest.approx(expected, abs=1e-9)
        atom.add(fps.of(k))
        config.add(fps.of(k))
    assert dual.atom.logdet == pytest.approx(atom.logdet) and dual.config.logdet == pytest.approx(config.logdet)
    dual.save(tmp_path / "state.npz")
    back = load_state(tmp_path / "state.npz")
    assert isinstance(back, DualEntropy) and back.config.logdet == pytest.approx(config.logdet)
    # a budget stops the stream
    fresh = DualEntropy(settings=SETTINGS)
    assert fresh.stream(fps, -np.inf, budget=3)[1].sum() == 3


def test_energy_window_drops_snapshots_far_above_the_thermal_expectation():
    def snap(excess, t=1000.0):
        atoms = Atoms("Si")
        atoms.info.update({"driver_energy": -5.0 + 1.5 * units.kB * t + excess, "relaxed_energy": -5.0,
                           "temperature_K": t})
        return atoms

    assert excess_energy(snap(0.3)) == pytest.approx(0.3)
    assert list(in_window([snap(0.1), snap(0.7), snap(0.49, 3000), Atoms("Si")], 0.5)) == [True, False, True, True]
    assert in_window([snap(5.0)], None).all()
