"""Calculator parameters (dael.calculators.parameters through the registry): a parameter the calculator does not
take is refused with one error naming it, the calculator and what it takes; where the signature cannot tell, a
warning; the parameters that are taken reach the calculator."""

import warnings

import pytest
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from typer.testing import CliRunner

from dael.calculators.parameters import ParameterWarning, accepted_parameters
from dael.calculators.registry import check_calculator, make_calculator
from dael.cli import app

LJ = "ase:ase.calculators.lj:LennardJones"


class OpenKwargs(Calculator):
    """Takes `scale` and passes **kwargs on to ASE's Calculator, with no default_parameters (like MACE's)."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.results = {"energy": self.scale, "forces": 0.0 * self.atoms.positions}


class Closed(Calculator):
    """A constructor without **kwargs: exactly its named parameters."""

    def __init__(self, width: float = 1.0):
        super().__init__()
        self.width = width


OPEN = "ase:test_calculators:OpenKwargs"


def dimer(d=3.0):
    return Atoms("Ar2", positions=[[0, 0, 0], [0, 0, d]])


def test_a_misspelt_parameter_is_refused_with_the_one_meant():
    with pytest.raises(ValueError, match=r"no parameter .sigmaa. \(did you mean .sigma.\?\); it takes: .*epsilon"):
        make_calculator(LJ, sigmaa=2.3)
    with pytest.raises(ValueError, match=r"'ase:ase.calculators.emt:EMT' takes no parameter 'foo'"):
        check_calculator("ase:ase.calculators.emt:EMT", foo=1)
    with pytest.raises(ValueError, match=r"'sytem' \(did you mean 'system'\?\)"):
        check_calculator("reference", sytem="Si")
    with pytest.raises(ValueError, match="takes no parameter 'height'; it takes: width"):
        make_calculator("ase:test_calculators:Closed", height=2.0)


def test_parameters_taken_reach_the_calculator():
    atoms = dimer(2.6)
    atoms.calc = make_calculator(LJ, sigma=2.3, epsilon=0.01)
    assert atoms.calc.parameters["sigma"] == 2.3
    default = dimer(2.6)
    default.calc = make_calculator(LJ)
    assert atoms.get_potential_energy() != pytest.approx(default.get_potential_energy())
    morse = make_calculator("ase:ase.calculators.morse:MorsePotential", r0=2.5, epsilon=0.5)
    assert morse.parameters["r0"] == 2.5  # a parameter of default_parameters beside a named one (neighbor_list)


def test_what_a_signature_cannot_tell_is_warned_about_at_the_check_only():
    names, complete = accepted_parameters(OpenKwargs)
    assert "scale" in names and not complete
    with pytest.warns(ParameterWarning, match=r"'other' cannot be checked .*\(named parameters: .*scale"):
        check_calculator(OPEN, scale=2.0, other=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_calculator(OPEN, scale=2.0)  # named: no warning
        calc = make_calculator(OPEN, scale=2.0, other=1)  # built (in workers too) without a warning
    assert calc.scale == 2.0


def test_the_dft_templates_check_their_keywords(tmp_path, monkeypatch):
    pytest.importorskip("gpaw")
    with pytest.raises(ValueError, match=r"'gpaw' takes no parameter 'ecutt' \(did you mean 'ecut'\?\)"):
        check_calculator("gpaw", ecutt=300)
    check_calculator("gpaw", ecut=300, spinpol=True)
    qe = {"command": "pw.x", "pseudo_dir": str(tmp_path), "pseudopotentials": {"Si": "Si.upf"}}
    with pytest.raises(ValueError, match=r"'qe' takes no parameter 'ecutwfcc' \(did you mean 'ecutwfc'\?\).*"
                                         r"input_data=\{'system'"):
        check_calculator("qe", ecutwfcc=40, **qe)  # ASE's Espresso would drop it
    check_calculator("qe", ecutwfc=40, input_data={"system": {"new_keyword": 1}}, **qe)
    with pytest.raises(ValueError, match="hubbard_u"):  # a card since pw.x 7.1: ASE drops the keyword
        check_calculator("qe", Hubbard_U=[1.0], **qe)
    monkeypatch.setenv("ASE_VASP_COMMAND", "vasp_std")
    with pytest.warns(ParameterWarning, match="'encutt'"):  # ASE writes tags it does not know to the INCAR
        check_calculator("vasp", pp=str(tmp_path), encutt=400)


def test_the_command_line_refuses_before_touching_the_dataset_and_prints_warnings(tmp_path):
    seed = tmp_path / "ar.extxyz"
    dimer().write(seed)
    db = tmp_path / "ar.db"
    res = CliRunner().invoke(app, ["label", str(seed), "--db", str(db), "--oracle", LJ, "--param", "sigmaa=2.3"])
    assert res.exit_code == 2 and "error: calculator" in res.output and "did you mean 'sigma'" in res.output
    assert not db.exists()
    res = CliRunner().invoke(app, ["label", str(seed), "--db", str(db), "--oracle", OPEN, "--param", "scale=2",
                                   "--param", "colour=1", "--workers", "0"])
    assert res.exit_code == 0, res.output
    assert "warning: calculator 'ase:test_calculators:OpenKwargs'" in res.output and "'colour'" in res.output
