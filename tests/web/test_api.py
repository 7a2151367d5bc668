"""API tests with TestClient: the authorisation matrix, revisions, the audit chain."""

import json
import re

import pytest
from sqlalchemy import text

from tests.web.conftest import ROLES

ALL = set(ROLES)
UNBLINDED = {"admin", "investigator"}

# (method, path, allowed roles, success status, JSON body or None, is a page)
ROUTES = [
    ("GET", "/", ALL, 200, None, True),
    ("GET", "/queue", ALL, 200, None, True),
    ("GET", "/review/{image}", ALL, 200, None, True),
    ("GET", "/agreement", ALL, 200, None, True),
    ("GET", "/audit", {"admin", "monitor"}, 200, None, True),
    ("GET", "/users", {"admin"}, 200, None, True),
    ("GET", "/unblind", {"admin"}, 200, None, True),
    ("GET", "/report", UNBLINDED, 200, None, True),
    ("GET", "/images/{image}/file", ALL, 200, None, True),
    ("GET", "/openapi.json", ALL, 200, None, False),
    ("GET", "/api/progress", ALL, 200, None, False),
    ("GET", "/api/queue", ALL, 200, None, False),
    ("GET", "/api/images/{image}", ALL, 200, None, False),
    ("GET", "/api/images/{image}/revisions", ALL, 200, None, False),
    ("POST", "/api/images/{image}/revisions", {"admin", "investigator", "assessor"}, 201,
     {"hairs": [], "status": "draft"}, False),
    ("GET", "/api/agreement", ALL, 200, None, False),
    ("GET", "/api/audit", {"admin", "monitor"}, 200, None, False),
    ("GET", "/api/audit/verify", {"admin", "monitor"}, 200, None, False),
    ("GET", "/api/users", {"admin"}, 200, None, False),
    ("POST", "/api/users", {"admin"}, 201,
     {"username": "new-{role}", "password": "another long password", "role": "monitor"}, False),
    ("POST", "/api/users/victim/disable", {"admin"}, 200, None, False),
    ("POST", "/api/unblind", {"admin"}, 200, {"image_id": "{image}", "reason": "SAE"}, False),
    ("POST", "/logout", ALL, 303, None, False),
]  # fmt: skip


def _fill(value, **names):
    return json.loads(
        json.dumps(value)
        .replace("{image}", str(names["image"]))
        .replace("{role}", names["role"])
        .replace('"' + str(names["image"]) + '"', str(names["image"]))
    )


@pytest.mark.parametrize("role", [*ROLES, None])
@pytest.mark.parametrize("route", ROUTES, ids=[f"{m} {p}" for m, p, *_ in ROUTES])
def test_authorisation_matrix(route, role, client_for, web_store):
    method, path, allowed, ok_status, body, is_page = route
    if path == "/api/users/victim/disable":
        from hairtrial.store.users import create_user

        with web_store.begin() as session:
            create_user(session=session, username="victim", password="x" * 12, role="monitor")
    image = web_store.image_ids[0]
    client = client_for(role)
    url = path.replace("{image}", str(image))
    kwargs = {} if body is None else {"json": _fill(body, image=image, role=str(role))}
    response = client.request(method, url, follow_redirects=False, **kwargs)
    if role is None:
        expected = 303 if (is_page and method == "GET") else 401
        assert response.status_code == expected
        if expected == 303:
            assert response.headers["location"] == "/login"
    elif role in allowed:
        assert response.status_code == ok_status, response.text
    else:
        assert response.status_code == 403, response.text


def test_only_login_and_static_are_public(app):
    from fastapi.routing import APIRoute

    paths = {r.path for r in app.routes if isinstance(r, APIRoute)}
    covered = {p for _, p, *_ in ROUTES} | {"/login"}
    covered = {p.replace("{image}", "{image_id}").replace("victim", "{username}") for p in covered}
    assert paths <= covered, f"routes missing from the matrix: {paths - covered}"


BLINDED_GETS = [p for m, p, allowed, *_ in ROUTES if m == "GET" and "assessor" in allowed]


