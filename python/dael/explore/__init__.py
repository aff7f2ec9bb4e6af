"""The explorer: entropy-biased MD (bias calculators with exact forces and stress, NVT/NPT), the grid of
phases × pressures × temperatures and its order, the energy window on candidates, and the MD stability of a
trained potential.
"""

from dael.explore.anchors import anchors
from dael.explore.explorer import Explorer, grid
from dael.explore.md import GlobalEntropyBias, LocalEntropyBias, MDSettings

__all__ = ["anchors", "Explorer", "GlobalEntropyBias", "grid", "LocalEntropyBias", "MDSettings"]
