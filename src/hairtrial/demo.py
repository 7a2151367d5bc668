"""The end-to-end demo: a small simulated trial taken from images to the trial's answer.

:func:`run_demo` is what ``hairtrial demo`` (and ``make demo``) runs. Each step uses the
same public functions a trial team would:

1. simulate a ``nanfang-2023`` trial (population model, treatment kinetics) and render its
   trichoscopy images with exact truth (:func:`hairtrial.simulate.trial.write_trial`),
   with a phototrichogram re-image 3 days after the baseline and month-3 visits;
2. ingest the images and manifest into a SQLite trial database
   (:func:`hairtrial.store.ingest_manifest`);
3. measure every image, track every site's follicles across visits and compute each
   phototrichogram's anagen fraction on a local Dask cluster
   (:func:`hairtrial.batch.run_batch`);
4. analyse the measured tables (:func:`hairtrial.analyze.analyze_trial`) — the answer comes
   from the measured images, never from the simulator's truth;
5. write the HTML and PDF report (:func:`hairtrial.report.build_report`).

The simulator's truth is analysed too, only to show beside the measured answer how much
the measurement moved it: the truth of the imaged fields (a perfect measurement of the same
images) and the truth over each whole site (what a perfect measurement of every follicle
would give; the imaged field is a third of the site).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hairtrial._validate import InputError, check_positive

if TYPE_CHECKING:
    import pandas as pd

    from hairtrial.analyze import TrialAnalysis
    from hairtrial.batch import BatchSummary

log = logging.getLogger(__name__)

#: Preset the demo simulates.
DEMO_PRESET = "nanfang-2023"
#: Visit days re-imaged for the phototrichogram (anagen fraction): baseline and month 3.
DEMO_PHOTOTRICHOGRAM_DAYS = (0, 90)


@dataclass(frozen=True)
class DemoResult:
    """Where the demo wrote its outputs, and what it found.

    Parameters
    ----------
    out_dir : Path
        Demo folder.
    database_url : str
        The trial database (SQLite).
    report_html, report_pdf : Path
        The report.
    analysis : TrialAnalysis
        The analysis of the measured images.
    truth_analysis : TrialAnalysis
        The same analysis of the simulator's truth over each whole site (comparison only).
    field_truth_analysis : TrialAnalysis
        The same analysis of the truth of the imaged fields: what a perfect measurement of
        the same images would give (comparison only).
    batch : BatchSummary
        Measurement and tracking summary.
    n_images : int
        Images rendered, ingested and measured.
    timings_s : dict of str to float, s
        Wall-clock time per step.
    """

    out_dir: Path
    database_url: str
    report_html: Path
    report_pdf: Path
    analysis: TrialAnalysis
    truth_analysis: TrialAnalysis
    field_truth_analysis: TrialAnalysis
    batch: BatchSummary
    n_images: int
    timings_s: dict[str, float] = field(default_factory=dict)

    def headline(self) -> str:
        """Return the trial's answer from the measured images, in a few sentences."""
        return self.analysis.headline()

    def shape_table(self) -> pd.DataFrame:
        """Return treated − control effects per visit, measured beside the simulator's truth.

        Returns
        -------
        DataFrame
            One row per post-baseline visit day: the paired treated-minus-control change
            from baseline in terminal fraction (``tf_*``) and mean shaft diameter
            (``diam_um_*``, µm) — measured, the truth of the same imaged fields, and the
            truth over each whole site — the measured follicle-level diameter effect
            (µm; tracked follicles) below and at or above the miniaturisation index, and
            the anagen fraction from the phototrichogram against the whole sites' truth
            (``anagen_*``; on the re-imaged visits only).
        """
        import pandas as pd

        def effects(analysis: TrialAnalysis, endpoint: str) -> pd.Series:
            paired = analysis.paired
            rows = paired[paired["endpoint"] == endpoint]
            return pd.Series(rows["mean_diff"].to_numpy(), index=rows["visit_day"].to_numpy())

        columns = {}
        for endpoint, short in (("terminal_fraction", "tf"), ("mean_diameter_um", "diam_um")):
            columns[f"{short}_measured"] = effects(self.analysis, endpoint)
            columns[f"{short}_field_truth"] = effects(self.field_truth_analysis, endpoint)
            columns[f"{short}_site_truth"] = effects(self.truth_analysis, endpoint)
        table = pd.DataFrame(columns)
        subgroups = self.analysis.subgroups
        if subgroups is not None:
            fol = subgroups.effects[subgroups.effects["level"] == "follicle"]
            for label, column in (
                ("<", "follicles_below_index_um"),
                ("≥", "follicles_above_index_um"),
            ):
                part = fol[fol["subgroup"].str.startswith(label)]
                table[column] = pd.Series(
                    part["estimate"].to_numpy(), index=part["visit_day"].to_numpy()
                )
        for column, analysis in (
            ("anagen_measured", self.analysis),
            ("anagen_site_truth", self.truth_analysis),
        ):
            anagen = effects(analysis, "anagen_fraction")
            if len(anagen):
                table[column] = anagen
        table.index.name = "visit_day"
        return table


