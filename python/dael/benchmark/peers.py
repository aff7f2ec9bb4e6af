"""Other groups' selection methods on the benchmark's pools (`dael benchmark --strategies peers`):

- direct: DIRECT-style stratified sampling (Qi et al. 2024): PCA of per-configuration fingerprints, k-means with
  k = N, the structure nearest each centroid.
- quests-msc / quests-fps / quests-kmeans: the QUESTS package's own compression methods (Schwalbe-Koda et al.;
  minimum set cover, farthest-point sampling, k-means) on its own descriptors (`pip install 'dael[peers]'`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.cluster.vq import kmeans2

from dael.benchmark.strategies import Pick, Pools, Sets, Strategy, prefixes, register


def _config_vectors(pools: Pools) -> tuple[np.ndarray, np.ndarray]:
    cand = pools.candidates["entropy"]
    fps = pools.fps["entropy"]
    return cand, np.array([fps.of(int(i)).mean(axis=0) for i in cand])


def direct(pools: Pools, sizes: Sequence[int], rng: np.random.Generator) -> Sets:
    """PCA (components explaining 99 % of the variance) → k-means (k = N) → the member nearest each centroid."""
    cand, x = _config_vectors(pools)
    x = x - x.mean(axis=0)
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    k = int(np.searchsorted(np.cumsum(s**2) / np.sum(s**2), 0.99)) + 1
    z = u[:, :k] * s[:k]
    z /= z.std(axis=0) + 1e-12
    out: Sets = {}
    for n in sizes:
        if n > len(cand):
            continue
        centroids, labels = kmeans2(z, n, minit="++", seed=rng)
        chosen = []
        for c in np.unique(labels):
            members = np.flatnonzero(labels == c)
            chosen.append(members[np.argmin(np.linalg.norm(z[members] - centroids[c], axis=1))])
        out[n] = [f"e{cand[i]}" for i in chosen]
    return out


def quests(method: str) -> Pick:
    """QUESTS' `method` ('msc', 'fps' or 'kmeans') over the entropy pool."""
    def pick(pools: Pools, sizes: Sequence[int], rng: np.random.Generator) -> Sets:
        from quests.compression.baseline import k_means
        from quests.compression.fps import fps, msc
        from quests.descriptor import get_descriptors
        from quests.entropy import entropy

        cand = pools.candidates["entropy"]
        desc = [get_descriptors([pools.entropy[i]]) for i in cand]
        entropies = np.array([entropy(x) for x in desc])
        np.random.seed(int(rng.integers(2**31)))  # noqa: NPY002 (QUESTS draws from numpy's global generator)
        if method == "kmeans":
            return {n: [f"e{cand[i]}" for i in k_means(desc, entropies, n)] for n in sizes if n <= len(cand)}
        order = (msc if method == "msc" else fps)(desc, entropies, max(sizes))
        return prefixes([f"e{cand[i]}" for i in order], sizes)

    return pick


register("direct", Strategy(direct, "peer", "#bcbd22", "DIRECT: PCA + k-means, nearest to each centroid"))
for _method, _colour, _what in (("msc", "#e377c2", "minimum set cover"), ("fps", "#7f7f7f", "farthest points"),
                                ("kmeans", "#ff7f0e", "k-means")):
    register(f"quests-{_method}", Strategy(quests(_method), "peer", _colour, f"QUESTS {_what}", package="quests",
                                           extra="peers"))
