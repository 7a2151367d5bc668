"""The ``hairtrial`` command: parse arguments, call the library, report.

No logic lives here: every command calls the same public functions a notebook user calls.
Bad input ends with a one-line error naming the file or option and the problem (exit 2).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Literal

import typer

from hairtrial import __version__
from hairtrial._validate import InputError
from hairtrial.cli import analyze_cmds, measure_cmds, report_cmds, web_cmds
from hairtrial.cli._common import DbOption, ImageRootOption, console
from hairtrial.cli._common import fail as _fail

app = typer.Typer(
    help="hairtrial: hair-growth clinical trials, from trichoscopy images to the trial's answer.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
measure_cmds.register(app)
web_cmds.register(app)
analyze_cmds.register(app)
report_cmds.register(app)
presets_app = typer.Typer(help="List and print the packaged trial presets.", no_args_is_help=True)
app.add_typer(presets_app, name="presets")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hairtrial {__version__}")
        raise typer.Exit()


def _quiet_dask(record: logging.LogRecord) -> bool:
    """Let Dask's log records through only from WARNING up."""
    name = record.name
    return record.levelno >= logging.WARNING or not name.startswith(("distributed", "dask"))


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress.")] = False,
) -> None:
    """Hair-growth clinical trials, from trichoscopy images to the trial's answer."""
    from rich.logging import RichHandler

    handler = RichHandler(console=console, show_path=False)
    if not verbose:
        # Dask configures its own loggers at INFO when it is imported (after this runs);
        # its cluster chatter is noise unless asked for, so filter it at the handler.
        handler.addFilter(_quiet_dask)
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[handler],
    )


@presets_app.command("list")
def presets_list() -> None:
    """List the packaged trial presets with their descriptions."""
    from hairtrial.simulate.config import list_presets, load_preset

    for name in list_presets():
        preset = load_preset(name)
        typer.echo(f"{name}\t{preset.description.splitlines()[0] if preset.description else ''}")


@presets_app.command("show")
def presets_show(
    name: Annotated[str, typer.Argument(help="Preset name (see `hairtrial presets list`).")],
) -> None:
    """Print a preset's TOML, to copy into a file, edit and pass to --preset."""
    from hairtrial.simulate.config import preset_text

    try:
        _, text = preset_text(name)
    except InputError as exc:
        raise _fail(exc) from None
    typer.echo(text, nl=False)


