"""Reading structures: the one reader of files, pools and datasets."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from ase import Atoms
from ase.io import iread
from ase.io.formats import string2index

from dael.data.dataset import TRAINING_SOURCES, Dataset, is_dataset

Source = str | os.PathLike
"""A structure file: any format ASE reads (extxyz, ASE db, traj, POSCAR, ...) or a dael dataset (.db)."""


def iter_structures(path: Source, index: str = ":", sources: Sequence[str] | None = None) -> Iterator[Atoms]:
    """The structures of one file, lazily. A dael dataset (:func:`dael.data.dataset.is_dataset`) gives its labelled
    rows of ``sources`` (None: all but 'test'; :meth:`dael.data.dataset.Dataset.labelled`); any other file the
    frames ASE reads in it. ``index``: which of them, in ASE's index syntax (':', '-1', '::2').
    Raises ValueError naming the file when it is missing, empty or unreadable."""
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
