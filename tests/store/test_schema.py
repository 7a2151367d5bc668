import datetime as dt

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from hairtrial._validate import InputError
from hairtrial.store import (
    add_trial,
    current_revision,
    get_or_create_site,
    get_or_create_subject,
    head_revision,
    open_store,
    parse_url,
    upgrade,
)
from hairtrial.store.models import Base, Image, MeasurementRun, Trial

EXPECTED_TABLES = {
    "alembic_version",
    "audit_event",
    "correction",
    "follicle",
    "follicle_observation",
    "hair",
    "image",
    "measurement_run",
    "phototrichogram",
    "review",
    "site",
    "subject",
    "trial",
    "user_account",
    "visit",
}


def test_migration_matches_orm_metadata(store):
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    assert set(inspect(store.engine).get_table_names()) == EXPECTED_TABLES
    assert current_revision(store.engine) == head_revision()


def test_upgrade_is_idempotent_and_open_without_migrate(db_url):
    upgrade(db_url)
    upgrade(db_url)
    with open_store(db_url, migrate=False) as store:
        assert current_revision(store.engine) == head_revision()


def test_open_without_migrate_refuses_an_empty_database(db_url):
    with pytest.raises(InputError, match="not the newest"):
        open_store(db_url, migrate=False)


def test_partial_unique_indexes_exist(store):
    names = {ix["name"] for ix in inspect(store.engine).get_indexes("measurement_run")}
    assert {"uq_measurement_run_done", "uq_measurement_run_open"} <= names


def test_sqlite_pragmas_and_default_image_root(tmp_path):
    url = f"sqlite:///{tmp_path / 'sub' / 'trial.db'}"
    with open_store(url) as store:
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert store.image_root == (tmp_path / "sub" / "images").resolve()


def test_parse_url():
    assert parse_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert parse_url("sqlite:///x.db").drivername == "sqlite"
    with pytest.raises(InputError, match="unsupported backend"):
        parse_url("mysql://u@h/db")
    with pytest.raises(InputError, match="not a database URL"):
        parse_url("not a url")


def test_unreachable_database_is_a_clear_error():
    with pytest.raises(InputError, match="cannot open database"):
        open_store("postgresql+psycopg://postgres@127.0.0.1:1/none")


def test_timestamps_are_utc_aware(store):
    with store.begin() as session:
        trial = add_trial(session=session, name="t")
    assert trial.created_at.tzinfo is not None
    with store.session() as session:
        row = session.get(Trial, trial.id)
        assert row is not None
        assert row.created_at.utcoffset() == dt.timedelta(0)
        naive = dt.datetime(2025, 1, 1)
        row.created_at = naive
        with pytest.raises(Exception, match="no time zone"):
            session.flush()


def test_foreign_keys_and_constraints_enforced(store):
    with store.session() as session:
        session.add(
            Image(
                trial_id=999,
                visit_id=999,
                sha256="0" * 64,
                storage="store",
                stored_path="x",
                source_path="x",
                n_bytes=1,
                um_per_px=5.0,
                width=2,
                height=2,
            )
        )
        with pytest.raises(IntegrityError):
            session.flush()


def test_one_done_run_per_image_version_config(store, tmp_path):
    from hairtrial.store import ingest_manifest
    from tests.store.helpers import write_trial_manifest

    ingest_manifest(url_or_store=store, manifest_path=write_trial_manifest(tmp_path / "m"))
    with store.session() as session:
        image_id = session.scalars(text("SELECT id FROM image ORDER BY id")).first()
        for _ in range(2):
            session.add(
                MeasurementRun(
                    image_id=image_id, package_version="1", config_hash="c", status="done"
                )
            )
        with pytest.raises(IntegrityError):
            session.flush()


