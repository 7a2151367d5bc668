import datetime as dt
import hashlib
import itertools
import json

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from hairtrial._validate import InputError
from hairtrial.store import record_event
from hairtrial.store.audit import (
    append_event,
    count_events,
    event_hash,
    list_events,
    verify_audit_chain,
)
from hairtrial.store.models import GENESIS_HASH


def _append(store, n):
    with store.begin() as session:
        for i in range(n):
            append_event(
                session=session,
                actor="alice",
                action="edit",
                entity="thing",
                entity_id=i,
                before={"v": i},
                after={"v": i + 1, "note": "ünïcode"},
            )


def test_hash_is_sha256_of_canonical_json():
    at = dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC)
    fields = dict(
        id=7, at=at, user_id=None, actor="a", action="b", entity="c", entity_id="1",
        detail={"z": 1, "a": [1.5]}, before=None, after={"x": "é"}, prev_hash="f" * 64,
    )  # fmt: skip
    expected = hashlib.sha256(
        (
            '{"action":"b","actor":"a","after":{"x":"é"},"at":"2026-01-02T03:04:05.000006+00:00",'
            '"before":null,"detail":{"a":[1.5],"z":1},"entity":"c","entity_id":"1","id":7,'
            f'"prev_hash":"{"f" * 64}","user_id":null}}'
        ).encode()
    ).hexdigest()
    assert event_hash(**fields) == expected
    assert event_hash(**{**fields, "actor": "mallory"}) != expected


def test_chain_links_and_verifies(store):
    _append(store, 4)
    with store.session() as session:
        record_event(session=session, actor="ingest", action="ingest", entity="image", entity_id=9)
        session.commit()
        events = list_events(session=session)
        assert count_events(session=session) == 5
        assert count_events(session=session, action="edit") == 4
    events = events[::-1]
    assert events[0].prev_hash == GENESIS_HASH
    for prev, cur in itertools.pairwise(events):
        assert cur.prev_hash == prev.hash and cur.id == prev.id + 1
    report = verify_audit_chain(store=store)
    assert report.ok and report.n_events == 5 and report.head_hash == events[-1].hash
    assert events[1].after == {"v": 2, "note": "ünïcode"}


def test_empty_chain_is_valid(store):
    report = verify_audit_chain(store=store)
    assert report.ok and report.n_events == 0 and report.head_hash == GENESIS_HASH


def test_bad_input_is_refused(store):
    with store.session() as session, pytest.raises(InputError, match="actor"):
        append_event(session=session, actor=" ", action="x", entity="y")
    with store.session() as session, pytest.raises(InputError, match="detail"):
        append_event(session=session, actor="a", action="x", entity="y", detail={"f": float("nan")})


@pytest.mark.parametrize(
    "tamper, problem",
    [
        ("UPDATE audit_event SET actor = 'mallory' WHERE id = 2", "edited"),
        ("UPDATE audit_event SET after = '{\"v\": 99}' WHERE id = 3", "edited"),
        ("DELETE FROM audit_event WHERE id = 2", "deleted"),
        ("UPDATE audit_event SET id = 10 WHERE id = 2", "moved"),
    ],
)
def test_tampering_is_detected_on_sqlite(tmp_path, tamper, problem):
    from hairtrial.store import open_store

    with open_store(f"sqlite:///{tmp_path / 't.db'}") as store:
        _append(store, 4)
        assert verify_audit_chain(store=store).ok
        with store.engine.begin() as connection:
            connection.execute(text(tamper))
        report = verify_audit_chain(store=store)
        assert not report.ok and report.broken_id in (2, 3) and problem in report.problem


def test_swapped_events_are_detected(tmp_path):
    from hairtrial.store import open_store

    with open_store(f"sqlite:///{tmp_path / 't.db'}") as store:
        _append(store, 3)
        with store.engine.begin() as connection:
            # Swap the content of events 2 and 3, hashes included: a reordering.
            connection.execute(text("UPDATE audit_event SET id = 100 WHERE id = 2"))
            connection.execute(text("UPDATE audit_event SET id = 2 WHERE id = 3"))
            connection.execute(text("UPDATE audit_event SET id = 3 WHERE id = 100"))
        report = verify_audit_chain(store=store)
        assert not report.ok and report.broken_id == 2


def test_postgres_trigger_refuses_update_and_delete(postgres_url):
    from hairtrial.store import open_store

    with open_store(postgres_url) as store:
        _append(store, 2)
        for sql in (
            "UPDATE audit_event SET actor = 'mallory' WHERE id = 1",
            "DELETE FROM audit_event WHERE id = 2",
            "TRUNCATE audit_event",
        ):
            with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as c:
                c.execute(text(sql))
        assert verify_audit_chain(store=store).ok


def test_concurrent_appenders_never_fork(db_url, tmp_path):
    import threading

    from hairtrial.store import open_store

    with open_store(db_url) as store:
        errors = []

        def work():
            try:
                _append(store, 5)
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        report = verify_audit_chain(store=store)
        assert report.ok and report.n_events == 20


def test_detail_is_json_roundtripped(store):
    with store.begin() as session:
        rec = append_event(session=session, actor="a", action="x", entity="y", detail={"t": (1, 2)})
    assert rec.detail == {"t": [1, 2]}
    assert json.dumps(rec.detail)
    assert verify_audit_chain(store=store).ok


def test_migration_0002_chains_events_written_before_it(db_url):
    from hairtrial.store import open_store, upgrade
    from hairtrial.store.engine import make_engine

    upgrade(db_url, revision="0001")
    engine = make_engine(db_url)
    try:
        naive = engine.dialect.name == "sqlite"  # SQLite stores UTC without an offset
        with engine.begin() as connection:
            for i in range(3):
                at = dt.datetime(2026, 1, 1, 12, i, tzinfo=dt.UTC)
                connection.execute(
                    text(
                        "INSERT INTO audit_event (at, actor, action, entity, entity_id, detail) "
                        "VALUES (:at, 'ingest', 'ingest', 'image', :i, :detail)"
                    ),
                    {
                        "at": at.replace(tzinfo=None) if naive else at,
                        "i": str(i),
                        "detail": json.dumps({"n": i}),
                    },
                )
    finally:
        engine.dispose()
    with open_store(db_url) as store:
        report = verify_audit_chain(store=store)
        assert report.ok and report.n_events == 3
        with store.begin() as session:
            append_event(session=session, actor="a", action="x", entity="y")
            assert [e.detail for e in list_events(session=session)][1:] == [
                {"n": 2}, {"n": 1}, {"n": 0},
            ]  # fmt: skip
        assert verify_audit_chain(store=store).n_events == 4


def test_append_writes_the_callers_pending_rows_first(store):
    from hairtrial.store.models import User

    with store.begin() as session:
        user = User(username="pending", role="monitor", active=True)
        session.add(user)  # not flushed by the caller
        record = append_event(session=session, actor="cli", action="create", entity="user_account")
        assert user.id is not None  # flushed before the event, as the ORM flush did
        second = append_event(
            session=session, actor="cli", action="edit", entity="user_account",
            entity_id=user.id, user_id=user.id,
        )  # fmt: skip
    assert second.prev_hash == record.hash and second.id == record.id + 1
    with store.session() as session:
        assert [e.id for e in list_events(session=session)] == [second.id, record.id]
    assert verify_audit_chain(store=store).ok
