"""The package's layout: stage subpackages without import circles, dael's own imports at module level, modules of
at most 400 lines, and the public names `import dael` promises."""

import ast
from pathlib import Path

import pytest

import dael

PACKAGE = Path(dael.__file__).parent
MAX_LINES = 400
LAZY_OK = {"train/progress.py"}  # runs inside nequip-train only (imports lightning at module level)


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(path: Path, module: str, top_only: bool) -> set[str]:
    """The dael modules `path` imports (at module level when top_only); `from dael.x import y` counts dael.x.y
    when that is a module, else dael.x."""
    tree, known = ast.parse(path.read_text()), _modules()
    nodes = tree.body if top_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "dael":
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in known or node.module == "dael" else node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "dael"}
    return {m for m in found if m != module}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def _stage(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2])


def test_no_import_circle_between_modules_or_stages():
    graph = {m: _imports(p, m, top_only=False) for m, p in _modules().items()}
    assert _cycle(graph) is None, f"module import circle: {' -> '.join(_cycle(graph))}"
    stages: dict[str, set[str]] = {}
    for module, deps in graph.items():
        if module.count(".") >= 2:  # a module inside a stage subpackage
            stages.setdefault(_stage(module), set()).update(
                _stage(d) for d in deps if d.count(".") >= 1 and _stage(d) != _stage(module))
    stages = {s: {d for d in deps if d in stages} for s, deps in stages.items()}
    assert _cycle(stages) is None, f"stage import circle: {' -> '.join(_cycle(stages))}"


def test_dael_imports_at_module_level():
    lazy = {}
    for module, path in _modules().items():
        if str(path.relative_to(PACKAGE)) in LAZY_OK:
            continue
        inner = _imports(path, module, top_only=False) - _imports(path, module, top_only=True)
        if inner:
            lazy[module] = sorted(inner)
    assert not lazy, f"dael imports inside functions (only heavy optional packages belong there): {lazy}"


@pytest.mark.parametrize("module", sorted(_modules()))
def test_module_size(module):
    lines = len(_modules()[module].read_text().splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines (at most {MAX_LINES}): split it by what it computes"


def test_public_names():
    for name in ("neighbor_list", "neighbor_lists", "ase_neighbor_list", "fingerprint", "Fingerprints",
                 "FingerprintSettings", "GlobalEntropy", "knn_entropy", "local_entropy", "select", "Selection",
                 "Batch", "set_num_threads", "get_num_threads"):
        assert hasattr(dael, name), name
    assert callable(dael.select) and callable(dael.fingerprint)


def test_names_older_model_configs_store_still_import():
    from dael.train_progress import EpochReporter

    assert EpochReporter.__module__ == "dael.train.progress"


def test_the_command_line_imports_no_heavy_package():
    """`dael --help` stays quick: torch, nequip, lightning, CHGNet, Dask and FAISS load only when a command
    needs them."""
    import subprocess
    import sys

    heavy = ("torch", "nequip", "lightning", "chgnet", "distributed", "faiss", "lammps", "quests")  # ase.io loads gpaw
    code = f"import sys, dael.cli; print(' '.join(m for m in sys.modules if m.split('.')[0] in {heavy!r}))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert not loaded, f"import dael.cli loads {sorted(set(m.split('.')[0] for m in loaded))}"
