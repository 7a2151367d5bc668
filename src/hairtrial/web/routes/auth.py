"""Login and logout: argon2 passwords, a fresh session id at login, rate limiting."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hairtrial.store.users import authenticate
from hairtrial.web.deps import Csrf, SettingsDep, StoreDep, get_sessions, get_throttle
from hairtrial.web.routes import render
from hairtrial.web.security import LOGIN_COOKIE, SESSION_COOKIE, new_token, same_token

router = APIRouter(tags=["auth"])


def _login_page(request: Request, secure: bool, error: str | None, status: int) -> Response:
    token = new_token()
    response = render(request, "login.html", None, login_csrf=token, error=error)
    response.status_code = status
    response.set_cookie(
        LOGIN_COOKIE, token, httponly=True, samesite="strict", secure=secure, path="/login"
    )
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, settings: SettingsDep) -> Response:
    """Show the login page."""
    return _login_page(request, settings.cookie_secure, None, 200)


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    settings: SettingsDep,
    store: StoreDep,
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1000)],
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Check the credentials; on success start a new session and go to the dashboard."""
    if not same_token(csrf_token, request.cookies.get(LOGIN_COOKIE)):
        return _login_page(request, settings.cookie_secure, "Form expired; try again.", 403)
    throttle = get_throttle(request)
    client = request.client.host if request.client else "unknown"
    keys = (f"user:{username.strip().lower()}", f"client:{client}")
    if throttle.blocked(*keys):
        return _login_page(
            request, settings.cookie_secure, "Too many failed logins; wait and retry.", 429
        )
    with store.begin() as db:
        user = authenticate(session=db, username=username, password=password)
    if user is None:
        throttle.failed(*keys)
        return _login_page(request, settings.cookie_secure, "Wrong user name or password.", 401)
    throttle.succeeded(keys[0])
    sessions = get_sessions(request)
    sessions.drop(request.cookies.get(SESSION_COOKIE))  # never reuse a pre-login session id
    sid, _ = sessions.create(user.id)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        sid,
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
        max_age=int(settings.session_ttl_s),
        path="/",
    )
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, principal: Csrf, store: StoreDep) -> Response:
    """End the session (audited) and go to the login page."""
    from hairtrial.store.audit import append_event

    get_sessions(request).drop(principal.sid)
    with store.begin() as db:
        append_event(
            session=db,
            actor=principal.user.username,
            user_id=principal.user.id,
            action="logout",
            entity="user_account",
            entity_id=principal.user.id,
        )
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
