"""Fixtures for the web tests: an app over a measured trial, users of every role, and
logged-in TestClients."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hairtrial.store import open_store
from hairtrial.store.users import create_user
from tests.web.trialdata import measured_trial

PASSWORD = "a long test password"
ROLES = ("admin", "investigator", "assessor", "monitor")
SECRET = "test secret key, long enough"


def test_client_class() -> Any:
    """Return FastAPI's TestClient, importing it past Starlette's httpx2 notice.

    Starlette 1.x warns at import that it prefers the ``httpx2`` package; the project
    pins ``httpx`` (pyproject), so this one known warning is silenced here only.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*install `httpx2` instead", category=Warning)
        from fastapi.testclient import TestClient
    return TestClient


def make_settings(db_url: str, **overrides: Any) -> Any:
    from hairtrial.web.settings import Settings

    values: dict[str, Any] = dict(
        db_url=db_url, secret_key=SECRET, environment="test", cookie_secure=False
    )
    values.update(overrides)
    return Settings(**values)


def add_users(store: Any) -> dict[str, int]:
    with store.begin() as session:
        return {
            role: create_user(session=session, username=role, password=PASSWORD, role=role).id
            for role in ROLES
        }


def login(client: Any, username: str, password: str = PASSWORD) -> Any:
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        follow_redirects=False,
    )


def csrf_of(client: Any) -> str:
    page = client.get("/")
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text).group(1)


@pytest.fixture(scope="session", autouse=True)
def _fast_argon2() -> Iterator[None]:
    """Use cheap argon2id parameters in the web tests (the store tests use the defaults).

    The hashes are still argon2id and still verified; only the work factor is lowered,
    so a test that logs in several users stays fast.
    """
    from argon2 import PasswordHasher

    from hairtrial.store import users

    fast = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(users, "_hasher", lambda: fast)
        patch.setattr(users, "_dummy_hash", lambda: fast.hash("timing only"))
        yield


@pytest.fixture(scope="session")
def _template_trial(tmp_path_factory: pytest.TempPathFactory, _fast_argon2: None) -> Path:
    """Build the measured trial and its users once; tests get copies of the folder."""
    folder = tmp_path_factory.mktemp("template")
    with open_store(f"sqlite:///{folder / 'db' / 'trial.db'}") as store:
        ids = measured_trial(store, folder / "trial", subjects=1, n_failed=1)
        users = add_users(store)
    (folder / "ids.json").write_text(json.dumps({"images": ids, "users": users}))
    return folder


@pytest.fixture
def web_store(tmp_path: Path, _template_trial: Path) -> Iterator[Any]:
    """A SQLite store with a measured trial (4 images: 3 measured, 1 failed) and a user of
    each role (user name = role); a fresh copy for each test."""
    folder = tmp_path / "copy"
    shutil.copytree(_template_trial, folder)
    ids = json.loads((folder / "ids.json").read_text())
    with open_store(f"sqlite:///{folder / 'db' / 'trial.db'}", migrate=False) as store:
        store.image_ids = ids["images"]  # type: ignore[attr-defined]
        store.user_ids = ids["users"]  # type: ignore[attr-defined]
        yield store


@pytest.fixture
def report_file(tmp_path: Path) -> Path:
    path = tmp_path / "report.html"
    path.write_text("<html><body>arm-level results</body></html>", encoding="utf-8")
    return path


@pytest.fixture
def app(web_store: Any, report_file: Path) -> Any:
    from hairtrial.web.main import create_app

    settings = make_settings(
        web_store.url.render_as_string(hide_password=False), report_path=report_file
    )
    return create_app(settings, store=web_store)


@pytest.fixture
def client_for(app: Any) -> Iterator[Any]:
    """Return a function that makes a client logged in as a role (or anonymous: None)."""
    client_class = test_client_class()
    clients = []

    def make(role: str | None) -> Any:
        client = client_class(app)
        clients.append(client)
        if role is not None:
            response = login(client, role)
            assert response.status_code == 303, response.text
            client.headers["X-CSRF-Token"] = csrf_of(client)
        return client

    yield make
    for c in clients:
        c.close()