@pytest.mark.parametrize("role", ["assessor", "monitor"])
def test_blinded_roles_never_receive_arm_or_visit(role, client_for, web_store):
    client = client_for(role)
    image = web_store.image_ids[0]
    client.post(
        f"/api/images/{image}/revisions", json={"hairs": [], "status": "approved"}
    )  # some revisions exist (assessor); monitors may not write
    for path in [*BLINDED_GETS, "/api/agreement?metric=mean_diameter_um"]:
        response = client.get(path.replace("{image}", str(image)))
        assert response.status_code == 200, path
        if response.headers["content-type"].startswith("image/"):
            continue
        body = response.text.lower()
        # The OpenAPI spec names the unblinded schema's fields but holds no data.
        fields = ("visit_day",) if path != "/openapi.json" else ()
        for secret in ("cells", "saline", "2025-01-", "s001", *fields):
            assert secret not in body, (path, secret)
    assert client.get("/api/images/1").json()["image"].keys() == {
        "image_id", "subject", "width", "height", "um_per_px", "area_cm2", "status",
        "auto_summary",
    }  # fmt: skip


def test_unblinded_roles_see_arm(client_for, web_store):
    client = client_for("investigator")
    image = client.get(f"/api/images/{web_store.image_ids[0]}").json()["image"]
    assert image["arm"] in ("cells", "saline") and image["visit_day"] in (0, 30)
    assert "cells" in client.get("/queue").text or "saline" in client.get("/queue").text


def test_revision_history_and_audit(client_for, web_store):
    client = client_for("assessor")
    image = web_store.image_ids[1]
    state = client.get(f"/api/images/{image}").json()
    assert state["source"] == "automatic" and len(state["hairs"]) == 4
    hairs = state["hairs"][1:]
    first = client.post(f"/api/images/{image}/revisions", json={"hairs": hairs}).json()
    assert (first["n_deleted"], first["status"]) == (1, "draft")
    state = client.get(f"/api/images/{image}").json()
    assert state["source"] == "revision" and state["revision_id"] == first["id"]
    hairs[0]["class"] = "vellus"
    second = client.post(
        f"/api/images/{image}/revisions",
        json={"hairs": hairs, "status": "approved", "base_revision_id": first["id"]},
    ).json()
    assert second["n_edited"] == 1 and second["base_revision_id"] == first["id"]
    history = client.get(f"/api/images/{image}/revisions").json()
    assert [h["id"] for h in history] == [first["id"], second["id"]]
    assert client.get("/api/progress").json()["reviewed"] == 1
    monitor = client_for("monitor")
    events = monitor.get("/api/audit").json()
    review_events = [e for e in events if e["entity"] == "review"]
    assert [e["action"] for e in review_events] == ["approve", "revise"]
    assert review_events[0]["before"]["hair_count"] == review_events[1]["after"]["hair_count"]
    actions = {e["action"] for e in events}
    assert {"login", "create", "ingest"} <= actions
    assert monitor.get("/api/audit/verify").json()["ok"] is True


def test_tampering_shows_on_the_audit_page(client_for, web_store):
    admin = client_for("admin")
    assert admin.get("/api/audit/verify").json()["ok"]
    with web_store.engine.begin() as connection:
        connection.execute(text("UPDATE audit_event SET actor = 'mallory' WHERE id = 3"))
    report = admin.get("/api/audit/verify").json()
    assert report["ok"] is False and report["broken_id"] == 3
    assert "BROKEN at event 3" in admin.get("/audit").text


def test_unblinding_is_audited(client_for, web_store):
    admin = client_for("admin")
    image = web_store.image_ids[0]
    response = admin.post(
        "/api/unblind", json={"image_id": image, "reason": "serious adverse event"}
    )
    assert response.json()["arm"] in ("cells", "saline")
    event = admin.get("/api/audit?limit=1").json()[0]
    assert event["action"] == "unblind" and event["detail"] == {"reason": "serious adverse event"}
    assert admin.post("/api/unblind", json={"image_id": 999, "reason": "x" * 5}).status_code == 404


def test_unblinding_page_is_admin_only_audited_and_checks_its_input(client_for, web_store):
    image = web_store.image_ids[0]
    admin = client_for("admin")
    form = {"image_id": str(image), "reason": "serious adverse event"}
    page = admin.post("/unblind", data=form)
    assert page.status_code == 200
    assert re.search(r"<strong>(cells|saline)</strong>", page.text)
    event = admin.get("/api/audit?limit=1").json()[0]
    assert (event["action"], event["entity_id"]) == ("unblind", str(image))
    assert event["detail"] == {"reason": "serious adverse event"}
    assert 'href="/unblind"' in admin.get("/").text
    # bad input: a clear message, the right status, and nothing audited
    n_events = len(admin.get("/api/audit?limit=1000").json())
    missing = admin.post("/unblind", data={"image_id": "999", "reason": "adverse event"})
    assert missing.status_code == 404 and "no such image" in missing.text
    short = admin.post("/unblind", data={"image_id": str(image), "reason": "x"})
    assert short.status_code == 422 and "at least 3 characters" in short.text
    assert len(admin.get("/api/audit?limit=1000").json()) == n_events
    # the form needs the session's CSRF token, and the admin role
    del admin.headers["X-CSRF-Token"]
    assert admin.post("/unblind", data=form).status_code == 403
    for role in ("investigator", "assessor", "monitor"):
        client = client_for(role)
        assert client.post("/unblind", data=form).status_code == 403
        assert 'href="/unblind"' not in client.get("/").text


