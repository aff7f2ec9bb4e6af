"""Calculators by name: the one place that turns a name into an ASE calculator, for MD drivers, oracles,
distillation teachers and trained models alike.

=========================  ===========================================================================
name                       calculator
=========================  ===========================================================================
``reference``              :class:`dael.calculators.reference.ReferenceCalculator`: published potentials run by LAMMPS,
                           a cheap deterministic stand-in for DFT (option ``system=Si|C|NaCl``)
``gpaw``, ``vasp``, ``qe`` real DFT (:mod:`dael.calculators.dft`; parameters override the defaults there)
``chgnet``                 CHGNet 0.3 universal potential (weights ship with the PyPI package)
``sevennet``               SevenNet 7net-0 universal potential (weights ship with the PyPI package)
``allegro:PATH``           a model trained or packaged by dael/nequip: a model folder, ``.nequip.zip``,
                           ``.ckpt`` or compiled ``.nequip.pt2`` (``dael deploy``; an Allegro-OAM-L package
                           works the same way)
``ase:module:Class``       any ASE calculator class, built as ``Class(**params)``
=========================  ===========================================================================

The torch models run on ``device`` ('cpu' or 'cuda'); None reads the environment variable ``DAEL_DEVICE``
(worker processes inherit it), else 'cpu'.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ase.calculators.calculator import BaseCalculator, Calculator, all_changes

from dael.calculators.deploy import load_calculator
from dael.calculators.dft import GPAWOracle, dft_keywords, espresso_oracle, vasp_oracle
from dael.calculators.parameters import accepted_parameters, base_keyword, check_parameters
from dael.calculators.reference import ReferenceCalculator
from dael.util.device import check_device
from dael.util.extras import require

__all__ = ["DEVICE_VARIABLE", "NAMES", "check_calculator", "make_calculator"]

NAMES = "reference | gpaw | vasp | qe | chgnet | sevennet | allegro:PATH | ase:module:Class"
DEVICE_VARIABLE = "DAEL_DEVICE"
"""Environment variable with the torch models' device ('cpu' or 'cuda') when none is given."""

QE_KEYWORDS = ("command, pseudo_dir, pseudopotentials, kpts, kspacing, koffset, directory and the pw.x keywords "
               "ASE knows, flat; put any other in its namelist: input_data={'system': {'KEY': VALUE}}")
_PACKAGES = {"chgnet": "chgnet", "sevennet": "sevenn", "7net-0": "sevenn"}
_DFT = ("gpaw", "vasp", "qe", "espresso", "quantum-espresso")


def make_calculator(name: str, device: str | None = None, **params: Any) -> BaseCalculator:
    """The calculator called `name` (see the module's table), built with `params` (`device` too for an ASE class
    that takes one, such as MACE's).

    Unknown names, missing packages or files and parameters the calculator does not take (see
    `dael.calculators.parameters`) raise one ValueError that says what to use instead."""
    return _make(name, device, params, warn=False)


def _make(name: str, device: str | None, params: dict[str, Any], warn: bool) -> BaseCalculator:
    """`make_calculator`; `warn`: warn about parameters whose use the calculator's signature cannot confirm."""
    kind, arg = _parse(name)
    if kind == "reference":
        check_parameters(name, params, ["system"])
        return ReferenceCalculator(**params)
    if kind == "dft":
        code = "qe" if arg not in ("gpaw", "vasp") else arg
        accepted, complete = dft_keywords(code)
        check_parameters(name, [base_keyword(k) for k in params] if code == "qe" else params, accepted, complete,
                         warn, QE_KEYWORDS if code == "qe" else None)
        build = {"gpaw": GPAWOracle, "vasp": vasp_oracle}.get(arg, espresso_oracle)
        try:
            return build(**params)
        except TypeError as exc:  # a parameter the calculator does not take
            raise ValueError(f"calculator {name!r}: {exc}") from exc
    if kind == "ase":
        cls = _ase_class(name, arg)
        accepted, complete = accepted_parameters(cls)
        if device is not None and "device" in accepted:  # e.g. MACE's: `device` is the class's own parameter
            params = {**params, "device": device}
        check_parameters(name, params, accepted, complete, warn=warn)
        try:
            return cls(**params)
        except TypeError as exc:
            raise ValueError(f"calculator {name!r}: {exc}") from exc
    _check_torch(name, kind, arg, params)

    device = check_device(device or os.environ.get(DEVICE_VARIABLE) or "cpu")
    if kind == "chgnet":
        from chgnet.model.dynamics import CHGNetCalculator

        with float32():
            return Float32(CHGNetCalculator(use_device=device))
    if kind == "sevennet":
        from sevenn.calculator import SevenNetCalculator

        with float32():
            return Float32(SevenNetCalculator("7net-0", device=device))

    return load_calculator(Path(arg), device=device, threads=None)  # the caller's threads stay


