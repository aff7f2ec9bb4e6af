"""The DFT oracles, ASE calculators built by :func:`dael.calculators.registry.make_calculator` from a name and keyword
parameters: ``gpaw`` (:class:`GPAWOracle`: GPAW plane waves, PBE, runs offline with the PAW setups of the PyPI
``gpaw-data`` wheel; on one core about 4 s for 2-atom Si, 10 s for a rattled 8-atom Si cube with 3×3×3
k-points), ``vasp`` and ``qe`` (templates for ASE's ``Vasp`` and ``Espresso``; the user gives the command
and the pseudopotentials).

Units follow ASE: energy eV, forces eV/Å, stress eV/Å³ (Voigt, ASE sign).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import BaseCalculator
from ase.config import cfg

from dael.calculators.base import OracleCalculator
from dael.calculators.parameters import (
    accepted_parameters,
    base_keyword,
    espresso_keywords,
    gpaw_keywords,
    vasp_keywords,
)

__all__ = ["ESPRESSO_DEFAULTS", "GPAW_DEFAULTS", "GPAW_MIN_ECUT", "GPAWOracle", "VASP_DEFAULTS", "dft_keywords",
           "espresso_oracle", "gpaw_parameters", "vasp_oracle"]

GPAW_DEFAULTS: dict[str, Any] = {
    "xc": "PBE",
    "mode": {"name": "pw", "ecut": 300.0},
    "kpts": {"density": 3.5, "gamma": True},
    "occupations": {"name": "fermi-dirac", "width": 0.05},
    "symmetry": {"tolerance": 1e-5},
    "txt": None,
}
"""GPAW settings of the ``gpaw`` oracle: PBE, plane waves (cut-off in eV, raised per element by
:data:`GPAW_MIN_ECUT`), a Γ-centred k-point grid of density 3.5 points per Å⁻¹ (reciprocal lengths with
the 2π, i.e. a spacing of 0.29 Å⁻¹ in VASP's KSPACING convention: 6×6×6 for the 8-atom Si cube and β-Sn
cell, 4×4×4 for the 64-atom cube), Fermi-Dirac smearing of 0.05 eV, no text output. Converged for Si: on 8
MD snapshots of diamond and β-Sn (0–15 GPa, 300–2000 K), against 450 eV and density 3.5, 300 eV / 3.5
deviates by at most 0.10 meV/atom (energies less their mean offset) and 1.2 meV/Å, where the density 2.5
used before deviated by 9.8 meV/atom and 169 meV/Å (metallic β-Sn and hot cells need the denser grid;
benches/experiments/gpaw_convergence.py). Symmetries are found to 1e-5 Å: at GPAW's default for this call
(1e-7 Å) a relaxed cell stored at extxyz precision (8 decimals) stopped GPAW with SymmetryAnalysisBug (an
incomplete point group; 5 of 24 Si anchors); a looser tolerance finds no symmetry in thermal snapshots."""

GPAW_MIN_ECUT: dict[str, float] = {"B": 500.0, "C": 500.0, "N": 500.0, "O": 500.0, "F": 500.0}
"""Smallest plane-wave cut-off (eV) per element of the ``gpaw`` oracle's default: the hard 2p states of
first-row elements (carbon) need ≥ 500 eV; 300 eV suffices for Si, Na, Cl with GPAW's PAW setups."""

VASP_DEFAULTS: dict[str, Any] = {
    "xc": "PBE", "encut": 600.0, "kspacing": 0.25, "kgamma": True, "prec": "Accurate", "ediff": 1e-6,
    "nelm": 200, "ismear": 0, "sigma": 0.05, "ibrion": -1, "nsw": 0, "isif": 2, "lreal": False,
    "lwave": False, "lcharg": False,
}
"""Template of the ``vasp`` oracle (ASE's ``Vasp`` keywords): PBE, 600 eV, KSPACING 0.25 Å⁻¹ (with the 2π,
Γ-centred) as in the paper; single point with forces and stress (ISIF 2). For carbon the paper used
r2SCAN+rVV10: pass ``metagga='R2SCAN', luse_vdw=True, bparam=11.95, cparam=0.0093, xc='PBE'``."""

