"""Files written so that an interruption never leaves a half-written one under the real name: each is
written beside it as NAME.tmp, flushed, then renamed over it (atomic on POSIX file systems)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def savez_atomic(path: Path, **arrays) -> None:
    """np.savez, fsynced before the rename (the commit marker of resumable work)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_extxyz(path: Path, structures: Sequence[Atoms]) -> None:
    """Structures (with any results and atoms.info) as extxyz; the parent folder is created."""
    from ase.io import write

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    write(tmp, list(structures), format="extxyz")
    os.replace(tmp, path)


def concat_files(parts: Sequence[Path], out: Path) -> None:
    """The bytes of `parts`, in order, as `out`."""
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "wb") as dst:
        for part in parts:
            dst.write(part.read_bytes())
    os.replace(tmp, out)
