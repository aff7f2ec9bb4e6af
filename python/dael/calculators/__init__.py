"""Calculators by name (`registry`): the reference stand-in oracle (LAMMPS), the DFT oracles (GPAW,
VASP, Quantum ESPRESSO), foundation models and trained models loaded as ASE calculators (`deploy`).
"""

from dael.calculators.registry import check_calculator, make_calculator

__all__ = ["check_calculator", "make_calculator"]
