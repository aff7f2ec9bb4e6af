"""The numeric core, over the Rust extension `dael._core`: neighbour lists, OMFP fingerprints and their
gradients, global and local entropies, the dual covariance state and the fixed fingerprint length (natx).
Every hot loop runs in Rust (rayon, GIL released); these modules check inputs and shape the arrays.
"""

from dael.numeric.batch import Batch
from dael.numeric.dual import DualEntropy
from dael.numeric.entropy import GlobalEntropy, knn_entropy, local_entropy
from dael.numeric.fingerprint import Fingerprints, FingerprintSettings, fingerprint
from dael.numeric.neighbors import NeighborLists, ase_neighbor_list, neighbor_list, neighbor_lists

__all__ = ["ase_neighbor_list", "Batch", "DualEntropy", "fingerprint", "Fingerprints", "FingerprintSettings",
           "GlobalEntropy", "knn_entropy", "local_entropy", "neighbor_list", "neighbor_lists", "NeighborLists"]
