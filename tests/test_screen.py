"""Pool screening: streaming and greedy filters equal the in-memory selection, resume after an interruption
without losing or repeating work, run on Dask, and refuse bad input with one clear error."""

import numpy as np
import pytest
from ase.build import bulk
from ase.db import connect
from ase.io import read, write
from typer.testing import CliRunner

import dael
from dael.cli import app
from dael.numeric.entropy import GlobalEntropy
from dael.selection.index import NoveltyIndex
from dael.selection.screen import Screen

from conftest import skewed

SETTINGS = dael.FingerprintSettings(4.5, 40, "s")


@pytest.fixture(scope="module")
def pool_file(tmp_path_factory):
    rng = np.random.default_rng(9)
    si8 = bulk("Si", "diamond", a=5.43, cubic=True)
    structures = [skewed(si8, rng, strain=0.03, rattle=r) for r in rng.uniform(0.01, 0.3, 240)]
    path = tmp_path_factory.mktemp("pool") / "pool.extxyz"
    write(path, structures)
    return path


def fresh_state(mode="atom"):
    return GlobalEntropy(mode, settings=SETTINGS)


class Interrupt(Exception):
    pass


def interrupt_after(n_chunks):
    calls = []

    def progress(seen, kept):
        calls.append(seen)
        if len(calls) == n_chunks:
            raise Interrupt

    return progress


def test_stream_equals_in_memory_and_resumes(pool_file, tmp_path):
    structures = read(pool_file, ":")
    expected = fresh_state()
    gains, accepted = expected.stream(dael.fingerprint(structures, cutoff=4.5, natx=40), 0.5, budget=30)
    out = tmp_path / "sel.extxyz"
    screen = Screen([pool_file], out, fresh_state(), SETTINGS, budget=30, min_gain=0.5, chunk=50)
    with pytest.raises(Interrupt):
        screen.run(interrupt_after(2))
    assert not out.exists() and len(list((tmp_path / "sel.extxyz.work").glob("chunk-*.npz"))) == 2
    result = Screen([pool_file], out, fresh_state(), SETTINGS, budget=30, min_gain=0.5, chunk=50).run()
    assert [i for _, i in result.picks] == list(np.flatnonzero(accepted))
    np.testing.assert_allclose(result.gains, gains[accepted], rtol=1e-12)
    assert result.state.logdet == pytest.approx(expected.logdet, rel=1e-12)
    picked = read(out, ":")
    assert [a.info["pool_frame"] for a in picked] == list(np.flatnonzero(accepted))
    np.testing.assert_allclose(picked[3].positions, structures[picked[3].info["pool_frame"]].positions)
    assert not (tmp_path / "sel.extxyz.work").exists()  # removed once finished


def test_resume_is_keyed_on_content_and_options(pool_file, tmp_path):
    """A rerun with other pool contents or options starts over and says so; the same one resumes."""
    pool = tmp_path / "p.extxyz"
    pool.write_bytes(pool_file.read_bytes())
    out, said = tmp_path / "sel.extxyz", []
    kw = dict(budget=30, min_gain=0.5, chunk=50)
    with pytest.raises(Interrupt):
        Screen([pool], out, fresh_state(), SETTINGS, **kw).run(interrupt_after(2))
    Screen([pool], out, fresh_state(), SETTINGS, budget=31, min_gain=0.5, chunk=50).run(say=said.append)
    assert "starting over" in said[0] and out.exists()
    with pytest.raises(Interrupt):
        Screen([pool], out, fresh_state(), SETTINGS, **kw).run(interrupt_after(2))
    write(pool, read(pool_file, "::-1"))  # regenerated under the same name: the old picks must not come back
    said.clear()
    fresh = Screen([pool], out, fresh_state(), SETTINGS, **kw).run(say=said.append)
    assert "starting over" in said[0]
    expected = Screen([pool], tmp_path / "ref.extxyz", fresh_state(), SETTINGS, **kw).run()
    assert fresh.picks == expected.picks


def test_greedy_equals_select_and_resumes(pool_file, tmp_path):
    structures = read(pool_file, ":")
    expected = dael.select(structures, budget=12, min_gain=0.0, mode="config", cutoff=4.5, natx=40)
    out = tmp_path / "greedy.extxyz"
    kw = dict(budget=12, min_gain=0.0, method="auto", chunk=40, shortlist=240)
    with pytest.raises(Interrupt):
        Screen([pool_file], out, fresh_state("config"), SETTINGS, **kw).run(interrupt_after(3))
    result = Screen([pool_file], out, fresh_state("config"), SETTINGS, **kw).run()
    assert [i for _, i in result.picks] == list(expected.indices)
    assert [a.info["pool_frame"] for a in read(out, ":")] == list(expected.indices)


def test_novelty_prefilter_skips_known_structures(pool_file, tmp_path):
    pytest.importorskip("faiss")
    structures = read(pool_file, ":")
    known = dael.fingerprint(structures[:100], cutoff=4.5, natx=40)
    index = NoveltyIndex(SETTINGS)
    index.add(known)
    state = fresh_state()
    state.add(known)
    result = Screen([pool_file], tmp_path / "n.extxyz", state, SETTINGS, budget=500, min_gain=-np.inf,
                    chunk=60, index=index, min_distance=1e-6).run()
    assert result.skipped == 100 and all(i >= 100 for _, i in result.picks)