@app.command()
def simulate(
    out: Annotated[Path, typer.Option("--out", help="Output folder.")],
    preset: Annotated[
        str, typer.Option("--preset", help="Preset name or path to a .toml preset file.")
    ] = "nanfang-2023",
    subjects: Annotated[
        int | None, typer.Option("--subjects", help="Number of subjects (default: preset's).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    render: Annotated[
        bool, typer.Option("--render/--no-render", help="Render images or only truth tables.")
    ] = True,
    field_cm2: Annotated[
        float | None, typer.Option("--field-cm2", help="Imaged field area in cm².")
    ] = None,
    um_per_px: Annotated[
        float | None, typer.Option("--um-per-px", help="Image calibration in µm per pixel.")
    ] = None,
    clip: Annotated[
        bool | None, typer.Option("--clip/--no-clip", help="Clip hairs before imaging.")
    ] = None,
    phototrichogram: Annotated[
        bool,
        typer.Option("--phototrichogram", help="Also re-image each visit after a few days."),
    ] = False,
    style: Annotated[
        str | None, typer.Option("--style", help="Renderer style: standard or hard.")
    ] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Rendering processes.")] = 1,
    scenario: Annotated[
        bool,
        typer.Option(
            "--scenario",
            help="Compare injection schedules and severities over years (curves, no images).",
        ),
    ] = False,
    schedules: Annotated[
        str, typer.Option("--schedules", help="Scenario schedules: single,yearly,repeated.")
    ] = "single,yearly",
    severities: Annotated[
        str | None,
        typer.Option("--severities", help="Scenario severities, e.g. HN-IV,HN-VI."),
    ] = None,
    years: Annotated[float, typer.Option("--years", help="Scenario horizon in years.")] = 3.0,
) -> None:
    """Simulate a trial: follicle truth, endpoints, manifest, images with exact truth.

    With --scenario, compare injection schedules and severities over several years instead
    and write the expected terminal fraction and density curves (scenarios.csv, .png).
    """
    from hairtrial.simulate.config import load_preset
    from hairtrial.simulate.trial import with_overrides, write_trial

    if scenario:
        from hairtrial.simulate.scenario import plot_scenarios, simulate_scenarios

        try:
            out.mkdir(parents=True, exist_ok=True)
            curves = simulate_scenarios(
                load_preset(preset), seed=seed, years=years,
                schedules=[s.strip() for s in schedules.split(",") if s.strip()],
                severities=[s.strip() for s in severities.split(",")] if severities else None,
                subjects=subjects if subjects is not None else 20,
            )  # fmt: skip
        except (InputError, OSError) as exc:
            raise _fail(exc) from None
        curves.to_csv(out / "scenarios.csv", index=False, float_format="%.6g")
        plot_scenarios(curves, out / "scenarios.png")
        last = curves[curves["day"] == curves["day"].max()]
        typer.echo(f"scenarios of {preset} over {years:g} years written to {out}")
        typer.echo(last[["schedule", "severity", "arm", "terminal_fraction", "density_per_cm2"]]
                   .round(3).to_string(index=False))  # fmt: skip
        return
    try:
        loaded = with_overrides(
            load_preset(preset),
            subjects=subjects,
            field_cm2=field_cm2,
            um_per_px=um_per_px,
            clip=clip,
            style=style,
        )
        outputs = write_trial(
            loaded, out, seed=seed, render=render, phototrichogram=phototrichogram,
            workers=workers,
        )  # fmt: skip
    except InputError as exc:
        raise _fail(exc) from None
    typer.echo(f"simulated {loaded.trial.subjects} subjects of {loaded.name} into {out}")
    typer.echo(f"  follicle truth:   {outputs.follicles}")
    typer.echo(f"  truth endpoints:  {outputs.endpoints}")
    if outputs.manifest is not None:
        typer.echo(f"  manifest:         {outputs.manifest} ({outputs.n_images} images)")


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("demo-output"),
    subjects: Annotated[int, typer.Option("--subjects", min=2, help="Number of subjects.")] = 12,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 2023,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Rendering processes and Dask workers.")
    ] = 2,
) -> None:
    """Run the demo: simulate a nanfang-2023 trial, measure, track, analyse and report it."""
    from hairtrial.demo import run_demo

    try:
        result = run_demo(out_dir=out, subjects=subjects, seed=seed, workers=workers)
    except InputError as exc:
        raise _fail(exc) from None
    typer.echo(
        f"demo trial: {subjects} subjects, {result.n_images} images simulated, ingested into "
        f"{result.database_url}, measured and tracked on Dask"
    )
    typer.echo(result.batch.describe())
    typer.echo(f"report: {result.report_html}")
    typer.echo(f"        {result.report_pdf}")
    typer.echo("")
    typer.echo("headline (from the measured images):")
    typer.echo(result.headline())
    typer.echo("")
    typer.echo(
        "cells − saline change from baseline by visit day, in terminal fraction (tf) and mean "
        "shaft diameter (diam_um): measured from the images, beside the simulator's truth of "
        "the same fields and of the whole sites; then the measured effect on tracked "
        "follicles below / at or above 60 µm at baseline"
    )
    typer.echo(result.shape_table().round(3).to_string())
    steps = ", ".join(f"{k.removesuffix('_s')} {v:.0f} s" for k, v in result.timings_s.items())
    typer.echo(f"time: {steps}")


@app.command()
def ingest(
    manifest: Annotated[Path, typer.Argument(help="Manifest CSV (one row per image).")],
    db: DbOption = "sqlite:///trial.db",
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="Write the good rows, report the bad ones.")
    ] = False,
    in_place: Annotated[
        bool, typer.Option("--in-place", help="Reference images where they are, no copy.")
    ] = False,
    image_root: ImageRootOption = None,
    trial: Annotated[str, typer.Option("--trial", help="Trial name in the database.")] = "trial",
) -> None:
    """Validate a whole manifest, then store its images (nothing is written if a row is bad)."""
    from hairtrial.store import ingest_manifest

    try:
        report = ingest_manifest(
            url_or_store=db, manifest_path=manifest, skip_bad=skip_bad, in_place=in_place,
            image_root=image_root, trial=trial,
        )  # fmt: skip
    except InputError as exc:  # an IngestError lists every bad line
        raise _fail(exc) from None
    for problem in report.problems:
        console.print(f"[yellow]skipped[/] line {problem.line}: {problem.message}")
    typer.echo(report.summary())


