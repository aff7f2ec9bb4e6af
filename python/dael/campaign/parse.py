"""Reading campaign.yaml's mapping into the keyword arguments of `dael.campaign.config.Campaign`: every key
known, every value of its field's type, or one ValueError that names the key and shows the expected form."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from dael.campaign.sections import GATED, SECTIONS
from dael.util.checks import number

__all__ = ["bad_errors", "keyword_arguments"]


def keyword_arguments(cls: type, data: dict, where: str) -> dict[str, Any]:
    """The keyword arguments of `cls` (Campaign) from a parsed YAML mapping read from `where`."""
    sections = {f.name: f.type for f in fields(cls) if f.metadata.get("yaml", True)}
    unknown = set(data) - set(sections)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(sections)}")
    if "system" not in data:
        raise ValueError(f"{where}: 'system' is missing")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        klass = SECTIONS.get(name)
        if klass is None:
            kwargs[name] = typed(f"{where}: {name}", value, sections[name])
            continue
        if not isinstance(value, dict):
            raise ValueError(f"{where}: '{name}' must be a mapping")
        known = {f.name: f.type for f in fields(klass)}
        bad = set(value) - set(known)
        if name == "explore" and "shuffle" in bad:  # written by dael before explore.order
            raise ValueError(f"{where}: explore.shuffle was replaced by explore.order: write 'order: "
                             "stratified' (the default), 'order: random' (what shuffle: true did) or 'order: "
                             "grid' (shuffle: false) instead")
        if bad:
            raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(bad))} in '{name}'; "
                             f"known: {', '.join(sorted(known))}")
        kwargs[name] = klass(**{k: typed(f"{where}: {name}.{k}", v, known[k]) for k, v in value.items()})
    return kwargs


def bad_errors(errors: dict) -> bool:
    """Whether a mapping of error targets has an unknown key or a value that is not a positive number."""
    return any(k not in GATED or not isinstance(v, int | float) or not v > 0 for k, v in errors.items())


def typed(key: str, value: Any, kind: str) -> Any:
    """`value` read from YAML as the field type `kind` ('int', 'float', 'str', 'list[float]', 'float | None',
    'dict[str, Any]'), or a ValueError that names `key` and shows the expected form."""
    if kind.endswith(" | None"):
        return None if value is None else typed(key, value, kind.removesuffix(" | None"))
    if kind.startswith("list["):
        if not isinstance(value, list):
            raise ValueError(f"{key} must be a list, e.g. [{'0.0, 8.0' if 'float' in kind else '1, 2'}]; "
                             f"got {value!r}")
        return [typed(f"{key}[{i}]", v, kind[5:-1]) for i, v in enumerate(value)]
    if kind == "int":
        return number(key, value, integer=True)
    if kind == "float":
        return float(number(key, value, infinite=True))  # finite where it matters: Campaign.check
    if kind == "str" and not isinstance(value, str):
        raise ValueError(f"{key} must be text; got {value!r}")
    if kind == "bool" and not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false; got {value!r}")
    if kind.startswith("dict[") and not isinstance(value, dict):
        raise ValueError(f"{key} must be a mapping (key: value lines); got {value!r}")
    return value


