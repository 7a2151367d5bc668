"""Commands over images: measure, validate, calibrate, phototrichogram, track.

Each command parses its arguments and calls the library; a bad image is reported with its
file name and the others still run (the exit code says some failed).
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
import tomllib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.console import Console
from rich.table import Table

from hairtrial._validate import InputError, check_um_per_px

if TYPE_CHECKING:
    from hairtrial.io.image import ImageData
    from hairtrial.measure import ImageMeasurement, MeasureConfig
    from hairtrial.measure.metrics import ErrorBreakdown, ExitEndScore
    from hairtrial.records import HairRecord

console = Console(stderr=True)
stdout = Console(width=None if sys.stdout.isatty() else 160)

ImagesArg = Annotated[list[Path], typer.Argument(help="Image files (PNG, JPEG, TIFF).")]
UmPerPxOption = Annotated[
    float | None,
    typer.Option(
        "--um-per-px",
        help="Calibration in µm per pixel (else the image's sidecar or TIFF tags).",
    ),
]
ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="Measurement parameters (JSON or TOML).")
]
LightHairsOption = Annotated[
    bool,
    typer.Option(
        "--light-hairs",
        help="Also trace shafts brighter than the skin (white, grey or blond hair); "
        "sets light_hairs in the configuration.",
    ),
]
GreyHairsOption = Annotated[
    bool,
    typer.Option(
        "--grey-hairs",
        help="Also trace grey shafts that differ from pink or tanned skin by colour only; "
        "sets grey_hairs in the configuration.",
    ),
]

_HAIR_COLUMNS = (
    "image", "hair_id", "exit_x_px", "exit_y_px", "tip_x_px", "tip_y_px",
    "diameter_um", "length_um", "class", "confidence", "exit_confidence",
)  # fmt: skip


def _error(path: Path | str, exc: Exception) -> None:
    message = str(exc)
    if str(path) not in message:
        message = f"{path}: {message}"
    console.print(f"[bold red]error:[/] {message}", highlight=False)


def load_config(
    path: Path | None, *, light_hairs: bool = False, grey_hairs: bool = False
) -> MeasureConfig:
    """Read measurement parameters from a JSON or TOML file (defaults without a file).

    `light_hairs` (`grey_hairs`) True turns the light-shaft pass (the grey-shaft colour
    contrast) on whatever the file says.
    """
    import dataclasses

    config = _read_config(path)
    if light_hairs:
        config = dataclasses.replace(config, light_hairs=True)
    if grey_hairs:
        config = dataclasses.replace(config, grey_hairs=True)
    return config


def _read_config(path: Path | None) -> MeasureConfig:
    from hairtrial.measure import MeasureConfig

    if path is None:
        return MeasureConfig()
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read measurement config ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: measurement config must be a table of parameters")
    try:
        return MeasureConfig.from_dict(data)
    except (InputError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: {exc}") from None


def _calibrated(path: Path, um_per_px: float | None) -> tuple[ImageData, float]:
    from hairtrial.io import read_image

    data = read_image(path)
    um = um_per_px if um_per_px is not None else data.um_per_px
    return data, check_um_per_px(um, path=path)


def _measure_each(
    images: Sequence[Path], um_per_px: float | None, config: MeasureConfig
) -> Iterator[tuple[Path, ImageData, ImageMeasurement] | tuple[Path, None, None]]:
    """Measure images one by one; a failed one yields ``(path, None, None)``."""
    from hairtrial.measure import measure_image

    for path in images:
        try:
            data, um = _calibrated(path, um_per_px)
            yield path, data, measure_image(data.pixels, um_per_px=um, config=config)
        except (InputError, MemoryError) as exc:
            _error(path, exc)
            yield path, None, None


def _hair_rows(name: str, result: ImageMeasurement) -> Iterator[dict[str, Any]]:
    sure = list(result.exit_confidence)
    for k, h in enumerate(result.hairs):
        exit_x, exit_y = (None, None) if h.exit_px is None else h.exit_px
        yield {
            "image": name, "hair_id": h.id, "exit_x_px": exit_x, "exit_y_px": exit_y,
            "tip_x_px": h.tip_px[0], "tip_y_px": h.tip_px[1],
            "diameter_um": round(h.diameter_um, 2), "length_um": round(h.length_um, 1),
            "class": h.hair_class, "confidence": round(h.confidence, 3),
            "exit_confidence": round(sure[k], 3) if k < len(sure) else None,
        }  # fmt: skip


def _json_number(value: float) -> float | None:
    """Round for JSON output; NaN (undefined, e.g. no true hairs) becomes null."""
    return None if math.isnan(value) else round(float(value), 4)


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def measure(
    images: ImagesArg,
    um_per_px: UmPerPxOption = None,
    config: ConfigOption = None,
    light_hairs: LightHairsOption = False,
    grey_hairs: GreyHairsOption = False,
    fmt: Annotated[
        Literal["json", "csv", "table"],
        typer.Option("--format", help="json: JSON Lines per image; csv: a row per hair."),
    ] = "json",
    overlay: Annotated[
        Path | None, typer.Option("--overlay", help="Write an overlay PNG per image here.")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write to a file, not stdout.")] = None,
) -> None:
    """Find, trace and measure every hair in each image."""
    from hairtrial.measure.overlay import save_overlay

    try:
        params = load_config(config, light_hairs=light_hairs, grey_hairs=grey_hairs)
        if um_per_px is not None:
            check_um_per_px(um_per_px)
    except InputError as exc:
        _error(config or "--um-per-px", exc)
        raise typer.Exit(code=2) from None
    if overlay is not None:
        overlay.mkdir(parents=True, exist_ok=True)
    sink = out.open("w", encoding="utf-8", newline="") if out else sys.stdout
    writer = csv.DictWriter(sink, fieldnames=_HAIR_COLUMNS, lineterminator="\n")
    if fmt == "csv":
        writer.writeheader()
    table = Table("image", "hairs", "density /cm²", "mean Ø µm", "terminal", "< 60 µm")
    failed = 0
    try:
        for path, data, result in _measure_each(images, um_per_px, params):
            if data is None or result is None:
                failed += 1
                continue
            if fmt == "json":
                sink.write(json.dumps(result.to_json(path.name)) + "\n")
            elif fmt == "csv":
                writer.writerows(_hair_rows(path.name, result))
            else:
                s = result.summary
                table.add_row(
                    path.name, str(s["hair_count"]), _fmt(s["density_per_cm2"], 1),
                    _fmt(s["mean_diameter_um"], 1), _fmt(s["terminal_fraction"]),
                    _fmt(s["fraction_below_index"]),
                )  # fmt: skip
            if overlay is not None:
                target = overlay / f"{path.stem}.overlay.png"
                save_overlay(target, data.pixels, result.hairs, um_per_px=result.um_per_px)
    finally:
        if out:
            sink.close()
    if fmt == "table":
        stdout.print(table)
    if failed:
        console.print(f"{failed} of {len(images)} image(s) failed")
        raise typer.Exit(code=1)


def _truth_path(image: Path, truth: Path | None) -> Path:
    if truth is not None and truth.is_file():
        return truth
    folder = truth if truth is not None else image.parent
    names = (f"{image.stem}.truth.json", f"{image.stem}.json", f"{image.name}.json",
             f"{image.stem}.xml")  # fmt: skip
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise InputError(
        f"{image}: no truth file found in {folder} ({image.stem}.truth.json, "
        f"{image.name}.json or {image.stem}.xml)"
    )


def validate(
    images: ImagesArg,
    truth: Annotated[
        Path | None,
        typer.Option(
            "--truth",
            help="Annotation file (one image): hairtrial or simulator truth JSON, Pascal "
            "VOC XML boxes, or a JSON list of polylines with a width; or a folder of "
            "<image stem>.truth.json / <image name>.json / <image stem>.xml files; "
            "default: beside each image.",
        ),
    ] = None,
    um_per_px: UmPerPxOption = None,
    config: ConfigOption = None,
    light_hairs: LightHairsOption = False,
    grey_hairs: GreyHairsOption = False,
    by: Annotated[
        Literal["exit", "centreline"], typer.Option("--by", help="How hairs are matched.")
    ] = "centreline",
    max_distance_px: Annotated[
        float, typer.Option("--max-distance-px", help="Largest distance for a match (px).")
    ] = 10.0,
    fmt: Annotated[
        Literal["table", "json"],
        typer.Option(
            "--format",
            help="table, or JSON Lines: one object per image and a pooled one (image 'all'); "
            "what `hairtrial power --validation` reads.",
        ),
    ] = "table",
    overlay: Annotated[
        Path | None,
        typer.Option(
            "--overlay",
            help="Write a validation overlay PNG per image here: matched, false and missed "
            "hairs, each error labelled with its reason.",
        ),
    ] = None,
) -> None:
    """Score measurement against annotations: detection, count, diameter, terminal fraction.

    Box annotations (Pascal VOC) score detection and count only: a hair matches a box
    when its mid-shaft point (its exit with ``--by exit``) lies inside the box or within
    ``--max-distance-px`` of its centre.
    """
    from hairtrial.io.image import write_image
    from hairtrial.measure.annotations import explain_box_errors, read_annotations, score_boxes
    from hairtrial.measure.metrics import (
        ExitEndScore,
        detection_score,
        explain_errors,
        score_exit_ends,
        score_hairs,
    )
    from hairtrial.measure.overlay import draw_validation

    try:
        params = load_config(config, light_hairs=light_hairs, grey_hairs=grey_hairs)
    except InputError as exc:
        _error(config or "--config", exc)
        raise typer.Exit(code=2) from None
    table = Table("image", "true", "found", "precision", "recall", "F1", "count err",
                  "Ø MAE µm", "TF err", "exit right")  # fmt: skip
    pooled = [0, 0, 0]
    ends = ExitEndScore(0, 0)  # pooled over the images whose annotation states exits
    # errors pooled by reason (those of hair annotations, then those of boxes)
    missed: dict[str, int] = {}
    false: dict[str, int] = {}
    failed = 0
    if overlay is not None:
        overlay.mkdir(parents=True, exist_ok=True)
    for path, data, result in _measure_each(images, um_per_px, params):
        if data is None or result is None:
            failed += 1
            continue
        try:
            annotated = read_annotations(_truth_path(path, truth), um_per_px=result.um_per_px)
        except InputError as exc:
            _error(path, exc)
            failed += 1
            continue
        boxes = annotated.boxes if annotated.format == "voc" else None
        if boxes is not None:
            box_score = score_boxes(result.hairs, boxes, max_distance_px=max_distance_px, by=by)
            d, matches = box_score.detection, box_score.matches
            errors = explain_box_errors(result.hairs, boxes, matches, shape=result.shape)
            wrong: tuple[int, ...] | None = None  # boxes state no exit end
            head: dict[str, Any] = {"annotation": "boxes"}
            fields: dict[str, Any] = {}  # diameter and exit-end scores
            cells = ["", "", ""]  # boxes carry no diameter and no exit end
        else:
            score = score_hairs(
                result.hairs, annotated.hairs, max_distance_px=max_distance_px, by=by
            )
            d, matches = score.detection, list(score.matches)
            errors = explain_errors(
                result.hairs, annotated.hairs, matches, shape=result.shape,
                reach_px=max_distance_px,
            )  # fmt: skip
            head = {}
            fields = {
                "diameter_mae_um": _json_number(score.diameter_mae_um),
                "diameter_bias_um": _json_number(score.diameter_bias_um),
                "mean_diameter_error_um": _json_number(score.mean_diameter_error_um),
                "terminal_fraction_error": _json_number(score.terminal_fraction_error),
            }
            cells = [_fmt(score.diameter_mae_um, 1), _fmt(score.terminal_fraction_error), ""]
            wrong = None
            if by == "centreline" and annotated.format == "hairtrial":
                # the tool format's polylines do not say which end is the exit
                end = score_exit_ends(result.hairs, annotated.hairs, matches,
                                      exit_confidence=result.exit_confidence)  # fmt: skip
                ends, wrong = ends + end, end.wrong
                fields |= _exit_end_fields(end)
                cells[2] = _fmt(end.right_fraction)
        pooled = [pooled[0] + d.n_detected, pooled[1] + d.n_true, pooled[2] + d.n_matched]
        _pool(missed, errors.missed)
        _pool(false, errors.false)
        if overlay is not None:
            write_image(
                overlay / f"{path.stem}.validation.png",
                draw_validation(data.pixels, result.hairs, matches=matches,
                                um_per_px=result.um_per_px, truth=annotated.hairs, boxes=boxes,
                                by=by, errors=errors, wrong_ends=wrong),
            )  # fmt: skip
        if fmt == "json":
            typer.echo(json.dumps({
                "image": path.name, **head, "n_true": d.n_true, "n_detected": d.n_detected,
                "n_matched": d.n_matched, "precision": _json_number(d.precision),
                "recall": _json_number(d.recall), "f1": _json_number(d.f1),
                "count_error": _json_number(d.count_error), **fields,
                "missed_reasons": errors.missed, "false_reasons": errors.false,
                "errors": _error_rows(result.hairs, errors, truth=annotated.hairs, boxes=boxes,
                                      wrong_ends=wrong or ()),
            }))  # fmt: skip
        table.add_row(
            path.name, str(d.n_true), str(d.n_detected), _fmt(d.precision), _fmt(d.recall),
            _fmt(d.f1), _fmt(d.count_error), *cells,
        )  # fmt: skip
    if pooled[1] or pooled[0]:
        p = detection_score(*pooled)
        table.add_row("all", str(p.n_true), str(p.n_detected), _fmt(p.precision),
                      _fmt(p.recall), _fmt(p.f1), _fmt(p.count_error), "", "",
                      _fmt(ends.right_fraction) if ends.n else "")  # fmt: skip
        if fmt == "json":
            typer.echo(json.dumps({
                "image": "all", "n_true": p.n_true, "n_detected": p.n_detected,
                "n_matched": p.n_matched, "precision": _json_number(p.precision),
                "recall": _json_number(p.recall), "f1": _json_number(p.f1),
                "count_error": _json_number(p.count_error),
                "missed_reasons": missed, "false_reasons": false,
                **(_exit_end_fields(ends) if ends.n else {}),
            }))  # fmt: skip
    if fmt == "table":
        stdout.print(table)
        if pooled[1] or pooled[0]:
            stdout.print(_reasons("missed", missed))
            stdout.print(_reasons("false", false))
        if ends.n:
            stdout.print(_exit_end_line(ends))
    if failed:
        console.print(f"{failed} of {len(images)} image(s) failed")
        raise typer.Exit(code=1)


def _exit_end_fields(end: ExitEndScore) -> dict[str, Any]:
    """JSON fields of an :class:`~hairtrial.measure.metrics.ExitEndScore`."""
    return {
        "exit_ends_scored": end.n,
        "exit_end_right": _json_number(end.right_fraction),
        "exit_confidence_bins": [
            {"from": b.low, "to": b.high, "n": b.n, "right": _json_number(b.right_fraction),
             "mean_confidence": _json_number(b.mean_confidence)}
            for b in end.bins
        ],
    }  # fmt: skip


def _exit_end_line(end: ExitEndScore) -> str:
    """One line: how often the exit end is right, and by stated confidence."""
    parts = [f"{b.low:g}–{b.high:g}: {b.right_fraction:.2f} of {b.n}" for b in end.bins if b.n]
    return f"exit end right {end.right_fraction:.3f} of {end.n} matched hairs" + (
        "; by stated exit confidence " + ", ".join(parts) if parts else ""
    )


def _pool(total: dict[str, int], counts: dict[str, int]) -> None:
    """Add one image's errors per reason to the pooled counts."""
    for key, value in counts.items():
        total[key] = total.get(key, 0) + value


