"""Shared fixtures: a trial database on every backend, each test in its own database.

``db_url`` is parametrised over SQLite (a file in the test's tmp dir) and PostgreSQL. For
PostgreSQL each test gets a fresh database ``test_<random>`` created through the
``postgres`` maintenance database and dropped afterwards, so no test ever touches shared
tables. When PostgreSQL cannot be reached the PostgreSQL cases are skipped with the
reason, except when the ``CI`` environment variable is set: then they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

#: Maintenance database used to create and drop the per-test databases.
PG_ADMIN = os.environ.get(
    "HAIRTRIAL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"
).replace("postgresql+psycopg://", "postgresql://")


@cache
def _postgres_problem() -> str | None:
    import psycopg

    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL at {PG_ADMIN} is unreachable ({str(exc).strip()})"
    return None


def _admin_execute(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, connect_timeout=5, autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test (dropped afterwards)."""
    problem = _postgres_problem()
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"{problem}; CI is set, so PostgreSQL tests must run")
        pytest.skip(problem)
    name = f"test_{uuid.uuid4().hex[:16]}"
    _admin_execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL on each backend: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db' / 'trial.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def store(db_url: str, tmp_path: Path) -> Iterator[Any]:
    """An open, migrated store on each backend (images under tmp_path/db/images)."""
    from hairtrial.store import open_store

    opened = open_store(db_url, image_root=tmp_path / "db" / "images")
    try:
        yield opened
    finally:
        opened.close()
