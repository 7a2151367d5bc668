"""Fixtures for the report tests: one small simulated trial in a SQLite store, reported
blinded (twice, for reproducibility) and unblinded once per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.factories import small_preset
from tests.report._trial import fill_store

#: 6 subjects × 2 sites × 3 visits = 36 images of 400 × 300 px; the last one fails.
VISIT_DAYS = (0, 30, 90)
SUBJECTS = 6
TRIAL = "report-test"


@pytest.fixture(scope="session")
def report_trial_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The rendered trial: manifest, images with truth, subjects.csv, follicles."""
    from hairtrial.simulate.trial import write_trial

    out = tmp_path_factory.mktemp("report-trial")
    write_trial(small_preset(subjects=SUBJECTS, visit_days=VISIT_DAYS), out, seed=5)
    return out


@pytest.fixture(scope="session")
def report_store(report_trial_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A SQLite store holding the trial, measured (truth hairs) and tracked."""
    from hairtrial.store import open_store

    folder = tmp_path_factory.mktemp("report-db")
    store = open_store(f"sqlite:///{folder / 'trial.db'}", image_root=folder / "images")
    try:
        fill_store(store, report_trial_dir, trial=TRIAL)
        yield store
    finally:
        store.close()


@pytest.fixture(scope="session")
def analysis_config() -> Any:
    """Analysis options with a short bootstrap, to keep the tests fast."""
    from hairtrial.analyze import AnalysisConfig

    return AnalysisConfig(bootstrap=200)


@pytest.fixture(scope="session")
def tables(report_store: Any) -> dict[str, pd.DataFrame]:
    """The store's tables, with arms."""
    from hairtrial.store.tables import read_tables

    return read_tables(store=report_store, include_arm=True)


@pytest.fixture(scope="session")
def blinded_reports(
    report_store: Any,
    report_trial_dir: Path,
    analysis_config: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Any, Any]:
    """The blinded report built twice from scratch (the analysis run inside each time)."""
    from hairtrial.report import build_report

    return tuple(  # type: ignore[return-value]
        build_report(
            store=report_store,
            out_dir=tmp_path_factory.mktemp(f"blinded{i}"),
            subjects=report_trial_dir / "subjects.csv",
            analysis_config=analysis_config,
        )
        for i in range(2)
    )


@pytest.fixture(scope="session")
def unblinded_report(
    report_store: Any,
    tables: dict[str, pd.DataFrame],
    analysis_config: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Any:
    """The unblinded report, from an analysis run here (no subjects table)."""
    from hairtrial.analyze import analyze_trial
    from hairtrial.report import build_report

    analysis = analyze_trial(
        tables["endpoints"], follicles=tables["follicle_trajectories"], config=analysis_config
    )
    return build_report(
        store=report_store,
        out_dir=tmp_path_factory.mktemp("unblinded"),
        unblind=True,
        analysis=analysis,
    )
