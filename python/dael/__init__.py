"""dael: dataset-aware, entropy-maximized active learning of machine-learned interatomic potentials.

The numeric core (neighbour lists, fingerprints, entropies) is Rust (`dael._core`); this package
holds the orchestration around it.
"""

from dael.campaign import Campaign, run_campaign
from dael.numeric.batch import Batch
from dael.numeric.entropy import GlobalEntropy, knn_entropy, local_entropy
from dael.numeric.fingerprint import Fingerprints, FingerprintSettings, fingerprint
from dael.numeric.neighbors import NeighborLists, ase_neighbor_list, neighbor_list, neighbor_lists
from dael.selection.greedy import Selection, select
from dael.util.threads import get_num_threads, set_num_threads

__version__ = "0.1.0"

__all__ = [
    "ase_neighbor_list",
    "Batch",
    "Campaign",
    "FingerprintSettings",
    "Fingerprints",
    "fingerprint",
    "GlobalEntropy",
    "knn_entropy",
    "local_entropy",
    "NeighborLists",
    "get_num_threads",
    "neighbor_list",
    "neighbor_lists",
    "run_campaign",
    "select",
    "Selection",
    "set_num_threads",
]
