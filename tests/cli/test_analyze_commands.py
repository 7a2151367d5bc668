"""analyze (unblinding, audited), power and simulate --scenario through the command line."""

import json

import pandas as pd
from sqlalchemy import select
from typer.testing import CliRunner

from hairtrial.cli.main import app
from hairtrial.records import summarize_hairs
from hairtrial.store import enqueue_runs, ingest_manifest, open_store, save_measurement
from hairtrial.store.models import AuditEvent, Image
from tests.store.helpers import hairs, write_trial_manifest

runner = CliRunner()


def _measured_db(tmp_path, db=None):
    db = db or f"sqlite:///{tmp_path / 'trial.db'}"
    manifest = write_trial_manifest(tmp_path / "m", subjects=4, days=(0, 30, 90))
    with open_store(db, image_root=tmp_path / "images") as store:
        ingest_manifest(url_or_store=store, manifest_path=manifest)
        with store.session() as session:
            ids = session.execute(select(Image.id).order_by(Image.id)).scalars().all()
            enqueue_runs(session=session, version="1", config_hash="c")
            for image_id in ids:
                records = hairs(12 + image_id % 5, seed=image_id)
                save_measurement(
                    session=session, image_id=image_id, version="1", config_hash="c",
                    hairs=records, summary=summarize_hairs(records, area_cm2=0.03),
                    timings={"total_s": 1.0},
                )  # fmt: skip
    return db


def _unblind_events(db, tmp_path):
    with open_store(db, image_root=tmp_path / "images") as store, store.session() as session:
        return (
            session.execute(select(AuditEvent).where(AuditEvent.action == "unblind"))
            .scalars()
            .all()
        )


def test_analyze_refuses_without_unblind(tmp_path):
    db = _measured_db(tmp_path)
    result = runner.invoke(app, ["analyze", "--db", db, "--out", str(tmp_path / "a")])
    assert result.exit_code == 2
    assert "--unblind" in result.output
    assert not (tmp_path / "a").exists()
    assert _unblind_events(db, tmp_path) == []


def test_analyze_unblinds_records_and_writes(tmp_path, db_url):
    db = _measured_db(tmp_path, db_url)
    root = ["--image-root", str(tmp_path / "images")]
    out = tmp_path / "analysis"
    options = tmp_path / "analysis.toml"
    options.write_text('bootstrap = 100\nendpoints = ["terminal_fraction", "mean_diameter_um"]\n')
    result = runner.invoke(
        app, ["analyze", "--db", db, "--out", str(out), "--unblind", "--actor", "statistician",
              "--config", str(options), *root],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "4 subjects, 8 sites (cells vs saline)" in result.output
    data = json.loads((out / "analysis.json").read_text())
    assert data["flow"]["images_measured"] == {"0": 8, "30": 8, "90": 8}
    paired = pd.read_csv(out / "paired_tests.csv")
    assert set(paired["visit_day"]) == {30, 90} and (paired["n"] == 4).all()
    assert data["config"]["bootstrap"] == 100
    events = _unblind_events(db, tmp_path)
    assert len(events) == 1 and events[0].actor == "statistician"
    bad = tmp_path / "bad.toml"
    bad.write_text("alpah = 0.1\n")
    refused = runner.invoke(app, ["analyze", "--db", db, "--out", str(out), "--unblind",
                                  "--config", str(bad), *root])  # fmt: skip
    assert refused.exit_code == 2 and "alpah" in refused.output


def test_power_command(tmp_path):
    plot = tmp_path / "power.png"
    result = runner.invoke(
        app, ["power", "--subjects", "4,6", "--sims", "2", "--plot", str(plot),
              "--out", str(tmp_path / "power.csv")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "80 % power" in result.output and plot.read_bytes()[:4] == b"\x89PNG"
    assert len(pd.read_csv(tmp_path / "power.csv")) == 2 * 2 * 2
    bad = runner.invoke(app, ["power", "--subjects", "four", "--sims", "2"])
    assert bad.exit_code == 2 and "--subjects" in bad.output


def test_simulate_scenario(tmp_path):
    result = runner.invoke(
        app, ["simulate", "--out", str(tmp_path), "--scenario", "--years", "1",
              "--schedules", "single,yearly", "--severities", "HN-IV", "--subjects", "2"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    curves = pd.read_csv(tmp_path / "scenarios.csv")
    assert set(curves["schedule"]) == {"single", "yearly"} and curves["day"].max() == 365
    assert (tmp_path / "scenarios.png").exists()
    bad = runner.invoke(app, ["simulate", "--out", str(tmp_path), "--scenario",
                              "--schedules", "weekly"])  # fmt: skip
    assert bad.exit_code == 2 and "weekly" in bad.output
