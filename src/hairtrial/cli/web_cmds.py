"""The web-app commands: ``serve``, ``user add|list|disable`` and ``audit verify``.

They parse arguments and call the library; no logic lives here.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from hairtrial._validate import InputError
from hairtrial.cli._common import DbOption
from hairtrial.cli._common import fail as _fail

user_app = typer.Typer(help="Add, list and disable web-app users.", no_args_is_help=True)
audit_app = typer.Typer(help="Check the audit trail.", no_args_is_help=True)


def serve(
    db: DbOption = "sqlite:///trial.db",
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8000,
    secure_cookies: Annotated[
        bool | None,
        typer.Option(
            "--secure-cookies/--no-secure-cookies",
            help="HTTPS-only session cookie (default: on unless HOST is loopback).",
        ),
    ] = None,
    dev: Annotated[
        bool, typer.Option("--dev", help="Development mode: a random secret key if none is set.")
    ] = False,
) -> None:
    """Serve the review web app (secret key from HAIRTRIAL_SECRET_KEY)."""
    from pydantic import ValidationError

    from hairtrial.web.main import serve as run
    from hairtrial.web.settings import Settings

    loopback = host in ("127.0.0.1", "localhost", "::1")
    try:
        settings = Settings(
            db_url=db,
            cookie_secure=(not loopback) if secure_cookies is None else secure_cookies,
            environment="development" if dev else "production",
        )
    except ValidationError as exc:
        raise _fail(InputError("; ".join(str(e["msg"]) for e in exc.errors()))) from None
    try:
        run(settings, host=host, port=port)
    except InputError as exc:
        raise _fail(exc) from None


@user_app.command("add")
def user_add(
    username: Annotated[str, typer.Argument(help="Login name.")],
    role: Annotated[str, typer.Option(help="admin, investigator, assessor or monitor.")],
    db: DbOption = "sqlite:///trial.db",
    display_name: Annotated[str | None, typer.Option(help="Name shown in pages.")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Add a user (the password is prompted for, or read from stdin)."""
    from hairtrial.store import open_store
    from hairtrial.store.users import create_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        with open_store(db) as store, store.begin() as session:
            user = create_user(
                session=session, username=username, password=password, role=role,
                display_name=display_name, actor="cli",
            )  # fmt: skip
    except InputError as exc:
        raise _fail(exc) from None
    typer.echo(f"added {user.username} ({user.role})")


@user_app.command("list")
def user_list(db: DbOption = "sqlite:///trial.db") -> None:
    """List users: name, role, active."""
    from hairtrial.store import open_store
    from hairtrial.store.users import list_users

    try:
        with open_store(db) as store, store.session() as session:
            users = list_users(session=session)
    except InputError as exc:
        raise _fail(exc) from None
    for u in users:
        typer.echo(f"{u.username}\t{u.role}\t{'active' if u.active else 'disabled'}")


@user_app.command("disable")
def user_disable(
    username: Annotated[str, typer.Argument(help="Login name.")],
    db: DbOption = "sqlite:///trial.db",
) -> None:
    """Disable a user (users are never deleted)."""
    from hairtrial.store import open_store
    from hairtrial.store.users import disable_user

    try:
        with open_store(db) as store, store.begin() as session:
            disable_user(session=session, username=username, actor="cli")
    except InputError as exc:
        raise _fail(exc) from None
    typer.echo(f"disabled {username}")


@audit_app.command("verify")
def audit_verify(db: DbOption = "sqlite:///trial.db") -> None:
    """Recompute the audit hash chain; exit 1 at the first edited or deleted event."""
    from hairtrial.store import open_store
    from hairtrial.store.audit import verify_audit_chain

    try:
        with open_store(db, migrate=False) as store:
            report = verify_audit_chain(store=store)
    except InputError as exc:
        raise _fail(exc) from None
    if report.ok:
        typer.echo(f"audit chain OK: {report.n_events} events, head {report.head_hash}")
        return
    typer.echo(
        f"audit chain BROKEN at event {report.broken_id}: {report.problem} "
        f"({report.n_events} events verified before it)"
    )
    raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    """Add the web-app commands to the ``hairtrial`` application."""
    app.command()(serve)
    app.add_typer(user_app, name="user")
    app.add_typer(audit_app, name="audit")
