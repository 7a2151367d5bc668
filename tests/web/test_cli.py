"""The web-app commands: user add|list|disable and audit verify, through the CLI."""

from sqlalchemy import text
from typer.testing import CliRunner

from hairtrial.cli.main import app


def test_user_commands_and_audit_verify(tmp_path):
    url = f"sqlite:///{tmp_path / 'trial.db'}"
    runner = CliRunner()
    added = runner.invoke(
        app, ["user", "add", "ann", "--role", "assessor", "--db", url, "--password-stdin"],
        input="a long enough password\n",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "added ann (assessor)" in added.output
    short = runner.invoke(
        app, ["user", "add", "bob", "--role", "monitor", "--db", url, "--password-stdin"],
        input="short\n",
    )  # fmt: skip
    assert short.exit_code == 2 and "password" in short.output
    bad_role = runner.invoke(
        app, ["user", "add", "bob", "--role", "unblinded", "--db", url, "--password-stdin"],
        input="a long enough password\n",
    )  # fmt: skip
    assert bad_role.exit_code == 2 and "role" in bad_role.output
    assert runner.invoke(app, ["user", "disable", "ann", "--db", url]).exit_code == 0
    listed = runner.invoke(app, ["user", "list", "--db", url])
    assert listed.output.splitlines() == ["ann\tassessor\tdisabled"]
    ok = runner.invoke(app, ["audit", "verify", "--db", url])
    assert ok.exit_code == 0 and "audit chain OK: 2 events" in ok.output

    from hairtrial.store import open_store

    with open_store(url) as store, store.engine.begin() as connection:
        connection.execute(text("UPDATE audit_event SET action = 'nothing' WHERE id = 1"))
    broken = runner.invoke(app, ["audit", "verify", "--db", url])
    assert broken.exit_code == 1 and "BROKEN at event 1" in broken.output


def test_serve_refuses_missing_secret(tmp_path, monkeypatch):
    monkeypatch.delenv("HAIRTRIAL_SECRET_KEY", raising=False)
    result = CliRunner().invoke(app, ["serve", "--db", f"sqlite:///{tmp_path / 't.db'}"])
    assert result.exit_code == 2 and "secret_key" in result.output
