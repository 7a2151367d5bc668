import pytest
from sqlalchemy import select

from hairtrial._validate import InputError
from hairtrial.store.audit import list_events, verify_audit_chain
from hairtrial.store.models import USER_ROLES, User
from hairtrial.store.users import (
    authenticate,
    create_user,
    disable_user,
    get_user_by_name,
    list_users,
)

PASSWORD = "correct horse battery"


def test_roles_match_the_issue():
    assert set(USER_ROLES) == {"admin", "investigator", "assessor", "monitor"}


def test_create_authenticate_disable(store):
    with store.begin() as session:
        user = create_user(session=session, username="ann", password=PASSWORD, role="assessor")
        create_user(session=session, username="inv", password=PASSWORD, role="investigator")
    assert user.blinded
    with store.begin() as session:
        stored = session.scalar(select(User.password_hash).where(User.username == "ann"))
        assert stored.startswith("$argon2id$") and PASSWORD not in stored
        assert authenticate(session=session, username="ann", password=PASSWORD) == user
        assert authenticate(session=session, username="ann", password="wrong password!") is None
        assert authenticate(session=session, username="nobody", password=PASSWORD) is None
        assert not get_user_by_name(session=session, username="inv").blinded
        disable_user(session=session, username="ann", actor="admin")
        assert authenticate(session=session, username="ann", password=PASSWORD) is None
        assert [u.active for u in list_users(session=session)] == [False, True]
        actions = [e.action for e in list_events(session=session)][::-1]
    assert actions == [
        "create", "create", "login", "login_failed", "login_failed", "disable", "login_failed",
    ]  # fmt: skip
    assert verify_audit_chain(store=store).ok


def test_audit_never_holds_the_password(store):
    with store.begin() as session:
        create_user(session=session, username="ann", password=PASSWORD, role="monitor")
        authenticate(session=session, username="ann", password="guess guess guess")
        events = list_events(session=session)
    assert all(PASSWORD not in repr(e) and "guess" not in repr(e) for e in events)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"username": "a b", "role": "admin"}, "username"),
        ({"username": "x", "role": "unblinded"}, "role"),
        ({"username": "x", "role": "admin", "password": "short"}, "password"),
    ],
)
def test_bad_users_are_refused(store, kwargs, match):
    kwargs.setdefault("password", PASSWORD)
    with store.session() as session, pytest.raises(InputError, match=match):
        create_user(session=session, **kwargs)


def test_duplicate_and_unknown(store):
    with store.begin() as session:
        create_user(session=session, username="ann", password=PASSWORD, role="admin")
    with store.session() as session:
        with pytest.raises(InputError, match="already exists"):
            create_user(session=session, username="ann", password=PASSWORD, role="admin")
        with pytest.raises(InputError, match="no user"):
            disable_user(session=session, username="bob")


def test_get_user_reads_the_current_state(store):
    from hairtrial.store.users import get_user

    with store.begin() as session:
        ann = create_user(session=session, username="ann", password=PASSWORD, role="assessor")
    with store.begin() as session:
        assert get_user(session=session, user_id=ann.id) == ann
        assert get_user(session=session, user_id=ann.id + 1000) is None
        disable_user(session=session, username="ann")
        now = get_user(session=session, user_id=ann.id)
        assert now == get_user_by_name(session=session, username="ann")
    assert now is not None and not now.active
