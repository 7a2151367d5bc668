"""User administration (admin only): list, add, disable; all audited by the store."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from hairtrial._validate import InputError
from hairtrial.store.users import UserInfo, create_user, disable_user, list_users
from hairtrial.web.deps import Admin, Csrf, SessionDep, get_sessions
from hairtrial.web.routes import render
from hairtrial.web.schemas import UserCreate, UserPublic

router = APIRouter(tags=["users"])


def _public(u: UserInfo) -> UserPublic:
    return UserPublic(
        id=u.id, username=u.username, display_name=u.display_name, role=u.role,  # type: ignore[arg-type]
        active=u.active, created_at=u.created_at,
    )  # fmt: skip


def _create(body: UserCreate, principal: Admin, db: SessionDep) -> UserPublic:
    try:
        user = create_user(
            session=db, username=body.username, password=body.password, role=body.role,
            display_name=body.display_name, actor=principal.user.username,
            actor_id=principal.user.id,
        )  # fmt: skip
        db.commit()
    except InputError as exc:
        db.rollback()
        raise HTTPException(status_code=422, detail=str(exc)) from None
    return _public(user)


@router.get("/api/users", response_model=list[UserPublic])
def users(principal: Admin, db: SessionDep) -> list[UserPublic]:
    """Return all users."""
    return [_public(u) for u in list_users(session=db)]


@router.post("/api/users", response_model=UserPublic, status_code=201)
def add_user(body: UserCreate, principal: Admin, csrf: Csrf, db: SessionDep) -> UserPublic:
    """Add a user."""
    return _create(body, principal, db)


@router.post("/api/users/{username}/disable", response_model=UserPublic)
def disable(
    request: Request, username: str, principal: Admin, csrf: Csrf, db: SessionDep
) -> UserPublic:
    """Disable a user and end their sessions."""
    if username == principal.user.username:
        raise HTTPException(status_code=422, detail="you cannot disable yourself")
    try:
        user = disable_user(
            session=db, username=username, actor=principal.user.username,
            actor_id=principal.user.id,
        )  # fmt: skip
        db.commit()
    except InputError as exc:
        db.rollback()
        raise HTTPException(status_code=404, detail=str(exc)) from None
    get_sessions(request).drop_user(user.id)
    return _public(user)


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request, principal: Admin, db: SessionDep) -> Response:
    """Show the users page."""
    return render(request, "users.html", principal, users=list_users(session=db), error=None)


@router.post("/users", response_class=HTMLResponse)
def users_form(
    request: Request,
    principal: Admin,
    csrf: Csrf,
    db: SessionDep,
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1000)],
    role: Annotated[str, Form(max_length=50)],
    display_name: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    """Add a user from the form."""
    try:
        body = UserCreate(
            username=username, password=password, role=role,  # type: ignore[arg-type]
            display_name=display_name or None,
        )  # fmt: skip
        _create(body, principal, db)
    except (ValidationError, HTTPException) as exc:
        message = exc.detail if isinstance(exc, HTTPException) else "invalid user fields"
        response = render(
            request, "users.html", principal, users=list_users(session=db), error=message
        )
        response.status_code = 422
        return response
    return RedirectResponse("/users", status_code=303)