def _error_rows(
    detected: Sequence[HairRecord],
    errors: ErrorBreakdown,
    *,
    truth: Sequence[HairRecord] = (),
    boxes: Any = None,
    wrong_ends: Sequence[int] = (),
) -> list[dict[str, Any]]:
    """Each error of one image with its reason and where to look (px), for review.

    A missed annotated hair is placed at its exit, a missed box at its centre (with the
    box); a false detection at its exit, with its ``hair_id``. Indices are those of
    :func:`hairtrial.measure.metrics.explain_errors` (counted hairs only) or of the boxes.
    The matched hairs with the exit at the annotated tip end (`wrong_ends`, counted
    indices: :attr:`hairtrial.measure.metrics.ExitEndScore.wrong`) are listed too
    (``"kind": "wrong_end"``, at the measured exit).
    """
    counted = [h for h in detected if h.exit_px is not None]
    annotated = [h for h in truth if h.exit_px is not None]
    rows: list[dict[str, Any]] = []
    for j, reason in errors.missed_reason:
        row: dict[str, Any] = {"kind": "missed", "reason": reason}
        if boxes is not None:
            x0, y0, x1, y1 = (float(v) for v in boxes[j])
            x, y = 0.5 * (x0 + x1), 0.5 * (y0 + y1)
            row["box"] = [round(x0, 1), round(y0, 1), round(x1, 1), round(y1, 1)]
        else:
            x, y = annotated[j].exit_px or annotated[j].centerline_px[0]
        rows.append({**row, "x_px": round(x, 1), "y_px": round(y, 1)})
    for i, reason in errors.false_reason:
        hair = counted[i]
        x, y = hair.exit_px or hair.centerline_px[0]
        rows.append({"kind": "false", "reason": reason, "hair_id": hair.id,
                     "x_px": round(x, 1), "y_px": round(y, 1)})  # fmt: skip
    for i in wrong_ends:
        hair = counted[i]
        x, y = hair.exit_px or hair.centerline_px[0]
        rows.append({"kind": "wrong_end", "hair_id": hair.id,
                     "x_px": round(x, 1), "y_px": round(y, 1)})  # fmt: skip
    return rows