ESPRESSO_DEFAULTS: dict[str, Any] = {
    "calculation": "scf", "tprnfor": True, "tstress": True, "ecutwfc": 50.0, "ecutrho": 400.0,
    "occupations": "smearing", "smearing": "mv", "degauss": 0.01, "conv_thr": 1e-8, "mixing_beta": 0.4,
}
"""Template of the ``qe`` oracle (pw.x namelist keywords, flat; ASE sorts them into sections): cut-offs in
Ry (50 / 400, fine for SSSP-efficiency pseudopotentials of Si, Na, Cl; check C), Marzari-Vanderbilt smearing
of 0.01 Ry, forces and stress. k-points: ``kspacing`` = 0.25/(2π) Å⁻¹ in ASE's convention (no 2π), the same
grid as VASP's KSPACING 0.25."""

_ESPRESSO_CALCULATOR_KEYS = {"kpts", "kspacing", "koffset", "pseudopotentials", "additional_cards",
                             "crystal_coordinates", "directory", "input_data"}


def _config(name: str) -> str | None:
    """An ASE configuration variable (environment first, then ASE's config file), None if unset."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return os.environ.get(name) or cfg[name]
        except KeyError:
            return None


def _gpaw() -> Any:
    """The ``gpaw`` module, with the PAW setups of the ``gpaw-data`` wheel on its search path."""
    try:
        import gpaw
    except ImportError as exc:
        raise ValueError(
            "the gpaw oracle needs GPAW: apt-get install libxc-dev libopenblas-dev libfftw3-dev, then "
            f"CC=g++ pip install gpaw gpaw-data ({exc})"
        ) from exc
    if not os.environ.get("GPAW_SETUP_PATH"):
        try:
            import gpaw_data

            setups = Path(gpaw_data.datapath())
            if setups not in [Path(p) for p in gpaw.setup_paths]:
                gpaw.setup_paths.append(str(setups))
        except ImportError:  # setups installed some other way (gpaw install-data)
            pass
    return gpaw


def gpaw_parameters(symbols: Sequence[str], **overrides: Any) -> dict[str, Any]:
    """GPAW keyword arguments for structures made of ``symbols``: :data:`GPAW_DEFAULTS` with the cut-off
    raised to the largest :data:`GPAW_MIN_ECUT` of the elements, then ``overrides`` (any GPAW keyword;
    ``ecut=E`` (eV) is short for ``mode={'name': 'pw', 'ecut': E}``)."""
    params = {k: (dict(v) if isinstance(v, dict) else v) for k, v in GPAW_DEFAULTS.items()}
    params["mode"]["ecut"] = max([params["mode"]["ecut"], *(GPAW_MIN_ECUT.get(s, 0.0) for s in symbols)])
    overrides = dict(overrides)
    if "ecut" in overrides:
        ecut = float(overrides.pop("ecut"))
        if "mode" in overrides:
            raise ValueError("give the gpaw oracle either ecut or mode, not both")
        params["mode"] = {"name": "pw", "ecut": ecut}
    params.update(overrides)
    return params


class GPAWOracle(OracleCalculator):
    """GPAW plane-wave DFT with :func:`gpaw_parameters` chosen for each structure's element set; spin-polarised
    (``spinpol=True``, from the structure's initial magnetic moments) where the structure carries non-zero initial
    magnetic moments (``atoms.set_initial_magnetic_moments``; extxyz ``initial_magmoms``), unless ``spinpol`` is
    given.

    One GPAW calculator is kept (and rebuilt when the element set or the spin changes, e.g. Si then C needs a higher
    cut-off, or the log moves to another structure's folder): the forces and stress of a structure come from the
    same converged SCF as its energy, and a failed calculation is never reused. Results: ``energy`` (extrapolated to
    zero smearing) and ``free_energy`` (eV), ``forces`` (eV/Å), and for 3-D periodic cells only ``stress`` (eV/Å³,
    Voigt, ASE sign): a slab's or a molecule's cell stress is averaged over its vacuum box and labels nothing (the
    k-points along a non-periodic axis are 1).
    With ``directory`` set (labelling gives each structure a folder, dael.label.calculation) GPAW's log goes
    to ``directory/gpaw.txt``.
    """

    works_in_folder = True

    def __init__(self, **overrides: Any) -> None:
        self._gpaw = _gpaw()
        gpaw_parameters([], **overrides)  # reject conflicting options now
        super().__init__()
        self.overrides = overrides
        self.dft: Any = None  # the GPAW calculator in use
        self._kind: tuple[frozenset[str], bool, str | None] | None = None  # its elements, spin polarisation, log

    def code_version(self) -> str:
        """'GPAW VERSION' (provenance of the labels)."""
        return f"GPAW {self._gpaw.__version__}"

    def compute(self, atoms: Atoms, properties: Sequence[str]) -> None:
        elements = frozenset(atoms.get_chemical_symbols())
        spin = bool(np.any(atoms.get_initial_magnetic_moments()))
        log = {} if str(self.directory) in ("", ".") or "txt" in self.overrides else \
            {"txt": str(Path(self.directory) / "gpaw.txt")}
        kind = (elements, spin, log.get("txt"))
        if self.dft is None or kind != self._kind:  # the same structure asked for forces after its energy: kept
            extra = {"spinpol": True} if spin and "spinpol" not in self.overrides else {}
            self.dft = self._gpaw.GPAW(**gpaw_parameters(sorted(elements), **extra, **self.overrides, **log))
            self._kind = kind
        work = atoms.copy()
        work.calc = self.dft
        try:
            self.results["energy"] = work.get_potential_energy()
            self.results["free_energy"] = float(self.dft.results.get("free_energy", self.results["energy"]))
            if "forces" in properties:
                self.results["forces"] = work.get_forces()
            if "stress" in properties and atoms.pbc.all():
                self.results["stress"] = work.get_stress()
        except BaseException:
            self.dft = None  # a retry starts afresh, not from a failed SCF
            raise


def dft_keywords(code: str) -> tuple[frozenset[str], bool]:
    """(the parameters the oracle `code` ('gpaw', 'vasp' or 'qe') takes, whether that list is complete). gpaw: GPAW's
    keywords and ``ecut``; qe: the pw.x namelist keywords ASE knows (compare `base_keyword` of a key: lower case,
    no index), ASE's ``Espresso`` settings, ``command``, ``pseudo_dir``; vasp: the tags ASE knows and ``command``,
    ``pp``, not complete (ASE writes any other tag to the INCAR as given)."""
    if code == "gpaw":
        names, complete = gpaw_keywords(_gpaw())
        return names | {"ecut"}, complete
    if code == "vasp":
        from ase.calculators.vasp import Vasp  # ASE's VASP module takes seconds to import

        return vasp_keywords() | accepted_parameters(Vasp)[0] | {"command", "pp"}, False
    return espresso_keywords() | {base_keyword(k) for k in _ESPRESSO_CALCULATOR_KEYS} | {"command", "pseudo_dir"}, True


def _command(oracle: str, given: str | None, variables: Sequence[str], example: str) -> str:
    command = given or next((c for v in variables if (c := _config(v))), None)
    if not command:
        raise ValueError(
            f"the {oracle} oracle needs the command that runs the code: give command='{example}' "
            f"(CLI: --param command='{example}') or set {variables[0]}"
        )
    return command


def vasp_oracle(command: str | None = None, pp: str | None = None, **overrides: Any) -> BaseCalculator:
    """ASE's ``Vasp`` with :data:`VASP_DEFAULTS` updated by ``overrides``.

    command: how VASP runs (e.g. 'mpirun -np 16 vasp_std'; default ASE_VASP_COMMAND / VASP_COMMAND).
    pp: folder with one ``<Element>/POTCAR`` per element (e.g. '/opt/vasp/potpaw_PBE'), or with
    VASP_PP_PATH set a sub-folder name such as 'PBE'. Each process writes its files in ``vasp-<pid>`` unless
    ``directory`` is given (parallel workers must not share one); labelling gives each structure its own
    (dael.label.calculation).
    """
    from ase.calculators.vasp import Vasp  # ASE's VASP module takes seconds to import

    command = _command("vasp", command, ("ASE_VASP_COMMAND", "VASP_COMMAND", "VASP_SCRIPT"),
                       "mpirun -np 16 vasp_std")
    if pp is None and _config("VASP_PP_PATH") is None:
        raise ValueError(
            "the vasp oracle needs the POTCAR files: give pp='/path/to/potpaw_PBE' (a folder with "
            "<Element>/POTCAR; CLI: --param pp=...) or set VASP_PP_PATH"
        )
    if pp is not None and Path(pp).is_absolute() and not Path(pp).is_dir():
        raise ValueError(f"the vasp oracle's pp folder {pp} does not exist")
    params = {**VASP_DEFAULTS, "directory": f"vasp-{os.getpid()}", **overrides}
    if pp is not None:
        params["pp"] = pp
    return Vasp(command=command, **params)


def espresso_oracle(command: str | None = None, pseudo_dir: str | None = None,
                    pseudopotentials: dict[str, str] | None = None, **overrides: Any) -> BaseCalculator:
    """ASE's ``Espresso`` (pw.x) with :data:`ESPRESSO_DEFAULTS` updated by ``overrides``.

    command: how pw.x runs (e.g. 'mpirun -np 16 pw.x'; default ASE_ESPRESSO_COMMAND); pseudo_dir: the
    pseudopotential folder (default ESPRESSO_PSEUDO); pseudopotentials: file name per element, e.g.
    {'Si': 'Si.pbe-n-rrkjus_psl.1.0.0.UPF'} (required). Namelist keywords go flat (``ecutwfc=60``);
    ``kpts``, ``kspacing`` (Å⁻¹, no 2π), ``koffset`` and ``directory`` (default ``espresso-<pid>``) as in ASE.
    """
    from ase.calculators.espresso import Espresso, EspressoProfile  # seconds to import

    command = _command("qe", command, ("ASE_ESPRESSO_COMMAND",), "mpirun -np 16 pw.x")
    pseudo_dir = pseudo_dir or _config("ESPRESSO_PSEUDO")
    if not pseudo_dir or not pseudopotentials:
        raise ValueError(
            "the qe oracle needs pseudopotentials: give pseudo_dir='/path/to/pseudos' (or set "
            "ESPRESSO_PSEUDO) and pseudopotentials={'Si': 'Si.pbe-n-rrkjus_psl.1.0.0.UPF', ...} "
            "(CLI: --param 'pseudopotentials={\"Si\": \"Si.upf\"}')"
        )
    if not Path(pseudo_dir).is_dir():
        raise ValueError(f"the qe oracle's pseudo_dir {pseudo_dir} does not exist")
    outer = {k: v for k, v in overrides.items() if k in _ESPRESSO_CALCULATOR_KEYS}
    namelist = {**ESPRESSO_DEFAULTS, **outer.pop("input_data", {}),
                **{k: v for k, v in overrides.items() if k not in _ESPRESSO_CALCULATOR_KEYS}}
    if "kpts" not in outer:
        outer.setdefault("kspacing", 0.25 / (2 * np.pi))
    outer.setdefault("directory", f"espresso-{os.getpid()}")
    return Espresso(profile=EspressoProfile(command=command, pseudo_dir=pseudo_dir),
                    pseudopotentials=dict(pseudopotentials), input_data=namelist, **outer)
