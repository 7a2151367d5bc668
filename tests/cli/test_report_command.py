"""``hairtrial report`` through the command line (SQLite): blinded, unblinded and audited."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hairtrial.cli.main import app
from tests.factories import small_preset
from tests.report._trial import fill_store

runner = CliRunner()


@pytest.fixture(scope="module")
def trial_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A 4-subject, 2-visit trial, measured from truth: (database URL, simulation folder)."""
    from hairtrial.simulate.trial import write_trial
    from hairtrial.store import open_store

    folder = tmp_path_factory.mktemp("cli-report")
    write_trial(small_preset(subjects=4, visit_days=(0, 30)), folder / "sim", seed=11)
    url = f"sqlite:///{folder / 'trial.db'}"
    with open_store(url) as store:
        fill_store(store, folder / "sim", trial="cli-trial", fail=0)
    return url, folder / "sim"


def _unblind_events(url: str) -> int:
    from hairtrial.store import open_store
    from hairtrial.store.audit import count_events

    with open_store(url) as store, store.session() as session:
        return count_events(session=session, action="unblind")


def test_blinded_then_unblinded_report(trial_db, tmp_path):
    url, sim = trial_db
    blinded = runner.invoke(app, ["report", "--db", url, "--out", str(tmp_path / "b")])
    assert blinded.exit_code == 0, blinded.output
    assert "report (HTML)" in blinded.output and "UNBLINDED" not in blinded.output
    html = (tmp_path / "b" / "report.html").read_text("utf-8")
    assert "BLINDED REPORT" in html and not re.search(r"\b(cells|saline)\b", html, re.I)
    assert (tmp_path / "b" / "report.pdf").read_bytes().startswith(b"%PDF-")
    assert _unblind_events(url) == 0

    unblinded = runner.invoke(
        app,
        [
            "report",
            "--db",
            url,
            "--out",
            str(tmp_path / "u"),
            "--unblind",
            "--site",
            "S002-R",
            "--subjects",
            str(sim / "subjects.csv"),
        ],
    )
    assert unblinded.exit_code == 0, unblinded.output
    assert "UNBLINDED" in unblinded.output
    html = (tmp_path / "u" / "report.html").read_text("utf-8")
    assert "UNBLINDED REPORT" in html and "<figcaption>Site S002-R (" in html
    assert "Age, years" in html
    assert _unblind_events(url) == 1


def test_bad_site_and_bad_subjects_exit_2(trial_db, tmp_path):
    url, _ = trial_db
    result = runner.invoke(
        app, ["report", "--db", url, "--out", str(tmp_path / "x"), "--site", "S999-L"]
    )
    assert result.exit_code == 2 and "S999-L" in result.output
    missing = tmp_path / "nope.csv"
    result = runner.invoke(
        app, ["report", "--db", url, "--out", str(tmp_path / "x"), "--subjects", str(missing)]
    )
    assert result.exit_code == 2 and "nope.csv" in result.output