def _reasons(what: str, counts: dict[str, int]) -> str:
    """One line: how many errors of a kind, and why (the largest reasons first)."""
    total = sum(counts.values())
    parts = [
        f"{n} {key.replace('_', ' ')}"
        for key, n in sorted(counts.items(), key=lambda kv: -kv[1])
        if n
    ]
    return f"{what} {total}" + (": " + ", ".join(parts) if parts else "")


def calibrate(
    slide: Annotated[Path, typer.Argument(help="Image of a stage micrometer or grid.")],
    spacing_um: Annotated[
        float, typer.Option("--spacing-um", help="Distance between ruling lines (µm).")
    ] = 100.0,
    sidecar: Annotated[
        list[Path] | None,
        typer.Option("--sidecar", help="Write the calibration beside these images."),
    ] = None,
) -> None:
    """Measure µm per pixel from an image of a calibration slide."""
    from hairtrial.io import read_image
    from hairtrial.io.image import calibration_sidecar
    from hairtrial.measure import calibrate_from_grid

    try:
        result = calibrate_from_grid(read_image(slide).pixels, spacing_um=spacing_um)
    except InputError as exc:
        _error(slide, exc)
        raise typer.Exit(code=2) from None
    typer.echo(
        f"{result.um_per_px:.5f} µm/px  (line spacing {result.spacing_px:.3f} px, "
        f"angle {result.angle_deg:.1f}°, contrast {result.contrast:.1f})"
    )
    for image in sidecar or []:
        target = calibration_sidecar(image)
        target.write_text(json.dumps({"um_per_px": result.um_per_px}) + "\n", encoding="utf-8")
        typer.echo(f"wrote {target}")


