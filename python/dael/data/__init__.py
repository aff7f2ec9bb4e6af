"""Structures in and out: the one reader of structure files (anything ASE reads, and dael datasets) and the
labelled dataset, an ASE SQLite database that never loses a structure.
"""

from dael.data.dataset import Dataset, structure_hash
from dael.data.structures import iter_structures, read_structures

__all__ = ["Dataset", "iter_structures", "read_structures", "structure_hash"]
