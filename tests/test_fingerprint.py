"""OMFP fingerprints: equal to libfp (values, 's' gradients and strain derivatives), finite differences
for everything libfp cannot check, invariances, continuity at the cutoff, and clear errors."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule

import dael
from dael import _core

from conftest import skewed

libfp = pytest.importorskip("libfp")


def libfp_cell(atoms: Atoms) -> tuple:
    """libfp's input: (lattice rows, Cartesian positions inside the cell, 1-based types, Z per type)."""
    atoms = atoms.copy()
    atoms.wrap()
    species = sorted(set(atoms.numbers))
    types = np.array([species.index(z) + 1 for z in atoms.numbers], dtype=np.int64)
    return atoms.cell.array.copy(), atoms.positions.copy(), types, np.array(species, dtype=np.int64)


def graphite() -> Atoms:
    a, c = 2.46, 6.70
    cell = [[a, 0, 0], [-a / 2, a * np.sqrt(3) / 2, 0], [0, 0, c]]
    frac = [[0, 0, 0.25], [0, 0, 0.75], [1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]]
    return Atoms("C4", scaled_positions=frac, cell=cell, pbc=True)


def beta_tin_si() -> Atoms:
    a, c = 4.80, 2.65
    frac = [[0, 0, 0], [0.5, 0.5, 0.5], [0, 0.5, 0.25], [0.5, 0, 0.75]]
    return Atoms("Si4", scaled_positions=frac, cell=[a, a, c], pbc=True)


def cscl_nacl() -> Atoms:
    return Atoms("NaCl", scaled_positions=[[0, 0, 0], [0.5, 0.5, 0.5]], cell=[3.0] * 3, pbc=True)


STRUCTURES = {
    "diamond Si": lambda: bulk("Si", "diamond", a=5.43, cubic=True),
    "beta-tin Si": lambda: beta_tin_si() * (2, 2, 2),
    "rocksalt NaCl": lambda: bulk("NaCl", "rocksalt", a=5.64, cubic=True),
    "CsCl NaCl": lambda: cscl_nacl() * (2, 2, 2),
    "graphite": lambda: graphite() * (2, 2, 1),
    "diamond C": lambda: bulk("C", "diamond", a=3.57, cubic=True),
    "small cell C": lambda: bulk("C", "diamond", a=3.57),  # 2 atoms, heights < 2.1 Å: many images
    "triclinic SiC": lambda: bulk("SiC", "zincblende", a=4.36) * (2, 1, 2),
}


def rattled(name: str, seed: int = 0, rattle: float = 0.05, strain: float = 0.03) -> Atoms:
    return skewed(STRUCTURES[name](), np.random.default_rng(seed), strain=strain, rattle=rattle)


def amorphous_carbon(seed: int = 3) -> Atoms:
    return skewed(bulk("C", "diamond", a=3.57, cubic=True) * (2, 1, 1), np.random.default_rng(seed),
                  strain=0.05, rattle=0.35)


def natx_for(atoms: Atoms, cutoff: float) -> int:
    return int(dael.fingerprint(atoms, cutoff, natx=None).settings.natx)


def close(ours: np.ndarray, ref: np.ndarray, rel: float = 1e-10) -> None:
    """Equal within rel × the largest |reference| value."""
    np.testing.assert_allclose(ours, ref, rtol=0, atol=rel * np.abs(ref).max())


ALL = [*STRUCTURES, "amorphous C"]


def make(name: str) -> Atoms:
    return amorphous_carbon() if name == "amorphous C" else rattled(name)


@pytest.mark.parametrize("orbital", ["s", "sp"])
@pytest.mark.parametrize("name", ALL)
def test_values_equal_libfp(name, orbital):
    atoms = make(name)
    cutoff = 5.0 if orbital == "s" else 4.0
    natx = natx_for(atoms, cutoff) + 3
    ref = libfp.get_lfp(libfp_cell(atoms), cutoff=cutoff, log=False, orbital=orbital, natx=natx)
    ours = dael.fingerprint(atoms, cutoff, natx=natx, orbital=orbital)
    assert ours.values.shape == ref.shape == (len(atoms), natx * (1 if orbital == "s" else 4))
    close(ours.values, ref)


