"""Reading structures (the one reader of files, pools and datasets) and the flat batch layout that the Rust
core reads.

A batch of S structures with N atoms in all is:
positions (N, 3) float64 Å, numbers (N,) int64, cells (S, 3, 3) float64 Å (lattice vectors as rows),
pbc (S, 3) int64 (0/1) and offsets (S + 1,) int64, so structure k is atoms offsets[k]:offsets[k + 1].
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms

Source = str | os.PathLike
"""A structure file: any format ASE reads (extxyz, ASE db, traj, POSCAR, ...) or a dael dataset (.db)."""


def iter_structures(path: Source, index: str = ":", sources: Sequence[str] | None = None) -> Iterator[Atoms]:
    """The structures of one file, lazily. A dael dataset (:func:`dael.dataset.is_dataset`) gives its labelled
    rows of ``sources`` (None: all but 'test'; :meth:`dael.dataset.Dataset.labelled`); any other file the
    frames ASE reads in it. ``index``: which of them, in ASE's index syntax (':', '-1', '::2').
    Raises ValueError naming the file when it is missing, empty or unreadable."""
    from ase.io import iread
    from ase.io.formats import string2index

    from dael.dataset import TRAINING_SOURCES, Dataset, is_dataset

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: the file is empty; it holds no structures")
    if is_dataset(path):
        rows = Dataset(path).labelled(TRAINING_SOURCES if sources is None else sources)
        selected = rows[string2index(index)]
        yield from [selected] if isinstance(selected, Atoms) else selected
        return
    try:
        yield from iread(path, index=index)
    except (ValueError, OSError) as exc:
        raise ValueError(f"{path}: ASE cannot read it ({exc})") from exc
    except Exception as exc:  # ASE's readers raise many types for malformed input
        raise ValueError(f"{path}: ASE cannot read it ({type(exc).__name__}: {exc})") from exc


def read_structures(paths: Source | Sequence[Source], index: str = ":",
                    sources: Sequence[str] | None = None) -> list[Atoms]:
    """Every structure of every file (see :func:`iter_structures`), in order. Raises ValueError naming the
    file when one is missing or unreadable, or when they hold no structures (for a dataset: with what it
    left out and how to fix it)."""
    from dael.dataset import TRAINING_SOURCES, Dataset, is_dataset

    paths = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    structures = [atoms for path in paths for atoms in iter_structures(path, index, sources)]
    if not structures:
        names = ", ".join(str(p) for p in paths) or "no files given"
        datasets = [Path(p) for p in paths if is_dataset(p)]
        if datasets:
            left = "; ".join(f"{p}: {Dataset(p).left_out(sources or TRAINING_SOURCES) or 'empty'}"
                             for p in datasets)
            raise ValueError(f"{names}: no labelled rows of sources {', '.join(sources or TRAINING_SOURCES)} "
                             f"({left}); label them first (dael label)")
        raise ValueError(f"{names}: the files hold no structures")
    return structures


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
