"""ingest → status → export through the command line, on a tiny simulated trial (SQLite)."""

import pandas as pd
from typer.testing import CliRunner

from hairtrial.cli.main import app
from hairtrial.simulate.trial import write_trial
from tests.factories import small_preset

runner = CliRunner()


def test_ingest_status_export(tmp_path):
    trial = write_trial(small_preset(subjects=1, visit_days=(0, 30)), tmp_path / "sim", seed=1)
    db = f"sqlite:///{tmp_path / 'trial.db'}"

    first = runner.invoke(app, ["ingest", str(trial.manifest), "--db", db])
    assert first.exit_code == 0, first.output
    assert "4 image(s) added" in first.output
    again = runner.invoke(app, ["ingest", str(trial.manifest), "--db", db])
    assert again.exit_code == 0 and "0 image(s) added" in again.output

    status = runner.invoke(app, ["status", "--db", db, "--verify"])
    assert status.exit_code == 0, status.output
    assert "images: 4" in status.output and "checksums: 0 problem(s)" in status.output

    out = tmp_path / "export"
    exported = runner.invoke(app, ["export", "--db", db, "--out", str(out), "--format", "csv"])
    assert exported.exit_code == 0, exported.output
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 0  # nothing measured yet


def test_bad_manifest_lists_lines_and_writes_nothing(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "image,subject,site,arm,visit_day,um_per_px\n"
        "missing.jpg,S1,S1-L,cells,0,5\n"
        "other.jpg,S1,S1-R,placebo,0,5\n"
    )
    db_file = tmp_path / "trial.db"
    result = runner.invoke(app, ["ingest", str(manifest), "--db", f"sqlite:///{db_file}"])
    assert result.exit_code == 2
    assert "line 2" in result.output and "line 3" in result.output
    status = runner.invoke(app, ["status", "--db", f"sqlite:///{db_file}"])
    assert "images: 0" in status.output