@app.command()
def export(
    out: Annotated[Path, typer.Option("--out", help="Output folder.")],
    db: DbOption = "sqlite:///trial.db",
    fmt: Annotated[Literal["parquet", "csv"], typer.Option("--format", help="Table format.")] = (
        "parquet"
    ),
    unblind: Annotated[
        bool, typer.Option("--unblind", help="Include each site's arm (blinded by default).")
    ] = False,
    image_root: ImageRootOption = None,
) -> None:
    """Export tidy tables: endpoints, hairs, follicle trajectories, runs and failures."""
    from hairtrial.store import export_tables, open_store

    try:
        with open_store(db, image_root=image_root) as store:
            paths = export_tables(store=store, out_dir=out, fmt=fmt, include_arm=unblind)
    except InputError as exc:
        raise _fail(exc) from None
    for name, path in paths.items():
        typer.echo(f"{name:<22} {path}")


@app.command()
def status(
    db: DbOption = "sqlite:///trial.db",
    verify: Annotated[
        bool, typer.Option("--verify", help="Also re-check every stored image's checksum.")
    ] = False,
    image_root: ImageRootOption = None,
) -> None:
    """Show measurement progress, failures and their reasons."""
    from hairtrial.store import open_store, run_status, verify_images
    from hairtrial.store.phototrichograms import phototrichogram_status

    try:
        with open_store(db, image_root=image_root) as store, store.session() as session:
            progress = run_status(session=session)
            photos = phototrichogram_status(session=session)
            bad_files = verify_images(store=store) if verify else []
            where = store.describe()
    except InputError as exc:
        raise _fail(exc) from None
    typer.echo(f"database: {where}")
    typer.echo(f"images: {progress.n_images}, measured: {progress.n_images_done}")
    typer.echo("runs: " + ", ".join(f"{k} {v}" for k, v in sorted(progress.counts.items())))
    for failure in progress.failures:
        typer.echo(f"failed: {failure.source_path}: {failure.error}")
    if photos.n_reimages:
        typer.echo(
            f"phototrichogram re-images: {photos.n_reimages}, with a result: {photos.n_done}"
            f" ({len(photos.refused)} could not be registered)"
        )
        for name, reason in photos.refused:
            typer.echo(f"not registered: {name}: {reason}")
    if verify:
        typer.echo(f"checksums: {len(bad_files)} problem(s)")
        for problem in bad_files:
            typer.echo(f"  {problem}")
        if bad_files:
            raise typer.Exit(code=1)


@app.command()
def run(
    db: DbOption = "sqlite:///trial.db",
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, help="Local worker processes (default: one per core)."),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option("--scheduler", help="Use an existing Dask scheduler, tcp://HOST:PORT."),
    ] = None,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Measure images that failed before again.")
    ] = False,
    config: Annotated[
        Path | None, typer.Option("--config", help="Measurement parameters (JSON or TOML).")
    ] = None,
    light_hairs: measure_cmds.LightHairsOption = False,
    grey_hairs: measure_cmds.GreyHairsOption = False,
    image_root: ImageRootOption = None,
    lease_s: Annotated[
        float, typer.Option("--lease-s", min=10.0, help="Seconds a worker holds an image.")
    ] = 300.0,
    track: Annotated[
        bool, typer.Option("--track/--no-track", help="Track sites whose visits are measured.")
    ] = True,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Measure every pending image and track every measured site, on Dask; resumable."""
    from hairtrial.batch import run_batch

    try:
        summary = run_batch(
            db_url=db, workers=workers, scheduler=scheduler, retry_failed=retry_failed,
            config=measure_cmds.load_config(config, light_hairs=light_hairs, grey_hairs=grey_hairs),
            image_root=image_root,
            progress=not quiet, lease_s=lease_s, track=track,
        )  # fmt: skip
    except InputError as exc:
        raise _fail(exc) from None
    typer.echo(summary.describe())
    if summary.failed or summary.unfinished or summary.track_failures:
        raise typer.Exit(code=1)
