"""Shared dependencies of the routes, declared once.

Database session, settings, the current user, role checks and CSRF protection.

Unauthenticated requests raise :class:`NotAuthenticated` (401 for the API, a redirect to
the login page for pages); a user without the role gets 403. Writes must carry the
session's CSRF token (form field ``csrf_token`` or header ``X-CSRF-Token``). The user
row is read on every request, so a user disabled anywhere is refused at once.

Most routes take a :class:`Principal` (:data:`Reader`, :data:`Reviewer`, :data:`Csrf`...).
The busiest ones (review page, hair load, save) take a :class:`PendingUser` instead and
do the same checks in the worker-thread call that runs their queries
(:func:`run_as_user`): one thread hop per request. Database work runs on a few threads
(:func:`run_db`, :func:`run_as_user`), never on the event loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import anyio
import anyio.to_thread
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

T = TypeVar("T")


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


async def run_db(request: Request, work: Callable[[Session], T], *, may_wait: bool = False) -> T:
    """Run ``work(session)`` in a worker thread, with a session closed when it returns.

    For short reads: they share a few threads (``app.state.db_limiter``) instead of the
    default pool of 40, so the event loop and a handful of threads, not dozens, contend
    for the interpreter lock. The session, and its pooled connection, never outlive the
    call, so no request holds a connection while it waits for a thread; waiting for a
    connection (or for the database) happens in the thread, never on the event loop.

    Parameters
    ----------
    request : Request
        The request (for the app's store and limiter).
    work : callable
        Called with an open session; must not keep it.
    may_wait : bool
        The work may wait for a database lock (a write): it runs on the threads of the
        writes (``app.state.write_limiter``), never taking one of the few threads of the
        short reads (``app.state.db_limiter``).

    Returns
    -------
    object
        What `work` returns.
    """
    store: Store = request.app.state.store

    def call() -> T:
        with store.session() as db:
            return work(db)

    limiter: anyio.CapacityLimiter = (
        request.app.state.write_limiter if may_wait else request.app.state.db_limiter
    )
    return await anyio.to_thread.run_sync(call, limiter=limiter)


def _session_of(request: Request) -> tuple[str, WebSession]:
    """Return the request's live server-side session, or raise :class:`NotAuthenticated`."""
    sid = request.cookies.get(SESSION_COOKIE)
    sessions: SessionStore = request.app.state.sessions
    web_session = sessions.get(sid)
    if web_session is None or sid is None:
        raise NotAuthenticated
    return sid, web_session


def _active_principal(
    request: Request, sid: str, web_session: WebSession, user: UserInfo | None
) -> Principal:
    """Return the principal if `user` (just read) exists and is active, else log out."""
    if user is None or not user.active:
        sessions: SessionStore = request.app.state.sessions
        sessions.drop(sid)
        raise NotAuthenticated
    return Principal(user=user, session=web_session, sid=sid)


def _check_role(principal: Principal, roles: tuple[str, ...]) -> None:
    if principal.user.role not in roles:
        raise HTTPException(status_code=403, detail="your role may not do this")


def _check_csrf(token: str | None, principal: Principal) -> None:
    if not same_token(token, principal.session.csrf):
        raise HTTPException(status_code=403, detail="missing or wrong CSRF token")


async def _csrf_token(request: Request) -> str | None:
    """Return the request's CSRF token: header, or ``csrf_token`` field of a form body."""
    token = request.headers.get(CSRF_HEADER) or None
    if token is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value: Any = form.get("csrf_token")
        token = value if isinstance(value, str) else None
    return token


async def current_principal(request: Request) -> Principal:
    """Return the logged-in, active user, or raise :class:`NotAuthenticated`.

    The user row is read on every request (a user disabled by another process is
    refused at once), in a worker thread (:func:`run_db`): it may wait for a pooled
    database connection, which must never block the event loop.
    """
    sid, web_session = _session_of(request)
    user_id = web_session.user_id
    user = await run_db(request, lambda db: get_user(session=db, user_id=user_id))
    return _active_principal(request, sid, web_session, user)


CurrentUser = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """Return a dependency that admits only users with one of `roles` (else 403)."""

    async def check(principal: CurrentUser) -> Principal:
        _check_role(principal, roles)
        return principal

    return check


async def csrf_protect(request: Request, principal: CurrentUser) -> Principal:
    """Check the CSRF token of a write (header, or ``csrf_token`` form field); else 403."""
    _check_csrf(await _csrf_token(request), principal)
    return principal


@dataclass(frozen=True)
class PendingUser:
    """A request's live server-side session, found in memory; its user not read yet.

    For the busiest routes, whose work is one database call: :func:`run_as_user` reads
    and checks the user (active, then role) in the same worker-thread call as the
    route's own queries, so a request costs one thread hop instead of two. It is the
    only way to get the :class:`Principal` out of it.
    """

    sid: str
    session: WebSession
    roles: tuple[str, ...]


def pending_user(*roles: str, write: bool = False) -> Callable[..., Awaitable[PendingUser]]:
    """Return a dependency giving the :class:`PendingUser` of a user with one of `roles`.

    Without a live session it answers 401 at once and, with `write`, without the
    session's CSRF token 403 at once (the token is kept with the session in memory);
    :func:`run_as_user` then refuses a missing or disabled user (401) or another role
    (403), as :data:`Reader`, :data:`Reviewer` and :data:`Csrf` do.
    """

    async def pending(request: Request) -> PendingUser:
        sid, web_session = _session_of(request)
        if write and not same_token(await _csrf_token(request), web_session.csrf):
            raise HTTPException(status_code=403, detail="missing or wrong CSRF token")
        return PendingUser(sid=sid, session=web_session, roles=roles)

    return pending


async def run_as_user(
    request: Request,
    pending: PendingUser,
    work: Callable[[Session, Principal], T],
    *,
    may_wait: bool = False,
) -> T:
    """Check the user of `pending`, then run ``work(session, principal)``, in one thread.

    Parameters
    ----------
    request : Request
        The request (for the app's store, sessions and limiter).
    pending : PendingUser
        From a :func:`pending_user` dependency.
    work : callable
        Called with an open session (closed when it returns) and the checked principal.
    may_wait : bool
        The work may wait for a database lock (a write): see :func:`run_db`.

    Returns
    -------
    object
        What `work` returns.
    """

    def checked(db: Session) -> T:
        user = get_user(session=db, user_id=pending.session.user_id)
        principal = _active_principal(request, pending.sid, pending.session, user)
        _check_role(principal, pending.roles)
        return work(db, principal)

    return await run_db(request, checked, may_wait=may_wait)


#: Everyone logged in may read; these roles may also write reviews.
ALL_ROLES = ("admin", "investigator", "assessor", "monitor")
REVIEWERS = ("admin", "investigator", "assessor")
AUDITORS = ("admin", "monitor")

Reader = Annotated[Principal, Depends(require_roles(*ALL_ROLES))]
Reviewer = Annotated[Principal, Depends(require_roles(*REVIEWERS))]
Auditor = Annotated[Principal, Depends(require_roles(*AUDITORS))]
Admin = Annotated[Principal, Depends(require_roles("admin"))]
Csrf = Annotated[Principal, Depends(csrf_protect)]
#: The same roles (and, for writes, the CSRF token), for :func:`run_as_user`.
PendingReader = Annotated[PendingUser, Depends(pending_user(*ALL_ROLES))]
PendingReviewerWrite = Annotated[PendingUser, Depends(pending_user(*REVIEWERS, write=True))]
