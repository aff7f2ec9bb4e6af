"""natx never ends a run: a sphere larger than the state's natx grows the state (no stored sample or gain changes)
or, in a pool screen, refuses that structure alone."""

import numpy as np
import pytest
from ase.build import bulk

import dael
from dael.numeric.dual import DualEntropy
from dael.numeric.fingerprint import NatxError
from dael.numeric.natx import NATX_MARGIN, fingerprint_for

from conftest import skewed


def si(rng, n, compress=1.0):
    cells = [skewed(bulk("Si", "diamond", a=5.43, cubic=True), rng, strain=0.02, rattle=0.1) for _ in range(n)]
    for a in cells:
        a.set_cell(a.cell[:] * compress, scale_atoms=True)
    return cells


def test_a_sphere_beyond_natx_names_the_natx_it_needs(rng):
    with pytest.raises(NatxError, match="more than natx = 10") as caught:
        dael.fingerprint(si(rng, 1), cutoff=5.0, natx=10)
    assert caught.value.needed == dael.fingerprint(si(rng, 1), cutoff=5.0, natx=None).settings.natx
    assert isinstance(caught.value, ValueError)  # callers that catch ValueError still do


@pytest.mark.parametrize("mode", ["atom", "config"])
def test_growing_a_state_changes_no_gain_and_shifts_h_by_the_padding(mode, rng):
    data, cands = si(rng, 6), si(rng, 5, compress=0.97)
    state = dael.GlobalEntropy(mode, 1e-3, dael.FingerprintSettings(5.0, 40, "s"))
    state.add(dael.fingerprint(data, cutoff=5.0, natx=40))
    gains = state.gains(dael.fingerprint(cands, cutoff=5.0, natx=40))
    before = state.logdet
    state.grow(60)
    assert state.settings.natx == 60 and state.dim == 60 and state.n == (6 * 8 if mode == "atom" else 6)
    assert state.logdet == pytest.approx(before + 20 * np.log(1e-3), abs=1e-8)
    np.testing.assert_allclose(state.gains(dael.fingerprint(cands, cutoff=5.0, natx=60)), gains, atol=1e-9)
    state.grow(50)  # never shrinks
    assert state.settings.natx == 60


def test_fingerprint_for_grows_a_dual_state_to_the_margin_over_the_largest_sphere(rng):
    state = DualEntropy(1e-3, dael.FingerprintSettings(5.0, 12, "s"))
    dense = si(rng, 2, compress=0.9)
    needed = dael.fingerprint(dense, cutoff=5.0, natx=None).settings.natx
    fps = fingerprint_for(state, dense)
    assert state.settings.natx == state.config.settings.natx == int(np.ceil(NATX_MARGIN * needed))
    assert fps.settings == state.settings
    state.add(fps)
    state.atom.grow(state.settings.natx + 5)  # the MD bias grows the per-atom state alone
    state.add(fingerprint_for(state, si(rng, 1)))  # the dual state aligns both before it adds
    assert state.atom.dim == state.config.dim


def test_the_streaming_filter_grows_the_state_for_a_collapsed_snapshot(rng):
    from dael.selection.stream import stream_filter

    state = DualEntropy(1e-3, dael.FingerprintSettings(5.0, 30, "s"))
    snaps = si(rng, 3) + si(rng, 1, compress=0.8)  # a collapsed cell: more than 30 atoms within 5 Å
    gains, accepted, inside = stream_filter(state, snaps, window=None, min_gain=-np.inf)
    assert inside.all() and accepted.all() and np.isfinite(gains).all() and state.settings.natx > 30


def test_the_screen_refuses_only_the_structures_beyond_natx(rng, tmp_path):
    from ase.io import write

    from dael.selection.screen import Screen, shortfall

    pool = tmp_path / "pool.extxyz"
    write(pool, si(rng, 4) + si(rng, 1, compress=0.8) + si(rng, 3), format="extxyz")
    settings = dael.FingerprintSettings(5.0, 30, "s")
    state = dael.GlobalEntropy("atom", 1e-3, settings)
    result = Screen([pool], tmp_path / "out.extxyz", state, settings, budget=8, min_gain=-np.inf,
                    chunk=3).run()
    assert result.dense == 1 and result.seen == 8 and len(result.picks) == 7 and (0, 4) not in result.picks
    assert "refused for a sphere larger than natx" in shortfall(result, 8, -np.inf)


def test_the_filter_command_says_what_it_refused(rng, tmp_path):
    from ase.io import write
    from typer.testing import CliRunner

    from dael.cli import app

    pool = tmp_path / "pool.extxyz"
    write(pool, si(rng, 3) + si(rng, 1, compress=0.8), format="extxyz")
    res = CliRunner().invoke(app, ["filter", str(pool), "--natx", "30", "--budget", "4", "--min-gain", "-1e9",
                                   "--out", str(tmp_path / "kept.extxyz")])
    assert res.exit_code == 0, res.output
    assert "1 structures had a fingerprint sphere of more than natx = 30" in res.output
