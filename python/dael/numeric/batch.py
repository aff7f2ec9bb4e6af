"""The flat batch layout that the Rust core reads.

A batch of S structures with N atoms in all is:
positions (N, 3) float64 Å, numbers (N,) int64, cells (S, 3, 3) float64 Å (lattice vectors as rows),
pbc (S, 3) int64 (0/1) and offsets (S + 1,) int64, so structure k is atoms offsets[k]:offsets[k + 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms

__all__ = ["Batch"]


@dataclass(frozen=True)
class Batch:
    """Flat arrays of a list of structures (see the module docstring for shapes and units)."""

    positions: np.ndarray
    numbers: np.ndarray
    cells: np.ndarray
    pbc: np.ndarray
    offsets: np.ndarray

    @classmethod
    def from_atoms(cls, structures: Atoms | Sequence[Atoms]) -> Batch:
        """Pack one `ase.Atoms` or a sequence of them."""
        if isinstance(structures, Atoms):
            return cls._of_one(structures)
        for k, atoms in enumerate(structures):
            if not isinstance(atoms, Atoms):
                raise TypeError(f"structure {k} is a {type(atoms).__name__}, not an ase.Atoms")
        counts = np.array([len(a) for a in structures], dtype=np.int64)
        offsets = np.zeros(len(structures) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        if len(structures):
            positions = np.concatenate([a.positions for a in structures]).astype(np.float64)
            numbers = np.concatenate([a.numbers for a in structures]).astype(np.int64)
            cells = np.stack([a.cell.array for a in structures]).astype(np.float64)
            pbc = np.stack([a.pbc for a in structures]).astype(np.int64)
        else:
            positions, numbers = np.zeros((0, 3)), np.zeros(0, dtype=np.int64)
            cells, pbc = np.zeros((0, 3, 3)), np.zeros((0, 3), dtype=np.int64)
        return cls(
            np.ascontiguousarray(positions.reshape(-1, 3)),
            numbers,
            np.ascontiguousarray(cells),
            np.ascontiguousarray(pbc),
            offsets,
        )

    @classmethod
    def _of_one(cls, atoms: Atoms) -> Batch:
        """One structure, without the list machinery (a per-structure call pays this every time)."""
        return cls(
            np.ascontiguousarray(atoms.positions, dtype=np.float64).reshape(-1, 3),
            np.ascontiguousarray(atoms.numbers, dtype=np.int64),
            np.ascontiguousarray(atoms.cell.array, dtype=np.float64).reshape(1, 3, 3),
            np.asarray(atoms.pbc, dtype=np.int64).reshape(1, 3),
            np.array([0, len(atoms)], dtype=np.int64),
        )

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_atoms(self) -> np.ndarray:
        """Atoms per structure, (S,) int64."""
        return np.diff(self.offsets)
