"""Entropies: gains equal numpy's slogdet of the recomputed covariance, greedy/streaming selection equal
a plain numpy reference, kNN distances equal scipy's cKDTree, local entropy and gradients equal finite
differences."""

import numpy as np
import pytest
from scipy.spatial import cKDTree
from scipy.special import digamma, gammaln

import dael
from dael.numeric.entropy import GlobalEntropy, knn_distances, knn_entropy, local_entropy, local_entropy_gradient

from conftest import si8_cells, skewed

EPS = 1e-3


def ref_logdet(samples: np.ndarray, d: int, eps: float = EPS) -> float:
    """log det of the population covariance + εI, recomputed from scratch."""
    if len(samples) == 0:
        return d * np.log(eps)
    mu = samples.mean(axis=0)
    cov = (samples - mu).T @ (samples - mu) / len(samples) + eps * np.eye(d)
    return float(np.linalg.slogdet(cov)[1])


@pytest.fixture(scope="module")
def si_pool():
    """Per-atom fingerprints (cutoff 4.5 Å, natx 32) of 24 rattled/strained 8-atom Si cells."""
    return dael.fingerprint(si8_cells(24, seed=5, strain=0.05, rattle=0.15), cutoff=4.5, natx=32)


def blocks(fps):
    return [fps.of(k) for k in range(len(fps))]


@pytest.mark.parametrize("mode", ["atom", "config"])
@pytest.mark.parametrize("n_data", [0, 1, 3, 12])
def test_gain_equals_recomputed_slogdet(si_pool, mode, n_data):
    bs = blocks(si_pool)
    state = GlobalEntropy(mode)
    for b in bs[:n_data]:
        state.add(b)
    rows = lambda b: b if mode == "atom" else b.mean(axis=0, keepdims=True)  # noqa: E731
    data = np.concatenate([rows(b) for b in bs[:n_data]]) if n_data else np.zeros((0, 32))
    d = data.shape[1]
    assert state.n == len(data)
    if n_data:
        assert state.logdet == pytest.approx(ref_logdet(data, d), rel=1e-12)
        np.testing.assert_allclose(state.covariance, np.cov(data.T, bias=True) + EPS * np.eye(d), rtol=1e-12,
                                   atol=1e-15)
    gains = state.gains(bs[n_data:])
    for b, g in zip(bs[n_data:], gains, strict=True):
        expected = ref_logdet(np.concatenate([data, rows(b)]), d) - ref_logdet(data, d)
        assert g == pytest.approx(expected, rel=1e-9, abs=1e-11)
    assert state.gain(bs[-1]) == pytest.approx(gains[-1], rel=1e-14)


def test_gains_from_fingerprints_batch_match_blocks(si_pool):
    for mode in ("atom", "config"):
        a, b = GlobalEntropy(mode), GlobalEntropy(mode)
        a.add(si_pool.of(0))
        b.add(si_pool.of(0))
        np.testing.assert_allclose(a.gains(si_pool), b.gains(blocks(si_pool)), rtol=1e-12)


def ref_greedy(cands: list[np.ndarray], data: np.ndarray, budget: int, min_gain: float) -> list[int]:
    picks: list[int] = []
    d = cands[0].shape[1]
    while len(picks) < budget:
        base = ref_logdet(data, d)
        gains = [-np.inf if c in picks else ref_logdet(np.concatenate([data, x]), d) - base
                 for c, x in enumerate(cands)]
        best = int(np.argmax(gains))
        if gains[best] <= min_gain:
            break
        picks.append(best)
        data = np.concatenate([data, cands[best]])
    return picks


@pytest.mark.parametrize("lazy", [False, True])
def test_greedy_matches_numpy_reference(si_pool, lazy):
    bs = blocks(si_pool)
    state = GlobalEntropy("atom")
    state.add(bs[0])
    picks, gains = state.greedy(bs[1:], budget=8, min_gain=0.0, lazy=lazy)
    assert list(picks) == ref_greedy(bs[1:], bs[0], 8, 0.0)
    assert np.all(np.diff(gains) <= 1e-12)  # gains shrink as the set grows
    assert len(picks) >= 3 and state.n == 8 * (1 + len(picks))


def test_greedy_respects_min_gain_and_config_seed(si_pool):
    x = si_pool.values.reshape(len(si_pool), 8, -1).mean(axis=1)
    state = GlobalEntropy("config")
    picks, gains = state.greedy(list(x[:, None, :]), budget=50, min_gain=0.5)
    mean = x.mean(axis=0)
    assert picks[0] == int(np.argmax(((x - mean) ** 2).sum(axis=1)))  # seed: farthest from the pool mean
    assert np.all(gains[1:] > 0.5) and len(picks) < len(x)
    rest = state.gains([x[c][None] for c in range(len(x)) if c not in set(picks)])
    assert np.all(rest <= 0.5)


