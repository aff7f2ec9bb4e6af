"""`python -m dael.cli ...` runs the `dael` command line."""

from dael.cli import app

app()
