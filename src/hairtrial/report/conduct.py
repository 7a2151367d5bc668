"""Trial-conduct sections: participant flow, measurement QC and methods.

They read the store's tables (:func:`hairtrial.store.tables.read_tables`,
:func:`~hairtrial.store.tables.read_images`, :func:`~hairtrial.store.tables.read_corrections`)
and the analysis; none of them shows an arm.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd

from hairtrial.report.blinding import ArmCoding
from hairtrial.report.model import Block, Section, Table, Text, fmt, iter_rows

#: An image whose counted hairs have a mean detection confidence below this is flagged.
LOW_CONFIDENCE = 0.5
#: A robust z-score of the hair count (within a visit) beyond this is flagged as unusual.
UNUSUAL_COUNT_Z = 3.5
_LIBRARIES = ("numpy", "scipy", "pandas", "statsmodels", "matplotlib", "reportlab", "jinja2")


def of_kind(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Return the rows of image kind `kind` (an image without a kind counts as `kind`)."""
    if "kind" not in frame:
        return frame
    kinds = frame["kind"].astype(object).where(frame["kind"].notna(), kind)
    return frame[kinds == kind]


def flow_section(
    *,
    images: pd.DataFrame,
    endpoints: pd.DataFrame,
    runs: pd.DataFrame,
    analysis: Any,
) -> Section:
    """Participant flow: enrolled, imaged, measured and analysed per visit; missing visits."""
    config = analysis.config
    kind = config.image_kind
    imaged = of_kind(images, kind)
    measured = of_kind(endpoints, kind)
    sites = sorted(imaged["site"].astype(str).unique())
    n_subjects = imaged["subject"].nunique()
    days = sorted(int(d) for d in imaged["visit_day"].unique())
    paired = analysis.paired
    primary = config.primary[0] if config.primary else None
    site_visits = analysis.site_visits
    rows = []
    for day in days:
        at_day = imaged[imaged["visit_day"] == day]
        done = measured[measured["visit_day"] == day]
        if day == config.baseline_day:
            visits = site_visits[site_visits["visit_day"] == day]
            if primary is not None and primary in visits:
                visits = visits[visits[primary].notna()]
            per_subject = visits.groupby("subject")["arm"].nunique()
            analysed = int((per_subject >= 2).sum())
        elif paired is not None and len(paired) and primary is not None:
            hit = paired[(paired["endpoint"] == primary) & (paired["visit_day"] == day)]
            analysed = int(hit["n"].iloc[0]) if len(hit) else 0
        else:
            analysed = 0
        rows.append(
            (
                str(day),
                str(len(sites)),
                str(at_day["site"].nunique()),
                str(done["site"].nunique()),
                str(analysed),
                str(len(sites) - at_day["site"].nunique()),
            )
        )
    missing = _missing_visits(sites, days, imaged, measured, runs)
    blocks: list[Block] = [
        Text(
            f"{n_subjects} subjects enrolled with {len(sites)} sites; {len(days)} visits "
            f"(days {', '.join(str(d) for d in days) or 'none'}); {len(imaged)} {kind} images "
            f"ingested, {len(measured)} measured. Analysed: subjects with both sites measured "
            "at baseline and at the visit (paired analysis of the primary endpoint "
            f"{primary or '–'})."
        ),
        Table(
            "Participant flow per visit (sites unless stated)",
            (
                "Visit day",
                "Sites expected",
                "Imaged",
                "Measured",
                "Analysed (subjects)",
                "Missing images",
            ),
            tuple(rows),
        ),
    ]
    if missing:
        blocks.append(
            Table("Missing or unmeasured visits", ("Site", "Visit day", "Status"), tuple(missing))
        )
    else:
        blocks.append(Text("Missing visits: none."))
    return Section("flow", "Participant flow", tuple(blocks))


