"""Faults and bad input (issue 14): every bad input ends in one clear line and a documented exit code
(0 all done, 1 some failed, 2 bad input), never a traceback, a Rust panic or an abort; nothing partial stays
behind; damaged resume pieces are redone; states are never poisoned."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase import Atoms
from ase.build import bulk
from ase.io import read, write
from typer.testing import CliRunner

import dael
from dael import _core
from dael.campaign.config import CONFIG
from dael.campaign.folder import write as write_campaign
from dael.campaign.presets import phases, preset
from dael.cli import app
from dael.data.dataset import Dataset
from dael.numeric.entropy import GlobalEntropy, knn_entropy
from dael.selection.screen import Screen

from conftest import si8_cells

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
SETTINGS = dael.FingerprintSettings(4.5, 40, "s")
CRASH_SIGNS = ("Traceback", "PanicException", "MarkupError", "panicked", "Aborted")


def si8() -> Atoms:
    return bulk("Si", "diamond", a=5.43, cubic=True)


def campaign_folder(folder: Path, section: str | None = None, key: str = "", value=None) -> Path:
    """A Si campaign whose campaign.yaml has `section.key` (or the top-level `key`) set to `value`."""
    write_campaign(folder, preset("Si"), phases("Si"))
    data = yaml.safe_load((folder / CONFIG).read_text())
    (data[section] if section else data)[key] = value
    (folder / CONFIG).write_text(yaml.safe_dump(data))
    return folder


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Inputs of the table: a good structure file, damaged and inconsistent entropy states, campaigns."""
    tmp = tmp_path_factory.mktemp("faults")
    write(tmp / "si.extxyz", si8_cells(3, seed=1, strain=0.02, rattle=0.05))
    write(tmp / "cu.extxyz", bulk("Cu", "fcc", a=3.6, cubic=True))
    state = GlobalEntropy("atom", settings=SETTINGS)
    state.add(dael.fingerprint(read(tmp / "si.extxyz", ":"), cutoff=4.5, natx=40))
    state.save(tmp / "state.npz")
    data = (tmp / "state.npz").read_bytes()
    (tmp / "truncated.npz").write_bytes(data[: len(data) // 2])
    (tmp / "empty.npz").write_bytes(b"")
    arrays = state.arrays()
    meta = json.dumps({"mode": "atom", "eps": 1e-3, "settings": SETTINGS.to_dict()})
    np.savez(tmp / "indefinite.npz", meta=meta, n=arrays["n"], mean=arrays["mean"], scatter=-np.eye(40) * arrays["n"])
    for name, section, key, value in [
        ("lots", "budget", "total", "lots"), ("hot", "explore", "temperatures", ["hot"]),
        ("scalar", "explore", "pressures", 8.0), ("friction", "explore", "friction", -1.0),
        ("nan", "filter", "min_gain", float("nan")), ("nosuch", "label", "oracle", "nosuch"),
        ("param", "label", "params", {"system": "Fe"}), ("driver", None, "driver", "mace"),
        ("lmax", "train", "settings", {"l_max": -1}), ("order", "explore", "order", "shuffled"),
        ("shuffle", "explore", "shuffle", True), ("unstable", "explore", "unstable", -0.01),
        ("backoff", "explore", "backoff", -1),
    ]:
        campaign_folder(tmp / f"campaign-{name}", section, key, value)
    return {"tmp": tmp, **{p.stem: p for p in tmp.iterdir()}}


TABLE = [
    # (arguments, exit code, fragment of the one error line)
    (["fingerprint", "{tmp}/nope[/].extxyz"], 2, "nope[/].extxyz: no such file"),
    (["fingerprint", "{tmp}/[bold]pbc = [True, True, True].extxyz"], 2, "[bold]pbc = [True, True, True].extxyz"),
    (["fingerprint", "{si}", "--out", "{tmp}"], 2, "is a folder"),
    (["fingerprint", "{si}", "--out", "{tmp}/missing/fp.npz"], 2, "does not exist"),
    (["filter", "{si}", "--min-gain", "nan"], 2, "min_gain (nats) must be a number, not NaN"),
    (["filter", "{si}", "--chunk", "0"], 2, "chunk (structures per chunk) must be >= 1"),
    (["filter", "{si}", "--budget", "0"], 2, "budget (structures to keep) must be >= 1"),
    (["filter", "{si}", "--out", "{tmp}"], 2, "is a folder"),
    (["filter", "{si}", "--out", "{tmp}/missing/sel.extxyz"], 2, "does not exist"),
    (["filter", "{si}", "--state", "{truncated}"], 2, "not a dael entropy state, or a damaged one"),
    (["filter", "{si}", "--state", "{empty}"], 2, "not a dael entropy state, or a damaged one"),
    (["filter", "{si}", "--state", "{indefinite}"], 2, "not positive definite"),
    (["explore", "{si}", "--driver", "reference", "--pressure", "nan"], 2, "pressure (GPa) must be a finite"),
    (["explore", "{si}", "--driver", "reference", "--friction", "-1"], 2, "friction (1/fs) must be >= 0"),
    (["explore", "{si}", "--driver", "reference", "--temperature", "inf"], 2, "temperature (K) must be a finite"),
    (["explore", "{si}", "--driver", "reference", "--k-global", "nan"], 2, "k_global (eV)"),
    (["explore", "{si}", "--driver", "reference", "--min-gain", "nan"], 2, "--min-gain must be a number"),
    (["explore", "{si}", "--driver", "reference", "--unstable", "-1"], 2, "unstable (eV/atom) must be > 0"),
    (["explore", "{si}", "--driver", "reference", "--backoff", "-1"], 2, "backoff (bias halvings) must be >= 0"),
    (["explore", "{si}", "--driver", "reference", "--order", "shuffled"], 2,
     "exploration order must be one of stratified, random, grid"),
    (["entropy", "{si}", "--k", "0"], 2, "--k must be >= 1"),
    (["export", "--db", "{tmp}/none.db"], 2, "no such dataset"),
    (["init", "Xe", "--dir", "{tmp}/xe"], 2, "no preset for system 'Xe'"),
    (["run", "--dir", "{campaign-lots}"], 2, "budget.total must be an integer; got 'lots'"),
    (["run", "--dir", "{campaign-hot}"], 2, "explore.temperatures[0] must be a number; got 'hot'"),
    (["run", "--dir", "{campaign-scalar}"], 2, "explore.pressures must be a list"),
    (["run", "--dir", "{campaign-friction}"], 2, "explore.friction (1/fs) must be >= 0"),
    (["run", "--dir", "{campaign-order}"], 2, "explore.order must be one of stratified, random, grid"),
    (["run", "--dir", "{campaign-shuffle}"], 2, "explore.shuffle was replaced by explore.order"),
    (["run", "--dir", "{campaign-unstable}"], 2, "explore.unstable must be positive (eV/atom) or null"),
    (["run", "--dir", "{campaign-backoff}"], 2, "explore.backoff (bias halvings) must be >= 0"),
    (["run", "--dir", "{campaign-nan}"], 2, "filter.min_gain"),
    (["run", "--dir", "{campaign-nosuch}"], 2, "label (oracle 'nosuch'"),
    (["run", "--dir", "{campaign-param}"], 2, "unknown reference system"),
    (["run", "--dir", "{campaign-driver}"], 2, "driver: unknown calculator 'mace'"),
    (["run", "--dir", "{campaign-lmax}"], 2, "train.settings: l_max must be >= 0"),
    (["status", "--dir", "{campaign-lots}"], 2, "budget.total"),
    # the benchmark checks what its labels and models need before it explores a pool
    (["benchmark", "{campaign-nosuch}", "--out", "{tmp}/bench"], 2, "campaign.yaml: label (oracle 'nosuch'"),
    (["benchmark", "{campaign-driver}", "--out", "{tmp}/bench"], 2, "driver: unknown calculator 'mace'"),
    (["benchmark", "{campaign-lmax}", "--out", "{tmp}/bench"], 2, "train.settings: l_max must be >= 0"),
    (["label", "{cu}", "--db", "{tmp}/cu.db", "--workers", "0"], 1, "no potential for the elements {Cu}"),
    (["explore", "{cu}", "--driver", "reference", "--out", "{tmp}/cu-run", "--steps", "2", "--snapshots", "1",
      "--relax-steps", "0", "--thermalize", "0", "--natx", "40", "--cutoff", "4.5"], 1, "1 failed"),
]
"""Bad inputs of every command → expected exit code and message; no row may crash."""

ISOLATED = [
    # inputs that aborted the whole process (out of memory, capacity overflow): run in a child process
    (["fingerprint", "{si}", "--natx", "1000000000000", "--out", "{tmp}/big.npz"], 2, "of memory"),
    (["fingerprint", "{si}", "--cutoff", "1e6", "--out", "{tmp}/big.npz"], 2, "of memory"),
    (["filter", "{si}", "--natx", "1000000000000", "--out", "{tmp}/big.extxyz"], 2, "of memory"),
]


def _args(template: list[str], files: dict[str, Path]) -> list[str]:
    return [a.format(**{k: str(v) for k, v in files.items()}) for a in template]


def _assert_clean(code: int, output: str, expected: int, fragment: str) -> None:
    assert code == expected, output
    assert fragment in output, output
    assert not any(sign in output for sign in CRASH_SIGNS), output


@pytest.mark.parametrize(("template", "code", "fragment"), TABLE, ids=lambda v: None)
def test_bad_input_table(files, template, code, fragment):
    before = set(files["tmp"].rglob("*"))
    result = runner.invoke(app, _args(template, files))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    _assert_clean(result.exit_code, result.output, code, fragment)
    if code == 2:  # bad input: nothing written, nothing partial left behind
        assert set(files["tmp"].rglob("*")) == before, set(files["tmp"].rglob("*")) - before


@pytest.mark.parametrize(("template", "code", "fragment"), ISOLATED, ids=lambda v: None)
def test_inputs_that_aborted_the_process(files, template, code, fragment):
    env = {**os.environ, "PYTHONPATH": str(Path(dael.__file__).parents[1])}  # the dael under test: source or wheel
    proc = subprocess.run([sys.executable, "-m", "dael.cli", *_args(template, files)], capture_output=True,
                          text=True, env=env, timeout=60)
    _assert_clean(proc.returncode, proc.stdout + proc.stderr, code, fragment)
    assert not list(files["tmp"].glob("big*"))


def test_campaign_refuses_a_bad_oracle_before_any_side_effect(files):
    folder = files["campaign-nosuch"]
    assert runner.invoke(app, ["run", "--dir", str(folder)]).exit_code == 2
    assert sorted(p.name for p in folder.iterdir()) == [CONFIG, "seeds.extxyz"]


def test_label_exit_codes_and_relabelling_failed_rows(tmp_path):
    """Rows failed under a wrong parameter are relabelled with the corrected oracle (exit 1, then 0)."""
    write(tmp_path / "nacl.extxyz", bulk("NaCl", "rocksalt", a=5.64, cubic=True))
    base = ["label", str(tmp_path / "nacl.extxyz"), "--db", str(tmp_path / "d.db"), "--workers", "0"]
    first = runner.invoke(app, [*base, "--param", "system=Si"])
    _assert_clean(first.exit_code, first.output, 1, "1 failed")
    again = runner.invoke(app, [*base, "--param", "system=NaCl"])  # the hash check skips the row
    assert again.exit_code == 0 and "0 labeled" in again.output
    fixed = runner.invoke(app, [*base, "--param", "system=NaCl", "--relabel-failed"])
    _assert_clean(fixed.exit_code, fixed.output, 0, "1 labeled, 0 failed")
    assert Dataset(tmp_path / "d.db").counts() == {"labeled": 1}


def test_broken_structures_are_refused_before_labelling(tmp_path):
    """NaN positions and atoms 0 or 0.1 Å apart never reach the oracle; the failed row says why."""
    good, nan, same, close = si8(), si8(), si8(), si8()
    nan.positions[3, 1] = np.nan
    same.positions[1] = same.positions[0]
    close.positions[1] = close.positions[0] + [0.1, 0.0, 0.0]
    write(tmp_path / "c.extxyz", [good, nan, same, close])
    db = tmp_path / "d.db"
    result = runner.invoke(app, ["label", str(tmp_path / "c.extxyz"), "--db", str(db), "--workers", "0"])
    _assert_clean(result.exit_code, result.output, 1, "1 labeled, 3 failed")
    errors = [a.info["error"] for a in Dataset(db).structures("failed")]
    assert "non-finite position (NaN or inf) of atom 3" in errors[0]
    assert "0.000 Å apart" in errors[1] and "0.100 Å apart" in errors[2]
    assert all(e.startswith("refused before labelling") for e in errors)


def test_native_panics_become_python_errors_and_never_poison_a_state():
    x = np.random.default_rng(0).random((20, 5))
    with pytest.raises(ValueError, match="magnitudes must stay below"):
        knn_entropy(x * 1e160)
    state = GlobalEntropy()
    state.add(x)
    before = state.logdet
    for bad in (lambda: state.add(x * 1e200), lambda: state.gains([x * 1e300])):
        with pytest.raises(ValueError):
            bad()
    assert state.logdet == before and state.n == 20
    # below the Python bound but still too large for ε: refused by the native core, state unchanged
    with pytest.raises(ValueError, match="numerically singular"):
        state.add(x[:2] * 1e90)
    assert state.logdet == before and state.n == 20
    # the native boundary itself: a panic (index out of bounds in the eigensolver) is a ValueError
    with pytest.raises(ValueError, match="native core cannot handle"):
        _core.knn_distances(np.ascontiguousarray(x * 1e160), 20, 5, 1, 1)


def test_bounded_threads_memory_and_states(tmp_path):
    with pytest.raises(ValueError, match="threads must be between 0"):
        dael.fingerprint(si8(), natx=40, threads=10**6)
    with pytest.raises(ValueError, match="number of threads must be between 0"):
        dael.set_num_threads(10**6)
    with pytest.raises(ValueError, match="of memory"):
        dael.fingerprint(si8(), cutoff=1e6)
    state = GlobalEntropy("atom", settings=SETTINGS)
    with pytest.raises(ValueError, match="not positive definite"):
        state.restored(3.0, np.zeros(40), -np.eye(40))


def test_damaged_resume_pieces_are_redone(tmp_path):
    """A truncated chunk extxyz or npz in the work folder is detected and redone, never trusted."""
    pool = tmp_path / "pool.extxyz"
    write(pool, si8_cells(60, seed=3, strain=0.03, rattle=0.2))
    kw = dict(budget=40, min_gain=0.0, chunk=10)
    expected = Screen([pool], tmp_path / "ref.extxyz", GlobalEntropy("atom", settings=SETTINGS), SETTINGS,
                      **kw).run()
    for damaged in ("chunk-000001.extxyz", "chunk-000002.npz"):
        out, said = tmp_path / f"{damaged}.out.extxyz", []
        screen = Screen([pool], out, GlobalEntropy("atom", settings=SETTINGS), SETTINGS, **kw)

        def stop(seen, kept):
            if seen == 40:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            screen.run(stop)
        piece = screen.work / damaged
        piece.write_bytes(piece.read_bytes()[: piece.stat().st_size // 2])
        result = Screen([pool], out, GlobalEntropy("atom", settings=SETTINGS), SETTINGS, **kw).run(
            say=said.append)
        assert any("damaged" in line for line in said), said
        assert result.picks == expected.picks and len(read(out, ":")) == len(expected.picks)


def test_scripts_get_json_case_insensitive_presets_and_unwrapped_lines(files, tmp_path):
    result = runner.invoke(app, ["init", "si", "--dir", str(tmp_path / "c")])
    assert result.exit_code == 0 and "Si campaign" in result.output
    status = runner.invoke(app, ["status", "--dir", str(tmp_path / "c"), "--json"])
    assert status.exit_code == 0, status.output
    assert json.loads(status.output)["system"] == "Si"
    entropy = runner.invoke(app, ["entropy", str(files["si"]), "--natx", "40", "--cutoff", "4.5", "--json"])
    assert entropy.exit_code == 0, entropy.output
    data = json.loads(entropy.output)
    assert data["modes"]["atom"]["samples"] == 24 and data["modes"]["config"]["knn_entropy"] is not None
    out = tmp_path / ("long-name-" * 8 + "fp.npz")
    result = runner.invoke(app, ["fingerprint", str(files["si"]), "--out", str(out), "--natx", "40"])
    assert result.exit_code == 0 and len(result.output.strip().splitlines()) == 1, result.output
