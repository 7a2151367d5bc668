"""The ``hairtrial report`` command: parse arguments, call :func:`hairtrial.report.build_report`.

An unblinded report is an audit event: who asked (the OS user), for which trial and where
it was written are recorded with :func:`hairtrial.store.record_event` before the report
is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hairtrial._validate import InputError
from hairtrial.cli._common import DbOption, ImageRootOption, console, os_actor


def report(
    out: Annotated[Path, typer.Option("--out", help="Output folder for report.html/.pdf.")],
    db: DbOption = "sqlite:///trial.db",
    unblind: Annotated[
        bool,
        typer.Option("--unblind", help="Show real arm names (recorded in the audit trail)."),
    ] = False,
    site: Annotated[
        list[str] | None,
        typer.Option("--site", help="Site code for a before/after panel (repeatable)."),
    ] = None,
    subjects: Annotated[
        Path | None,
        typer.Option("--subjects", help="Subjects CSV (subject, age, severity, ...)."),
    ] = None,
    trial: Annotated[
        str | None, typer.Option("--trial", help="Trial to report (when the database has several).")
    ] = None,
    image_root: ImageRootOption = None,
) -> None:
    """Write the trial report: self-contained HTML (figures embedded) and PDF."""
    from hairtrial.report import build_report
    from hairtrial.store import open_store, record_event

    try:
        with open_store(db, image_root=image_root) as store:
            if unblind:
                with store.begin() as session:
                    record_event(
                        session=session,
                        actor=os_actor(),
                        action="unblind",
                        entity="report",
                        entity_id=trial,
                        detail={"out": str(out), "trial": trial},
                    )
            files = build_report(
                store=store,
                out_dir=out,
                unblind=unblind,
                sites=site or None,
                subjects=subjects,
                trial=trial,
            )
    except InputError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(code=2) from None
    typer.echo(f"report (HTML): {files.html}")
    typer.echo(f"report (PDF):  {files.pdf}")
    typer.echo(f"figures:       {len(files.figures)} in {files.html.parent / 'figures'}")
    if unblind:
        typer.echo("UNBLINDED: real arm names are shown; the request was recorded.")


def register(app: typer.Typer) -> None:
    """Add the ``report`` command to the ``hairtrial`` application."""
    app.command()(report)
