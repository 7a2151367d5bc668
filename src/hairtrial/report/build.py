"""``build_report``: read a trial database, analyse it, write the HTML and PDF report."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from hairtrial._validate import InputError
from hairtrial.report import conduct, efficacy
from hairtrial.report.blinding import ArmCoding, arm_coding
from hairtrial.report.model import Block, Figure, ReportContent, Section, Text

if TYPE_CHECKING:
    from hairtrial.store import Store

log = logging.getLogger(__name__)

#: Before/after panels shown when no site is chosen.
DEFAULT_PANEL_SITES = 2


@dataclass(frozen=True)
class ReportFiles:
    """Files written by :func:`build_report`.

    Parameters
    ----------
    html : Path
        Self-contained HTML report (figures embedded).
    pdf : Path
        PDF report with the same sections.
    figures : dict of str to Path
        Figure key (e.g. ``forest``, ``time_course_mean_diameter_um``, ``panel_1``) → the
        image file also written under ``figures/``.
    """

    html: Path
    pdf: Path
    figures: dict[str, Path]


def read_subjects(subjects: pd.DataFrame | str | Path | None) -> pd.DataFrame | None:
    """Read the optional subjects table (``subject, age, severity, ...``).

    Parameters
    ----------
    subjects : DataFrame, str, Path or None
        A table, or a CSV file such as the simulator's ``subjects.csv``.

    Returns
    -------
    DataFrame or None
        With ``subject`` as text.

    Raises
    ------
    InputError
        If the file cannot be read or has no ``subject`` column (naming the file).
    """
    if subjects is None:
        return None
    where = "subjects"
    if isinstance(subjects, str | Path):
        where = str(subjects)
        try:
            frame = pd.read_csv(subjects, dtype={"subject": str})
        except (OSError, ValueError) as exc:
            raise InputError(f"{where}: cannot read the subjects table ({exc})") from None
    elif isinstance(subjects, pd.DataFrame):
        frame = subjects.copy()
    else:
        raise InputError(f"subjects: expected a DataFrame or a CSV path, got {type(subjects)!r}")
    if "subject" not in frame:
        raise InputError(f"{where}: the subjects table has no 'subject' column")
    frame["subject"] = frame["subject"].astype(str)
    return frame


def _one_trial(
    tables: dict[str, pd.DataFrame], trial: str | None
) -> tuple[str, dict[str, pd.DataFrame]]:
    names = sorted(set(tables["images"]["trial"].astype(str)))
    if not names:
        raise InputError("store: the database holds no images; ingest and measure a trial first")
    if trial is None:
        if len(names) > 1:
            raise InputError(f"trial: the database holds trials {', '.join(names)}; name one")
        trial = names[0]
    elif trial not in names:
        raise InputError(f"trial: no trial {trial!r} in the database (found {', '.join(names)})")
    out = {k: v[v["trial"].astype(str) == trial].reset_index(drop=True) for k, v in tables.items()}
    return trial, out


def _panel_days(analysis: Any) -> tuple[int, int | None]:
    config = analysis.config
    return int(config.baseline_day), efficacy.responder_day(analysis.site_visits, config)


def _choose_sites(
    endpoints: pd.DataFrame, *, kind: str, days: tuple[int, int | None], sites: Sequence[str] | None
) -> list[str]:
    measured = conduct.of_kind(endpoints, kind)
    known = sorted(set(measured["site"].astype(str)))
    if sites is not None:
        unknown = [s for s in sites if s not in known]
        if unknown:
            raise InputError(
                f"sites: no measured {kind} images for site(s) {', '.join(unknown)} "
                f"(measured sites: {', '.join(known) or 'none'})"
            )
        return list(dict.fromkeys(sites))
    wanted = [d for d in days if d is not None]
    have: dict[str, set[int]] = {}
    for site, day in zip(measured["site"].astype(str), measured["visit_day"], strict=True):
        have.setdefault(site, set()).add(int(day))
    complete = [s for s in known if set(wanted) <= have.get(s, set())]
    # Prefer both sites of one subject (the split-site comparison), first subject first.
    by_subject = measured.drop_duplicates("site").groupby("subject")["site"].agg(sorted)
    for subject_sites in by_subject:
        chosen = [s for s in subject_sites if s in complete]
        if len(chosen) >= DEFAULT_PANEL_SITES:
            return chosen[:DEFAULT_PANEL_SITES]
    return complete[:DEFAULT_PANEL_SITES]


def _panels_section(
    *,
    store: Store,
    endpoints: pd.DataFrame,
    hairs: pd.DataFrame,
    analysis: Any,
    coding: ArmCoding,
    sites: Sequence[str] | None,
) -> Section:
    from hairtrial.report.panels import hair_records, overlay_panel
    from hairtrial.store.images import read_stored_image

    title = "Before/after trichoscopy"
    kind = analysis.config.image_kind
    days = _panel_days(analysis)
    chosen = _choose_sites(endpoints, kind=kind, days=days, sites=sites)
    shown = [d for d in days if d is not None]
    blocks: list[Block] = [
        Text(
            f"Stored {kind} images at day {' and day '.join(str(d) for d in shown)}, with the "
            "measured hairs drawn over them: each counted hair along its centreline in its "
            "class colour (vellus sky blue, intermediate orange, terminal green) with its exit "
            "ringed; thin grey hairs enter from outside the field and are not counted. The "
            "legend gives the class counts and a scale bar."
        )
    ]
    if not chosen:
        blocks.append(Text("No site has measured images at these visits."))
    measured = conduct.of_kind(endpoints, kind)
    for number, site in enumerate(chosen, start=1):
        rows = measured[measured["site"] == site]
        views = []
        found = []
        for day in shown:
            at_day = rows[rows["visit_day"] == day].sort_values("image_id")
            if at_day.empty:
                continue
            row = at_day.iloc[0]
            image_id = int(row["image_id"])
            try:
                pixels = read_stored_image(store=store, image_id=image_id).pixels
            except InputError as exc:
                blocks.append(Text(f"Site {site}, day {day}: image not available ({exc})."))
                continue
            records = hair_records(hairs[hairs["image_id"] == image_id])
            views.append((pixels, records, float(row["um_per_px"])))
            found.append(str(day))
        if not views:
            continue
        arm = coding.label(rows["arm"].iloc[0]) if "arm" in rows else "–"
        caption = f"Site {site} ({arm}): day {' (left) and day '.join(found)}"
        caption += " (right)." if len(found) > 1 else "."
        blocks.append(Figure(f"panel_{number}", caption, overlay_panel(views), "image/jpeg"))
    return Section("panels", title, tuple(blocks))


def _summary_section(analysis: Any, coding: ArmCoding) -> Section:
    if coding.blinded:
        text = (
            "This report is blinded: arms are shown as coded labels and between-arm "
            f"differences as {coding.difference}. The plain-language headline, which names "
            "the direction of the treatment effect, is left out of blinded reports."
        )
        return Section("summary", "Summary", (Text(text),))
    headline = getattr(analysis, "headline", None)
    text = str(headline()) if callable(headline) else "Headline not available."
    return Section("summary", "Summary", tuple(Text(p) for p in text.split("\n") if p.strip()))


def _facts(
    *, trial: str, store: Store, tables: dict[str, pd.DataFrame], analysis: Any, coding: ArmCoding
) -> tuple[tuple[str, str], ...]:
    runs = tables["runs"]
    done = runs.loc[runs["status"] == "done", "finished_at"].dropna()
    as_of = done.max().isoformat(timespec="seconds") if len(done) else "no measurement yet"
    arms = ", ".join(coding.order) + (" (coded)" if coding.blinded else "")
    return (
        ("Trial", trial),
        ("Database", store.describe()),
        ("Data as of", f"{as_of} (latest completed measurement)"),
        ("Subjects", str(tables["images"]["subject"].nunique())),
        ("Arms", arms),
        ("Analysis config hash", str(analysis.config.config_hash())),
    )


def _write_atomic(path: Path, data: bytes) -> Path:
    tmp = path.with_name(path.name + ".partial")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def build_report(
    *,
    store: Store,
    out_dir: str | Path,
    unblind: bool = False,
    sites: Sequence[str] | None = None,
    subjects: pd.DataFrame | str | Path | None = None,
    analysis_config: Any = None,
    analysis: Any = None,
    trial: str | None = None,
    generated_at: str | None = None,
) -> ReportFiles:
    """Write the trial report: a self-contained HTML file, a PDF and the figures.

    Parameters
    ----------
    store : Store
        Open trial database (its images are read for the before/after panels).
    out_dir : str or Path
        Output folder (created): ``report.html``, ``report.pdf`` and ``figures/``.
    unblind : bool
        Show the real arm names. By default arms are coded ("Arm A", "Arm B"; the coding
        is fixed by a hash of the trial name) everywhere and a banner says the report is
        blinded.
    sites : sequence of str, optional
        Site codes for the before/after panels (default: up to two sites, both sites of
        the first subject measured at both visits).
    subjects : DataFrame, str or Path, optional
        Subjects table (``subject, age, severity, ...``) or its CSV; without it age,
        severity and the related predictors are reported as not available.
    analysis_config : AnalysisConfig, optional
        Analysis options (default ``AnalysisConfig()``); ignored when `analysis` is given.
    analysis : TrialAnalysis, optional
        A finished analysis of this database's tables; run here when not given.
    trial : str, optional
        Trial to report when the database holds several.
    generated_at : str, optional
        Generation time shown in the HTML (default: now, UTC). The PDF carries no
        generation time, so the same inputs give the same PDF bytes.

    Returns
    -------
    ReportFiles

    Raises
    ------
    InputError
        If the database holds no measured image, the trial or a site is unknown, or the
        subjects table cannot be read.
    """
    from hairtrial.report.render import render_html, render_pdf
    from hairtrial.store.tables import read_corrections, read_images, read_tables

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: output path exists and is not a folder")
    if sites is not None and (isinstance(sites, str) or not all(isinstance(s, str) for s in sites)):
        raise InputError(f"sites: expected a list of site codes, got {sites!r}")
    people = read_subjects(subjects)
    tables = read_tables(store=store, include_arm=True)
    tables["images"] = read_images(store=store, include_arm=True)
    trial, tables = _one_trial(tables, trial)
    endpoints = tables["endpoints"]
    known_sites = set(tables["images"]["site"].astype(str))
    if sites is not None and (unknown := [s for s in sites if s not in known_sites]):
        raise InputError(f"sites: no site {', '.join(unknown)} in trial {trial!r}")
    if endpoints.empty:
        raise InputError(f"store: trial {trial!r} has no measured image yet; run the measurement")
    follicles = tables["follicle_trajectories"]
    if analysis is None:
        import inspect

        from hairtrial.analyze import AnalysisConfig, analyze_trial

        extra: dict[str, Any] = {}
        if "hairs" in inspect.signature(analyze_trial).parameters and len(tables["hairs"]):
            extra["hairs"] = tables["hairs"]  # hair-level subgroups (beyond the contract)
        analysis = analyze_trial(
            endpoints,
            follicles=follicles if len(follicles) else None,
            subjects=people,
            config=analysis_config if analysis_config is not None else AnalysisConfig(),
            **extra,
        )
    config = analysis.config
    arms = set(tables["images"]["arm"].astype(str))
    coding = arm_coding(
        trial=trial,
        arms=arms,
        treated=config.treated_arm,
        control=config.control_arm,
        unblind=unblind,
    )
    corrections = read_corrections(store=store)
    corrections = corrections[corrections["image_id"].isin(tables["images"]["image_id"])]
    sections = (
        _summary_section(analysis, coding),
        conduct.flow_section(
            images=tables["images"], endpoints=endpoints, runs=tables["runs"], analysis=analysis
        ),
        efficacy.baseline_section(
            analysis.site_visits, config=config, coding=coding, subjects=people
        ),
        efficacy.time_course_section(analysis, coding=coding),
        efficacy.paired_section(analysis.paired, config=config, coding=coding),
        efficacy.subgroup_section(analysis.subgroups, config=config, coding=coding),
        efficacy.waterfall_section(analysis, coding=coding),
        efficacy.roc_section(analysis),
        _panels_section(
            store=store,
            endpoints=endpoints,
            hairs=tables["hairs"],
            analysis=analysis,
            coding=coding,
            sites=sites,
        ),
        conduct.qc_section(
            endpoints=endpoints,
            hairs=tables["hairs"],
            runs=tables["runs"],
            corrections=corrections,
            image_kind=config.image_kind,
        ),
        conduct.methods_section(
            analysis=analysis,
            endpoints=endpoints,
            follicles=follicles,
            coding=coding,
            notes=getattr(analysis, "notes", ()),
        ),
    )
    status = "BLINDED" if coding.blinded else "UNBLINDED"
    banner = (
        f"{status} REPORT: arms are shown only as coded labels ({', '.join(coding.order)})."
        if coding.blinded
        else f"{status} REPORT: real arm names are shown. Restricted to unblinded readers."
    )
    content = ReportContent(
        title=f"hairtrial report: {trial}",
        banner=banner,
        blinded=coding.blinded,
        facts=_facts(trial=trial, store=store, tables=tables, analysis=analysis, coding=coding),
        sections=sections,
    ).masked(coding)
    if coding.blinded and (leaked := coding.leaks(content.text())):
        raise RuntimeError(f"blinded report would show arm name(s) {leaked}")  # a bug
    out.mkdir(parents=True, exist_ok=True)
    figure_dir = out / "figures"
    figure_dir.mkdir(exist_ok=True)
    written = {
        f.key: _write_atomic(figure_dir / f"{f.key}{f.suffix}", f.data) for f in content.figures
    }
    stamp = generated_at or dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    html = _write_atomic(out / "report.html", render_html(content, generated_at=stamp).encode())
    tmp_pdf = render_pdf(content, out / "report.pdf.partial")
    pdf = tmp_pdf.replace(out / "report.pdf")
    log.info("wrote %s, %s and %d figures", html, pdf, len(written))
    return ReportFiles(html=html, pdf=pdf, figures=written)
