"""FAISS index of a dataset's fingerprints: how far is a candidate from everything already labelled?

The cheap pre-filter before the exact entropy gain (docs/method.md §4): a candidate whose fingerprints all lie
within a small distance of dataset entries cannot add much information. Exact (flat L2) search up to
`flat_limit` vectors, HNSW (approximate, incremental) beyond; the index is saved with the fingerprint
settings and the mode, and fingerprints made with other settings are refused.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from dael.numeric.entropy import as_rows, check_mode
from dael.numeric.fingerprint import Fingerprints, FingerprintSettings
from dael.util.extras import require
from dael.util.files import replacing, write_atomic
from dael.util.threads import get_num_threads

KINDS = ("auto", "flat", "hnsw")


def _faiss():
    require("pool", "the novelty index", ("faiss",))
    import faiss

    threads = get_num_threads()
    if threads:
        faiss.omp_set_num_threads(threads)
    return faiss


class NoveltyIndex:
    """Nearest-neighbour index of fingerprint vectors (per atom, or per configuration = atom mean).

    settings: fingerprint settings every added/queried batch must share; mode: 'atom' or 'config';
    kind: 'flat' (exact), 'hnsw' (approximate, M = `hnsw_m`), or 'auto' (flat until `flat_limit`
    vectors, then rebuilt as HNSW). Distances are Euclidean in fingerprint space (dimensionless).
    """

    def __init__(self, settings: FingerprintSettings, mode: str = "atom", kind: str = "auto",
                 flat_limit: int = 200_000, hnsw_m: int = 32):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
        self.settings, self.mode, self.kind = settings, check_mode(mode), kind
        self.flat_limit, self.hnsw_m = int(flat_limit), int(hnsw_m)
        self._index = self._new("hnsw" if kind == "hnsw" else "flat")

    def _new(self, kind: str):
        faiss = _faiss()
        d = self.settings.length
        if kind == "flat":
            return faiss.IndexFlatL2(d)
        index = faiss.IndexHNSWFlat(d, self.hnsw_m)
        index.hnsw.efSearch = 64
        return index

    def __len__(self) -> int:
        return int(self._index.ntotal)

    @property
    def exact(self) -> bool:
        """True while searches are exact (flat index)."""
        return isinstance(self._index, _faiss().IndexFlatL2)

    def vectors(self, fps: Fingerprints | np.ndarray) -> np.ndarray:
        """The float32 vectors of a batch in this index's mode (rows of a given array are taken as is)."""
        if isinstance(fps, Fingerprints):
            if fps.settings != self.settings:
                raise ValueError(f"fingerprints made with {fps.settings} cannot be used with an index built "
                                 f"with {self.settings}; recompute them with the index's settings")
            x = fps.values
            if self.mode == "config" and fps.per == "atom":
                x = np.add.reduceat(x, fps.offsets[:-1], axis=0) / np.diff(fps.offsets)[:, None]
            elif self.mode == "atom" and fps.per == "config":
                raise ValueError("an index in 'atom' mode needs per-atom fingerprints")
        else:
            x = fps
        x = as_rows(x)
        if x.shape[1] != self.settings.length:
            raise ValueError(f"vectors of dimension {x.shape[1]} do not fit the index's "
                             f"{self.settings.length}")
        return np.ascontiguousarray(x, dtype=np.float32)

    def add(self, fps: Fingerprints | np.ndarray) -> None:
        """Add a batch's vectors (switching to HNSW past `flat_limit` in 'auto' mode)."""
        x = self.vectors(fps)
        if self.kind == "auto" and self.exact and len(self) + len(x) > self.flat_limit:
            old = self._index.reconstruct_n(0, len(self)) if len(self) else None
            self._index = self._new("hnsw")
            if old is not None:
                self._index.add(old)
        self._index.add(x)

    def query(self, fps: Fingerprints | np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Distances (n, k) to and ids (n, k) of the k nearest indexed vectors of each query vector
        (inf / -1 where the index holds fewer than k)."""
        x = self.vectors(fps)
        if len(self) == 0:
            return np.full((len(x), k), np.inf), np.full((len(x), k), -1, dtype=np.int64)
        d2, ids = self._index.search(x, int(k))
        dist = np.sqrt(np.maximum(d2.astype(np.float64), 0.0))
        dist[ids < 0] = np.inf
        return dist, ids

    def novelty(self, fps: Fingerprints) -> np.ndarray:
        """Per structure: distance from its farthest atom ('atom') or its mean fingerprint ('config') to
        the nearest indexed vector, (S,). Large = new."""
        dist = self.query(fps, 1)[0][:, 0]
        if self.mode == "config" or fps.per == "config":
            return dist
        return np.maximum.reduceat(dist, fps.offsets[:-1]) if len(dist) else dist

    def save(self, folder: str | os.PathLike) -> None:
        """Write index.faiss and index.json (settings, mode, kind) into `folder`, atomically per file."""
        faiss = _faiss()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {"settings": self.settings.to_dict(), "mode": self.mode, "kind": self.kind,
                "flat_limit": self.flat_limit, "hnsw_m": self.hnsw_m, "count": len(self)}
        with replacing(folder / "index.faiss") as tmp:
            faiss.write_index(self._index, str(tmp))
        write_atomic(folder / "index.json", json.dumps(meta, indent=1))

    @classmethod
    def load(cls, folder: str | os.PathLike, settings: FingerprintSettings | None = None) -> NoveltyIndex:
        """Read an index written by `save`; with `settings`, refuse an index built with other ones."""
        folder = Path(folder)
        try:
            meta = json.loads((folder / "index.json").read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"{folder}: not a dael novelty index ({exc})") from exc
        saved = FingerprintSettings(**meta["settings"])
        if settings is not None and settings != saved:
            raise ValueError(f"{folder} was built with {saved}, not {settings}; "
                             "rebuild it or use its settings")
        index = cls(saved, meta["mode"], meta["kind"], meta["flat_limit"], meta["hnsw_m"])
        index._index = _faiss().read_index(str(folder / "index.faiss"))
        if len(index) != meta["count"]:
            raise ValueError(f"{folder}: index.faiss holds {len(index)} vectors, "
                             f"index.json says {meta['count']}")
        return index
