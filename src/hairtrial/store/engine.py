"""Connecting to a trial database and bringing its schema up to date.

An embedded SQLite file is the default (``sqlite:///trial.db``, WAL journal and foreign
keys on every connection); PostgreSQL is used by URL (``postgresql+psycopg://...``). The
schema is only ever created or changed by the Alembic migrations shipped in
``hairtrial/store/migrations``, run programmatically by :func:`upgrade`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from hairtrial._validate import InputError

log = logging.getLogger(__name__)

#: The database used when none is given.
DEFAULT_URL = "sqlite:///trial.db"
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_SQLITE_BUSY_TIMEOUT_MS = 30_000
_MIGRATING = threading.Lock()
_MIGRATION_LOCK = 0x6861697254  # PostgreSQL advisory lock key ("hairT")


def parse_url(url: str | URL) -> URL:
    """Parse and check a database URL.

    Parameters
    ----------
    url : str or URL
        ``sqlite:///path.db`` or ``postgresql+psycopg://user@host:port/db``; a bare
        ``postgresql://`` URL is given the psycopg 3 driver.

    Returns
    -------
    URL

    Raises
    ------
    InputError
        If the URL cannot be parsed or names another backend.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise InputError(f"--db {url!s}: not a database URL ({exc})") from None
    backend = parsed.get_backend_name()
    if backend == "postgresql" and parsed.get_driver_name() in ("psycopg2", "psycopg", ""):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend != "sqlite":
        raise InputError(
            f"--db {parsed.render_as_string(hide_password=True)}: unsupported backend "
            f"{backend!r}; use sqlite:///FILE.db or postgresql+psycopg://USER@HOST/DB"
        )
    return parsed


def _sqlite_file(url: URL) -> Path | None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def make_engine(url: str | URL) -> Engine:
    """Create an engine for `url`, with SQLite's WAL journal and foreign keys switched on.

    Parameters
    ----------
    url : str or URL
        Database URL (see :func:`parse_url`). A SQLite file's folder is created.

    Returns
    -------
    Engine
    """
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = _sqlite_file(parsed)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": _SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _on_sqlite_connect)
        return engine
    return create_engine(parsed, pool_pre_ping=True)


def _alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option(
        "sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%")
    )
    return config


def _upgrade_engine(engine: Engine, revision: str = "head") -> None:
    from alembic import command

    config = _alembic_config(engine)
    # Alembic keeps its migration context in module globals: one migration per process.
    with _MIGRATING, engine.begin() as connection:
        # One migrator at a time, all in one transaction: on SQLite take the write lock
        # now (Python's sqlite3 would otherwise autocommit each DDL statement, so a crash
        # could leave half a schema); on PostgreSQL hold an advisory lock.
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def upgrade(url: str | URL, *, revision: str = "head") -> None:
    """Create or migrate the schema of the database at `url` to `revision`.

    Parameters
    ----------
    url : str or URL
        Database URL.
    revision : str
        Alembic revision to reach (``"head"``: the newest).
    """
    engine = make_engine(url)
    try:
        _upgrade_engine(engine, revision)
    finally:
        engine.dispose()


def current_revision(engine: Engine) -> str | None:
    """Return the Alembic revision the database is at, ``None`` for an empty database."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    """Return the newest revision shipped with this package."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(MIGRATIONS_DIR))
    head = script.get_current_head()
    if head is None:  # pragma: no cover - the package always ships a revision
        raise RuntimeError(f"{MIGRATIONS_DIR}: no migrations found")
    return head


class Store:
    """An open trial database: an engine, a session factory and the image folder.

    Use :func:`open_store` to make one. It is a context manager that disposes of its
    connections on exit.

    Parameters
    ----------
    engine : Engine
        Connected engine whose schema is at the newest revision.
    image_root : Path or None
        Folder of the content-addressed image store (``None``: images can only be
        referenced in place).
    """

    def __init__(self, engine: Engine, *, image_root: Path | None) -> None:
        self.engine = engine
        self.image_root = image_root
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @property
    def url(self) -> URL:
        """The database URL."""
        return self.engine.url

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.engine.dialect.name

    def describe(self) -> str:
        """Return the URL with any password hidden, for messages."""
        return self.engine.url.render_as_string(hide_password=True)

    def session(self) -> Session:
        """Return a new ORM session (use as a context manager)."""
        return self._sessions()

    @contextmanager
    def begin(self) -> Iterator[Session]:
        """Yield a session in a transaction committed on success, rolled back on error."""
        with self._sessions.begin() as session:
            yield session

    def close(self) -> None:
        """Dispose of the engine's connections."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.describe()!r}, image_root={self.image_root!s})"


def open_store(
    url: str | URL = DEFAULT_URL,
    *,
    image_root: str | Path | None = None,
    migrate: bool = True,
) -> Store:
    """Open (and by default create or migrate) the trial database at `url`.

    Parameters
    ----------
    url : str or URL
        Database URL; default ``sqlite:///trial.db`` in the working directory.
    image_root : str or Path, optional
        Folder of the content-addressed image store. Default for SQLite: ``images/``
        next to the database file; PostgreSQL has no default (images can then only be
        ingested in place).
    migrate : bool
        Run the Alembic migrations up to the newest revision. Otherwise a database that
        is not at the newest revision is an error.

    Returns
    -------
    Store

    Raises
    ------
    InputError
        If the URL is bad, the database cannot be reached, or (``migrate=False``) its
        schema is out of date.
    """
    from sqlalchemy.exc import OperationalError

    engine = make_engine(url)
    where = engine.url.render_as_string(hide_password=True)
    try:
        if migrate:
            _upgrade_engine(engine)
        else:
            found = current_revision(engine)
            if found != head_revision():
                raise InputError(
                    f"--db {where}: schema revision {found} is not the newest "
                    f"({head_revision()}); run the migrations (open_store(migrate=True))"
                )
    except OperationalError as exc:
        engine.dispose()
        raise InputError(f"--db {where}: cannot open database ({exc.orig})") from None
    except BaseException:
        engine.dispose()
        raise
    root: Path | None
    if image_root is not None:
        root = Path(image_root)
    elif engine.dialect.name == "sqlite" and (db_file := _sqlite_file(engine.url)) is not None:
        root = db_file.resolve().parent / "images"
    else:
        root = None
    log.info("opened %s (image store: %s)", where, root)
    return Store(engine, image_root=root)


def table_names(engine: Engine) -> list[str]:
    """Return the names of the tables in the database (for checks and status)."""
    return sorted(inspect(engine).get_table_names())