def test_stream_matches_numpy_reference(si_pool):
    bs = blocks(si_pool)
    state = GlobalEntropy("atom")
    gains, accepted = state.stream(bs, min_gain=2.0)
    data = np.zeros((0, 32))
    for b, g, a in zip(bs, gains, accepted, strict=True):
        expected = ref_logdet(np.concatenate([data, b]), 32) - ref_logdet(data, 32)
        assert g == pytest.approx(expected, rel=1e-9)
        assert a == (g > 2.0 or len(data) < 2)
        if a:
            data = np.concatenate([data, b])
    assert 1 < accepted.sum() < len(bs)
    _, accepted = GlobalEntropy("atom").stream(bs, min_gain=0.0, budget=3)
    assert accepted.sum() == 3


def test_lazy_greedy_equals_exact_on_ten_thousand_candidates():
    rng = np.random.default_rng(1)
    # correlated, heavy-tailed 50-d points like fingerprints
    x = rng.standard_t(4, size=(10_000, 50)) @ rng.standard_normal((50, 50)) * 0.1
    cands = list(x[:, None, :])
    exact, lazy = GlobalEntropy("config"), GlobalEntropy("config")
    pe, _ = exact.greedy(cands, budget=60, min_gain=-np.inf)
    pl, _ = lazy.greedy(cands, budget=60, min_gain=-np.inf, lazy=True)
    np.testing.assert_array_equal(pl, pe)
    assert lazy.logdet == pytest.approx(exact.logdet, rel=1e-12)


def test_logdet_with_gradient_finite_differences(si_pool):
    bs = blocks(si_pool)
    for mode in ("atom", "config"):
        state = GlobalEntropy(mode)
        for b in bs[:5]:
            state.add(b)
        x = bs[7].copy()
        h, g = state.logdet_with(x)
        after = state.copy()
        after.add(x)
        assert h == pytest.approx(after.logdet, rel=1e-12)
        for i, j in [(0, 0), (3, 2), (7, 5)]:
            xp, xm = x.copy(), x.copy()
            xp[i, j] += 1e-6
            xm[i, j] -= 1e-6
            fd = (state.logdet_with(xp)[0] - state.logdet_with(xm)[0]) / 2e-6
            assert g[i, j] == pytest.approx(fd, rel=1e-5, abs=1e-6)


def test_save_load_and_settings_guard(si_pool, tmp_path):
    state = GlobalEntropy("config")
    state.add(si_pool)
    state.save(tmp_path / "state.npz")
    back = GlobalEntropy.load(tmp_path / "state.npz")
    assert (back.mode, back.n, back.settings) == ("config", len(si_pool), si_pool.settings)
    assert back.logdet == state.logdet
    np.testing.assert_array_equal(back.gains(si_pool), state.gains(si_pool))
    other = dael.fingerprint([si_pool_cell()], cutoff=4.0, natx=32)
    with pytest.raises(ValueError, match="cannot join a state built with"):
        back.gains(other)
    with pytest.raises(ValueError, match="not a dael entropy state"):
        (tmp_path / "bad.npz").write_text("nonsense")
        GlobalEntropy.load(tmp_path / "bad.npz")


def si_pool_cell():
    from ase.build import bulk

    return bulk("Si", "diamond", a=5.43, cubic=True)


def test_bad_input_is_a_clear_error():
    state = GlobalEntropy("atom")
    with pytest.raises(ValueError, match="non-finite value at row 1"):
        state.add(np.array([[1.0, 2.0], [np.nan, 0.0]]))
    state.add(np.ones((2, 3)))
    with pytest.raises(ValueError, match="dimension 2 do not match the state's dimension 3"):
        state.gain(np.ones((2, 2)))
    with pytest.raises(ValueError, match="mode must be"):
        GlobalEntropy("atoms")
    with pytest.raises(ValueError, match="eps must be positive"):
        GlobalEntropy(eps=0)
    with pytest.raises(ValueError, match="k must be between 1 and N - 1"):
        knn_entropy(np.ones((3, 2)), k=3)


@pytest.mark.parametrize("k", [1, 4])
def test_knn_distances_equal_ckdtree(k):
    rng = np.random.default_rng(k)
    x = rng.standard_normal((3000, 12)) @ rng.standard_normal((12, 12))
    x[100:110] = x[5]  # duplicates
    expected = cKDTree(x).query(x, k=k + 1)[0][:, k]
    np.testing.assert_allclose(knn_distances(x, k), expected, rtol=1e-10, atol=1e-12)


def test_knn_entropy_formula_and_gaussian_limit():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((20_000, 3))
    r = cKDTree(x).query(x, k=3)[0][:, 2]
    n, d = x.shape
    expected = digamma(n) - digamma(2) + d / 2 * np.log(np.pi) - gammaln(d / 2 + 1) + d * np.mean(np.log(r))
    assert knn_entropy(x, k=2) == pytest.approx(expected, rel=1e-10)
    assert knn_entropy(x, k=2) == pytest.approx(d / 2 * np.log(2 * np.pi * np.e), abs=0.05)


