"""Files written so that an interruption or a failure never leaves a half-written one under the real name,
nor a stray temporary beside it: each is written beside it as NAME.tmp, flushed, then renamed over it
(atomic on POSIX file systems); the temporary is removed when writing fails.

Resumable stages (campaign rounds, benchmark labels and models, distillation) commit with one protocol:
`mark` writes a JSON marker once the stage's outputs are complete, `marked` reads it (None: redo the stage).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import write


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` to write; renamed over `path` when the block ends, removed if it fails."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: Path, data: bytes | str) -> None:
    """`data` (bytes, or text as UTF-8) as the file `path`, all or nothing, fsynced."""
    with replacing(path) as tmp, open(tmp, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())


def mark(path: Path, entry: dict | None = None) -> None:
    """The commit marker of a finished stage: `entry` as JSON at `path` (atomic, fsynced); write it only
    after everything the stage produced is on disk."""
    write_atomic(Path(path), json.dumps(entry or {}, indent=1))


def marked(path: Path) -> dict | None:
    """The entry of the stage marker at `path`; None when the stage has not finished (no marker, or an old
    plain-text one, which counts as an empty entry)."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        entry = json.loads(path.read_text())
    except json.JSONDecodeError:
        return {}
    return entry if isinstance(entry, dict) else {}


def savez_atomic(path: Path, **arrays) -> None:
    """np.savez, fsynced before the rename (the commit marker of resumable work)."""
    with replacing(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())


def write_extxyz(path: Path, structures: Sequence[Atoms]) -> None:
    """Structures (with any results and atoms.info) as extxyz; the parent folder is created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:
        write(tmp, list(structures), format="extxyz")


def concat_files(parts: Sequence[Path], out: Path) -> None:
    """The bytes of `parts`, in order, as `out`."""
    with replacing(out) as tmp, open(tmp, "wb") as dst:
        for part in parts:
            dst.write(part.read_bytes())
