"""Periodicity per axis, read from ``atoms.pbc``: three periodic axes make a bulk crystal, two a slab (a surface,
vacuum along the third), one a wire, none a molecule. Every stage asks here what a structure's axes admit:
strains and compressions act on the periodic axes only (a slab keeps its vacuum, a molecule its shape), a cell
is relaxed only along periodic axes, and a structure without a cell along a non-periodic axis is boxed in vacuum.

Units: Å.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

__all__ = ["BULK", "KINDS", "MOLECULE", "SLAB", "VACUUM", "WIRE", "axes", "boxed", "cell_mask", "describe", "kind",
           "periodic_projector", "repeats", "scaled", "strained"]

BULK, SLAB, WIRE, MOLECULE = "bulk", "slab", "wire", "molecule"
KINDS = {3: BULK, 2: SLAB, 1: WIRE, 0: MOLECULE}
"""The kind of a structure by its number of periodic axes."""
VACUUM = 6.0
"""Å of vacuum put on each side of a structure that has no cell along a non-periodic axis (a molecule read from
an .xyz file)."""
_AXES = "abc"


def kind(atoms: Atoms) -> str:
    """'bulk', 'slab', 'wire' or 'molecule': 3, 2, 1 or 0 periodic axes."""
    return KINDS[int(np.count_nonzero(atoms.pbc))]


def axes(atoms: Atoms, periodic: bool = True) -> str:
    """The cell vectors along which `atoms` is periodic (or, `periodic` False, not), as letters: 'ab', 'c', ''."""
    return "".join(_AXES[i] for i in range(3) if bool(atoms.pbc[i]) == periodic)


def describe(atoms: Atoms) -> str:
    """E.g. 'a slab (periodic along a, b; vacuum along c)', 'a molecule (no periodic axis)', 'bulk'."""
    name = kind(atoms)
    if name == BULK:
        return "bulk"
    if name == MOLECULE:
        return "a molecule (no periodic axis)"
    return f"a {name} (periodic along {', '.join(axes(atoms))}; vacuum along {', '.join(axes(atoms, False))})"


def periodic_projector(atoms: Atoms) -> np.ndarray:
    """(3, 3) orthogonal projector onto the span of the periodic cell vectors: the identity for bulk, zero for a
    molecule, the in-plane projector for a slab."""
    vectors = atoms.cell.array[np.asarray(atoms.pbc, bool)]
    if not len(vectors):
        return np.zeros((3, 3))
    u, s, _ = np.linalg.svd(vectors.T, full_matrices=False)
    basis = u[:, s > 1e-12 * max(s.max(), 1.0)]
    return basis @ basis.T


def strained(atoms: Atoms, strain: np.ndarray) -> Atoms:
    """A copy deformed by the symmetric small `strain` (3, 3) restricted to the periodic axes: the deformation
    I + P·ε·P (P = `periodic_projector`) acts on cell and positions alike, so the vacuum of a slab keeps its
    thickness and a molecule is left as it is."""
    p = periodic_projector(atoms)
    deformation = np.eye(3) + p @ np.asarray(strain, float) @ p
    out = atoms.copy()
    out.set_cell(atoms.cell.array @ deformation.T, scale_atoms=False)
    out.positions = atoms.positions @ deformation.T
    return out


def scaled(atoms: Atoms, factor: float) -> Atoms:
    """A copy with the periodic axes scaled by the linear `factor` (an isotropic strain of bulk, an in-plane
    one of a slab, none of a molecule)."""
    return strained(atoms, (float(factor) - 1.0) * np.eye(3))


def repeats(atoms: Atoms, wanted: tuple[int, int, int]) -> tuple[int, int, int]:
    """`wanted` repetitions with 1 along every non-periodic axis (a slab is repeated in-plane only)."""
    return tuple(int(n) if atoms.pbc[i] else 1 for i, n in enumerate(wanted))  # type: ignore[return-value]


def cell_mask(atoms: Atoms) -> np.ndarray:
    """(3, 3) mask of the Cartesian cell deformations that change only the periodic axes, for ASE's cell filters:
    all for bulk; for a slab whose periodic plane is a Cartesian plane (xy, vacuum along z: ASE's surface
    builders), the in-plane ones. A ValueError where the periodic axes do not span Cartesian axes."""
    p = periodic_projector(atoms)
    diagonal = np.round(np.diag(p))
    if not np.allclose(p, np.diag(diagonal), atol=1e-8):
        raise ValueError(f"{describe(atoms)}: relaxing its periodic cell needs the periodic axes along Cartesian "
                         "axes (e.g. a slab in the xy plane with its vacuum along z, as ase.build's surfaces are)")
    return np.outer(diagonal, diagonal).astype(bool)


def boxed(atoms: Atoms, vacuum: float = VACUUM) -> Atoms | None:
    """A copy centred in a box with `vacuum` Å on both sides along every non-periodic axis that has no cell
    vector (a molecule read without a cell); None when every non-periodic axis has one already."""
    lengths = atoms.cell.lengths()
    missing = tuple(i for i in range(3) if not atoms.pbc[i] and lengths[i] < 1e-9)
    if not missing:
        return None
    if not vacuum > 0:
        raise ValueError(f"the vacuum around a structure without a cell must be positive (Å); got {vacuum}")
    out = atoms.copy()
    out.center(vacuum=float(vacuum), axis=missing)
    return out
