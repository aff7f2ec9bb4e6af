"""Which keyword parameters a calculator takes, so that a misspelt one is refused before any work instead of
being ignored: ASE's `Calculator` stores whatever keyword it is given (`LennardJones(sigmaa=2.3)` runs with
σ = 1 Å), and ASE's `Espresso` drops a flat pw.x keyword it does not know.

A class takes the named parameters of its constructor; where the constructor passes ``**kwargs`` on, those of
its parents' constructors, up to the first that takes no ``**kwargs``; where every one does (ASE's
`Calculator` does), the keys of the class's ``default_parameters``. Where none of these tells (``**kwargs`` all
the way and no ``default_parameters``, e.g. MACE's calculator), a parameter outside the named ones is passed
on with a :class:`ParameterWarning`.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from ase.calculators.calculator import Calculator

from dael.util.checks import DaelWarning

__all__ = ["ParameterWarning", "accepted_parameters", "check_parameters", "espresso_keywords", "gpaw_keywords",
           "vasp_keywords"]


class ParameterWarning(DaelWarning):
    """A parameter whose use the calculator's signature cannot confirm (it is passed on as given)."""


_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def accepted_parameters(cls: type) -> tuple[frozenset[str], bool]:
    """(the keyword parameters `cls(**params)` takes, whether that list is complete); see the module docstring."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        try:
            signature = inspect.signature(init)
        except (TypeError, ValueError):  # a constructor written in C: nothing to read
            return frozenset(names), False
        names |= {p.name for p in list(signature.parameters.values())[1:] if p.kind in _NAMED}
        if klass is Calculator:  # ASE's Calculator stores its **kwargs as parameters (Calculator.set)
            break
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()):
            return frozenset(names), True
    defaults = getattr(cls, "default_parameters", None)
    if isinstance(defaults, Mapping) and defaults:
        return frozenset(names | set(defaults)), True
    return frozenset(names), False


def check_parameters(name: str, params: Iterable[str], accepted: Iterable[str], complete: bool = True,
                     warn: bool = True, described: str | None = None) -> None:
    """Refuse (ValueError) the `params` that calculator `name` does not take (`accepted`); where that list is not
    `complete`, warn about them instead (with `warn`), naming the calculator and what it does take (the list, or
    `described` where it is too long to print)."""
    accepted = set(accepted)
    unknown = sorted(set(params) - accepted)
    if not unknown:
        return
    hints = [f"{p!r} (did you mean {close[0]!r}?)" if (close := difflib.get_close_matches(p, accepted, 1)) else
             repr(p) for p in unknown]
    takes = described or ", ".join(sorted(accepted)) or "none"
    what = "parameter" if len(unknown) == 1 else "parameters"
    if complete:
        raise ValueError(f"calculator {name!r} takes no {what} {', '.join(hints)}; it takes: {takes}")
    if warn:
        warnings.warn(f"calculator {name!r}: its constructor takes **kwargs and declares no default_parameters, so "
                      f"the {what} {', '.join(hints)} cannot be checked and {'is' if len(unknown) == 1 else 'are'} "
                      f"passed on as given (named parameters: {takes})", ParameterWarning, stacklevel=3)


def gpaw_keywords(gpaw: Any) -> tuple[frozenset[str], bool]:
    """The keywords of GPAW's calculator (GPAW ≥ 24: the signature of `gpaw.dft.GPAW`; older: its class)."""
    try:
        factory = importlib.import_module("gpaw.dft").GPAW
        names = {p.name for p in inspect.signature(factory).parameters.values() if p.kind in _NAMED}
        return frozenset(names - {"filename"}), True
    except (ImportError, AttributeError, TypeError, ValueError):
        cls = gpaw.GPAW
        return accepted_parameters(cls) if isinstance(cls, type) else (frozenset(), False)


def espresso_keywords() -> frozenset[str]:
    """The pw.x namelist keywords ASE knows (a flat keyword outside these is dropped by ASE's `Espresso`)."""
    from ase.io.espresso_namelist.keys import ALL_KEYS  # ASE's pw.x tables: imported when a qe oracle is checked

    return frozenset(k.lower() for keys in ALL_KEYS["pw"].values() for k in keys)


def base_keyword(key: str) -> str:
    """A pw.x keyword without its index: 'Hubbard_U(1)' -> 'hubbard_u'."""
    return re.sub(r"\(.*\)$", "", key).lower()


def vasp_keywords() -> frozenset[str]:
    """The INCAR tags and input settings ASE's `Vasp` knows (it writes any other tag to the INCAR as given)."""
    lists = ("float_keys", "exp_keys", "string_keys", "int_keys", "bool_keys", "list_int_keys", "list_bool_keys",
             "list_float_keys", "special_keys", "dict_keys")
    from ase.calculators.vasp import create_input as vasp_input  # seconds to import: when a vasp oracle is checked

    keys = {k for name in lists for k in getattr(vasp_input, name, ())}
    return frozenset(keys | set(vasp_input.GenerateVaspInput().input_params))
