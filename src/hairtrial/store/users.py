"""Web-app users: roles, argon2 password hashes, disabling; every change audited.

Roles (:data:`hairtrial.store.models.USER_ROLES`): ``admin`` (users, trials, unblinding),
``investigator`` (sees arms), ``assessor`` (blinded: never receives arm labels or visit
dates) and ``monitor`` (read-only, audit trail). Users are never deleted, only disabled,
so every audit event keeps its author. Passwords are stored as argon2id hashes
(argon2-cffi); a plain password never reaches the database or the audit trail.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session

from hairtrial._validate import InputError, check_choice
from hairtrial.store.audit import append_event
from hairtrial.store.models import UNBLINDED_ROLES, USER_ROLES, User

#: Shortest password accepted.
MIN_PASSWORD_LENGTH = 10


@dataclass(frozen=True)
class UserInfo:
    """A user as returned by the data functions (never the password hash)."""

    id: int
    username: str
    display_name: str | None
    role: str
    active: bool
    created_at: dt.datetime

    @property
    def blinded(self) -> bool:
        """Whether this user must never see arm labels or visit dates."""
        return self.role not in UNBLINDED_ROLES


@cache
def _hasher() -> Any:
    from argon2 import PasswordHasher

    return PasswordHasher()


@cache
def _dummy_hash() -> str:
    # Verified against when the user is unknown, so a wrong user name costs as much
    # time as a wrong password (no user-name oracle by timing).
    return str(_hasher().hash("not a real password, only for timing"))


def hash_password(password: str) -> str:
    """Return the argon2id hash of `password` (at least :data:`MIN_PASSWORD_LENGTH`)."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise InputError(f"password: must be at least {MIN_PASSWORD_LENGTH} characters")
    return str(_hasher().hash(password))


def _verify(stored: str | None, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return bool(_hasher().verify(stored or _dummy_hash(), password)) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def _info(row: Any) -> UserInfo:
    # `row`: a User, or a row of its columns.
    return UserInfo(
        id=row.id,
        username=row.username,
        display_name=row.display_name,
        role=row.role,
        active=row.active,
        created_at=row.created_at,
    )


def _public(row: User) -> dict[str, Any]:
    return {
        "username": row.username,
        "display_name": row.display_name,
        "role": row.role,
        "active": row.active,
    }


def _check_username(username: str) -> str:
    name = str(username).strip()
    if not name or len(name) > 100 or any(c.isspace() or not c.isprintable() for c in name):
        raise InputError(f"username: expected 1–100 characters without spaces, got {username!r}")
    return name


def create_user(
    *,
    session: Session,
    username: str,
    password: str,
    role: str,
    display_name: str | None = None,
    actor: str = "cli",
    actor_id: int | None = None,
) -> UserInfo:
    """Add a user with an argon2 password hash; audited as ``create``.

    Parameters
    ----------
    session : Session
        Open session (flushed, not committed).
    username : str
        Unique login name, no spaces.
    password : str
        Plain password, at least :data:`MIN_PASSWORD_LENGTH` characters; only its hash
        is stored.
    role : {'admin', 'investigator', 'assessor', 'monitor'}
        The user's role.
    display_name : str, optional
        Name shown in pages.
    actor : str
        Who adds the user (a user name, or ``"cli"``).
    actor_id : int, optional
        User row id of the actor.

    Returns
    -------
    UserInfo

    Raises
    ------
    InputError
        If the name is taken or malformed, the role unknown or the password too short.
    """
    name = _check_username(username)
    role = check_choice(role, name="role", choices=USER_ROLES)
    if display_name is not None and "\x00" in display_name:
        raise InputError("display_name: must not contain NUL characters")
    if session.scalar(select(User.id).where(User.username == name)) is not None:
        raise InputError(f"username: {name!r} already exists")
    row = User(
        username=name,
        display_name=display_name,
        role=role,
        password_hash=hash_password(password),
        active=True,
    )
    session.add(row)
    session.flush()
    append_event(
        session=session,
        actor=actor,
        user_id=actor_id,
        action="create",
        entity="user_account",
        entity_id=row.id,
        after=_public(row),
    )
    return _info(row)


def get_user(*, session: Session, user_id: int) -> UserInfo | None:
    """Return the user with row id `user_id`, or ``None`` (one light query, no ORM object).

    The web app calls this on every request to check that the user is still active.
    """
    row = session.execute(_user_query(), {"user_id": user_id}).first()
    return None if row is None else _info(row)


@cache
def _user_query() -> Select[int, str, str | None, str, bool, dt.datetime]:
    # Built once (building a statement costs about as much as running it on SQLite).
    columns = (User.id, User.username, User.display_name, User.role, User.active, User.created_at)
    return select(*columns).where(User.id == bindparam("user_id"))


def _by_name(session: Session, username: str) -> User | None:
    name = str(username).strip()
    if not name or "\x00" in name:  # no stored name holds NUL (PostgreSQL refuses it)
        return None
    return session.scalar(select(User).where(User.username == name))


def get_user_by_name(*, session: Session, username: str) -> UserInfo | None:
    """Return the user called `username`, or ``None``."""
    row = _by_name(session, username)
    return None if row is None else _info(row)


def list_users(*, session: Session) -> list[UserInfo]:
    """Return all users (disabled ones too), by user name."""
    return [_info(u) for u in session.scalars(select(User).order_by(User.username))]


def authenticate(
    *, session: Session, username: str, password: str, audit: bool = True
) -> UserInfo | None:
    """Check a user name and password; return the active user, or ``None``.

    Unknown users, disabled users and wrong passwords all return ``None`` after the same
    argon2 work. With `audit`, the attempt is appended to the audit trail (``login`` or
    ``login_failed``; the password is never recorded).

    Parameters
    ----------
    session : Session
        Open session (flushed, not committed).
    username, password : str
        Credentials as typed.
    audit : bool
        Record the attempt.

    Returns
    -------
    UserInfo or None
    """
    name = str(username).strip()[:100]
    row = _by_name(session, name)
    ok = _verify(None if row is None else row.password_hash, str(password))
    ok = ok and row is not None and row.active
    if audit:
        append_event(
            session=session,
            actor=name or "(empty)",
            user_id=row.id if ok and row is not None else None,
            action="login" if ok else "login_failed",
            entity="user_account",
            entity_id=None if row is None else row.id,
        )
    return _info(row) if ok and row is not None else None


def disable_user(
    *, session: Session, username: str, actor: str = "cli", actor_id: int | None = None
) -> UserInfo:
    """Disable a user (users are never deleted); audited as ``disable``.

    Parameters
    ----------
    session : Session
        Open session (flushed, not committed).
    username : str
        User to disable.
    actor : str
        Who disables the user.
    actor_id : int, optional
        User row id of the actor.

    Returns
    -------
    UserInfo
        The disabled user.

    Raises
    ------
    InputError
        If there is no such user.
    """
    row = _by_name(session, username)
    if row is None:
        raise InputError(f"username: no user {username!r}")
    before = _public(row)
    row.active = False
    session.flush()
    append_event(
        session=session,
        actor=actor,
        user_id=actor_id,
        action="disable",
        entity="user_account",
        entity_id=row.id,
        before=before,
        after=_public(row),
    )
    return _info(row)
