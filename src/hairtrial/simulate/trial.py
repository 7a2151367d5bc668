"""Trial generator: subjects, sites, follicle histories, images and exact truth.

``simulate_trial`` draws the subjects of a preset, runs the follicle population of every
site through the treatment schedule (:mod:`hairtrial.simulate.population`) and returns the
truth tables. ``write_trial`` also renders every site at every visit
(:mod:`hairtrial.simulate.render`) and writes, under one folder::

    trial.json                 what was simulated: preset, seed, options, package version
    subjects.csv               one row per subject (age, severity, hair colour, treated side)
    sites.csv                  one row per site (subject, location, arm, area, severity)
    follicles.parquet          follicle-level truth, one row per follicle per visit
    truth_endpoints.csv        site × visit truth endpoints (whole site)
    manifest.csv               the DESIGN.md manifest of the rendered images
    image_truth_endpoints.csv  truth endpoints of each rendered field (one row per image)
    images/<site>_d<day>.jpg   one image per site × visit (+ ``_regrowth`` phototrichogram)
    images/<...>.truth.json    per-image truth in the ``hairtrial measure`` JSON shape

Randomness is drawn from :class:`numpy.random.SeedSequence` children keyed by purpose and
index, so the same seed and arguments give byte-identical files, and rendering the images
in parallel or in another order changes nothing.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hairtrial import __version__
from hairtrial._validate import InputError, check_positive
from hairtrial.records import DEFAULT_CLASSES, HairClasses, summarize_hairs
from hairtrial.simulate.config import SKIN_TONES, Preset

logger = logging.getLogger(__name__)

#: SeedSequence spawn keys, one per purpose, so adding a purpose never shifts another.
_KEY_SUBJECTS, _KEY_POPULATION, _KEY_POSE, _KEY_CLIP, _KEY_STYLE, _KEY_RENDER = range(6)
_LOCATIONS = ("left", "right")


@dataclass(frozen=True)
class SimulatedTrial:
    """Truth of a simulated trial, before any image is rendered.

    Parameters
    ----------
    preset : Preset
        The configuration simulated (after command-line overrides).
    seed : int
        Root seed.
    subjects : DataFrame
        ``subject, age, severity, hair_colour, skin_tone, treated_side, response``.
    sites : DataFrame
        ``site, subject, location, arm, area_cm2, severity``; row order is the site index.
    follicles : DataFrame
        Follicle-level truth: ``subject, site, arm, visit_day`` followed by the columns of
        :func:`~hairtrial.simulate.population.simulate_population` (``day`` renamed
        ``visit_day``); positions in µm in site coordinates.
    endpoints : DataFrame
        Site × visit truth endpoints from :func:`site_endpoints`.
    """

    preset: Preset
    seed: int
    subjects: pd.DataFrame
    sites: pd.DataFrame
    follicles: pd.DataFrame
    endpoints: pd.DataFrame


def _child(seed: int, *key: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(entropy=seed, spawn_key=key)


def _draw(rng: np.random.Generator, mix: dict[str, float], n: int) -> list[str]:
    names = list(mix)
    probs = np.array([mix[k] for k in names], dtype=float)
    return [names[i] for i in rng.choice(len(names), size=n, p=probs / probs.sum())]


def draw_subjects(preset: Preset, *, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Draw the subjects and sites of a trial.

    Parameters
    ----------
    preset : Preset
        Trial design (number of subjects, mixes, arms).
    seed : int
        Root seed.

    Returns
    -------
    subjects, sites : DataFrame
        See :class:`SimulatedTrial`. With two sites per subject the treated side is
        randomised per subject; with one site the arms alternate (1:1 allocation).
    """
    design = preset.trial
    rng = np.random.default_rng(_child(seed, _KEY_SUBJECTS))
    n = design.subjects
    lo, hi = design.age_range
    ages = (
        np.rint(rng.triangular(lo, design.age_mode, hi, size=n)).astype(int)
        if hi > lo
        else (np.full(n, lo))
    )
    severity = _draw(rng, design.severity_mix, n)
    colour = _draw(rng, design.hair_colour_mix, n)
    skin = _draw(rng, design.skin_tone_mix, n)
    treated_left = rng.random(n) < 0.5
    response = np.exp(rng.normal(-0.5 * design.response_sd**2, design.response_sd, size=n))
    codes = [f"S{i + 1:03d}" for i in range(n)]
    subjects = pd.DataFrame(
        {
            "subject": codes,
            "age": ages,
            "severity": severity,
            "hair_colour": colour,
            "skin_tone": skin,
            "treated_side": np.where(treated_left, "left", "right"),
            "response": response,
        }
    )
    rows: list[dict[str, Any]] = []
    for i, code in enumerate(codes):
        if design.sites_per_subject == 2:
            first, second = design.arms
            arms = (first, second) if treated_left[i] else (second, first)
            for location, arm in zip(_LOCATIONS, arms, strict=True):
                rows.append({"subject": code, "location": location, "arm": arm})
        else:
            arm = design.arms[i % len(design.arms)]
            rows.append({"subject": code, "location": "vertex", "arm": arm})
    sites = pd.DataFrame(rows)
    sites.insert(0, "site", [f"{r['subject']}-{r['location'][0].upper()}" for r in rows])
    sites["area_cm2"] = design.site_area_cm2
    sites["severity"] = sites["subject"].map(dict(zip(codes, severity, strict=True)))
    return subjects, sites


