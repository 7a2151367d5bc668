"""What the command modules share.

The error console, the exit on bad input, the ``--db`` and ``--image-root`` options, and
who is acting, for the audit trail.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

#: Errors and warnings go to standard error, so standard output stays parseable.
console = Console(stderr=True)

DbOption = Annotated[
    str,
    typer.Option(
        "--db",
        help="Database URL: sqlite:///trial.db (default) or postgresql+psycopg://USER@HOST/DB.",
    ),
]
ImageRootOption = Annotated[
    Path | None,
    typer.Option(
        "--image-root",
        help="Folder of the content-addressed image store (default: beside a SQLite file).",
    ),
]


def fail(exc: Exception) -> typer.Exit:
    """Print `exc` as an error and return the exit (code 2) to raise."""
    console.print(f"[bold red]error:[/] {exc}", highlight=False)
    return typer.Exit(code=2)


def os_actor() -> str:
    """Name the operating-system user for the audit trail (``cli:NAME``, else ``cli``)."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in this environment (containers)
        return "cli"
