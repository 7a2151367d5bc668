"""The app factory: :func:`create_app` wires settings, the store, sessions and routers."""

from __future__ import annotations

import gc
import threading
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.datastructures import MutableHeaders

from hairtrial._validate import InputError
from hairtrial.store import Store, open_store
from hairtrial.web.cache import AutomaticHairsCache
from hairtrial.web.deps import NotAuthenticated, Reader
from hairtrial.web.security import LoginThrottle, SessionStore
from hairtrial.web.settings import Settings, get_settings

HERE = Path(__file__).parent
_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


#: Seconds an idle keep-alive connection stays open.
_KEEP_ALIVE_S = 30
#: Worker threads for short database reads (deps.run_db): the work holds the interpreter
#: lock most of the time, so more threads only add contention.
_DB_THREADS = 4
#: Worker threads for review saves: they queue on one write lock anyway, so two suffice
#: (one writing, one preparing the next); a save waiting for a database lock held by
#: another process never holds up the reads.
_WRITE_THREADS = 2


class _SecurityHeaders:
    """Pure ASGI middleware adding CSP, anti-framing and no-store headers to responses."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope.get("path", "").startswith("/static/")

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", _CSP)
                headers["X-Content-Type-Options"] = "nosniff"
                headers["X-Frame-Options"] = "DENY"
                headers["Referrer-Policy"] = "no-referrer"
                if not static:
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)


def templates() -> Jinja2Templates:
    """Return the Jinja2 templates (autoescape on for HTML)."""
    return Jinja2Templates(directory=str(HERE / "templates"))


def create_app(settings: Settings | None = None, *, store: Store | None = None) -> FastAPI:
    """Build the web app.

    Parameters
    ----------
    settings : Settings, optional
        Settings; default :func:`get_settings` (environment variables).
    store : Store, optional
        Open store to use (default: opened, and migrated, from ``settings.db_url``; it
        is closed with the app).

    Returns
    -------
    FastAPI
    """
    from hairtrial.web.routes import (
        agreement,
        audit,
        auth,
        dashboard,
        images,
        review,
        unblinding,
        users,
    )

    settings = settings or get_settings()
    own_store = store is None
    opened = store or open_store(settings.db_url, image_root=settings.image_root)
    app = FastAPI(
        title="hairtrial review",
        version="1",
        debug=settings.debug,
        # The spec is served below to logged-in users only; no docs UI (it would load
        # scripts from a CDN).
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.store = opened
    app.state.sessions = SessionStore(ttl_s=settings.session_ttl_s)
    app.state.throttle = LoginThrottle(
        max_failures=settings.login_max_failures, window_s=settings.login_window_s
    )
    app.state.templates = templates()
    # Serialises the review saves of this process (see routes.review.create_revision).
    app.state.write_lock = threading.Lock()
    # Threads for the short reads of deps.run_db and for the saves (deps.run_as_user).
    app.state.db_limiter = anyio.CapacityLimiter(_DB_THREADS)
    app.state.write_limiter = anyio.CapacityLimiter(_WRITE_THREADS)
    # Done runs' hairs never change: kept in memory for the hair loads and saves.
    app.state.hairs_cache = AutomaticHairsCache()
    if own_store:
        app.router.on_shutdown.append(opened.close)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    for module in (auth, dashboard, review, images, agreement, audit, users, unblinding):
        app.include_router(module.router)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi_spec(principal: Reader) -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.exception_handler(NotAuthenticated)
    async def _not_authenticated(request: Request, exc: NotAuthenticated) -> Response:
        path = request.url.path
        if path.startswith("/api/") or path == "/openapi.json" or request.method != "GET":
            return JSONResponse({"detail": "not logged in"}, status_code=401)
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(InputError)
    async def _input_error(request: Request, exc: InputError) -> Response:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    app.add_middleware(_SecurityHeaders)

    return app


def serve(settings: Settings, *, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the app under uvicorn until interrupted (one process: sessions live in memory).

    Parameters
    ----------
    settings : Settings
        App settings (database URL, secret key...).
    host : str
        Address to listen on; the default serves loopback only.
    port : int
        TCP port.
    """
    import uvicorn

    app = create_app(settings)
    # What the imports, the app and the migrations leave behind lives as long as the
    # process. A full collection of the cyclic garbage collector traverses all of it with
    # the interpreter lock held (measured: ~130 ms, about every 1.5 s with 50 reviewers),
    # stalling every request; frozen, it is left out of collections. Newer garbage is
    # still collected as usual.
    gc.collect()
    gc.freeze()
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="info" if settings.debug else "warning",
        proxy_headers=False,
        # Reviewers pause between actions; uvicorn's 5 s default closes idle keep-alive
        # connections while a browser may already be reusing them.
        timeout_keep_alive=_KEEP_ALIVE_S,
    )