def test_bad_revisions_are_422_not_500(client_for, web_store):
    client = client_for("assessor")
    image = web_store.image_ids[0]
    bad = [
        {"hairs": [{"id": 1}]},
        {"hairs": [], "unusable": True},
        {"hairs": [], "base_revision_id": 12345},
        {"hairs": [], "status": "final"},
    ]
    for body in bad:
        assert client.post(f"/api/images/{image}/revisions", json=body).status_code == 422, body
    failed_image = web_store.image_ids[-1]
    assert (
        client.post(f"/api/images/{failed_image}/revisions", json={"hairs": []}).status_code == 404
    )
    assert client.get("/api/images/999").status_code == 404


def test_disabled_user_loses_access(client_for):
    assessor = client_for("assessor")
    admin = client_for("admin")
    assert admin.post("/api/users/assessor/disable").status_code == 200
    assert assessor.get("/api/progress").status_code == 401
    assert admin.post("/api/users/admin/disable").status_code == 422


def test_user_disabled_by_another_process_is_refused_at_once(client_for, web_store):
    from hairtrial.store.users import disable_user

    image = web_store.image_ids[0]
    assessor = client_for("assessor")
    assert assessor.get(f"/api/images/{image}").status_code == 200
    state = assessor.get(f"/api/images/{image}").json()
    with web_store.begin() as session:  # as `hairtrial user disable` does, from outside
        disable_user(session=session, username="assessor", actor="cli")
    body = {"hairs": state["hairs"], "status": "draft"}
    assert assessor.post(f"/api/images/{image}/revisions", json=body).status_code == 401
    assert assessor.get(f"/api/images/{image}").status_code == 401
    page = assessor.get(f"/review/{image}", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login"
    assert assessor.get("/api/progress").status_code == 401
    with web_store.session() as session:
        from hairtrial.store.reviews import revision_history

        assert revision_history(session=session, image_id=image) == []


def test_automatic_hairs_are_served_as_a_revision_stores_them(client_for, web_store):
    from hairtrial.store.reviews import automatic_hairs, image_for_review, stored_form

    image = web_store.image_ids[1]
    client = client_for("investigator")
    state = client.get(f"/api/images/{image}").json()
    with web_store.session() as session:
        run_id = image_for_review(
            session=session, image_id=image, reviewer_id=web_store.user_ids["investigator"],
            key="k",
        ).run_id  # fmt: skip
        auto = automatic_hairs(session=session, run_id=run_id)
    assert state["source"] == "automatic" and state["revision_id"] is None
    assert state["hairs"] == stored_form(auto)
    assert state["image"]["arm"] in ("cells", "saline")
    # Saved back unchanged, they are no correction at all, and come back as stored.
    saved = client.post(f"/api/images/{image}/revisions", json={"hairs": state["hairs"]})
    assert saved.status_code == 201
    assert (saved.json()["n_added"], saved.json()["n_deleted"], saved.json()["n_edited"]) == (
        0, 0, 0,
    )  # fmt: skip
    again = client.get(f"/api/images/{image}").json()
    assert again["source"] == "revision" and again["revision_id"] == saved.json()["id"]
    assert again["hairs"] == state["hairs"] and again["image"]["status"] == "draft"
    assert again["image"] == {**state["image"], "status": "draft"}
    # The cache serves the second load of another image's automatic hairs the same way.
    other = web_store.image_ids[0]
    assert (
        client_for("monitor").get(f"/api/images/{other}").json()["hairs"]
        == client_for("assessor").get(f"/api/images/{other}").json()["hairs"]
    )


def test_csrf_is_checked_before_the_body_of_a_save(client_for, web_store):
    client = client_for("assessor")
    image = web_store.image_ids[0]
    response = client.post(
        f"/api/images/{image}/revisions", json={"hairs": "not a list"},
        headers={"X-CSRF-Token": "wrong"},
    )  # fmt: skip
    assert response.status_code == 403
