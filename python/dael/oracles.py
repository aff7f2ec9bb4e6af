"""Oracles: the calculators that label the structures active learning selects, built by name.

``reference`` (:mod:`dael.reference`): published potentials run by LAMMPS, a stand-in for DFT, cheap and
deterministic (the default). ``gpaw``, ``vasp``, ``qe`` (:mod:`dael.dft`): real DFT. ``ase:module:Class``:
any ASE calculator.
"""

from __future__ import annotations

import importlib
from typing import Any

from ase.calculators.calculator import BaseCalculator

from dael.dft import GPAWOracle, espresso_oracle, vasp_oracle
from dael.reference import ReferenceCalculator

__all__ = ["make_oracle"]

_DFT_ORACLES = {"gpaw": GPAWOracle, "vasp": vasp_oracle, "qe": espresso_oracle, "espresso": espresso_oracle,
                "quantum-espresso": espresso_oracle}


def make_oracle(name: str, **params: Any) -> BaseCalculator:
    """Build an oracle by name.

    - ``"reference"``: :class:`ReferenceCalculator` (optional ``system="Si" | "C" | "NaCl"``; without
      it the system follows the element set of each structure).
    - ``"gpaw"``: :class:`GPAWOracle` (:data:`GPAW_DEFAULTS`; ``params`` override them, e.g. ``ecut=500``).
    - ``"vasp"``: :func:`vasp_oracle` (:data:`VASP_DEFAULTS`; needs ``command`` and ``pp``).
    - ``"qe"`` (or ``"espresso"``): :func:`espresso_oracle` (:data:`ESPRESSO_DEFAULTS`; needs ``command``,
      ``pseudo_dir``, ``pseudopotentials``).
    - ``"ase:module.path:ClassName"``: any ASE calculator class, constructed as ``ClassName(**params)``,
      e.g. ``make_oracle("ase:ase.calculators.emt:EMT")``.

    Unknown names and missing or invalid parameters raise ValueError.
    """
    key = name.strip()
    if key.lower() == "reference":
        unknown = sorted(set(params) - {"system"})
        if unknown:
            raise ValueError(f"the reference oracle takes only 'system'; got {unknown}")
        return ReferenceCalculator(**params)
    if key.lower() in _DFT_ORACLES:
        try:
            return _DFT_ORACLES[key.lower()](**params)
        except TypeError as exc:  # a parameter the calculator does not take
            raise ValueError(f"oracle {name!r}: {exc}") from exc
    if key.startswith("ase:"):
        parts = key.split(":")
        if len(parts) != 3 or not parts[1] or not parts[2]:
            raise ValueError(f"oracle {name!r}: expected the form 'ase:module.path:ClassName'")
        _, module_name, class_name = parts
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ValueError(f"oracle {name!r}: cannot import module {module_name!r} ({exc})") from exc
        cls = getattr(module, class_name, None)
        if cls is None:
            raise ValueError(f"oracle {name!r}: module {module_name!r} has no attribute {class_name!r}")
        if not (isinstance(cls, type) and issubclass(cls, BaseCalculator)):
            raise ValueError(f"oracle {name!r}: {module_name}.{class_name} is not an ASE calculator class")
        return cls(**params)
    raise ValueError(
        f"unknown oracle {name!r}; use 'reference' (options: system=Si|C|NaCl), 'gpaw', 'vasp', 'qe', or "
        "'ase:module.path:ClassName' for any ASE calculator"
    )
