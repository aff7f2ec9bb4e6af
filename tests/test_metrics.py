"""dael.train.metrics.evaluate_sets: overlapping evaluation sets give evaluate's numbers, each structure once."""

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones
from ase.calculators.singlepoint import SinglePointCalculator

from dael.train.metrics import evaluate, evaluate_sets


class CountingLJ(LennardJones):
    """Lennard-Jones (energy, forces and stress in one call) that counts its calculations."""

    calls = 0

    def calculate(self, *args, **kwargs):
        type(self).calls += 1
        super().calculate(*args, **kwargs)


def labelled_cu(n: int) -> list:
    """`n` rattled Cu cells labelled by EMT; the last one non-periodic (no reference stress)."""
    rng = np.random.default_rng(3)
    frames = []
    for k in range(n):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True) * (1, 1, 2)
        atoms.rattle(0.05, seed=int(rng.integers(1 << 30)))
        atoms.pbc = k < n - 1
        atoms.calc = EMT()
        stress = atoms.get_stress() if atoms.pbc.all() else None
        atoms.calc = SinglePointCalculator(atoms, energy=atoms.get_potential_energy(), forces=atoms.get_forces(),
                                           stress=stress)
        frames.append(atoms)
    return frames


def test_evaluate_sets_gives_evaluates_numbers_and_predicts_each_structure_once():
    frames = labelled_cu(6)
    sets = {"all": frames, "first": frames[:4], "last": frames[2:], "one": frames[5:]}
    calc = CountingLJ(sigma=2.3, epsilon=0.4, rc=5.0, smooth=True)
    CountingLJ.calls = 0
    shared = evaluate_sets(calc, sets)
    assert CountingLJ.calls == len(frames)  # the union, not 6 + 4 + 4 + 1
    for name, structures in sets.items():
        alone = evaluate(CountingLJ(sigma=2.3, epsilon=0.4, rc=5.0, smooth=True), structures)
        assert shared[name].keys() == alone.keys()
        for key, value in alone.items():
            assert shared[name][key] == (None if value is None else pytest.approx(value, rel=1e-12)), (name, key)
    assert shared["one"]["stress_structures"] == 0 and shared["one"]["stress_mae"] is None
    assert shared["all"]["stress_structures"] == 5 and shared["all"]["energy_mae"] > 0


def test_evaluate_sets_names_an_empty_set():
    with pytest.raises(ValueError, match="'holdout' holds no structures"):
        evaluate_sets(LennardJones(), {"test": labelled_cu(2), "holdout": []})
