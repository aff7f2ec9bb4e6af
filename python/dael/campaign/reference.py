"""The campaign.yaml reference (docs/guide/campaign-yaml.md), generated from the dataclasses of
`dael.campaign.config`: every key with its default and the `#:` comment written above its field.

    python -m dael.campaign.reference > docs/guide/campaign-yaml.md
"""

from __future__ import annotations

import ast
import inspect
import json
import textwrap
from dataclasses import MISSING, fields

import yaml

from dael.campaign.config import Campaign
from dael.campaign.sections import SECTIONS
from dael.label.cluster import Cluster

__all__ = ["SUBSECTIONS", "field_docs", "yaml_reference"]

INTRO = """# campaign.yaml reference

`dael init` writes campaign.yaml into the campaign folder beside seeds.extxyz (the seed phases,
`atoms.info['phase']`). Every key below may be left out (its default applies) except `system`; an unknown key
or a value of the wrong type is one error that names it. Units: Å, eV, GPa, K, fs.

This page is generated from `dael.campaign.config` (`python -m dael.campaign.reference`).
"""


def field_docs(klass: type) -> dict[str, str]:
    """The `#:` comment lines written above each field of a dataclass, by field name ('' when none)."""
    lines = textwrap.dedent(inspect.getsource(klass)).splitlines()
    tree = ast.parse("\n".join(lines))
    docs: dict[str, str] = {}
    for node in tree.body[0].body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            above, k = [], node.lineno - 2
            while k >= 0 and lines[k].strip().startswith("#:"):
                above.insert(0, lines[k].strip()[2:].strip())
                k -= 1
            docs[node.target.id] = " ".join(above)
    return docs


def _default(f) -> str:
    if f.default is not MISSING:
        value = f.default
    elif f.default_factory is not MISSING:
        value = f.default_factory()
    else:
        return "(required)"
    return f"`{json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value}`"


def _table(klass: type, prefix: str, skip: set[str]) -> str:
    docs = field_docs(klass)
    rows = [f"| `{prefix}{f.name}` | {_default(f)} | {docs[f.name]} |" for f in fields(klass)
            if f.name not in skip and f.metadata.get("yaml", True)]
    return "| key | default | meaning |\n|---|---|---|\n" + "\n".join(rows) + "\n"


SUBSECTIONS = {"label.cluster": Cluster}
"""Mappings inside a section whose keys are a dataclass of their own (documented after their section)."""


def yaml_reference() -> str:
    """The whole reference page, markdown."""
    parts = [INTRO, "## Top level\n", _table(Campaign, "", set(SECTIONS))]
    order = [(name, klass) for section, top in SECTIONS.items() for name, klass in
             [(section, top), *((n, c) for n, c in SUBSECTIONS.items() if n.startswith(section + "."))]]
    for name, klass in order:
        summary = " ".join((klass.__doc__ or "").split("\n\n")[0].split())
        parts += [f"## {name}\n", f"{summary}\n", _table(klass, f"{name}.", set())]
    example = yaml.safe_dump(Campaign("Si").to_dict(), sort_keys=False)
    parts += ["## Every default, as `dael init` writes them\n", f"```yaml\n{example}```\n"]
    return "\n".join(parts)


if __name__ == "__main__":
    print(yaml_reference(), end="")
