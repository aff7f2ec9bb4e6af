"""A pool of candidate structures read and fingerprinted in chunks (bounded memory; locally or on Dask), and
the dataset state a screen or an exploration starts from."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path

import numpy as np
from ase import Atoms

from dael.data.dataset import Dataset, is_dataset
from dael.data.structures import iter_structures
from dael.label.workers import dask_client
from dael.numeric.dual import load_state, new_state
from dael.numeric.entropy import GlobalEntropy
from dael.numeric.fingerprint import Fingerprints, FingerprintSettings, fingerprint
from dael.numeric.natx import fingerprint_for

Tagged = tuple[int, int, Atoms]
"""(file number, frame number within the file, structure)."""


def iter_pool(paths: Sequence[str | os.PathLike]) -> Iterator[Tagged]:
    """Every structure of every file (`dael.data.structures.iter_structures`: of a dael dataset, its labelled rows
    but the test ones), lazily, tagged with where it came from."""
    for f, path in enumerate(paths):
        for i, atoms in enumerate(iter_structures(path)):
            yield f, i, atoms


def chunks(items: Iterable, size: int) -> Iterator[list]:
    it = iter(items)
    while block := list(islice(it, size)):
        yield block


def fingerprint_chunk(structures: list[Atoms], settings: FingerprintSettings) -> tuple[Fingerprints, np.ndarray]:
    """Per-atom fingerprints of one chunk with `settings`, and the mask of the structures they fit: a structure
    with a sphere of more than natx atoms (a collapsed or over-dense cell) is refused, not the chunk (runs on
    Dask workers too; one native thread there)."""
    fps = fingerprint(structures, cutoff=settings.cutoff, natx=None, orbital=settings.orbital)
    return fps.truncated(settings.natx), fps.largest_spheres() <= settings.natx


def fingerprinted(blocks: Iterator[list[Tagged]], settings: FingerprintSettings,
                  dask: str | None = None) -> Iterator[tuple[list[Tagged], tuple[Fingerprints, np.ndarray]]]:
    """Fingerprint chunks in order (fingerprint_chunk: the fingerprints and which structures they fit), locally or
    on a Dask cluster (address, or 'local' for a LocalCluster of one single-threaded worker per core), keeping at
    most two chunks per worker in flight."""
    if dask is None:
        for block in blocks:
            yield block, fingerprint_chunk([a for _, _, a in block], settings)
        return

    client, cluster = dask_client(dask)
    with client:
        window = 2 * max(1, len(client.scheduler_info()["workers"]))
        pending: list = []
        for block in blocks:
            job = client.submit(fingerprint_chunk, [a for _, _, a in block], settings, pure=False)
            pending.append((block, job))
            if len(pending) >= window:
                done, fut = pending.pop(0)
                yield done, fut.result()
        for done, fut in pending:
            yield done, fut.result()
    if cluster is not None:
        cluster.close()




def dataset_state(dataset: Path | None, state: Path | None, mode: str, eps: float, settings: FingerprintSettings,
                  chunk: int, adopt: bool = False, say: Callable[[str], None] = print) -> GlobalEntropy:
    """The dataset's entropy state: a saved state, or the fingerprints of a dataset's structures (a dael
    dataset's labelled rows but the test ones; failed and pending rows are reported to `say`, never used).
    adopt: a saved state's own fingerprint settings win over `settings` (the user gave no --natx).
    ValueError for a bad mode, a missing file or a saved state that does not fit."""
    if mode not in ("atom", "config", "dual"):
        raise ValueError(f"--mode must be 'atom', 'config' or 'dual'; got {mode!r}")
    if state is not None:
        if not state.exists():
            raise ValueError(f"{state}: no such entropy state file")
        loaded = load_state(state)
        if loaded.settings is not None and loaded.settings != settings and not adopt:
            raise ValueError(f"{state} was built with {loaded.settings}; pass the same --cutoff/--natx/--orbital")
        if loaded.mode != mode:
            raise ValueError(f"{state} is a '{loaded.mode}'-mode state; pass --mode {loaded.mode}")
        return loaded
    current = new_state(mode, eps, settings)
    if dataset is not None:
        if not dataset.exists():
            raise ValueError(f"{dataset}: no such dataset (an ASE database; omit --dataset to start empty)")
        for block in chunks(iter_pool([dataset]), chunk):  # a denser row grows the state's natx
            current.add(fingerprint_for(current, [a for _, _, a in block]))
        note = Dataset(dataset).left_out() if is_dataset(dataset) else ""
        if note:
            say(f"{dataset}: {note}")
    return current


