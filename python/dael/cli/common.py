"""What every command shares: the typer app, the consoles, one error exit, the structure reader."""

from __future__ import annotations

import json
import sys
import types
import typing
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

from dael.data.structures import read_structures
from dael.util.checks import DaelWarning

EXIT_CODES = ("Exit codes: 0 everything done; 1 done, but some structures (label) or trajectories (explore) "
              "failed, or a check of the model failed (check), see the summary; 2 bad input, options or "
              "environment (one 'error:' line says what); 130 interrupted (rerun the same command to resume).")


class _Commands(TyperGroup):
    """The command group: commands listed in workflow order; a repeatable numeric option also takes several
    values after one flag (`--sizes 100 200 400` = `--sizes 100 --sizes 200 --sizes 400`)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        command = self.get_command(ctx, args[0]) if args else None
        if command is not None:
            args = [args[0], *expand_lists(command, args[1:])]
        return super().parse_args(ctx, args)

    def list_commands(self, ctx: Any) -> list[str]:
        return sorted(self.commands, key=lambda name: ORDER.index(name) if name in ORDER else len(ORDER))


ORDER = ("init", "run", "status", "demo", "benchmark", "distill", "explore", "filter", "label", "train",
         "check", "deploy", "export", "fingerprint", "entropy")


VARIADIC = ("--structures",)
"""Repeatable text options that also take several values after one flag (files: never a number)."""


def expand_lists(command: Any, args: list[str]) -> list[str]:
    """`args` with the values following a repeatable int/float option's flag (or a VARIADIC one's) each given
    their own flag."""
    numeric = {opt for p in command.params if getattr(p, "multiple", False) and numeric_list(p) for opt in p.opts}
    numeric |= {opt for p in command.params for opt in p.opts if opt in VARIADIC}
    out: list[str] = []
    flag, first = None, False  # the last numeric flag seen; whether its own value is still to come
    for token in args:
        if flag is not None and (_is_number(token) or (flag in VARIADIC and not token.startswith("-"))):
            out += [token] if first else [flag, token]
            first = False
            continue
        flag, first = (token, True) if token in numeric else (None, False)
        out.append(token)
    return out


def numeric_list(param: Any) -> bool:
    """The option is declared list[int] or list[float] (optional or not)."""
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is None:  # typer before 0.2x builds click options, whose type names the element type
        return getattr(getattr(param, "type", None), "name", None) in ("integer", "float")
    annotation = descriptor.annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    return typing.get_origin(annotation) is list and typing.get_args(annotation)[0] in (int, float)


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


app = typer.Typer(cls=_Commands, add_completion=False, no_args_is_help=True, epilog=EXIT_CODES,
                  help="dael: dataset-aware, entropy-maximized active learning of interatomic potentials.")


@app.callback()
def _commands() -> None:
    """Before every command: dael's own warnings print as one `warning:` line on stderr."""
    show = warnings.showwarning

    def one_line(message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, DaelWarning):
            errors.print(Text.assemble(("warning: ", "bold yellow"), str(message)))
        else:
            show(message, category, filename, lineno, file, line)

    warnings.showwarning = one_line


# user text (file names, messages) is printed literally, never as rich markup; piped output is not wrapped
_WIDTH = None if sys.stdout.isatty() else 1000
console = Console(markup=False, highlight=False, soft_wrap=True, width=_WIDTH)
errors = Console(stderr=True, markup=False, highlight=False, soft_wrap=True, width=_WIDTH)


def fail(message: str) -> typer.Exit:
    """Print one clear error line (the message literally) and return the exit to raise (status 2)."""
    errors.print(Text.assemble(("error: ", "bold red"), str(message)))
    return typer.Exit(2)


def done(failed: int) -> None:
    """End a command that ran to the end: exit status 1 when `failed` items failed (see EXIT_CODES)."""
    if failed:
        raise typer.Exit(1)


@contextmanager
def checked() -> Iterator[None]:
    """Turn the ValueError (bad input) or MemoryError (input too large) raised inside into `fail`."""
    try:
        yield
    except (ValueError, MemoryError) as exc:
        raise fail(str(exc)) from exc


def key_values(items: list[str] | None, option: str = "--param",
               example: str = "--param system=Si or --param ecut=500") -> dict:
    """A calculator's parameters from ``OPTION key=value`` pairs (`dael label --param`, `dael explore
    --driver-param`, `dael distill --teacher-param`); a value is JSON when it parses (500, true, {"Si": ...}),
    else text."""
    params = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise fail(f"{option} {item!r}: expected key=value, e.g. {example}")
        try:
            params[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            params[key.strip()] = value
    return params


def read_inputs(paths: list[Path], index: str) -> list:
    """Every structure of every file (`dael.data.structures.read_structures`: any format ASE reads; of a dael
    dataset, its labelled rows but the test ones); a clear error names the bad file."""
    try:
        return read_structures(paths, index)
    except ValueError as exc:
        raise fail(str(exc)) from exc



Mode = Annotated[str, typer.Option(help="'atom' (per-atom samples, disordered) or 'config' (per structure)")]
Device = Annotated[str, typer.Option(help="'cpu' or 'cuda': where training and the model's inference run")]


def print_json(data: dict) -> None:
    """One JSON object on stdout, unwrapped, for scripts."""
    typer.echo(json.dumps(data))
