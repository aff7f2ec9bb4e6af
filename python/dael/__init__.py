"""dael: dataset-aware, entropy-maximized active learning of machine-learned interatomic potentials.

The numeric core (neighbour lists, fingerprints, entropies) is Rust (`dael._core`); this package
holds the orchestration around it.
"""

from dael.fingerprint import Fingerprints, FingerprintSettings, fingerprint
from dael.neighbors import NeighborLists, neighbor_list, neighbor_lists
from dael.structures import Batch
from dael.threads import get_num_threads, set_num_threads

__version__ = "0.1.0"

__all__ = [
    "Batch",
    "FingerprintSettings",
    "Fingerprints",
    "fingerprint",
    "NeighborLists",
    "get_num_threads",
    "neighbor_list",
    "neighbor_lists",
    "set_num_threads",
]
