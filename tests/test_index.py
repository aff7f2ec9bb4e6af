"""The FAISS novelty index: exact distances equal numpy's, HNSW recall, settings guard, persistence."""

import numpy as np
import pytest
from ase.build import bulk

import dael
from dael.selection.index import NoveltyIndex

from conftest import si8_cells

pytest.importorskip("faiss")


@pytest.fixture(scope="module")
def fps():
    return dael.fingerprint(si8_cells(40, seed=4, strain=0.03, rattle=0.1), cutoff=4.5, natx=32)


@pytest.mark.parametrize("mode", ["atom", "config"])
def test_flat_distances_equal_numpy_and_novelty(fps, mode):
    data, query = fps.subset(0, 30), fps.subset(30, 40)
    index = NoveltyIndex(fps.settings, mode=mode)
    index.add(data)
    assert index.exact and len(index) == (240 if mode == "atom" else 30)
    xd, xq = index.vectors(data).astype(np.float64), index.vectors(query).astype(np.float64)
    dist, ids = index.query(query, k=3)
    brute = np.sort(np.linalg.norm(xq[:, None] - xd[None], axis=-1), axis=1)[:, :3]
    np.testing.assert_allclose(dist, brute, rtol=1e-4, atol=1e-5)
    novelty = index.novelty(query)
    per_structure = brute[:, 0] if mode == "config" else brute[:, 0].reshape(10, 8).max(axis=1)
    np.testing.assert_allclose(novelty, per_structure, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(index.novelty(data), 0.0, atol=1e-3)


def test_auto_switches_to_hnsw_with_high_recall():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3000, 32)) @ rng.standard_normal((32, 32))
    settings = dael.FingerprintSettings(5.0, 32, "s")
    exact, auto = NoveltyIndex(settings, kind="flat"), NoveltyIndex(settings, flat_limit=1000)
    for part in np.array_split(x, 3):
        exact.add(part)
        auto.add(part)
    assert not auto.exact and len(auto) == 3000
    q = rng.standard_normal((200, 32)) @ rng.standard_normal((32, 32))
    recall = np.mean(exact.query(q)[1][:, 0] == auto.query(q)[1][:, 0])
    assert recall >= 0.95


def test_save_load_and_settings_guard(fps, tmp_path):
    index = NoveltyIndex(fps.settings, mode="config")
    index.add(fps.subset(0, 20))
    index.save(tmp_path / "idx")
    back = NoveltyIndex.load(tmp_path / "idx", settings=fps.settings)
    np.testing.assert_array_equal(back.query(fps)[0], index.query(fps)[0])
    other = dael.FingerprintSettings(4.0, 32, "s")
    with pytest.raises(ValueError, match="was built with"):
        NoveltyIndex.load(tmp_path / "idx", settings=other)
    wrong = dael.fingerprint(bulk("Si", "diamond", a=5.43, cubic=True), cutoff=4.0, natx=32)
    with pytest.raises(ValueError, match="cannot be used with an index built"):
        back.add(wrong)
    with pytest.raises(ValueError, match="not a dael novelty index"):
        NoveltyIndex.load(tmp_path / "nothing")
    empty = NoveltyIndex(fps.settings)
    assert np.all(np.isinf(empty.query(fps)[0]))
