"""Shared fixtures: small, deterministic structures of the systems dael targets."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk


def skewed(atoms: Atoms, rng: np.random.Generator, strain: float = 0.08, rattle: float = 0.1) -> Atoms:
    """A randomly strained (triclinic) and rattled copy."""
    atoms = atoms.copy()
    atoms.set_cell(atoms.cell.array @ (np.eye(3) + strain * rng.standard_normal((3, 3))), scale_atoms=True)
    atoms.positions += rattle * rng.standard_normal(atoms.positions.shape)
    return atoms


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20161)


@pytest.fixture
def si64() -> Atoms:
    return bulk("Si", "diamond", a=5.43, cubic=True) * (2, 2, 2)


@pytest.fixture
def nacl64() -> Atoms:
    return bulk("NaCl", "rocksalt", a=5.64, cubic=True) * (2, 2, 2)


def si8_cells(n: int, seed: int, strain: float, rattle: float) -> list[Atoms]:
    """n strained and rattled copies of the 8-atom cubic diamond Si cell."""
    rng = np.random.default_rng(seed)
    si8 = bulk("Si", "diamond", a=5.43, cubic=True)
    return [skewed(si8, rng, strain=strain, rattle=rattle) for _ in range(n)]