@pytest.mark.parametrize("name", ALL)
def test_s_gradients_and_strain_equal_libfp(name):
    atoms = make(name)
    natx = natx_for(atoms, 4.0)
    lfp, dfp, dfpe = libfp.get_dfp(libfp_cell(atoms), cutoff=4.0, log=False, orbital="s", natx=natx,
                                   include_stress=True)
    ours = dael.fingerprint(atoms, 4.0, natx=natx, gradients=True, stress=True)
    close(ours.values, lfp)
    close(ours.dense_grad(0), dfp)
    close(ours.strain * np.array([1, 1, 1, 2, 2, 2])[:, None], dfpe)  # libfp moves ε_ab and ε_ba together


def finite_difference(atoms: Atoms, h: float = 1e-6, **kw) -> np.ndarray:
    """Central differences of fingerprint values: (n_atoms, 3, *values.shape)."""
    out = []
    for a in range(len(atoms)):
        for c in range(3):
            pair = []
            for sign in (1, -1):
                moved = atoms.copy()
                moved.positions[a, c] += sign * h
                pair.append(dael.fingerprint(moved, **kw).values)
            out.append((pair[0] - pair[1]) / (2 * h))
    return np.array(out).reshape(len(atoms), 3, *out[0].shape)


@pytest.mark.parametrize("orbital", ["s", "sp"])
@pytest.mark.parametrize("name", ["diamond Si", "rocksalt NaCl", "graphite", "small cell C"])
def test_gradients_match_finite_differences(name, orbital):
    atoms = rattled(name, rattle=0.1)[:8] if name != "small cell C" else rattled(name, rattle=0.1)
    kw = dict(cutoff=4.0, natx=natx_for(atoms, 4.0), orbital=orbital)
    fd = finite_difference(atoms, **kw)  # (a, c, i, m)
    dense = dael.fingerprint(atoms, gradients=True, **kw).dense_grad(0)  # (i, a, c, m)
    np.testing.assert_allclose(dense.transpose(1, 2, 0, 3), fd, rtol=0, atol=1e-6)
    config = dael.fingerprint(atoms, gradients=True, per="config", **kw)
    np.testing.assert_allclose(config.grad, fd.mean(axis=2), rtol=0, atol=1e-6)


VOIGT = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]


@pytest.mark.parametrize("orbital", ["s", "sp"])
@pytest.mark.parametrize("per", ["atom", "config"])
def test_strain_derivative_matches_finite_strain(orbital, per):
    atoms = rattled("rocksalt NaCl", rattle=0.1)
    kw = dict(cutoff=4.0, natx=natx_for(atoms, 4.0), orbital=orbital, per=per)
    ours = dael.fingerprint(atoms, gradients=True, stress=True, **kw).strain
    h = 1e-6
    for v, (a, b) in enumerate(VOIGT):
        eps = np.zeros((3, 3))
        eps[a, b] = eps[b, a] = h
        vals = []
        for sign in (1, -1):
            strained = atoms.copy()
            strained.set_cell(atoms.cell.array @ (np.eye(3) + sign * eps), scale_atoms=True)
            vals.append(dael.fingerprint(strained, **kw).values)
        # ASE's convention: a shear moves ε_ab and ε_ba, the derivative is by one of them (half)
        fd = (vals[0] - vals[1]) / (2 * h) / (1 if a == b else 2)
        np.testing.assert_allclose(ours[:, v], fd, rtol=0, atol=1e-6)


def test_invariances():
    rng = np.random.default_rng(7)
    atoms = rattled("triclinic SiC", rattle=0.1)
    ref = dael.fingerprint(atoms, 4.5, natx=None).values
    q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    rotated = atoms.copy()
    rotated.set_cell(atoms.cell.array @ q.T, scale_atoms=True)
    close(dael.fingerprint(rotated, 4.5, natx=None).values, ref, 1e-12)
    moved = atoms.copy()
    moved.positions += [3.3, -7.1, 0.4]
    close(dael.fingerprint(moved, 4.5, natx=None).values, ref, 1e-12)
    perm = rng.permutation(len(atoms))
    close(dael.fingerprint(atoms[perm], 4.5, natx=None).values, ref[perm], 1e-12)


def test_continuous_at_the_cutoff():
    cutoff = 4.0

    def pair(d: float) -> np.ndarray:
        return dael.fingerprint(Atoms("SiC", positions=[[0, 0, 0], [d, 0, 0]]), cutoff, natx=2).values

    inside, outside = pair(cutoff - 1e-4), pair(cutoff + 1e-4)
    assert np.abs(inside - outside).max() < 1e-8
    assert np.abs(pair(cutoff - 0.5) - outside).max() > 1e-3  # it does see the neighbour further in


