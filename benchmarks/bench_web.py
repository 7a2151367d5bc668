"""Benchmark of the review web app: many concurrent reviewers on loopback.

Usage::

    .venv/bin/python benchmarks/bench_web.py [--reviewers 50] [--duration 30] [--images 40]
        [--hairs 60] [--think 1.0] [--db URL]

A temporary SQLite trial database (or ``--db``) gets ``--images`` measured images with
``--hairs`` hairs each and one assessor per reviewer. ``hairtrial serve`` runs in a
subprocess on 127.0.0.1 only. Each reviewer logs in, then until ``--duration`` seconds
have passed loops over its own queue: open the review page (HTML), load the hairs (JSON
API), delete one hair and save a revision (draft or approved, alternately), with a
random think time of mean ``--think`` seconds between actions, as a person would.
The run is bounded: reviewers stop at the deadline and the server is stopped.

Prints p50/p95/max latency of the review page, the hair load and the save, the error
count, and checks that the audit trail holds exactly one event per successful save. It
also prints the server's CPU time during the load (Linux ``/proc``) and the machine's
load average before and after, since on a shared machine the latencies depend on both.
Targets (issue #8): review page p95 < 200 ms, save p95 < 100 ms, zero errors, audit
events == successful saves. Exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hairtrial.io import write_image, write_manifest
from hairtrial.records import HairRecord, summarize_hairs
from hairtrial.store import enqueue_runs, ingest_manifest, open_store, save_measurement
from hairtrial.store.audit import count_events, verify_audit_chain
from hairtrial.store.users import create_user

PASSWORD = "benchmark password"
SECRET = "benchmark secret key that is long"


def _image_root(url: str, folder: Path) -> Path | None:
    # SQLite keeps its images next to the database; PostgreSQL needs a folder named.
    return None if url.startswith("sqlite") else folder / "image-store"


def _prepare(url: str, folder: Path, n_images: int, n_hairs: int, n_users: int) -> None:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n_images):
        name = f"images/{i:04d}.png"
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        write_image(folder / name, rng.integers(0, 256, size=(480, 640, 3), dtype=np.uint8))
        subject = f"S{i // 4:03d}"
        rows.append({"image": name, "subject": subject, "site": f"{subject}-{'LR'[i % 2]}",
                     "arm": ("cells", "saline")[i % 2], "visit_day": 30 * ((i // 2) % 2),
                     "um_per_px": 5.0})  # fmt: skip
    manifest = write_manifest(folder / "manifest.csv", rows)
    with open_store(url, image_root=_image_root(url, folder)) as store:
        ingest_manifest(url_or_store=store, manifest_path=manifest)
        area = 480 * 640 * 25 / 1e8
        with store.session() as session:
            enqueue_runs(session=session, version="1", config_hash="c")
            for image_id in range(1, n_images + 1):
                hairs = []
                for h in range(n_hairs):
                    x, y = (float(v) for v in rng.uniform(20, 600, size=2))
                    pts = tuple((x + 4.0 * k, y + 2.0 * k) for k in range(8))
                    d = float(rng.uniform(20, 100))
                    hairs.append(HairRecord(
                        id=h + 1, exit_px=pts[0], tip_px=pts[-1], centerline_px=pts,
                        diameter_um=d, length_um=150.0,
                        hair_class="terminal" if d >= 60 else "intermediate", confidence=0.9,
                    ))  # fmt: skip
                save_measurement(
                    session=session, image_id=image_id, version="1", config_hash="c",
                    hairs=hairs, summary=summarize_hairs(hairs, area_cm2=area), timings={},
                )  # fmt: skip
        with store.begin() as session:
            for u in range(n_users):
                create_user(
                    session=session, username=f"rev{u:03d}", password=PASSWORD, role="assessor"
                )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_server(url: str, port: int, image_root: Path | None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HAIRTRIAL_SECRET_KEY": SECRET}
    if image_root is not None:
        env["HAIRTRIAL_IMAGE_ROOT"] = str(image_root)
    launcher = "import sys; from hairtrial.cli.main import app; sys.argv[0] = 'hairtrial'; app()"
    command = [sys.executable, "-c", launcher, "serve", "--db", url,
               "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    server = subprocess.Popen(command, env=env)
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/login", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.terminate()
    raise RuntimeError("the server did not start within 60 s")


def _cpu_seconds(pid: int) -> float | None:
    """Return the CPU time (user + system) of process `pid` so far, in s (``None``: no /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _load_average() -> float:
    """Return the machine's 1-minute load average (NaN where the OS has none)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return float("nan")


class _Stats:
    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = {"page": [], "hairs": [], "save": []}
        self.errors: list[str] = []
        self.saves = 0
        self.server_cpu_s: float | None = None
        self.load_s = 0.0


async def _login(client: object, name: str) -> dict[str, str] | None:
    page = await client.get("/login")  # type: ignore[attr-defined]
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    if token is None:
        return None
    form = {"username": name, "password": PASSWORD, "csrf_token": token.group(1)}
    await client.post("/login", data=form)  # type: ignore[attr-defined]
    home = await client.get("/")  # type: ignore[attr-defined]
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', home.text)
    return None if match is None else {"X-CSRF-Token": match.group(1)}


async def _reviewer(
    client: object, headers: dict[str, str], name: str, deadline: float, think: float,
    stats: _Stats,
) -> None:  # fmt: skip
    import httpx

    assert isinstance(client, httpx.AsyncClient)
    rng = random.Random(name)
    queue = (await client.get("/api/queue")).json()
    await asyncio.sleep(rng.uniform(0, think))  # reviewers do not start in lockstep
    n = 0
    while time.monotonic() < deadline:
        image = queue[n % len(queue)]["image_id"]
        n += 1
        try:
            t = time.perf_counter()
            r = await client.get(f"/review/{image}")
            stats.latency["page"].append(time.perf_counter() - t)
            r.raise_for_status()
            t = time.perf_counter()
            r = await client.get(f"/api/images/{image}")
            stats.latency["hairs"].append(time.perf_counter() - t)
            r.raise_for_status()
            state = r.json()
            await asyncio.sleep(rng.expovariate(1 / think))
            if time.monotonic() >= deadline:
                break
            body = {"hairs": state["hairs"][1:], "base_revision_id": state["revision_id"],
                    "status": "approved" if n % 2 else "draft"}  # fmt: skip
            t = time.perf_counter()
            r = await client.post(f"/api/images/{image}/revisions", json=body, headers=headers)
            stats.latency["save"].append(time.perf_counter() - t)
            r.raise_for_status()
            stats.saves += 1
        except (httpx.HTTPError, ValueError) as exc:
            stats.errors.append(f"{name}: {exc!r}")
        await asyncio.sleep(rng.expovariate(1 / think))


async def _run(
    base: str, n: int, duration: float, think: float, stats: _Stats, server_pid: int
) -> None:
    import httpx

    names = [f"rev{u:03d}" for u in range(n)]
    clients = [httpx.AsyncClient(base_url=base, timeout=30) for _ in names]
    try:
        t0 = time.perf_counter()
        logins = await asyncio.gather(
            *(_login(c, name) for c, name in zip(clients, names, strict=True))
        )
        print(f"  {n} logins (argon2) in {time.perf_counter() - t0:.1f} s")
        for name, headers in zip(names, logins, strict=True):
            if headers is None:
                stats.errors.append(f"{name}: login failed")
        deadline = time.monotonic() + duration
        cpu0, t0 = _cpu_seconds(server_pid), time.perf_counter()
        await asyncio.gather(*(
            _reviewer(c, h, name, deadline, think, stats)
            for c, h, name in zip(clients, logins, names, strict=True) if h is not None
        ))  # fmt: skip
        cpu1, stats.load_s = _cpu_seconds(server_pid), time.perf_counter() - t0
        stats.server_cpu_s = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    finally:
        for c in clients:
            await c.aclose()


def _figures(values: list[float]) -> str:
    if not values:
        return "no samples"
    ms = np.asarray(values) * 1000
    p50, p95 = np.percentile(ms, [50, 95])
    return f"n={len(ms):5d}  p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  max {ms.max():7.1f} ms"


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviewers", type=int, default=50)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--hairs", type=int, default=60)
    parser.add_argument("--think", type=float, default=1.0, help="mean think time, s")
    parser.add_argument("--db", default=None, help="database URL (default: temporary SQLite)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = args.db or f"sqlite:///{folder / 'db' / 'trial.db'}"
        t0 = time.perf_counter()
        _prepare(url, folder, args.images, args.hairs, args.reviewers)
        with open_store(url) as store, store.session() as session:
            saves_before = count_events(session=session, action="revise") + count_events(
                session=session, action="approve"
            )
        print(f"prepared {args.images} images × {args.hairs} hairs, {args.reviewers} "
              f"assessors in {time.perf_counter() - t0:.1f} s ({url.split(':')[0]})")  # fmt: skip
        port = _free_port()
        load_before = _load_average()
        server = _start_server(url, port, _image_root(url, folder))
        stats = _Stats()
        try:
            base = f"http://127.0.0.1:{port}"
            run = _run(base, args.reviewers, args.duration, args.think, stats, server.pid)
            asyncio.run(asyncio.wait_for(run, timeout=args.duration + 300))
        finally:
            load_after = _load_average()
            server.terminate()
            server.wait(timeout=30)
        with open_store(url) as store:
            with store.session() as session:
                audited = (
                    count_events(session=session, action="revise")
                    + count_events(session=session, action="approve")
                    - saves_before
                )
            chain = verify_audit_chain(store=store)
    print(f"{args.reviewers} reviewers for {args.duration:.0f} s, think time {args.think} s")
    for key, label in (("page", "review page"), ("hairs", "hairs JSON "), ("save", "save       ")):
        print(f"  {label}  {_figures(stats.latency[key])}")
    print(f"  successful saves {stats.saves}, audit events for saves {audited}, "
          f"errors {len(stats.errors)}, audit chain {'OK' if chain.ok else 'BROKEN'} "
          f"({chain.n_events} events)")  # fmt: skip
    if stats.server_cpu_s is not None:
        print(f"  server CPU {stats.server_cpu_s:.1f} s in {stats.load_s:.1f} s of load "
              f"({100 * stats.server_cpu_s / stats.load_s:.0f}% of one core)")  # fmt: skip
    print(f"  load average (1 min) {load_before:.2f} before, {load_after:.2f} after, "
          f"on {os.cpu_count()} CPUs")  # fmt: skip
    for line in stats.errors[:5]:
        print(f"  error: {line}")
    p95 = {
        k: float(np.percentile(v, 95)) * 1000 if v else float("inf")
        for k, v in stats.latency.items()
    }
    checks = {
        "review page p95 < 200 ms": p95["page"] < 200,
        "save p95 < 100 ms": p95["save"] < 100,
        "zero errors": not stats.errors,
        "audit events == successful saves": audited == stats.saves,
        "audit chain intact": chain.ok,
    }
    for name, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    if not all(checks.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
