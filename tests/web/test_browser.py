"""Browser tests: Playwright drives Debian's Chromium against a real uvicorn server.

Chromium is installed with apt the first time if ``/usr/bin/chromium`` is missing (never
``playwright install``). Screenshots are saved in the test's tmp dir and checked to be
non-blank.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.web.conftest import PASSWORD, make_settings

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip
ARMS = ("cells", "saline")


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium, installed with apt if missing."""
    if not CHROMIUM.exists():
        apt = shutil.which("apt-get")
        problem = None
        if apt is None:
            problem = "apt-get not found"
        else:
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            for command in ([apt, "update"], [apt, "install", "-y", "chromium"]):
                done = subprocess.run(
                    command, env=env, capture_output=True, text=True, timeout=900, check=False
                )
                if done.returncode != 0:
                    problem = f"{' '.join(command)} failed: {done.stderr.strip()[-500:]}"
                    break
        if problem is not None or not CHROMIUM.exists():
            message = f"cannot install Chromium ({problem or 'not found after install'})"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
    return CHROMIUM


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(web_store: Any, report_file: Path) -> Iterator[str]:
    """A real uvicorn server on a free loopback port, stopped after the test."""
    import uvicorn

    from hairtrial.web.main import create_app

    url = web_store.url.render_as_string(hide_password=False)
    app = create_app(make_settings(url, report_path=report_file), store=web_store)
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started:
        if time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        uv.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def browser(chromium: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(chromium), headless=True, args=LAUNCH_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def _login(page: Any, base: str, username: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_url(f"{base}/")


def _check_not_blank(path: Path) -> None:
    from PIL import Image

    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=float)
    assert pixels.shape[0] > 200 and pixels.shape[1] > 200
    assert pixels.std() > 10, f"{path} looks blank"
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20, f"{path} has too few colours"


def _image_to_client(page: Any, x: float, y: float) -> tuple[float, float]:
    return page.evaluate(
        """([x, y]) => { const svg = document.getElementById('overlay');
            const p = svg.createSVGPoint(); p.x = x; p.y = y;
            const q = p.matrixTransform(svg.getScreenCTM()); return [q.x, q.y]; }""",
        [x, y],
    )


def test_review_flow_in_chromium(server, browser, tmp_path, web_store):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    _login(page, server, "assessor")
    assert page.inner_text("#n-reviewed") == "0"
    page.click("#nav-queue")
    page.click("a.open-review >> nth=0")
    page.wait_for_selector("#review[data-ready='yes']")
    image_id = int(page.get_attribute("#review", "data-image-id"))
    start = int(page.inner_text("#count"))
    assert start == int(page.inner_text("#auto-count")) > 0
    page.screenshot(path=str(tmp_path / "review-before.png"))

    # The one unsure exit is a hollow ring; n goes to it, and moving it clears the doubt.
    unsure = page.locator("#hairs circle.exit.unsure")
    assert unsure.count() == 1 and page.inner_text("#n-unsure") == "1"
    unsure_id = unsure.get_attribute("data-hair-id")
    page.keyboard.press("n")
    assert page.inner_text("#sel-id") == f"#{unsure_id}"
    assert page.inner_text("#sel-exit") == "exit sure 0.62"
    vx, vy, vw, vh = map(float, page.get_attribute("#overlay", "viewBox").split())
    cx, cy = (float(unsure.get_attribute(a)) for a in ("cx", "cy"))
    assert (vx + vw / 2, vy + vh / 2) == pytest.approx((cx, cy))  # centred on the exit
    page.keyboard.press("0")  # n centred the view on the exit; see the whole image again
    page.keyboard.press("e")
    page.mouse.click(*_image_to_client(page, 4, 20))
    assert page.locator("#hairs circle.exit.unsure").count() == 0
    assert page.inner_text("#n-unsure") == "0" and page.inner_text("#sel-exit") == ""
    page.keyboard.press("v")

    # f swaps a hair's ends: its centreline runs the other way.
    line = page.locator("#hairs polyline.uncounted").first
    swapped_id = line.get_attribute("data-hair-id")
    before_points = line.get_attribute("points").split()
    line.dispatch_event("pointerdown")
    page.keyboard.press("f")
    after = page.locator(f"#hairs polyline[data-hair-id='{swapped_id}']")
    assert after.get_attribute("points").split() == before_points[::-1]

    # Delete a counted hair (exit inside the image): the count drops by one.
    counted = page.locator("#hairs circle.exit").first.get_attribute("data-hair-id")
    page.locator(f"#hairs polyline[data-hair-id='{counted}']").dispatch_event("pointerdown")
    assert page.inner_text("#sel-id") == f"#{counted}"
    page.keyboard.press("Delete")
    assert int(page.inner_text("#count")) == start - 1

    # Draw a missed hair from (8, 8) to (20, 16) px: the count goes back up.
    page.keyboard.press("d")
    x0, y0 = _image_to_client(page, 8, 8)
    x1, y1 = _image_to_client(page, 20, 16)
    page.mouse.move(x0, y0)
    page.mouse.down()
    for i in range(1, 11):
        page.mouse.move(x0 + (x1 - x0) * i / 10, y0 + (y1 - y0) * i / 10)
    page.mouse.up()
    assert int(page.inner_text("#count")) == start
    assert page.locator("#hairs polyline").count() == page.evaluate(
        "document.querySelectorAll('#hairs polyline').length"
    )

    # Change the new hair's class with the keyboard, then approve.
    page.keyboard.press("1")
    assert page.input_value("#sel-class") == "vellus"
    page.click("#approve")
    page.wait_for_selector("#message:has-text('Approved')")
    page.wait_for_selector("#history li")
    page.screenshot(path=str(tmp_path / "review-after.png"))
    assert "approved" in page.inner_text("#history")

    page.goto(f"{server}/")
    assert page.inner_text("#n-reviewed") == "1"
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
    page.click("#logout")
    page.wait_for_url(f"{server}/login")
    page.goto(f"{server}/queue")
    assert page.url == f"{server}/login"
    assert errors == []
    for name in ("review-before.png", "review-after.png", "dashboard.png"):
        _check_not_blank(tmp_path / name)
    if os.environ.get("HAIRTRIAL_SHOTS"):  # keep the screenshots for a person to look at
        shutil.copytree(tmp_path, os.environ["HAIRTRIAL_SHOTS"], dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("copy"))  # fmt: skip

    # The stored revision matches what was drawn: one hair fewer, one added.
    from hairtrial.store.reviews import corrections_of, latest_approved_revision

    with web_store.session() as session:
        revision = latest_approved_revision(session=session, image_id=image_id)
    assert revision is not None
    assert (revision.n_added, revision.n_deleted, revision.n_edited) == (1, 1, 2)
    assert revision.summary["hair_count"] == start
    with web_store.session() as session:
        edits = corrections_of(session=session, revision_id=revision.id)
    edited = {str(e["hair_id"]): e for e in edits if e["action"] == "edit"}
    assert set(edited) == {unsure_id, swapped_id}
    moved, turned = edited[unsure_id], edited[swapped_id]
    assert turned["after"]["centerline_px"] == turned["before"]["centerline_px"][::-1]
    assert turned["after"]["tip_px"] == turned["before"]["centerline_px"][0]
    assert moved["before"]["exit_confidence"] == 0.62 and "exit_confidence" not in moved["after"]
    assert moved["after"]["exit_px"] == pytest.approx([4, 20], abs=0.6)


def test_blinded_assessor_never_receives_arm_labels(server, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    bodies: list[tuple[str, str]] = []

    def keep(response: Any) -> None:
        kind = response.headers.get("content-type", "")
        if kind.startswith(("text/", "application/json")):
            bodies.append((response.url, response.text()))

    page.on("response", keep)
    _login(page, server, "assessor")
    visited = []
    for path in ("/", "/queue", "/agreement"):
        page.goto(f"{server}{path}")
        visited.append(page.content())
    page.goto(f"{server}/queue")
    page.click("a.open-review >> nth=0")
    page.wait_for_selector("#review[data-ready='yes']")
    page.wait_for_load_state("networkidle")
    visited.append(page.content())
    page.screenshot(path=str(tmp_path / "blinded.png"))
    _check_not_blank(tmp_path / "blinded.png")
    assert any("/api/images/" in url for url, _ in bodies)
    for text in [*visited, *(body for _, body in bodies)]:
        lowered = text.lower()
        assert not any(arm in lowered for arm in ARMS)
        assert "visit_day" not in lowered