def site_endpoints(
    follicles: pd.DataFrame,
    *,
    area_cm2: float,
    count_area_cm2: float = 1.0,
    classes: HairClasses = DEFAULT_CLASSES,
) -> pd.DataFrame:
    """Site × visit truth endpoints over the whole site.

    Parameters
    ----------
    follicles : DataFrame
        Follicle truth with ``site, visit_day, has_shaft, diameter_um, phase`` columns.
    area_cm2 : float, cm²
        Site area.
    count_area_cm2 : float, cm²
        Area for ``count_per_area`` (the micrograft trials report hairs per 0.65 cm²).
    classes : HairClasses
        Class limits; the terminal limit is the miniaturisation index.

    Returns
    -------
    DataFrame
        One row per ``site, visit_day``: ``hair_count`` (visible hairs), ``density_per_cm2``,
        ``count_per_area``, ``terminal_fraction``, ``mean_diameter_um``,
        ``cumulative_thickness_mm_per_cm2``, ``fraction_below_index``, ``vellus_count``,
        ``intermediate_count``, ``terminal_count``, ``anagen_fraction`` (of visible hairs)
        and ``follicle_count`` (all follicles, empty ones included).
    """
    check_positive(area_cm2, name="area_cm2")
    check_positive(count_area_cm2, name="count_area_cm2")
    visible = follicles["has_shaft"].to_numpy(dtype=bool)
    d = follicles["diameter_um"].to_numpy(dtype=float)
    frame = pd.DataFrame(
        {
            "site": follicles["site"].to_numpy(),
            "visit_day": follicles["visit_day"].to_numpy(),
            "visible": visible,
            "diameter": np.where(visible, d, 0.0),
            "terminal": visible & (d >= classes.terminal_min_um),
            "vellus": visible & (d <= classes.vellus_max_um),
            "anagen": visible & (follicles["phase"].astype(str).to_numpy() == "anagen"),
        }
    )
    g = frame.groupby(["site", "visit_day"], sort=False)
    out = g.agg(
        hair_count=("visible", "sum"),
        follicle_count=("visible", "size"),
        diameter_sum=("diameter", "sum"),
        terminal_count=("terminal", "sum"),
        vellus_count=("vellus", "sum"),
        anagen_count=("anagen", "sum"),
    ).reset_index()
    n = out["hair_count"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["density_per_cm2"] = n / area_cm2
        out["count_per_area"] = n / area_cm2 * count_area_cm2
        out["terminal_fraction"] = np.where(n > 0, out["terminal_count"] / n, np.nan)
        out["mean_diameter_um"] = np.where(n > 0, out["diameter_sum"] / n, np.nan)
        out["fraction_below_index"] = 1.0 - out["terminal_fraction"]
        out["anagen_fraction"] = np.where(n > 0, out["anagen_count"] / n, np.nan)
    out["cumulative_thickness_mm_per_cm2"] = out["diameter_sum"] / 1000.0 / area_cm2
    out["intermediate_count"] = out["hair_count"] - out["terminal_count"] - out["vellus_count"]
    out = out.drop(columns=["diameter_sum", "anagen_count"])
    order = [
        "site", "visit_day", "hair_count", "density_per_cm2", "count_per_area",
        "terminal_fraction", "mean_diameter_um", "cumulative_thickness_mm_per_cm2",
        "fraction_below_index", "vellus_count", "intermediate_count", "terminal_count",
        "anagen_fraction", "follicle_count",
    ]  # fmt: skip
    return out[order]


def simulate_trial(
    preset: Preset,
    *,
    seed: int = 0,
    extra_days: Sequence[int] = (),
) -> SimulatedTrial:
    """Simulate a whole trial's follicle histories (no images).

    Parameters
    ----------
    preset : Preset
        Trial configuration (see :func:`~hairtrial.simulate.config.load_preset`).
    seed : int
        Root seed; the same seed gives the same trial.
    extra_days : sequence of int, days
        Days to snapshot besides the visits (e.g. phototrichogram re-imaging days); they
        appear in ``follicles`` but not in ``endpoints``.

    Returns
    -------
    SimulatedTrial
    """
    from hairtrial.simulate.population import SiteSpec, simulate_population
    from hairtrial.simulate.treatment import schedule_days

    design = preset.trial
    subjects, sites = draw_subjects(preset, seed=seed)
    schedule = schedule_days(
        design.schedule,
        n=design.schedule_sessions,
        interval_days=design.schedule_interval_days,
        horizon_days=max(design.visit_days),
    )
    response = dict(
        zip(subjects["subject"], subjects["response"].to_numpy(dtype=float), strict=True)
    )
    params = {s: preset.population_params(s) for s in sorted(set(sites["severity"]))}
    specs = [
        SiteSpec(
            params=params[row.severity],
            area_cm2=design.site_area_cm2,
            arm=str(row.arm),
            treatment=preset.treatment,
            response=float(response[row.subject]),
            schedule_days=tuple(schedule),
        )
        for row in sites.itertuples(index=False)
    ]
    days = sorted(set(design.visit_days) | {int(d) for d in extra_days})
    population = simulate_population(specs, days=days, seed=_child(seed, _KEY_POPULATION))
    site_codes = sites["site"].to_numpy()
    follicles = population.rename(columns={"day": "visit_day"})
    index = follicles["site"].to_numpy()
    follicles = follicles.assign(site=site_codes[index])
    follicles.insert(0, "subject", sites["subject"].to_numpy()[index])
    follicles.insert(2, "arm", sites["arm"].to_numpy()[index])
    at_visits = follicles[follicles["visit_day"].isin(design.visit_days)]
    endpoints = site_endpoints(
        at_visits, area_cm2=design.site_area_cm2, count_area_cm2=design.count_area_cm2
    )
    meta = sites.set_index("site")[["subject", "arm"]]
    endpoints.insert(0, "subject", meta.loc[endpoints["site"], "subject"].to_numpy())
    endpoints.insert(2, "arm", meta.loc[endpoints["site"], "arm"].to_numpy())
    return SimulatedTrial(
        preset=preset,
        seed=seed,
        subjects=subjects,
        sites=sites,
        follicles=follicles.reset_index(drop=True),
        endpoints=endpoints,
    )


# --------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class _ImageJob:
    """Everything needed to render one image, picklable for worker processes."""

    path: Path
    follicles: pd.DataFrame
    site_index: int
    visit_index: int
    regrowth: bool
    hair_colour: str
    skin_tone: str
    preset: Preset
    seed: int
    pose: Any
    manifest_row: dict[str, Any]


def _pose(preset: Preset, *, seed: int, site_index: int, visit_index: int, kind_key: int) -> Any:
    """Camera pose of one image: the field drifts, turns and rescales a little each time."""
    from hairtrial.simulate.render import CameraPose

    imaging = preset.imaging
    rng = np.random.default_rng(_child(seed, _KEY_POSE, site_index, visit_index, kind_key))
    side_um = math.sqrt(preset.trial.site_area_cm2) * 1e4
    radius = imaging.pose_shift_um * math.sqrt(rng.random())
    angle = rng.uniform(0, 2 * math.pi)
    return CameraPose(
        centre_x_um=side_um / 2 + radius * math.cos(angle),
        centre_y_um=side_um / 2 + radius * math.sin(angle),
        rotation_deg=float(rng.uniform(-1, 1) * imaging.pose_rotation_deg),
        scale=float(1.0 + rng.uniform(-1, 1) * imaging.pose_scale),
    )


def _clip_lengths(
    visit: pd.DataFrame, *, preset: Preset, seed: int, site_index: int, visit_index: int
) -> np.ndarray:
    """Shaft lengths at a visit (µm): clipped before imaging, else cut at the haircut."""
    length = visit["length_um"].to_numpy(dtype=float)
    imaging = preset.imaging
    lo, hi = imaging.clip_length_mm if imaging.clip else imaging.haircut_length_mm
    # Unclipped hair keeps the subject's own haircut (one length per follicle for the whole
    # trial); clipped hair is cut anew at each visit.
    key = (_KEY_CLIP, site_index, visit_index) if imaging.clip else (_KEY_CLIP, site_index)
    rng = np.random.default_rng(_child(seed, *key))
    # One draw per follicle id, so a follicle's length does not depend on its row.
    ids = visit["follicle_id"].to_numpy(dtype=np.int64)
    table = rng.uniform(lo * 1000.0, hi * 1000.0, size=int(ids.max(initial=-1)) + 1)
    return np.fmin(length, table[ids]) if len(ids) else length


def _regrowth_days(preset: Preset, phototrichogram: bool | Sequence[int]) -> tuple[int, ...]:
    """Visit days that get a re-image: all (True), none (False) or those listed."""
    visits = tuple(preset.trial.visit_days)
    if isinstance(phototrichogram, bool):
        return visits if phototrichogram else ()
    chosen = tuple(sorted({int(d) for d in phototrichogram}))
    unknown = [d for d in chosen if d not in visits]
    if unknown:
        raise InputError(
            f"phototrichogram: days {unknown} are not visit days of {preset.name} {list(visits)}"
        )
    return chosen


def _visit_frames(
    trial: SimulatedTrial, *, phototrichogram: bool | Sequence[int]
) -> list[tuple[int, int, bool, pd.DataFrame, int]]:
    """Per site × visit (× regrowth) the follicle table to render, with clipped lengths."""
    preset = trial.preset
    days = preset.trial.visit_days
    offset = preset.imaging.phototrichogram_days
    regrowth_days = set(_regrowth_days(preset, phototrichogram))
    by_key = {k: g for k, g in trial.follicles.groupby(["site", "visit_day"], sort=False)}
    frames: list[tuple[int, int, bool, pd.DataFrame, int]] = []
    for site_index, site in enumerate(trial.sites["site"]):
        for visit_index, day in enumerate(days):
            visit = by_key[(site, day)]
            clipped = _clip_lengths(
                visit, preset=preset, seed=trial.seed, site_index=site_index,
                visit_index=visit_index,
            )  # fmt: skip
            frames.append((site_index, visit_index, False, visit.assign(length_um=clipped), day))
            if day not in regrowth_days:
                continue
            later = by_key[(site, day + offset)]
            before = pd.Series(clipped, index=visit["follicle_id"].to_numpy())
            raw_before = pd.Series(
                visit["length_um"].to_numpy(), index=visit["follicle_id"].to_numpy()
            )
            ids = later["follicle_id"].to_numpy()
            grown = later["length_um"].to_numpy() - raw_before.reindex(ids).to_numpy()
            had = np.isfinite(before.reindex(ids).to_numpy())
            regrown = np.where(
                had,
                before.reindex(ids).to_numpy() + np.fmax(np.nan_to_num(grown), 0.0),
                later["length_um"].to_numpy(),
            )
            frames.append(
                (site_index, visit_index, True, later.assign(length_um=regrown), day + offset)
            )
    return frames


def _render_job(job: _ImageJob) -> dict[str, Any]:
    """Render one image and write it with its truth JSON; return its manifest row."""
    from hairtrial.io.image import write_image
    from hairtrial.simulate.render import random_style, render_field

    preset = job.preset
    imaging = preset.imaging
    kind_key = 1 if job.regrowth else 0
    style_rng = np.random.default_rng(
        _child(job.seed, _KEY_STYLE, job.site_index, job.visit_index, kind_key)
    )
    tone = np.asarray(SKIN_TONES[job.skin_tone]) * style_rng.uniform(0.95, 1.05, size=3)
    style = random_style(
        style_rng,
        preset=imaging.style,
        hair_colour=job.hair_colour,
        skin_rgb=tuple(float(c) for c in np.clip(tone, 0, 1)),
    )
    pose = job.pose
    shape = imaging.shape_px()
    rendered = render_field(
        job.follicles,
        um_per_px=imaging.um_per_px,
        shape=shape,
        pose=pose,
        style=style,
        seed=_child(job.seed, _KEY_RENDER, job.site_index, job.visit_index, kind_key),
    )
    write_image(job.path, rendered.image, jpeg_quality=style.jpeg_quality)
    area_cm2 = shape[0] * shape[1] * (imaging.um_per_px / pose.scale) ** 2 / 1e8
    summary = summarize_hairs(rendered.hairs, area_cm2=area_cm2)
    truth = {
        "image": job.path.name,
        "um_per_px": imaging.um_per_px / pose.scale,
        "area_cm2": area_cm2,
        **{k: v for k, v in summary.items() if k != "class_counts"},
        "class_counts": summary["class_counts"],
        "subject": job.manifest_row["subject"],
        "site": job.manifest_row["site"],
        "visit_day": job.manifest_row["visit_day"],
        "kind": job.manifest_row["kind"],
        "pose": {
            "centre_x_um": pose.centre_x_um,
            "centre_y_um": pose.centre_y_um,
            "rotation_deg": pose.rotation_deg,
            "scale": pose.scale,
        },
        "hairs": [h.to_json() for h in rendered.hairs],
    }
    truth_path = job.path.with_name(job.path.stem + ".truth.json")
    truth_path.write_text(json.dumps(truth, indent=None, sort_keys=False) + "\n", "utf-8")
    return job.manifest_row


def render_trial(
    trial: SimulatedTrial,
    out_dir: str | Path,
    *,
    phototrichogram: bool | Sequence[int] = False,
    workers: int = 1,
) -> list[dict[str, Any]]:
    """Render every site at every visit and write images plus truth JSON.

    Parameters
    ----------
    trial : SimulatedTrial
        Output of :func:`simulate_trial` (with the phototrichogram days in
        ``extra_days`` when `phototrichogram` is set).
    out_dir : str or Path
        Trial folder; images go to ``out_dir/images``.
    phototrichogram : bool or sequence of int
        Also render each visit's re-imaged regrowth image (True), or only those of the
        visit days listed.
    workers : int
        Processes to render with; the output does not depend on it.

    Returns
    -------
    list of dict
        Manifest rows (``image`` relative to `out_dir`).
    """
    from rich.progress import Progress

    preset = trial.preset
    images = Path(out_dir) / "images"
    images.mkdir(parents=True, exist_ok=True)
    subjects = trial.subjects.set_index("subject")
    um_per_px = preset.imaging.um_per_px
    jobs: list[_ImageJob] = []
    for site_index, visit_index, regrowth, frame, day in _visit_frames(
        trial, phototrichogram=phototrichogram
    ):
        site = trial.sites.iloc[site_index]
        subject = subjects.loc[site["subject"]]
        suffix = "_regrowth" if regrowth else ""
        name = f"{site['site']}_d{day:03d}{suffix}.{preset.imaging.image_format}"
        kind = (
            "clipped-regrowth" if regrowth else ("clipped" if preset.imaging.clip else "unclipped")
        )
        pose = _pose(preset, seed=trial.seed, site_index=site_index,
                     visit_index=visit_index, kind_key=int(regrowth))  # fmt: skip
        row = {
            "image": f"images/{name}",
            "subject": site["subject"],
            "site": site["site"],
            "arm": site["arm"],
            "visit_day": int(day),
            "um_per_px": round(um_per_px / pose.scale, 6),
            "kind": kind,
            "device": "hairtrial-simulator",
        }
        jobs.append(
            _ImageJob(
                path=images / name,
                follicles=frame,
                site_index=site_index,
                visit_index=visit_index,
                regrowth=regrowth,
                hair_colour=str(subject["hair_colour"]),
                skin_tone=str(subject["skin_tone"]),
                preset=preset,
                seed=trial.seed,
                pose=pose,
                manifest_row=row,
            )
        )
    rows: list[dict[str, Any]] = []
    with Progress(transient=True) as progress:
        task = progress.add_task("rendering", total=len(jobs))
        if workers > 1:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for row in pool.map(_render_job, jobs, chunksize=4):
                    rows.append(row)
                    progress.advance(task)
        else:
            for job in jobs:
                rows.append(_render_job(job))
                progress.advance(task)
    return rows


@dataclass(frozen=True)
class TrialOutputs:
    """Paths written by :func:`write_trial`.

    ``image_endpoints`` is the truth of each rendered field (``None`` without rendering):
    what a perfect measurement of the images would give, as opposed to ``endpoints``, the
    truth over each whole site.
    """

    out_dir: Path
    manifest: Path | None
    follicles: Path
    endpoints: Path
    n_images: int
    image_endpoints: Path | None = None


#: Summary keys of a truth JSON copied to ``image_truth_endpoints.csv``.
_IMAGE_TRUTH_KEYS = (
    "hair_count",
    "density_per_cm2",
    "mean_diameter_um",
    "terminal_fraction",
    "cumulative_thickness_mm_per_cm2",
    "fraction_below_index",
)


def _image_truth_table(out: Path, rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per rendered image: its manifest keys and its truth JSON's endpoints."""
    records = []
    for row in rows:
        image = out / str(row["image"])
        truth = json.loads(image.with_suffix(".truth.json").read_text(encoding="utf-8"))
        record = {key: row[key] for key in ("image", "subject", "site", "arm", "visit_day")}
        record["kind"] = row.get("kind", "clipped")
        record.update({key: truth[key] for key in _IMAGE_TRUTH_KEYS})
        records.append(record)
    return pd.DataFrame(records)


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, path, compression="zstd", write_statistics=True)


def write_trial(
    preset: Preset,
    out_dir: str | Path,
    *,
    seed: int = 0,
    render: bool = True,
    phototrichogram: bool | Sequence[int] = False,
    workers: int = 1,
) -> TrialOutputs:
    """Simulate a trial and write its truth tables, manifest and images.

    Parameters
    ----------
    preset : Preset
        Trial configuration.
    out_dir : str or Path
        Output folder (created; existing simulator files in it are overwritten).
    seed : int
        Root seed: same seed and arguments → byte-identical outputs.
    render : bool
        Render the images (otherwise only truth tables are written).
    phototrichogram : bool or sequence of int
        Also render a re-imaged regrowth image ``phototrichogram_days`` after each visit
        (True), or after the visit days listed only.
    workers : int
        Rendering processes.

    Returns
    -------
    TrialOutputs
    """
    from hairtrial.io.manifest import write_manifest

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: output path exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    offset = preset.imaging.phototrichogram_days
    extra = [d + offset for d in _regrowth_days(preset, phototrichogram)]
    trial = simulate_trial(preset, seed=seed, extra_days=extra)
    trial.subjects.to_csv(out / "subjects.csv", index=False, float_format="%.6g")
    trial.sites.to_csv(out / "sites.csv", index=False, float_format="%.6g")
    follicles_path = out / "follicles.parquet"
    _write_parquet(trial.follicles, follicles_path)
    endpoints_path = out / "truth_endpoints.csv"
    trial.endpoints.to_csv(endpoints_path, index=False, float_format="%.6g")
    manifest_path = image_endpoints = None
    n_images = 0
    if render:
        rows = render_trial(trial, out, phototrichogram=phototrichogram, workers=workers)
        manifest_path = write_manifest(out / "manifest.csv", rows)
        n_images = len(rows)
        image_endpoints = out / "image_truth_endpoints.csv"
        _image_truth_table(out, rows).to_csv(image_endpoints, index=False, float_format="%.6g")
    summary = {
        "hairtrial_version": __version__,
        "preset": preset.name,
        "preset_source": preset.source,
        "seed": seed,
        "subjects": preset.trial.subjects,
        "visit_days": list(preset.trial.visit_days),
        "imaging": {
            "field_cm2": preset.imaging.field_cm2,
            "um_per_px": preset.imaging.um_per_px,
            "clip": preset.imaging.clip,
            "style": preset.imaging.style,
            "shape_px": list(preset.imaging.shape_px()),
        },
        "rendered": render,
        "phototrichogram_visit_days": list(_regrowth_days(preset, phototrichogram)),
        "n_images": n_images,
    }
    (out / "trial.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return TrialOutputs(
        out_dir=out,
        manifest=manifest_path,
        follicles=follicles_path,
        endpoints=endpoints_path,
        n_images=n_images,
        image_endpoints=image_endpoints,
    )


def with_overrides(
    preset: Preset,
    *,
    subjects: int | None = None,
    field_cm2: float | None = None,
    um_per_px: float | None = None,
    clip: bool | None = None,
    style: str | None = None,
) -> Preset:
    """Return `preset` with command-line overrides applied (validated like the file).

    Parameters
    ----------
    preset : Preset
        Base preset.
    subjects : int, optional
        Number of subjects.
    field_cm2 : float, optional, cm²
        Imaged field area.
    um_per_px : float, optional, µm/px
        Image calibration.
    clip : bool, optional
        Clip hairs before imaging.
    style : {'standard', 'hard'}, optional
        Renderer style preset.

    Returns
    -------
    Preset
    """
    from hairtrial._validate import check_choice, check_range
    from hairtrial.simulate.config import STYLE_PRESETS

    trial, imaging = preset.trial, preset.imaging
    if subjects is not None:
        if subjects < 1:
            raise InputError(f"--subjects must be at least 1, got {subjects}")
        trial = replace(trial, subjects=int(subjects))
    if field_cm2 is not None:
        field = check_range(field_cm2, name="--field-cm2", low=0.01,
                            high=min(trial.site_area_cm2, 4.0))  # fmt: skip
        imaging = replace(imaging, field_cm2=field)
    if um_per_px is not None:
        imaging = replace(
            imaging, um_per_px=check_range(um_per_px, name="--um-per-px", low=0.5, high=50.0)
        )
    if clip is not None:
        imaging = replace(imaging, clip=bool(clip))
    if style is not None:
        imaging = replace(imaging, style=check_choice(style, name="--style", choices=STYLE_PRESETS))
    return replace(preset, trial=trial, imaging=imaging)