def ref_local_entropy(fp: np.ndarray) -> float:
    n = len(fp)
    dist = np.linalg.norm(fp[:, None] - fp[None], axis=-1) + np.diag(np.full(n, np.inf))
    return float(np.mean(np.log(n * np.maximum(dist.min(axis=1), 1e-8))))


def test_local_entropy_and_gradient(si64, nacl64, rng):
    for atoms in (skewed(si64, rng, rattle=0.1), skewed(nacl64, rng, rattle=0.1)):
        fps = dael.fingerprint(atoms, cutoff=4.0, natx=None, gradients=True, stress=True)
        s, dr, de = local_entropy_gradient(fps)
        assert s == pytest.approx(ref_local_entropy(fps.of(0)), rel=1e-12)
        assert local_entropy(fps.of(0)) == s
        natx, h = fps.settings.natx, 1e-6

        def s_at(a, natx=natx):
            return ref_local_entropy(dael.fingerprint(a, cutoff=4.0, natx=natx).of(0))

        for i, c in [(0, 0), (17, 1), (40, 2)]:
            p, m = atoms.copy(), atoms.copy()
            p.positions[i, c] += h
            m.positions[i, c] -= h
            assert dr[i, c] == pytest.approx((s_at(p) - s_at(m)) / (2 * h), rel=1e-5, abs=1e-7)
        for v, (a, b) in enumerate([(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]):
            eps = np.zeros((3, 3))
            eps[a, b] = eps[b, a] = h
            p, m = atoms.copy(), atoms.copy()
            p.set_cell(atoms.cell.array @ (np.eye(3) + eps), scale_atoms=True)
            m.set_cell(atoms.cell.array @ (np.eye(3) - eps), scale_atoms=True)
            fd = (s_at(p) - s_at(m)) / (2 * h) / (1 if a == b else 2)  # ASE's convention: by one of ε_ab, ε_ba
            assert de[v] == pytest.approx(fd, rel=1e-5, abs=1e-7)


def test_local_entropy_of_perfect_crystal_is_floored(si64):
    fp = dael.fingerprint(si64, cutoff=4.0, natx=None).of(0)
    assert local_entropy(fp) == pytest.approx(np.log(64 * 1e-8), rel=1e-6)


def test_select_by_gain_with_dataset_anchors_and_methods(si_pool, rng):
    from ase.build import bulk

    si8 = bulk("Si", "diamond", a=5.43, cubic=True)
    cands = [skewed(si8, rng, strain=0.04, rattle=r) for r in np.linspace(0.01, 0.3, 30)]
    data = [skewed(si8, rng, strain=0.01, rattle=0.02) for _ in range(3)]
    anchors = [skewed(si8, rng, strain=0.0, rattle=0.01) for _ in range(6)]
    kw = dict(cutoff=4.5, natx=32)
    sel = dael.select(cands, dataset=data, budget=10, min_gain=0.0, mode="atom", anchor_fraction=0.2,
                      anchors=anchors, **kw)
    assert len(sel.anchors) == 2 and 5 <= len(sel.indices) <= 8  # stops once no gain is positive
    # the same picks by hand: dataset, then greedy anchors, then greedy candidates
    fp = lambda s: dael.fingerprint(s, **kw)  # noqa: E731
    state = GlobalEntropy("atom")
    state.add(fp(data))
    assert sel.logdet_before == pytest.approx(state.logdet, rel=1e-12)
    a, _ = state.greedy(fp(anchors), 2, min_gain=-np.inf)
    c, g = state.greedy(fp(cands), 8, min_gain=0.0)
    np.testing.assert_array_equal(sel.anchors, a)
    np.testing.assert_array_equal(sel.indices, c)
    assert sel.logdet_after == pytest.approx(state.logdet, rel=1e-12) and sel.logdet_after > sel.logdet_before
    # the most rattled candidates carry the most information
    assert np.mean(sel.indices) > 15
    lazy = dael.select(cands, dataset=data, budget=8, min_gain=0.0, method="lazy", **kw)
    exact = dael.select(cands, dataset=data, budget=8, min_gain=0.0, method="exact", **kw)
    np.testing.assert_array_equal(lazy.indices, exact.indices)
    stream = dael.select(cands, budget=30, min_gain=1.0, method="stream", mode="config", **kw)
    assert 0 < len(stream) < 30 and np.all(stream.gains[2:] > 1.0)
    with pytest.raises(ValueError, match="needs anchors="):
        dael.select(cands, budget=5, anchor_fraction=0.2, **kw)
    with pytest.raises(ValueError, match="no candidates"):
        dael.select([], budget=5, **kw)