def test_site_arm_is_checked_and_never_rewritten(store):
    with store.begin() as session:
        trial = add_trial(session=session, name="t", arms=("a", "b"))
        subject = get_or_create_subject(session=session, trial_id=trial.id, code="S1")
        site = get_or_create_site(session=session, subject_id=subject.id, code="L", arm="a")
        assert not hasattr(site, "arm")
        with pytest.raises(InputError, match="another arm"):
            get_or_create_site(session=session, subject_id=subject.id, code="L", arm="b")
        with pytest.raises(InputError, match="not one of"):
            get_or_create_site(session=session, subject_id=subject.id, code="R", arm="cells")
        again = get_or_create_subject(session=session, trial_id=trial.id, code="S1")
        assert again == subject
    with store.session() as session, pytest.raises(InputError, match="already exists"):
        add_trial(session=session, name="t")


def _downgrade(engine, revision):
    """Downgrade the database of `engine` to `revision` in one transaction."""
    from alembic import command

    from hairtrial.store.engine import _alembic_config

    config = _alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def test_initial_revision_downgrades_cleanly(db_url):
    from hairtrial.store.engine import make_engine

    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        _downgrade(engine, "base")
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    finally:
        engine.dispose()
    upgrade(db_url)
    with open_store(db_url, migrate=False) as store:
        assert set(inspect(store.engine).get_table_names()) == EXPECTED_TABLES


def test_concurrent_first_opens_migrate_once(db_url):
    import threading

    errors = []
    start = threading.Barrier(3)

    def opener():
        try:
            start.wait(timeout=10)
            open_store(db_url).close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    with open_store(db_url, migrate=False) as store:
        assert current_revision(store.engine) == head_revision()


def test_sqlite_migration_is_one_transaction(tmp_path, monkeypatch):
    from alembic.operations import Operations

    url = f"sqlite:///{tmp_path / 'trial.db'}"
    real = Operations.create_table
    calls = []

    def failing_create_table(self, name, *columns, **kw):
        calls.append(name)
        if len(calls) == 4:
            raise RuntimeError("crash (injected)")
        return real(self, name, *columns, **kw)

    monkeypatch.setattr(Operations, "create_table", failing_create_table)
    with pytest.raises(RuntimeError, match="injected"):
        upgrade(url)
    monkeypatch.undo()
    from hairtrial.store import make_engine

    engine = make_engine(url)
    try:
        assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()


def _run_with_hairs(store, tmp_path):
    """Ingest the tiny trial and save one run of 3 hairs (the schema as it stands)."""
    from hairtrial.records import summarize_hairs
    from hairtrial.store import ingest_manifest, save_measurement
    from tests.store.helpers import hairs, write_trial_manifest

    ingest_manifest(url_or_store=store, manifest_path=write_trial_manifest(tmp_path / "m"))
    with store.session() as session:
        image_id = session.scalars(text("SELECT id FROM image ORDER BY id")).first()
        records = hairs(3, seed=1)
        return save_measurement(
            session=session,
            image_id=image_id,
            version="1",
            config_hash="c",
            hairs=records,
            summary=summarize_hairs(records, area_cm2=0.03),
            timings={},
        )


def test_exit_confidence_revision_keeps_stored_hairs(db_url, tmp_path):
    from hairtrial.store.engine import make_engine

    def hair_columns(engine):
        return {c["name"] for c in inspect(engine).get_columns("hair")}

    with open_store(db_url, image_root=tmp_path / "images") as store:
        run_id = _run_with_hairs(store, tmp_path)
        with store.session() as session:
            session.execute(text("UPDATE hair SET exit_confidence = 0.75"))
            session.commit()
            with pytest.raises(IntegrityError):  # the column's check
                session.execute(text("UPDATE hair SET exit_confidence = 1.5"))
                session.flush()
    engine = make_engine(db_url)
    try:
        _downgrade(engine, "0003")
        assert "exit_confidence" not in hair_columns(engine)
        with engine.connect() as connection:
            count = text("SELECT count(*) FROM hair WHERE run_id = :r")
            assert connection.execute(count, {"r": run_id}).scalar() == 3
    finally:
        engine.dispose()
    upgrade(db_url)  # hairs stored before the column existed get NULL
    with open_store(db_url, migrate=False) as store, store.session() as session:
        assert "exit_confidence" in hair_columns(store.engine)
        values = session.execute(text("SELECT exit_confidence FROM hair")).scalars().all()
        assert values == [None, None, None]