def test_dask_local_cluster_gives_the_same_picks(pool_file, tmp_path):
    pytest.importorskip("dask.distributed")
    kw = dict(budget=20, min_gain=0.5, chunk=60)
    local = Screen([pool_file], tmp_path / "a.extxyz", fresh_state(), SETTINGS, **kw).run()
    spread = Screen([pool_file], tmp_path / "b.extxyz", fresh_state(), SETTINGS, dask="local", **kw).run()
    assert spread.picks == local.picks


def test_cli_filter_and_entropy(pool_file, tmp_path):
    db = tmp_path / "data.db"
    with connect(db) as con:
        for atoms in read(pool_file, ":5"):
            con.write(atoms)
    out, state = tmp_path / "cli.extxyz", tmp_path / "state.npz"
    runner = CliRunner()
    args = ["filter", str(pool_file), "--dataset", str(db), "--budget", "10", "--out", str(out),
            "--cutoff", "4.5", "--natx", "40", "--save-state", str(state), "--chunk", "100"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "10 of" in res.output and len(read(out, ":")) == 10
    assert "of --budget" not in res.output  # the budget was filled: no shortfall message
    assert GlobalEntropy.load(state).n == 8 * 15
    # continue from the saved state; without --natx the state's own fingerprint settings are used
    more = ["filter", str(pool_file), "--state", str(state), "--budget", "5", "--out", str(tmp_path / "more.extxyz"),
            "--save-state", str(tmp_path / "state2.npz"), "--method", "lazy", "--min-gain", "-1e9"]
    res = runner.invoke(app, more)
    assert res.exit_code == 0, res.output
    assert "natx 40" in res.output and GlobalEntropy.load(tmp_path / "state2.npz").n == 8 * 20
    res = runner.invoke(app, ["entropy", str(out), "--cutoff", "4.5"])
    assert res.exit_code == 0 and "log det" in res.output and "config" in res.output


def test_cli_filter_says_why_it_kept_fewer_than_the_budget(pool_file, tmp_path):
    runner = CliRunner()
    base = ["filter", str(pool_file), "--cutoff", "4.5", "--natx", "40", "--chunk", "100"]
    high = runner.invoke(app, [*base, "--budget", "50", "--min-gain", "0.5", "--out", str(tmp_path / "a.extxyz")])
    assert high.exit_code == 0, high.output
    kept = len(read(tmp_path / "a.extxyz", ":"))
    assert 0 < kept < 50
    assert f"kept {kept} of --budget 50: after {kept} picks none of the other {240 - kept}" in high.output
    assert "lower --min-gain" in high.output
    zero = runner.invoke(app, [*base, "--budget", "500", "--min-gain", "0", "--out", str(tmp_path / "c.extxyz")])
    assert zero.exit_code == 0 and "lower --min-gain" not in zero.output and "a more diverse pool" in zero.output
    small = runner.invoke(app, [*base, "--budget", "500", "--min-gain", "-1e9", "--out", str(tmp_path / "b.extxyz")])
    assert small.exit_code == 0 and "the pool held only 240 structures" in small.output


@pytest.mark.parametrize("case", ["empty", "unreadable", "missing", "nan", "index", "dataset", "state"])
def test_cli_filter_bad_input(case, pool_file, tmp_path):
    path = tmp_path / "pool.extxyz"
    args = ["filter", str(path), "--out", str(tmp_path / "o.extxyz"), "--cutoff", "4.5", "--natx", "40"]
    message = {"empty": "holds no structures", "unreadable": "ASE cannot read it", "missing": "no such file",
               "nan": "NaN", "index": "was built with", "dataset": "no such dataset",
               "state": "no such entropy state file"}[case]
    if case == "empty":
        path.write_text("")
    elif case == "unreadable":
        path.write_text("3\nnot an extxyz header\nSi 0 0\n")
    elif case == "nan":
        atoms = bulk("Si", "diamond", a=5.43, cubic=True)
        atoms.positions[2, 1] = np.nan
        write(path, atoms)
    elif case in ("index", "dataset", "state"):
        path = pool_file
        args[1] = str(path)
        if case == "index":
            pytest.importorskip("faiss")
            other = NoveltyIndex(dael.FingerprintSettings(4.0, 40, "s"))
            other.save(tmp_path / "idx")
            args += ["--index", str(tmp_path / "idx")]
        elif case == "state":
            args += ["--state", str(tmp_path / "nothing.npz")]
        else:
            args += ["--dataset", str(tmp_path / "nothing.db")]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    assert message in res.output and not (tmp_path / "o.extxyz").exists()


def test_filter_methods_are_the_selection_methods(pool_file, tmp_path):
    from dael.selection.greedy import METHODS

    for method in METHODS:  # every name dael.select takes, and only those
        Screen([pool_file], tmp_path / f"{method}.extxyz", fresh_state(), SETTINGS, budget=2, method=method)
    with pytest.raises(ValueError, match="greedy selection is 'auto', 'exact' or 'lazy'"):
        Screen([pool_file], tmp_path / "g.extxyz", fresh_state(), SETTINGS, budget=2, method="greedy")
