"""The ``hairtrial`` command."""

import typer

app = typer.Typer(help="hairtrial: hair-growth clinical trials from trichoscopy images.")
