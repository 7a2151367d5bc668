"""Shared dependencies of the routes, declared once.

Database session, settings, the current user, role checks and CSRF protection.

Unauthenticated requests raise :class:`NotAuthenticated` (401 for the API, a redirect to
the login page for pages); a user without the role gets 403. Writes must carry the
session's CSRF token (form field ``csrf_token`` or header ``X-CSRF-Token``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from sqlalchemy.orm import Session

from hairtrial.store import Store
from hairtrial.store.users import UserInfo, get_user
from hairtrial.web.security import (
    CSRF_HEADER,
    SESSION_COOKIE,
    LoginThrottle,
    SessionStore,
    WebSession,
    same_token,
)
from hairtrial.web.settings import Settings


class NotAuthenticated(Exception):
    """No valid session: the app answers 401 (API) or redirects to the login page."""


@dataclass(frozen=True)
class Principal:
    """The logged-in user with their session (for the CSRF token)."""

    user: UserInfo
    session: WebSession
    sid: str

    @property
    def blinded(self) -> bool:
        """Whether arm labels and visit dates must be withheld."""
        return self.user.blinded


async def get_settings_dep(request: Request) -> Settings:
    """Return the app's settings."""
    settings: Settings = request.app.state.settings
    return settings


async def get_store(request: Request) -> Store:
    """Return the app's open store."""
    store: Store = request.app.state.store
    return store


async def get_db(request: Request) -> AsyncIterator[Session]:
    """Yield a database session, closed after the request.

    Opening and closing a session does no I/O of its own (connections are pooled), so
    this runs on the event loop instead of costing a worker-thread hop per request.
    """
    store: Store = request.app.state.store
    with store.session() as session:
        yield session


def get_sessions(request: Request) -> SessionStore:
    """Return the app's server-side session store."""
    sessions: SessionStore = request.app.state.sessions
    return sessions


def get_throttle(request: Request) -> LoginThrottle:
    """Return the app's login throttle."""
    throttle: LoginThrottle = request.app.state.throttle
    return throttle


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
StoreDep = Annotated[Store, Depends(get_store)]
SessionDep = Annotated[Session, Depends(get_db)]


def current_principal(request: Request) -> Principal:
    """Return the logged-in, active user, or raise :class:`NotAuthenticated`.

    Synchronous on purpose (FastAPI runs it in a worker thread): it may wait for a pooled
    database connection, which must never block the event loop.
    """
    sid = request.cookies.get(SESSION_COOKIE)
    sessions: SessionStore = request.app.state.sessions
    web_session = sessions.get(sid)
    if web_session is None or sid is None:
        raise NotAuthenticated
    store: Store = request.app.state.store
    with store.session() as db:
        user = get_user(session=db, user_id=web_session.user_id)
    if user is None or not user.active:
        sessions.drop(sid)
        raise NotAuthenticated
    return Principal(user=user, session=web_session, sid=sid)


CurrentUser = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """Return a dependency that admits only users with one of `roles` (else 403)."""

    async def check(principal: CurrentUser) -> Principal:
        if principal.user.role not in roles:
            raise HTTPException(status_code=403, detail="your role may not do this")
        return principal

    return check


async def csrf_protect(request: Request, principal: CurrentUser) -> Principal:
    """Check the CSRF token of a write (header, or ``csrf_token`` form field); else 403."""
    token = request.headers.get(CSRF_HEADER) or None
    if token is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value: Any = form.get("csrf_token")
        token = value if isinstance(value, str) else None
    if not same_token(token, principal.session.csrf):
        raise HTTPException(status_code=403, detail="missing or wrong CSRF token")
    return principal


#: Everyone logged in may read; these roles may also write reviews.
ALL_ROLES = ("admin", "investigator", "assessor", "monitor")
REVIEWERS = ("admin", "investigator", "assessor")
AUDITORS = ("admin", "monitor")

Reader = Annotated[Principal, Depends(require_roles(*ALL_ROLES))]
Reviewer = Annotated[Principal, Depends(require_roles(*REVIEWERS))]
Auditor = Annotated[Principal, Depends(require_roles(*AUDITORS))]
Admin = Annotated[Principal, Depends(require_roles("admin"))]
Csrf = Annotated[Principal, Depends(csrf_protect)]
