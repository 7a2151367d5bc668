import pandas as pd
import pytest
from typer.testing import CliRunner

from hairtrial import __version__
from hairtrial.cli.main import app

runner = CliRunner()


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["simulate"],
        ["demo"],
        ["presets"],
        ["presets", "show"],
        ["ingest"],
        ["export"],
        ["status"],
    ],
)
def test_every_command_has_help(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_presets_list_and_show():
    listed = runner.invoke(app, ["presets", "list"])
    assert listed.exit_code == 0 and "nanfang-2023" in listed.output
    shown = runner.invoke(app, ["presets", "show", "gentile-2020"])
    assert shown.exit_code == 0 and "[treatment]" in shown.output


def test_simulate_without_rendering(tmp_path):
    out = tmp_path / "t"
    result = runner.invoke(
        app, ["simulate", "--preset", "nanfang-2023", "--subjects", "2", "--out", str(out),
              "--seed", "1", "--no-render"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    endpoints = pd.read_csv(out / "truth_endpoints.csv")
    assert len(endpoints) == 2 * 2 * 5
    assert not (out / "manifest.csv").exists()
    assert (out / "follicles.parquet").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--preset", "nope"], "unknown preset"),
        (["--um-per-px", "-1"], "--um-per-px"),
        (["--field-cm2", "9"], "--field-cm2"),
    ],
)
def test_bad_input_is_a_clear_error(tmp_path, args, message):
    result = runner.invoke(app, ["simulate", "--out", str(tmp_path / "x"), "--no-render", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_os_actor_names_the_login_or_falls_back(monkeypatch):
    import getpass

    from hairtrial.cli._common import os_actor

    monkeypatch.setattr(getpass, "getuser", lambda: "alice")
    assert os_actor() == "cli:alice"

    def no_user() -> str:
        raise KeyError("getpwuid(): uid not found: 1234")

    monkeypatch.setattr(getpass, "getuser", no_user)
    assert os_actor() == "cli"  # a container without a passwd entry still gets an actor
