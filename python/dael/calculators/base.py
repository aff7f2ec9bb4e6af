"""The base of dael's oracles: an ASE calculator that computes one structure at a time.

Results: ``energy`` and ``free_energy`` (eV), ``forces`` (eV/Å), ``stress`` (eV/Å³, Voigt, ASE sign).
"""

from __future__ import annotations

from collections.abc import Sequence

from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes


class OracleCalculator(Calculator):
    """ASE's calculate() bookkeeping (parameters, atoms, cached results), then `compute`."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: Sequence[str] = ("energy",),
        system_changes: Sequence[str] = tuple(all_changes),
    ) -> None:
        super().calculate(atoms, properties, system_changes)
        assert self.atoms is not None
        self.compute(self.atoms, properties)

    def compute(self, atoms: Atoms, properties: Sequence[str]) -> None:
        """Fill ``self.results`` for ``atoms`` (the calculator's own copy)."""
        raise NotImplementedError
