"""The append-only audit trail: one function appends, one verifies the hash chain.

Every create, change, approval, unblinding and login goes through :func:`append_event`,
which adds one ``audit_event`` row whose SHA-256 ``hash`` covers the canonical JSON of the
event (id, time, who, what, entity, detail, before, after) and the previous event's hash.
Appenders are serialised so the chain never forks: on PostgreSQL by a transaction-scoped
advisory lock, on SQLite by the database write lock (``BEGIN IMMEDIATE``); a unique
constraint on ``prev_hash`` is the last line of defence. No code path updates or deletes
audit rows, and on PostgreSQL a trigger (migration 0002) refuses UPDATE and DELETE.

:func:`verify_audit_chain` recomputes the chain and reports the first broken link, so an
edited, deleted or reordered event is found. (Removing the newest events leaves a valid
shorter chain; compare the count and head hash with a copy kept elsewhere to detect it.)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from hairtrial._validate import InputError
from hairtrial.store.engine import Store
from hairtrial.store.models import GENESIS_HASH, AuditEvent, Base, utcnow

#: PostgreSQL advisory lock key serialising audit appenders ("hairA").
_AUDIT_LOCK = 0x6861697241
#: The newest event (id and hash), built once.
_CHAIN_HEAD = select(AuditEvent.id, AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)
_INSERT_EVENT = insert(Base.metadata.tables["audit_event"])


@dataclass(frozen=True)
class AuditRecord:
    """One audit event as returned by the data functions (times in UTC)."""

    id: int
    at: dt.datetime
    user_id: int | None
    actor: str
    action: str
    entity: str
    entity_id: str | None
    detail: dict[str, Any] | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class ChainReport:
    """Result of :func:`verify_audit_chain`.

    Parameters
    ----------
    ok : bool
        Every event's hash and link check out.
    n_events : int
        Events read.
    head_hash : str
        Hash of the newest event (the genesis value for an empty chain).
    broken_id : int or None
        Id of the first event whose stored hash, recomputed hash or link is wrong.
    problem : str or None
        What is wrong with it.
    """

    ok: bool
    n_events: int
    head_hash: str
    broken_id: int | None = None
    problem: str | None = None


def _jsonable(value: Any, *, name: str) -> Any:
    if value is None:
        return None
    try:
        return json.loads(json.dumps(value, default=str, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name}: not JSON-serialisable ({exc})") from None


def _iso(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat(timespec="microseconds")


def event_hash(
    *,
    id: int,
    at: dt.datetime,
    user_id: int | None,
    actor: str,
    action: str,
    entity: str,
    entity_id: str | None,
    detail: Any,
    before: Any,
    after: Any,
    prev_hash: str,
) -> str:
    """Return the SHA-256 hex digest of an event's canonical JSON.

    The canonical form is ``json.dumps`` with sorted keys, no spaces and UTF-8, of all
    fields plus `prev_hash`; `at` is written as ISO 8601 UTC with microseconds.

    Returns
    -------
    str
        64 hex digits.
    """
    body = {
        "id": int(id),
        "at": _iso(at),
        "user_id": user_id,
        "actor": actor,
        "action": action,
        "entity": entity,
        "entity_id": entity_id,
        "detail": detail,
        "before": before,
        "after": after,
        "prev_hash": prev_hash,
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _lock_chain(session: Session) -> None:
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_AUDIT_LOCK})")
        return
    dbapi = connection.connection.dbapi_connection
    if dbapi is not None and not dbapi.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def append_event(
    *,
    session: Session,
    actor: str,
    action: str,
    entity: str,
    entity_id: str | int | None = None,
    detail: Mapping[str, Any] | None = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    user_id: int | None = None,
) -> AuditRecord:
    """Append one event to the audit chain (flushed in the caller's transaction).

    The chain head is locked until the caller's transaction ends, so commit soon.

    Parameters
    ----------
    session : Session
        Open session; the event commits or rolls back with the caller's changes.
    actor : str
        Who acted: a user name, or a process such as ``"ingest"``.
    action : str
        What was done (``"create"``, ``"revise"``, ``"approve"``, ``"login"``...).
    entity : str
        Kind of thing acted on (table name).
    entity_id : str or int, optional
        Which one.
    detail, before, after : mapping, optional
        JSON-serialisable details, and the entity's state before and after the change.
    user_id : int, optional
        Web-app user row id, when a user acted.

    Returns
    -------
    AuditRecord
    """
    if not str(actor).strip():
        raise InputError("actor: must not be empty")
    # PostgreSQL text cannot hold NUL: a NUL typed into a login form is kept visibly.
    actor = str(actor).replace("\x00", "\ufffd")
    if session.new or session.dirty or session.deleted:
        session.flush()  # the caller's pending rows go first, as the event may refer to them
    _lock_chain(session)
    # Plain SQL statements on the session's connection (same transaction): appends are
    # on every save's critical path, and the ORM unit of work adds nothing here.
    connection = session.connection()
    head = connection.execute(_CHAIN_HEAD).first()
    prev_hash = GENESIS_HASH if head is None else head.hash
    new_id = 1 if head is None else head.id + 1
    fields: dict[str, Any] = {
        "id": new_id,
        "at": utcnow(),
        "user_id": user_id,
        "actor": str(actor),
        "action": str(action),
        "entity": str(entity),
        "entity_id": None if entity_id is None else str(entity_id),
        "detail": _jsonable(None if detail is None else dict(detail), name="detail"),
        "before": _jsonable(None if before is None else dict(before), name="before"),
        "after": _jsonable(None if after is None else dict(after), name="after"),
        "prev_hash": prev_hash,
    }
    digest = event_hash(**fields)
    connection.execute(_INSERT_EVENT, {**fields, "hash": digest})
    return AuditRecord(**fields, hash=digest)


def _record(row: AuditEvent) -> AuditRecord:
    return AuditRecord(
        id=row.id,
        at=row.at,
        user_id=row.user_id,
        actor=row.actor,
        action=row.action,
        entity=row.entity,
        entity_id=row.entity_id,
        detail=row.detail,
        before=row.before,
        after=row.after,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def list_events(
    *,
    session: Session,
    entity: str | None = None,
    entity_id: str | int | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[AuditRecord]:
    """Return audit events, newest first, optionally of one entity.

    Parameters
    ----------
    session : Session
        Open session.
    entity : str, optional
        Only events on this kind of entity.
    entity_id : str or int, optional
        Only events on this entity (with `entity`).
    limit, offset : int
        Page of results.

    Returns
    -------
    list of AuditRecord
    """
    query = select(AuditEvent).order_by(AuditEvent.id.desc())
    if entity is not None:
        query = query.where(AuditEvent.entity == entity)
    if entity_id is not None:
        query = query.where(AuditEvent.entity_id == str(entity_id))
    query = query.limit(max(0, int(limit))).offset(max(0, int(offset)))
    return [_record(row) for row in session.scalars(query)]


def count_events(*, session: Session, action: str | None = None) -> int:
    """Return the number of audit events (of one `action`, if given)."""
    query = select(func.count()).select_from(AuditEvent)
    if action is not None:
        query = query.where(AuditEvent.action == action)
    return int(session.scalar(query) or 0)


def verify_audit_chain(*, store: Store, chunk: int = 5000) -> ChainReport:
    """Recompute the audit chain and report the first broken link.

    An event is broken when its ``prev_hash`` is not the previous event's hash (an event
    deleted, inserted or reordered before it) or its stored hash differs from the hash
    recomputed from its fields, id included (an edited or renumbered event).

    Parameters
    ----------
    store : Store
        Open trial database.
    chunk : int
        Events read per query (bounded memory).

    Returns
    -------
    ChainReport
    """
    prev_hash = GENESIS_HASH
    prev_id = 0
    n = 0
    with store.session() as session:
        while True:
            rows = session.scalars(
                select(AuditEvent)
                .where(AuditEvent.id > prev_id)
                .order_by(AuditEvent.id)
                .limit(chunk)
            ).all()
            if not rows:
                break
            for row in rows:
                problem = None
                if row.prev_hash != prev_hash:
                    problem = (
                        "prev_hash does not match the previous event's hash: an event "
                        "before it was deleted, inserted or moved"
                    )
                else:
                    fields = _record(row).__dict__.copy()
                    stored = fields.pop("hash")
                    if event_hash(**fields) != stored:
                        problem = "hash does not match the event's content: it was edited"
                if problem is not None:
                    return ChainReport(
                        ok=False, n_events=n, head_hash=prev_hash, broken_id=row.id, problem=problem
                    )
                prev_hash, prev_id = row.hash, row.id
                n += 1
            session.expunge_all()
    return ChainReport(ok=True, n_events=n, head_hash=prev_hash)
