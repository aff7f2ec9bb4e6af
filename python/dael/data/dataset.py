"""The labelled dataset: an ASE SQLite database (``ase.db``) that never loses a structure.

One row per distinct structure. Its atoms carry the oracle's results (a SinglePointCalculator: energy
in eV, forces in eV/Å, stress in eV/Å³, Voigt, ASE sign) once labelled, and its key-value pairs say where
it came from and where it stands:

==============  ===============================================================================
key             value
==============  ===============================================================================
campaign        campaign name (str)
round           active-learning round (int)
source          'entropy' | 'random' | 'anchor' | 'test' | 'imported' (labelled elsewhere: `dael init --dataset`)
oracle          the oracle that labels it: name, then its parameters as JSON (see :func:`oracle_spec`)
status          'pending' | 'labeled' | 'failed'
error           why labelling failed (failed rows only)
hash            content hash of the structure (:func:`structure_hash`); duplicates are refused
fp_cutoff ...   fingerprint settings the selection used, when given: fp_cutoff (Å), fp_natx, fp_orbital
seconds         wall time of the labelling call, s; attempts: how many calls it took
versions        what labelled it: dael (and its git commit), the oracle code, ASE, nequip, allegro, torch
                (dael.util.provenance; labelled rows only)
==============  ===============================================================================

Candidates are written as 'pending' rows first (in one transaction), and each result is committed on its
own as it arrives, so a run killed at any moment loses no label and a rerun labels only what is still
pending. One process should write to a dataset at a time.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ase.db
import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.db.core import convert_str_to_int_float_bool_or_str
from ase.io import write

from dael.numeric.fingerprint import FingerprintSettings
from dael.util.files import replacing

__all__ = ["Added", "Dataset", "SOURCES", "STATUSES", "TRAINING_SOURCES", "is_dataset", "oracle_spec",
           "structure_hash"]

SOURCES = ("entropy", "random", "anchor", "test", "imported")
TRAINING_SOURCES = ("entropy", "random", "anchor", "imported")
"""The rows a model is trained on and whose entropy selection raises; 'test' rows are held out."""
STATUSES = ("pending", "labeled", "failed")
RESULT_KEYS = ("energy", "free_energy", "forces", "stress")


def structure_hash(atoms: Atoms, decimals: int = 5) -> str:
    """Content hash ('h' and 20 hex digits) of atomic numbers, positions and cell rounded to 10^-decimals Å,
    pbc, and the initial magnetic moments where any is non-zero (a ferromagnetic and a non-magnetic start of
    the same positions are two structures; a non-magnetic structure hashes as it did before moments counted).
    Equal structures written to and read back from extxyz or ase.db hash equally; a structure shifted by a
    lattice vector or with atoms permuted counts as a different one."""
    h = hashlib.sha256()
    magmoms = np.asarray(atoms.get_initial_magnetic_moments(), np.float64)
    for part in (np.asarray(atoms.numbers, np.int64),
                 np.round(np.asarray(atoms.positions, np.float64), decimals) + 0.0,  # + 0.0: no -0.0
                 np.round(np.asarray(atoms.cell.array, np.float64), decimals) + 0.0,
                 np.asarray(atoms.pbc, np.bool_),
                 *([np.round(magmoms, decimals) + 0.0] if np.any(magmoms) else [])):
        h.update(part.tobytes())
        h.update(b"|")
    return "h" + h.hexdigest()[:20]  # the letter: ase.db refuses text values that read as numbers


def oracle_spec(name: str, params: dict[str, Any] | None = None) -> str:
    """The text that identifies an oracle in the dataset: its name, then its parameters as sorted JSON."""
    return name if not params else f"{name} {json.dumps(params, sort_keys=True, separators=(',', ':'))}"


@dataclass(frozen=True)
class Added:
    """What :meth:`Dataset.add` did: row ids of the new structures, and the input positions of those it
    skipped because the dataset (or an earlier structure of the same call) already holds them."""

    ids: list[int]
    duplicates: list[int]


class Dataset:
    """An ASE SQLite database of labelled structures (created on first write).

    ``path`` must end in ``.db``; an existing file must be an ASE database.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if self.path.suffix != ".db":
            raise ValueError(f"{self.path}: a dataset is an ASE SQLite database; give a name ending in .db")
        if self.path.exists():
            _check_database(self.path)
        elif not self.path.parent.is_dir():
            raise ValueError(f"{self.path}: the folder {self.path.parent} does not exist")
        self.db = _connect(self.path)

    def __len__(self) -> int:
        return self.db.count() if self.path.exists() else 0

    def hashes(self) -> set[str]:
        """Content hashes of every row."""
        if not self.path.exists():
            return set()
        return {row.get("hash") for row in self.db.select(include_data=False, columns=["key_value_pairs"])}

    def add(self, structures: Sequence[Atoms], *, oracle: str, campaign: str = "default", round: int = 0,
            source: str = "entropy", fingerprint: FingerprintSettings | None = None) -> Added:
        """Write the structures not yet in the dataset as 'pending' rows, in one transaction.

        Results already attached to a structure (e.g. a foundation model's energy) are not copied; its
        ``atoms.info`` tags (text, numbers, true/false: the explorer's phase, trajectory, step, driver energy,
        gain, ...) are kept in the row's data and come back in ``atoms.info`` when it is read.
        ``oracle`` is the :func:`oracle_spec` of the oracle that will label them.
        """
        if source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}; got {source!r}")
        if int(round) < 0:
            raise ValueError(f"round must be >= 0; got {round}")
        if _reads_as_number(str(campaign)):
            raise ValueError(f"campaign must be a name, not a number or true/false; got {campaign!r}")
        keys: dict[str, Any] = {"campaign": str(campaign), "round": int(round), "source": source,
                                "oracle": oracle, "status": "pending"}
        if fingerprint is not None:
            keys.update(fp_cutoff=float(fingerprint.cutoff), fp_natx=int(fingerprint.natx),
                        fp_orbital=fingerprint.orbital)
        if not structures:
            return Added([], [])
        seen = self.hashes()
        ids: list[int] = []
        duplicates: list[int] = []
        with self.transaction():
            for i, atoms in enumerate(structures):
                h = structure_hash(atoms)
                if h in seen:
                    duplicates.append(i)
                    continue
                seen.add(h)
                bare = atoms.copy()  # drops any attached calculator
                ids.append(self.db.write(bare, key_value_pairs={**keys, "hash": h}, data={"info": _tags(atoms)}))
        return Added(ids, duplicates)

    def add_labelled(self, structures: Sequence[Atoms], *, oracle: str, campaign: str = "default",
                     source: str = "imported") -> Added:
        """Store structures labelled elsewhere (their calculator's energy, forces and, where present, stress) as
        labelled rows, `oracle` naming what labelled them; one ValueError names a structure without energy or
        forces. Duplicates of rows already there are skipped."""
        for k, atoms in enumerate(structures):
            results = getattr(atoms.calc, "results", {}) or {}
            if "energy" not in results or "forces" not in results:
                raise ValueError(f"structure {k} has no energy and forces: give labelled structures (an extxyz "
                                 "with energy and forces, as `dael export` writes)")
        added = self.add(structures, oracle=oracle, campaign=campaign, source=source)
        fresh = [a for i, a in enumerate(structures) if i not in set(added.duplicates)]
        with self.transaction():
            for row, atoms in zip(added.ids, fresh, strict=True):
                self.record_result(row, atoms, atoms.calc.results)
        return added

    def pending(self, oracle: str | None = None) -> list[tuple[int, Atoms]]:
        """(row id, structure) of the pending rows, of one oracle spec if given, in id order."""
        if not self.path.exists():
            return []
        query = {"status": "pending"} if oracle is None else {"status": "pending", "oracle": oracle}
        return [(row.id, row.toatoms()) for row in self.db.select(include_data=False, sort="id", **query)]

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group the writes inside into one transaction: committed at the end, rolled back on an error
        (nested use joins the outer transaction)."""
        if self.db.connection is not None:
            yield
            return
        with self.db:
            yield

    def record_result(self, id: int, atoms: Atoms, results: dict[str, Any], seconds: float = 0.0,
                      attempts: int = 1) -> None:
        """Store the oracle's ``results`` (energy, free_energy, forces, stress; ``versions``: the provenance line)
        for row ``id`` (committed)."""
        labeled = atoms.copy()
        labeled.calc = SinglePointCalculator(labeled, **{k: results[k] for k in RESULT_KEYS if k in results})
        extra = {"versions": str(results["versions"])} if results.get("versions") else {}
        with self.transaction():  # the row is replaced (delete + insert) in one transaction
            self.db.update(id, atoms=labeled, status="labeled", seconds=float(seconds),
                           attempts=int(attempts), delete_keys=["error"], **extra)

    def record_failure(self, id: int, error: str, seconds: float = 0.0, attempts: int = 1) -> None:
        """Mark row ``id`` failed with the error message (committed)."""
        with self.transaction():
            self.db.update(id, status="failed", error=str(error) or "unknown error", seconds=float(seconds),
                           attempts=int(attempts))

    def retry_failed(self, oracle: str | None = None) -> int:
        """Put the failed rows (of one oracle spec if given) back to pending; returns how many."""
        query = {"status": "failed"} if oracle is None else {"status": "failed", "oracle": oracle}
        ids = [row.id for row in self.db.select(include_data=False, **query)] if self.path.exists() else []
        if not ids:
            return 0
        with self.transaction():
            for i in ids:
                self.db.update(i, status="pending", delete_keys=["error"])
        return len(ids)

    def reassign(self, oracle: str, statuses: Sequence[str] = ("failed",), **query: Any) -> int:
        """Give the rows of these statuses (and key-value ``query``) that belong to another oracle spec to
        ``oracle``, as pending (a failed row loses its error); returns how many. The way out when rows were
        written for an oracle that cannot label them (a wrong name or parameter)."""
        if not self.path.exists():
            return 0
        ids = [row.id for status in statuses
               for row in self.db.select(include_data=False, status=status, **query)
               if row.get("oracle") != oracle]
        with self.transaction():
            for i in ids:
                self.db.update(i, status="pending", oracle=oracle, delete_keys=["error"])
        return len(ids)

    def counts(self, **query: Any) -> Counter:
        """Rows per status (of the rows matching the key-value ``query``, e.g. source='test')."""
        if not self.path.exists():
            return Counter()
        return Counter(row.get("status") for row in self.db.select(include_data=False, **query))

    def versions(self) -> dict[str, int]:
        """The labelled rows per provenance line (their ``versions``; '' for rows labelled before dael recorded
        them), the most common first."""
        if not self.path.exists():
            return {}
        rows = self.db.select(include_data=False, columns=["key_value_pairs"], status="labeled")
        return dict(Counter(row.get("versions", "") for row in rows).most_common())

    def structures(self, status: str | None = "labeled", sources: Sequence[str] | None = None,
                   **query: Any) -> Iterator[Atoms]:
        """The rows' structures with their results (SinglePointCalculator) and key-value pairs in
        ``atoms.info`` (plus ``id``), in id order. status: one of :data:`STATUSES`, None for all; sources:
        keep only these; query: other key-value conditions (campaign='c1', round=2, ...)."""
        if status is not None and status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}; got {status!r}")
        unknown = sorted(set(sources or ()) - set(SOURCES))
        if unknown:
            raise ValueError(f"unknown source {', '.join(unknown)}; sources are {', '.join(SOURCES)}")
        if status is not None:
            query["status"] = status
        if not self.path.exists():
            return
        for row in self.db.select(sort="id", **query):
            if sources and row.get("source") not in sources:
                continue
            atoms = row.toatoms()
            atoms.info.update(row.data.get("info", {}))
            atoms.info.update(row.key_value_pairs, id=row.id)  # the dataset's own keys win
            yield atoms

    def labelled(self, sources: Sequence[str] = TRAINING_SOURCES) -> list[Atoms]:
        """The labelled rows of ``sources`` (default: all but 'test'), in id order, as :meth:`structures` gives
        them: the one way rows are read for use (training, entropy, pools; see
        :func:`dael.data.structures.read_structures`). Pending and failed rows stay in the dataset but are never
        used; :meth:`left_out` says how many there are."""
        return list(self.structures("labeled", sources))

    def left_out(self, sources: Sequence[str] = TRAINING_SOURCES) -> str:
        """What :meth:`labelled` leaves out, for messages: e.g. '2 failed and 1 pending rows not used; 5 test
        rows held out' ('' when it leaves out nothing)."""
        if not self.path.exists():
            return ""
        counts = Counter((row.get("source"), row.get("status"))
                         for row in self.db.select(include_data=False, columns=["key_value_pairs"]))
        unused = {status: sum(n for (src, st), n in counts.items() if src in sources and st == status)
                  for status in ("failed", "pending")}
        unused = {status: n for status, n in unused.items() if n}
        parts = []
        if unused:
            total = sum(unused.values())
            parts.append(" and ".join(f"{n} {status}" for status, n in unused.items())
                         + f" row{'s' * (total > 1)} not used")
        for source in SOURCES:
            n = sum(m for (src, _), m in counts.items() if src == source and source not in sources)
            if n:
                parts.append(f"{n} {source} row{'s' * (n > 1)} held out")
        return "; ".join(parts)

    def export(self, path: str | os.PathLike, status: str | None = "labeled",
               sources: Sequence[str] | None = None, **query: Any) -> int:
        """Write the rows :meth:`structures` selects to an extxyz file (atomically) that nequip's ASE
        reader takes without key mapping: energy, free_energy and stress (eV, eV/Å³) in the comment line,
        forces (eV/Å) per atom, the key-value pairs as extra info; returns the number of structures.
        Raises ValueError (and writes nothing) when no row matches."""
        path = Path(path)
        frames = list(self.structures(status, sources, **query))
        if not frames:
            raise ValueError(f"{self.path}: no rows match (status {status}, sources {sources or 'any'}, "
                             f"{query or 'no other conditions'}); rows per status: {dict(self.counts())}")
        with replacing(path) as tmp:
            write(tmp, frames, format="extxyz")
        return len(frames)