def check_calculator(name: str, **params: Any) -> None:
    """Fail early, without loading a torch model, if `make_calculator(name, **params)` cannot work here.
    Cheap calculators (reference, DFT templates, ASE classes) are built once to check their parameters; a
    parameter whose use the calculator's signature cannot confirm is warned about (a ParameterWarning)."""
    kind, arg = _parse(name)
    if kind in ("reference", "dft", "ase"):
        _make(name, None, params, warn=True)
    else:
        _check_torch(name, kind, arg, params)


def _parse(name: str) -> tuple[str, str]:
    """(kind, argument) of a calculator name: kind is reference | dft | chgnet | sevennet | allegro | ase."""
    key = name.strip()
    low = key.lower()
    if low == "reference":
        return "reference", ""
    if low in _DFT:
        return "dft", low
    if low in _PACKAGES:
        return ("chgnet" if low == "chgnet" else "sevennet"), low
    if key.startswith("allegro:") and key[len("allegro:"):]:
        return "allegro", key[len("allegro:"):]
    if key.startswith("ase:"):
        return "ase", key
    raise ValueError(f"unknown calculator {name!r}; use one of: {NAMES} "
                     "(reference options: system=Si|C|NaCl)")


def _check_torch(name: str, kind: str, arg: str, params: dict[str, Any]) -> None:
    """A torch model takes no parameters, and its package is installed (foundation models) or its file
    exists (allegro)."""
    if params:
        raise ValueError(f"calculator {name!r} takes no parameters; got {sorted(params)}")
    if kind == "allegro":
        require("train", f"calculator {name!r}")
        if not Path(arg).expanduser().exists():
            raise ValueError(f"calculator {name!r}: {arg} does not exist (a model folder, .nequip.zip, .ckpt or "
                             ".nequip.pt2)")
        return
    package = _PACKAGES[arg]
    if importlib.util.find_spec(package) is None:
        raise ValueError(f"calculator {name!r} needs the {package} package: pip install {package}")


def _ase_class(name: str, key: str) -> type:
    """The ASE calculator class named 'ase:module.path:ClassName'."""
    parts = key.split(":")
    if len(parts) != 3 or not parts[1] or not parts[2]:
        raise ValueError(f"calculator {name!r}: expected the form 'ase:module.path:ClassName'")
    _, module_name, class_name = parts
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"calculator {name!r}: cannot import module {module_name!r} ({exc})") from exc
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ValueError(f"calculator {name!r}: module {module_name!r} has no attribute {class_name!r}")
    if not (isinstance(cls, type) and issubclass(cls, BaseCalculator)):
        raise ValueError(f"calculator {name!r}: {module_name}.{class_name} is not an ASE calculator class")
    return cls


@contextmanager
def float32():
    """torch's default dtype set to float32 inside the block, and torch's warning about CHGNet's own
    `torch.tensor(volumes)` (a harmless copy of a tensor that requires grad, once per call) silenced there."""
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True to a scalar",
                                    category=UserWarning)
            yield
    finally:
        torch.set_default_dtype(previous)


class Float32(Calculator):
    """Runs a float32 torch model with torch's default dtype set to float32 during each call (loading a
    nequip model sets float64 for the whole process, which float32 models like CHGNet cannot take)."""

    def __init__(self, calc: Calculator):
        super().__init__()
        self.calc = calc
        self.implemented_properties = list(calc.implemented_properties)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        with float32():
            wanted = set(properties) | {"energy", "forces"}
            self.results = {k: self.calc.get_property(k, self.atoms) for k in wanted}
