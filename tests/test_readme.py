"""The README's code runs as written: its Python snippets execute, and every `dael` command line it shows names
a command and options that exist."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from dael.cli import app

ROOT = Path(__file__).parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs" / "guide").glob("*.md"))]


def _blocks(path: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", path.read_text(), flags=re.S)


def _command_lines(path: Path) -> list[str]:
    """Every line of a shell block (```, ```bash, ```console) that runs dael, comments and prompts removed."""
    lines = []
    for block in re.findall(r"```(?:bash|console|sh)?\n(.*?)```", path.read_text(), flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():  # continued lines joined
            line = re.sub(r"^\$ ", "", line.split("  #")[0].strip())
            if line.startswith("dael "):
                lines.append(line)
    return lines


@pytest.mark.parametrize("page", ["README.md", "docs/guide/own-material.md"])
def test_the_python_snippets_run(page, tmp_path):
    """The README's snippet, and the own-material guide's (a campaign from Python: one EMT round)."""
    code = "\n".join(_blocks(ROOT / page, "python"))
    assert code, f"{page} shows no Python"
    script = tmp_path / "readme.py"
    script.write_text(code)
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_every_dael_command_line_in_the_docs_exists(path):
    group = typer.main.get_command(app)
    for line in _command_lines(path):
        words = shlex.split(re.sub(r"\[[^\]]*\]", "", line))  # optional parts in brackets are options too
        command = group.get_command(None, words[1])
        assert command is not None, f"{path.name}: `{line}`: no command {words[1]!r}"
        options = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}
        for word in re.findall(r"(--[a-z][a-z0-9-]*)", line):
            assert word in options | {"--help"}, f"{path.name}: `{line}`: dael {words[1]} has no option {word}"