def phototrichogram(
    first: Annotated[Path, typer.Argument(help="Image just after clipping (day 0).")],
    second: Annotated[Path, typer.Argument(help="The same field days later.")],
    days: Annotated[float, typer.Option("--days", help="Days between the two images.")],
    um_per_px: UmPerPxOption = None,
    config: ConfigOption = None,
    light_hairs: LightHairsOption = False,
    grey_hairs: GreyHairsOption = False,
    fmt: Annotated[Literal["table", "json"], typer.Option("--format")] = "table",
    overlay: Annotated[
        Path | None,
        typer.Option(
            "--overlay",
            help="Write the day-0 image here with each hair coloured by its phase and "
            "labelled with its growth (µm/day).",
        ),
    ] = None,
) -> None:
    """Register a phototrichogram pair, follow each hair, give growth and the anagen fraction.

    Growth is traced along each clipped hair on both images; the end that grew is the cut
    end. Hairs not found in the second image, or whose growth runs off the field, are
    counted apart and left out of the anagen fraction.
    """
    from hairtrial.io.image import write_image
    from hairtrial.measure.overlay import draw_phototrichogram
    from hairtrial.track.phototrichogram import phototrichogram as pair_growth

    try:
        params = load_config(config, light_hairs=light_hairs, grey_hairs=grey_hairs)
        results = list(_measure_each([first, second], um_per_px, params))
        (_, image_a, a), (_, image_b, b) = results
        if a is None or b is None or image_a is None or image_b is None:
            raise typer.Exit(code=1)
        result = pair_growth(a, b, days=days, images=(image_a.pixels, image_b.pixels))
    except InputError as exc:
        _error(f"{first}, {second}", exc)
        raise typer.Exit(code=2) from None
    reg = result.registration
    if overlay is not None:
        overlay.mkdir(parents=True, exist_ok=True)
        drawn = draw_phototrichogram(image_a.pixels, a.hairs, result, um_per_px=a.um_per_px)
        write_image(overlay / f"{first.stem}.phototrichogram.png", drawn)
    if fmt == "json":
        typer.echo(json.dumps({"first": first.name, "second": second.name, **result.to_json()}))
    else:
        table = Table("hair (day 0)", "hair (later)", "growth µm/day", "phase", "cut end")
        for h in result.hairs:
            later = "–" if h.id_second is None else str(h.id_second)
            table.add_row(
                str(h.id_first), later, f"{h.growth_um_per_day:.0f}", h.phase, h.cut_end or "–"
            )
        stdout.print(table)
        stdout.print(
            f"registration score {reg.score:.2f} ({reg.method}); anagen {result.n_anagen}, "
            f"telogen {result.n_telogen}, anagen fraction {_fmt(result.anagen_fraction)}; "
            f"not found later {result.n_lost}, undetermined {result.n_undetermined}"
        )
    if not reg.ok:
        problem = f"could not register (score {reg.score:.2f}): {reg.reason}"
        _error(f"{first}, {second}", InputError(problem))
        raise typer.Exit(code=1)


