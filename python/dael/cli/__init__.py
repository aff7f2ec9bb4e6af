"""The `dael` command line: a thin declaration of commands, grouped by what they work on; the work is done by
the library modules they call."""

from dael.cli import (  # noqa: F401  (each registers its commands)
    benchmark,
    campaign,
    check,
    deploy,
    distill,
    explore,
    filter,
    fingerprint,
    label,
    train,
)
from dael.cli.common import app

__all__ = ["app"]