def _missing_visits(
    sites: list[str],
    days: list[int],
    imaged: pd.DataFrame,
    measured: pd.DataFrame,
    runs: pd.DataFrame,
) -> list[tuple[str, str, str]]:
    have_image = set(zip(imaged["site"].astype(str), imaged["visit_day"].astype(int), strict=True))
    have_done = set(
        zip(measured["site"].astype(str), measured["visit_day"].astype(int), strict=True)
    )
    latest = runs.sort_values("run_id").groupby(["site", "visit_day"]).tail(1)
    status = {(str(r.site), int(r.visit_day)): (str(r.status), r.error) for r in iter_rows(latest)}
    out = []
    for site in sites:
        for day in days:
            if (site, day) not in have_image:
                out.append((site, str(day), "not imaged"))
            elif (site, day) not in have_done:
                state, error = status.get((site, day), ("not queued", None))
                why = f"not measured ({state}" + (f": {error})" if isinstance(error, str) else ")")
                out.append((site, str(day), why))
    return out


def qc_section(
    *,
    endpoints: pd.DataFrame,
    hairs: pd.DataFrame,
    runs: pd.DataFrame,
    corrections: pd.DataFrame,
    image_kind: str,
) -> Section:
    """Measurement QC: failed runs, low-confidence images, unusual counts, corrections."""
    blocks: list[Block] = []
    counts = runs["status"].value_counts().sort_index() if len(runs) else pd.Series(dtype=int)
    summary = ", ".join(f"{k} {int(v)}" for k, v in counts.items()) or "none"
    blocks.append(Text(f"Measurement runs by status: {summary}."))
    failed = runs[runs["status"] == "failed"].sort_values("run_id")
    if len(failed):
        done_images = set(runs.loc[runs["status"] == "done", "image_id"].astype(int))
        rows = tuple(
            (
                str(r.site),
                str(int(r.visit_day)),
                str(r.image),
                fmt(r.attempts, 0),
                str(r.error) if isinstance(r.error, str) else "–",
                "yes" if int(r.image_id) in done_images else "no",
            )
            for r in iter_rows(failed)
        )
        blocks.append(
            Table(
                "Failed measurement runs",
                ("Site", "Day", "Image", "Attempts", "Error", "Measured later"),
                rows,
            )
        )
    else:
        blocks.append(Text("Failed measurement runs: none."))
    flagged = _flagged_images(endpoints, hairs, image_kind=image_kind)
    if flagged:
        blocks.append(
            Table(
                "Images flagged for review",
                ("Site", "Day", "Image", "Hairs counted", "Mean confidence", "Reason"),
                tuple(flagged),
                f"Flagged: mean detection confidence of the counted hairs below "
                f"{LOW_CONFIDENCE:g}, no hair counted, or a hair count whose robust z-score "
                f"within its visit (median/MAD) exceeds {UNUSUAL_COUNT_Z:g}.",
            )
        )
    else:
        blocks.append(
            Text(
                "Images flagged for review: none (no image with mean hair confidence below "
                f"{LOW_CONFIDENCE:g}, without hairs, or with a hair count beyond a robust "
                f"z-score of {UNUSUAL_COUNT_Z:g} within its visit)."
            )
        )
    if len(corrections):
        revisions = tuple(
            (
                str(r.site),
                str(int(r.visit_day)),
                str(r.image),
                str(r.status),
                f"+{int(r.added)} / −{int(r.deleted)} / ~{int(r.edited)}",
                "yes: " + str(r.unusable_reason) if r.unusable else "no",
                str(r.author),
            )
            for r in iter_rows(corrections)
        )
        blocks.append(
            Table(
                "Review revisions and corrections made",
                (
                    "Site",
                    "Day",
                    "Image",
                    "Status",
                    "Hairs added / deleted / edited",
                    "Unusable",
                    "Reviewer",
                ),
                revisions,
            )
        )
    else:
        blocks.append(Text("Corrections made: none."))
    return Section("qc", "Measurement quality checks", tuple(blocks))


