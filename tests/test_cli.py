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


def test_natx_is_auto_or_a_number_everywhere(tmp_path):
    """One spelling of an automatic natx: 'auto' in every command and in campaign.yaml, None in Python."""
    import pytest

    from dael.campaign.config import Campaign
    from dael.campaign.presets import preset
    from dael.util.checks import natx_value

    write(tmp_path / "si.extxyz", bulk("Si", "diamond", a=5.43, cubic=True))
    out = tmp_path / "fp.npz"
    auto = runner.invoke(app, ["fingerprint", str(tmp_path / "si.extxyz"), "--natx", "auto", "--out", str(out)])
    assert auto.exit_code == 0, auto.output
    assert int(np.load(out)["natx"]) == dael.fingerprint(bulk("Si", "diamond", a=5.43, cubic=True), 5.0,
                                                           natx=None).settings.natx
    for command in (["entropy", str(tmp_path / "si.extxyz")], ["fingerprint", str(tmp_path / "si.extxyz")]):
        zero = runner.invoke(app, [*command, "--natx", "0"])
        assert zero.exit_code == 2 and "'auto'" in zero.output
    assert natx_value("auto") is None and natx_value(None) is None and natx_value("40") == 40
    with pytest.raises(ValueError, match="'auto' or a whole number"):
        natx_value("many")
    data = preset("Si").to_dict()
    assert data["filter"]["natx"] == "auto"
    data["filter"]["natx"] = 0
    with pytest.raises(ValueError, match="filter.natx must be 'auto'"):
        Campaign.from_dict(data)


def test_repeatable_numeric_options_take_several_values_after_one_flag():
    """`--sizes 100 200 400` is `--sizes 100 --sizes 200 --sizes 400`; text options and positionals stay."""
    import typer.main

    from dael.cli.common import expand_lists

    group = typer.main.get_command(app)
    bench = group.get_command(None, "benchmark")
    assert expand_lists(bench, ["DIR", "--sizes", "100", "200", "--draws", "2", "--sizes", "800"]) == [
        "DIR", "--sizes", "100", "--sizes", "200", "--draws", "2", "--sizes", "800"]
    explore = group.get_command(None, "explore")
    assert expand_lists(explore, ["a.xyz", "--pressure", "-5", "10", "--driver", "reference", "b.xyz"]) == [
        "a.xyz", "--pressure", "-5", "--pressure", "10", "--driver", "reference", "b.xyz"]
    result = runner.invoke(app, ["benchmark", "Si", "--sizes", "100", "x200"])
    assert result.exit_code == 2  # a non-number after the values is still an error, not a silent drop


def test_numeric_list_options_are_found_with_typer_before_its_own_option_types():
    """typer before 0.2x (e.g. 0.15, as on the GPU machine) builds click options: no type_descriptor, the
    element type is the click type's name; the CLI failed there with an AttributeError."""
    from types import SimpleNamespace

    from dael.cli.common import numeric_list

    assert [numeric_list(SimpleNamespace(type=SimpleNamespace(name=n))) for n in ("integer", "float", "text")] == [
        True, True, False]
