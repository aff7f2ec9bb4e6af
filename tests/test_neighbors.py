"""Neighbour lists equal ASE's, pair for pair (set equality of (i, j, S); d and D to 1e-12 Å)."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from ase.neighborlist import neighbor_list as ase_neighbor_list

import dael

from conftest import skewed


def assert_same_as_ase(atoms: Atoms, cutoff: float) -> int:
    ours = dael.neighbor_list(atoms, cutoff, "ijSdD")
    ref = ase_neighbor_list("ijSdD", atoms, cutoff)

    def keyed(i, j, S, d, D):
        return {(a, b, *s): (dd, *v) for a, b, s, dd, v in zip(i, j, S.tolist(), d, D.tolist(), strict=True)}

    mine, theirs = keyed(*ours), keyed(*ref)
    assert len(mine) == len(ours[0]), "duplicate pairs"
    assert mine.keys() == theirs.keys()
    keys = sorted(theirs)
    np.testing.assert_allclose([mine[k] for k in keys], [theirs[k] for k in keys], rtol=0, atol=1e-12)
    assert np.all(np.diff(ours[0]) >= 0), "pairs are sorted by i"
    return len(keys)


@pytest.mark.parametrize("pbc", [(1, 1, 1), (1, 0, 1), (0, 1, 0), (0, 0, 0)])
@pytest.mark.parametrize("seed", range(6))
def test_random_skewed_cells(pbc, seed):
    rng = np.random.default_rng(seed)
    base = bulk("Si", "diamond", a=5.43, cubic=True) if seed % 2 else bulk("NaCl", "rocksalt", a=5.64)
    atoms = skewed(base * (2, 1, 2), rng, strain=0.25, rattle=0.3)
    atoms.pbc = pbc
    assert assert_same_as_ase(atoms, cutoff=float(rng.uniform(2.0, 6.0))) > 0


@pytest.mark.parametrize("cutoff", [3.0, 7.5, 12.0])
def test_tiny_cells_many_images(cutoff, rng):
    atoms = skewed(bulk("Si", "fcc", a=3.0), rng, strain=0.2, rattle=0.05)  # 1 atom, heights < 2 Å
    assert_same_as_ase(atoms, cutoff)
    atoms = skewed(bulk("C", "diamond", a=3.57), rng, strain=0.3, rattle=0.1)
    atoms.pbc = (True, False, True)
    atoms.positions[0] += atoms.cell[1] * 2.5  # far outside the cell along the open direction
    assert_same_as_ase(atoms, cutoff)


def test_large_cell(rng):
    atoms = skewed(bulk("Si", "diamond", a=5.43, cubic=True) * (5, 5, 5), rng, strain=0.05)
    assert len(atoms) == 1000
    assert assert_same_as_ase(atoms, 5.0) > 25_000


def test_atoms_outside_cell_and_molecules(rng):
    atoms = skewed(bulk("NaCl", "rocksalt", a=5.64, cubic=True), rng)
    atoms.positions += np.array([13.7, -22.1, 5.3])
    assert_same_as_ase(atoms, 4.5)
    mol = molecule("C6H6")  # no cell at all
    assert_same_as_ase(mol, 2.5)
    spread = Atoms("Si3", positions=[[0, 0, 0], [500, 0, 0], [501.5, 0.5, 0]])
    assert assert_same_as_ase(spread, 2.0) == 2


def test_batch_equals_single_calls(rng):
    structs = [skewed(bulk("Si", "diamond", a=5.43, cubic=True), rng) for _ in range(9)]
    structs[3].pbc = (True, False, False)
    batch = dael.neighbor_lists(structs, 4.0, "ijSd")
    assert batch.D is None and len(batch) == 9
    for k, atoms in enumerate(structs):
        i, j, S, d = dael.neighbor_list(atoms, 4.0, "ijSd")
        np.testing.assert_array_equal(batch[k]["i"], i)
        np.testing.assert_array_equal(batch[k]["S"], S)
        np.testing.assert_array_equal(batch[k]["d"], d)


def test_thread_counts_agree(si64):
    one = dael.neighbor_lists([si64] * 8, 5.0, threads=1)
    two = dael.neighbor_lists([si64] * 8, 5.0, threads=2)
    np.testing.assert_array_equal(one.j, two.j)
    np.testing.assert_array_equal(one.D, two.D)


def test_single_quantity_returns_array(si64):
    d = dael.neighbor_list(si64, 3.0, "d")
    assert isinstance(d, np.ndarray) and d.shape == (64 * 4,)
    np.testing.assert_allclose(d, 5.43 * np.sqrt(3) / 4)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a.positions.__setitem__((3, 1), np.nan), "atom 3"),
        (lambda a: a.set_cell([[1, 0, 0], [2, 0, 0], [0, 0, 1]]), "singular"),
        (lambda a: a.set_cell(np.zeros((3, 3))), "singular"),
    ],
)
def test_bad_structures_raise_value_error(si64, change, message):
    change(si64)
    with pytest.raises(ValueError, match=message):
        dael.neighbor_list(si64, 3.0)


def test_bad_arguments_raise_value_error(si64):
    with pytest.raises(ValueError, match="cutoff"):
        dael.neighbor_list(si64, -1.0)
    with pytest.raises(ValueError, match="quantities"):
        dael.neighbor_list(si64, 3.0, "ijx")
    from dael import _core

    b = dael.Batch.from_atoms([si64])
    with pytest.raises(ValueError, match="offsets"):
        _core.neighbor_lists(b.positions, b.cells, b.pbc, np.array([0, 10]), 3.0, "ij", 0)
    with pytest.raises(ValueError, match="positions"):
        _core.neighbor_lists(b.positions.ravel()[:-1], b.cells, b.pbc, b.offsets, 3.0, "ij", 0)
    with pytest.raises(ValueError, match="pbc"):
        _core.neighbor_lists(b.positions, b.cells, b.pbc[:, :2].copy(), b.offsets, 3.0, "ij", 0)
    with pytest.raises(TypeError):
        dael.neighbor_lists([si64, "not atoms"], 3.0)


@pytest.mark.parametrize("self_interaction", [False, True])
def test_ase_order_drop_in_equals_ase_on_a_triclinic_cell(self_interaction, rng):
    atoms = skewed(bulk("NaCl", "rocksalt", a=5.64) * (2, 2, 1), rng, strain=0.2, rattle=0.2)
    assert not atoms.cell.orthorhombic
    ours = dael.ase_neighbor_list("ijdDS", atoms, 4.5, self_interaction=self_interaction)
    ref = ase_neighbor_list("ijdDS", atoms, 4.5, self_interaction=self_interaction)
    assert [x.shape for x in ours] == [x.shape for x in ref] and ours[0].dtype == ref[0].dtype == np.int64

    def keyed(i, j, d, D, S):
        return {(a, b, *s): (dd, *v) for a, b, dd, v, s in zip(i, j, d, D.tolist(), S.tolist(), strict=True)}

    mine, theirs = keyed(*ours), keyed(*ref)
    assert mine.keys() == theirs.keys() and len(mine) == len(ours[0])
    keys = sorted(theirs)
    np.testing.assert_allclose([mine[k] for k in keys], [theirs[k] for k in keys], rtol=0, atol=1e-12)
    assert np.array_equal(dael.ase_neighbor_list("d", atoms, 4.5, self_interaction), np.asarray(ours[2]))
