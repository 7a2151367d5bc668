"""The web app on PostgreSQL: login, review, audit chain, and hostile text (NUL)."""

import pytest

from hairtrial.store import open_store
from hairtrial.store.audit import verify_audit_chain
from tests.web.conftest import PASSWORD, add_users, csrf_of, login, make_settings
from tests.web.conftest import test_client_class as client_class
from tests.web.trialdata import measured_trial


@pytest.fixture
def pg_client(postgres_url, tmp_path):
    from hairtrial.web.main import create_app

    with open_store(postgres_url, image_root=tmp_path / "images") as store:
        ids = measured_trial(store, tmp_path / "trial", subjects=1)
        add_users(store)
        app = create_app(make_settings(postgres_url), store=store)
        with client_class()(app) as client:
            yield client, store, ids


def test_review_and_audit_on_postgresql(pg_client):
    client, store, ids = pg_client
    assert login(client, "adm\x00in", PASSWORD).status_code == 401
    assert login(client, "assessor").status_code == 303
    headers = {"X-CSRF-Token": csrf_of(client)}
    state = client.get(f"/api/images/{ids[0]}").json()
    body = {"hairs": state["hairs"][1:], "status": "approved", "comment": "<b>ok</b> ' --"}
    saved = client.post(f"/api/images/{ids[0]}/revisions", json=body, headers=headers)
    assert saved.status_code == 201 and saved.json()["comment"] == "<b>ok</b> ' --"
    bad = client.post(
        f"/api/images/{ids[0]}/revisions", json={"hairs": [], "comment": "\x00"}, headers=headers
    )
    assert bad.status_code == 422
    assert client.get("/api/progress").json()["reviewed"] == 1
    report = verify_audit_chain(store=store)
    assert report.ok and report.n_events >= 7  # ingest, 4 users, 2 logins, 1 approve
