"""Commands over a measured trial: analyze (unblinded statistics) and power (planning).

Each command parses its arguments and calls the library; no statistics live here.
"""

from __future__ import annotations

import json
import tempfile
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer

from hairtrial._validate import InputError
from hairtrial.cli._common import DbOption, ImageRootOption, console, os_actor
from hairtrial.cli._common import fail as _fail


def _analysis_config(path: Path | None) -> Any:
    from hairtrial.analyze import AnalysisConfig

    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read analysis config ({exc})") from None
    return AnalysisConfig.from_dict(data, source=str(path))


def _read_table(path: Path | None, name: str) -> Any:
    import pandas as pd

    if path is None:
        return None
    try:
        return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read the {name} table ({exc})") from None


def analyze(
    out: Annotated[Path, typer.Option("--out", help="Output folder for analysis.json and CSVs.")],
    db: DbOption = "sqlite:///trial.db",
    unblind: Annotated[
        bool,
        typer.Option(
            "--unblind", help="Confirm unblinding: the arms are read and an audit event recorded."
        ),
    ] = False,
    config: Annotated[
        Path | None, typer.Option("--config", help="Analysis options (JSON or TOML).")
    ] = None,
    subjects: Annotated[
        Path | None,
        typer.Option(
            "--subjects", help="Subjects table (CSV: subject, age, severity) for predictors."
        ),
    ] = None,
    image_root: ImageRootOption = None,
    actor: Annotated[
        str | None, typer.Option("--actor", help="Who unblinds (default: cli:<login name>).")
    ] = None,
) -> None:
    """Unblind and analyse a measured trial: paired tests, mixed models, subgroups, responders."""
    if not unblind:
        console.print(
            "[bold red]error:[/] analyze reads each site's arm and so unblinds the trial; pass "
            "--unblind to confirm (an 'unblind' audit event is recorded in the database)",
            highlight=False,
        )
        raise typer.Exit(code=2)
    import pandas as pd

    from hairtrial.analyze import analyze_trial
    from hairtrial.store import export_tables, open_store, record_event

    who = actor or os_actor()
    try:
        options = _analysis_config(config)
        subject_table = _read_table(subjects, "subjects")
        with open_store(db, image_root=image_root) as store:
            # The audit event comes first: reading the arms is the act of unblinding.
            with store.begin() as session:
                record_event(
                    session=session, actor=who, action="unblind", entity="trial",
                    detail={"command": "analyze", "out": str(out)},
                )  # fmt: skip
            with tempfile.TemporaryDirectory(prefix="hairtrial-analyze-") as tmp:
                paths = export_tables(store=store, out_dir=tmp, fmt="parquet", include_arm=True)
                endpoints = pd.read_parquet(paths["endpoints"])
                follicles = pd.read_parquet(paths["follicle_trajectories"])
                hairs = pd.read_parquet(paths["hairs"], columns=[
                    "subject", "site", "arm", "visit_day", "image_id", "diameter_um", "counted",
                ])  # fmt: skip
        if endpoints.empty:
            raise InputError(f"{db}: no measured images to analyse (run `hairtrial run`)")
        result = analyze_trial(
            endpoints,
            follicles=follicles if len(follicles) else None,
            hairs=hairs if len(hairs) else None,
            subjects=subject_table,
            config=options,
        )
        written = result.write(out)
    except InputError as exc:
        raise _fail(exc) from None
    typer.echo(result.headline())
    for name, path in written.items():
        typer.echo(f"{name:<22} {path}")


def power(
    preset: Annotated[
        str, typer.Option("--preset", help="Preset name or path to a .toml preset file.")
    ] = "nanfang-2023",
    subjects: Annotated[
        str, typer.Option("--subjects", help="Comma-separated numbers of subjects.")
    ] = "10,20,40,80",
    sims: Annotated[int, typer.Option("--sims", min=1, help="Simulated trials.")] = 500,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    validation: Annotated[
        Path | None,
        typer.Option("--validation", help="JSON from `hairtrial validate --format json`."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="Analysis options (JSON or TOML).")
    ] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Processes.")] = 1,
    plot: Annotated[Path | None, typer.Option("--plot", help="Write a PNG of the curve.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the table as CSV.")] = None,
) -> None:
    """Simulate whole trials to estimate power and the sample size for 80 % and 90 % power."""
    from hairtrial.analyze import MeasurementError, plot_power, power_curve

    try:
        sizes = [int(s) for s in subjects.split(",") if s.strip()]
    except ValueError:
        raise _fail(
            InputError(f"--subjects: expected numbers like 10,20,40, got {subjects!r}")
        ) from None
    try:
        error = MeasurementError.from_validation(validation) if validation else None
        result = power_curve(
            preset, subjects=sizes, sims=sims, seed=seed, measurement=error,
            config=_analysis_config(config), workers=workers,
        )  # fmt: skip
    except InputError as exc:
        raise _fail(exc) from None
    typer.echo(result.describe())
    if out is not None:
        result.table.to_csv(out, index=False, float_format="%.6g")
        typer.echo(f"table: {out}")
    if plot is not None:
        typer.echo(f"plot: {plot_power(result, plot)}")


def register(app: typer.Typer) -> None:
    """Add the analysis commands to `app`."""
    app.command()(analyze)
    app.command()(power)