def _clear_previous(out: Path) -> None:
    """Refuse to write into a folder that holds something other than an earlier demo."""
    if not out.exists():
        return
    if not out.is_dir():
        raise InputError(f"{out}: demo output path exists and is not a folder")
    known = {"trial", "trial.db", "trial.db-wal", "trial.db-shm", "images", "report"}
    strangers = sorted(p.name for p in out.iterdir() if p.name not in known)
    if strangers:
        raise InputError(
            f"{out}: folder is not empty and not an earlier demo output "
            f"({', '.join(strangers[:5])}); choose another --out"
        )


def run_demo(
    *,
    out_dir: str | Path,
    subjects: int = 12,
    seed: int = 2023,
    workers: int = 2,
    progress: bool = True,
    field_cm2: float | None = None,
) -> DemoResult:
    """Simulate, ingest, measure, track, analyse and report a small trial.

    Parameters
    ----------
    out_dir : str or Path
        Output folder; the simulated trial goes to ``trial/``, the database to
        ``trial.db`` (images in ``images/``), the report to ``report/``. An earlier demo
        there is replaced; any other content is refused.
    subjects : int
        Number of subjects (two sites each: cells and saline).
    seed : int
        Root seed; the same seed gives the same trial, images and answer.
    workers : int
        Rendering processes and Dask measurement workers.
    progress : bool
        Show progress bars.
    field_cm2 : float, cm², optional
        Imaged field per site; default the preset's. Smaller fields make a faster demo
        (tests) at the cost of noisier per-site endpoints.

    Returns
    -------
    DemoResult
    """
    import shutil

    import pandas as pd

    from hairtrial.analyze import analyze_trial
    from hairtrial.batch import run_batch
    from hairtrial.report import build_report
    from hairtrial.simulate.config import load_preset
    from hairtrial.simulate.trial import with_overrides, write_trial
    from hairtrial.store import ingest_manifest, open_store
    from hairtrial.store.tables import read_tables

    check_positive(subjects, name="subjects")
    check_positive(workers, name="workers")
    out = Path(out_dir)
    _clear_previous(out)
    for name in ("trial", "images", "report"):
        shutil.rmtree(out / name, ignore_errors=True)
    for name in ("trial.db", "trial.db-wal", "trial.db-shm"):
        (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    start = time.perf_counter()
    overrides: dict[str, Any] = {"subjects": subjects}
    if field_cm2 is not None:
        overrides["field_cm2"] = check_positive(field_cm2, name="field_cm2")
    preset = with_overrides(load_preset(DEMO_PRESET), **overrides)
    outputs = write_trial(
        preset, out / "trial", seed=seed, render=True, workers=workers,
        phototrichogram=DEMO_PHOTOTRICHOGRAM_DAYS,
    )  # fmt: skip
    if outputs.manifest is None or outputs.image_endpoints is None:  # pragma: no cover
        raise RuntimeError("the simulator rendered no images")
    timings["simulate_s"] = time.perf_counter() - start
    log.info("simulated %d images in %.1f s", outputs.n_images, timings["simulate_s"])

    start = time.perf_counter()
    url = f"sqlite:///{(out / 'trial.db').resolve()}"
    ingest_manifest(url_or_store=url, manifest_path=outputs.manifest, trial=DEMO_PRESET)
    timings["ingest_s"] = time.perf_counter() - start

    start = time.perf_counter()
    batch = run_batch(db_url=url, workers=workers, progress=progress, track=True)
    timings["measure_track_s"] = time.perf_counter() - start
    log.info("batch: %s", batch.describe())

    start = time.perf_counter()
    subjects_table = pd.read_csv(out / "trial" / "subjects.csv")
    store = open_store(url)
    try:
        tables = read_tables(store=store, include_arm=True)
        analysis = analyze_trial(
            tables["endpoints"],
            follicles=tables["follicle_trajectories"],
            subjects=subjects_table,
        )
        truth_analysis = analyze_trial(pd.read_csv(outputs.endpoints), subjects=subjects_table)
        field_truth_analysis = analyze_trial(
            pd.read_csv(outputs.image_endpoints), subjects=subjects_table
        )
        timings["analyze_s"] = time.perf_counter() - start
        start = time.perf_counter()
        report = build_report(
            store=store,
            out_dir=out / "report",
            unblind=True,
            subjects=subjects_table,
            analysis=analysis,
        )
        timings["report_s"] = time.perf_counter() - start
    finally:
        store.close()
    return DemoResult(
        out_dir=out,
        database_url=url,
        report_html=report.html,
        report_pdf=report.pdf,
        analysis=analysis,
        truth_analysis=truth_analysis,
        field_truth_analysis=field_truth_analysis,
        batch=batch,
        n_images=outputs.n_images,
        timings_s=timings,
    )


__all__ = ["DEMO_PRESET", "DemoResult", "run_demo"]