def test_molecule_equals_periodic_box_with_vacuum():
    mol = molecule("CH3CH2OH")
    boxed = mol.copy()
    boxed.set_cell([30.0, 30.0, 30.0])
    boxed.center()
    boxed.pbc = True
    close(dael.fingerprint(mol, 4.0, natx=12).values,
          libfp.get_lfp(libfp_cell(boxed), cutoff=4.0, log=False, orbital="s", natx=12))


def test_batch_and_per_config():
    structs = [rattled("diamond Si", seed=s) for s in range(5)] + [amorphous_carbon()]
    batch = dael.fingerprint(structs, 4.0, natx=60)
    for k, atoms in enumerate(structs):
        np.testing.assert_array_equal(batch.of(k), dael.fingerprint(atoms, 4.0, natx=60).values)
    config = dael.fingerprint(structs, 4.0, natx=60, per="config")
    assert config.values.shape == (6, 60)
    np.testing.assert_allclose(config.of(5), batch.of(5).mean(axis=0), rtol=1e-14)
    assert np.asarray(batch) is batch.values and np.asarray(config).shape == (6, 60)  # usable as arrays
    np.testing.assert_array_equal(np.mean(batch, axis=0), batch.values.mean(axis=0))
    assert np.asarray(batch, dtype=np.float32).dtype == np.float32
    one = dael.fingerprint(structs, 4.0, natx=60, gradients=True, threads=1)
    two = dael.fingerprint(structs, 4.0, natx=60, gradients=True, threads=2)
    np.testing.assert_array_equal(one.grad, two.grad)


def test_natx_too_small_is_a_clear_error():
    atoms = bulk("C", "diamond", a=3.57, cubic=True)
    with pytest.raises(ValueError, match=r"87 atoms within 5(\.0)? Å.*natx = 50.*at least 87"):
        dael.fingerprint(atoms, 5.0, natx=50)
    assert dael.fingerprint(atoms, 5.0, natx=None).settings.natx == 87


def test_bad_input():
    atoms = bulk("Si", "diamond", a=5.43)
    with pytest.raises(ValueError, match="orbital"):
        dael.fingerprint(atoms, orbital="d")
    with pytest.raises(ValueError, match="gradients"):
        dael.fingerprint(atoms, stress=True)
    with pytest.raises(ValueError, match="cutoff"):
        dael.fingerprint(atoms, cutoff=-1)
    ghost = Atoms("X2", positions=[[0, 0, 0], [1, 0, 0]])
    with pytest.raises(ValueError, match="atomic number 0"):
        dael.fingerprint(ghost)
    atoms.positions[1, 0] = np.nan
    with pytest.raises(ValueError, match="atom 1"):
        dael.fingerprint(atoms)


@pytest.mark.parametrize("n", [1, 5, 30, 120])
def test_eigensolver_matches_numpy(n):
    a = np.random.default_rng(n).standard_normal((n, n))
    a = a + a.T
    vals, vecs = (np.frombuffer(x, dtype=np.float64) for x in _core.eigh(a, n, True))
    ref_vals, ref_vecs = np.linalg.eigh(a)
    np.testing.assert_allclose(vals, ref_vals, rtol=0, atol=1e-12 * np.abs(ref_vals).max())
    overlap = np.abs(vecs.reshape(n, n) @ ref_vecs)  # rows vs columns: ±identity for distinct eigenvalues
    np.testing.assert_allclose(overlap, np.eye(n), atol=1e-9)


def test_native_outputs_are_writable_and_reused_memory_is_rewritten(si64):
    """The arrays dael returns view native buffers without a copy: they must be writable like any numpy result,
    and what is written into them must not show in later results, which may reuse their memory."""
    from dael.numeric.entropy import local_entropy_gradient

    def outputs() -> list[np.ndarray]:
        fps = dael.fingerprint(si64, 5.0, natx=40, gradients=True, stress=True)  # grad > 1 MiB: recycled
        _, dr, de = local_entropy_gradient(fps)
        return [*dael.neighbor_list(si64, 5.0), fps.values, fps.sphere, fps.pairs, fps.grad, fps.strain, dr, de]

    first, expected = outputs(), [a.copy() for a in outputs()]
    for a in first:
        assert a.flags.writeable
        a[...] = -1  # a read-only buffer raises ValueError here
        assert (a == -1).all()
    del first  # its memory goes back to the native pool, overwritten
    for a, b in zip(outputs(), expected, strict=True):
        np.testing.assert_array_equal(a, b)