def track(
    images: ImagesArg,
    days: Annotated[str, typer.Option("--days", help="Visit days of the images, comma-separated.")],
    um_per_px: UmPerPxOption = None,
    config: ConfigOption = None,
    light_hairs: LightHairsOption = False,
    grey_hairs: GreyHairsOption = False,
    fmt: Annotated[
        Literal["json", "csv"],
        typer.Option("--format", help="json: transforms and follicles; csv: trajectories."),
    ] = "json",
    overlay: Annotated[
        Path | None,
        typer.Option(
            "--overlay",
            help="Write a tracking overlay PNG per image here: each hair labelled with its "
            "follicle id, follicles absent at a visit ringed where they should be.",
        ),
    ] = None,
) -> None:
    """Follow one site's follicles across visits (images in visit order)."""
    from hairtrial.io.image import write_image
    from hairtrial.measure.overlay import draw_tracks
    from hairtrial.track import track_site

    try:
        visit_days = [int(d) for d in days.split(",") if d.strip()]
    except ValueError:
        _error("--days", InputError(f"--days must be whole days separated by commas: {days!r}"))
        raise typer.Exit(code=2) from None
    if len(visit_days) != len(images):
        _error("--days", InputError(f"{len(visit_days)} day(s) for {len(images)} image(s)"))
        raise typer.Exit(code=2)
    try:
        params = load_config(config, light_hairs=light_hairs, grey_hairs=grey_hairs)
    except InputError as exc:
        _error(config or "--config", exc)
        raise typer.Exit(code=2) from None
    measured = list(_measure_each(images, um_per_px, params))
    if any(result is None for _, _, result in measured):
        raise typer.Exit(code=1)
    try:
        tracks = track_site(
            [r.hairs for _, _, r in measured if r is not None],
            visit_days=visit_days,
            um_per_px=[r.um_per_px for _, _, r in measured if r is not None],
            images=[d.pixels for _, d, _ in measured if d is not None],
            image_names=[p.name for p, _, _ in measured],
            hidden_rows=[r.hidden_rows for _, _, r in measured if r is not None],
        )
    except InputError as exc:
        _error("track", exc)
        raise typer.Exit(code=2) from None
    if overlay is not None:
        overlay.mkdir(parents=True, exist_ok=True)
        for visit, (path, data, _) in enumerate(measured):
            if data is not None:
                write_image(overlay / f"{path.stem}.track.png",
                            draw_tracks(data.pixels, tracks, visit))  # fmt: skip
    if fmt == "json":
        typer.echo(json.dumps(tracks.to_json()))
    else:
        buffer = io.StringIO()
        tracks.to_table().to_csv(buffer, index=False)
        typer.echo(buffer.getvalue(), nl=False)


def register(app: typer.Typer) -> None:
    """Add the image commands to the ``hairtrial`` application."""
    for command in (measure, validate, calibrate, phototrichogram, track):
        app.command()(command)
