"""The command line: real files in, real files out, one clear error for bad input."""

import numpy as np
from ase.build import bulk
from ase.io import write
from typer.testing import CliRunner

import dael
from dael.cli import app

runner = CliRunner()


def test_fingerprint_command_writes_npz(tmp_path):
    frames = [bulk("Si", "diamond", a=5.43, cubic=True), bulk("NaCl", "rocksalt", a=5.64, cubic=True)]
    write(tmp_path / "pool.extxyz", frames)
    out = tmp_path / "fp.npz"
    args = ["fingerprint", str(tmp_path / "pool.extxyz"), "--out", str(out), "--natx", "40"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    saved = np.load(out)
    np.testing.assert_array_equal(saved["values"], dael.fingerprint(frames, 5.0, natx=40).values)
    assert int(saved["natx"]) == 40 and list(saved["offsets"]) == [0, 8, 16]


def test_fingerprint_command_rejects_bad_input(tmp_path):
    missing = runner.invoke(app, ["fingerprint", str(tmp_path / "nope.extxyz")])
    assert missing.exit_code != 0 and "no such file" in missing.output
    (tmp_path / "junk.extxyz").write_text("this is not a structure\n")
    junk = runner.invoke(app, ["fingerprint", str(tmp_path / "junk.extxyz")])
    assert junk.exit_code != 0 and "cannot read" in junk.output
    write(tmp_path / "c.extxyz", bulk("C", "diamond", a=3.57, cubic=True))
    small = runner.invoke(app, ["fingerprint", str(tmp_path / "c.extxyz"), "--natx", "50",
                                "--out", str(tmp_path / "c.npz")])
    assert small.exit_code != 0 and "natx" in small.output
    assert not (tmp_path / "c.npz").exists()