def is_dataset(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a dael dataset: an ASE SQLite database (``.db``) whose rows carry a status."""
    path = Path(path)
    if path.suffix != ".db" or not path.is_file():
        return False
    try:
        _check_database(path)
    except ValueError:
        return False
    return _connect(path).count("status") > 0


def _connect(path: str | os.PathLike) -> Any:
    """The ase.db handle of an SQLite dataset file. SQLite's own locks guard the file (and die with their
    process); ASE's lock file would not: a writer killed inside a write (kill -9) left it behind and every later
    writer waited on it forever, so it is not used. Always append: ase.db deletes an existing file otherwise."""
    return ase.db.connect(path, type="db", append=True, use_lock_file=False)


def _tags(atoms: Atoms) -> dict[str, Any]:
    """The scalar ``atoms.info`` entries (text, numbers, true/false) a row keeps as provenance."""
    return {str(k): (v.item() if isinstance(v, np.generic) else v) for k, v in atoms.info.items()
            if isinstance(v, str | int | float | bool | np.number | np.bool_)}


def _reads_as_number(text: str) -> bool:
    """Whether ase.db would read the text as a number or a bool (and so refuse it as a text value)."""
    return not isinstance(convert_str_to_int_float_bool_or_str(text), str)


def _check_database(path: Path) -> None:
    """Raise ValueError unless ``path`` is an ASE SQLite database."""
    try:  # read-write: a writer killed inside a transaction leaves a hot journal that only a writer rolls back
        with closing(sqlite3.connect(f"file:{path}?mode=rw", uri=True)) as con:
            tables = {name for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        raise ValueError(f"{path}: not an SQLite database ({exc}); give a new file or an ASE one") from exc
    if tables and not {"systems", "keys"} <= tables:
        raise ValueError(f"{path}: an SQLite database, but not an ASE one (tables {sorted(tables)})")