def _flagged_images(
    endpoints: pd.DataFrame, hairs: pd.DataFrame, *, image_kind: str
) -> list[tuple[str, ...]]:
    images = of_kind(endpoints, image_kind)
    if images.empty:
        return []
    counted = hairs[hairs["counted"].astype(bool)] if len(hairs) else hairs
    confidence = (
        counted.groupby("image_id")["confidence"].mean() if len(counted) else pd.Series(dtype=float)
    )
    out: list[tuple[str, ...]] = []
    for _, group in images.groupby("visit_day", sort=True):
        n = pd.to_numeric(group["hair_count"], errors="coerce").to_numpy(dtype=float)
        median = float(np.nanmedian(n)) if len(n) else float("nan")
        mad = float(np.nanmedian(np.abs(n - median))) if len(n) else float("nan")
        for r, count in zip(iter_rows(group), n, strict=True):
            reasons = []
            conf = confidence.get(int(r.image_id), float("nan"))
            if not count > 0:
                reasons.append("no hair counted")
            if np.isfinite(conf) and conf < LOW_CONFIDENCE:
                reasons.append("low confidence")
            if mad > 0 and abs(0.6745 * (count - median) / mad) > UNUSUAL_COUNT_Z:
                reasons.append(f"unusual count (visit median {median:g})")
            if reasons:
                out.append(
                    (
                        str(r.site),
                        str(int(r.visit_day)),
                        str(r.image),
                        fmt(count, 0),
                        fmt(conf, 2),
                        "; ".join(reasons),
                    )
                )
    return out


def _versions(frame: pd.DataFrame, what: str) -> list[tuple[str, str, str, str]]:
    if frame.empty or "package_version" not in frame:
        return []
    grouped = frame.groupby(["package_version", "config_hash"], dropna=False)["image_id"].nunique()
    return [
        (what, str(version), str(config), str(int(n)))
        for (version, config), n in zip(grouped.index, grouped.to_numpy(), strict=True)
    ]


def library_versions(names: Iterable[str] = _LIBRARIES) -> list[tuple[str, str]]:
    """Installed versions of the libraries the analysis and report use."""
    out = [("python", platform.python_version())]
    for name in names:
        try:
            out.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            out.append((name, "not installed"))
    return out


def methods_section(
    *,
    analysis: Any,
    endpoints: pd.DataFrame,
    follicles: pd.DataFrame,
    coding: ArmCoding,
    notes: Iterable[str] = (),
) -> Section:
    """Methods: software versions, configuration hashes, the models and their text."""
    import json

    from hairtrial import __version__

    config = analysis.config
    blocks: list[Block] = [
        Text(
            f"Report written by hairtrial {__version__}. Endpoints are taken from each image's "
            "latest completed measurement run; follicle trajectories from the tracking runs "
            "listed below."
        )
    ]
    provenance = _versions(endpoints, "measurement") + _versions(follicles, "tracking")
    if provenance:
        blocks.append(
            Table(
                "Measurement and tracking runs used",
                ("Step", "Package version", "Config hash", "Images"),
                tuple(provenance),
            )
        )
    settings = config.to_dict()
    blocks.append(
        Text(
            f"Analysis configuration hash {config.config_hash()}; settings: "
            f"{json.dumps(settings, sort_keys=True, default=str)}."
        )
    )
    blocks.append(
        Text(
            "Paired analysis: for each subject, the difference between the two sites in "
            "change from baseline; paired t-test and Wilcoxon signed-rank test per visit, "
            "Holm's correction across visits within each endpoint. Missing visits are not "
            "imputed."
        )
    )
    for endpoint, model in (analysis.mixed or {}).items():
        text = _safe_call(model, "methods_text")
        if text:
            blocks.append(Text(f"{endpoint}: {text}"))
    for note in notes:
        blocks.append(Text(note))
    blocks.append(
        Table("Software", ("Package", "Version"), (("hairtrial", __version__), *library_versions()))
    )
    return Section("methods", "Methods", tuple(blocks))


def _safe_call(obj: Any, name: str) -> str:
    method = getattr(obj, name, None)
    return str(method()) if callable(method) else ""
