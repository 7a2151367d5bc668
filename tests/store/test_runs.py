import datetime as dt
import threading

import pytest
from sqlalchemy import func, select, update

from hairtrial._validate import InputError
from hairtrial.records import summarize_hairs
from hairtrial.store import (
    LeaseLostError,
    claim_pending_images,
    enqueue_runs,
    ingest_manifest,
    mark_failed,
    read_stored_image,
    run_status,
    save_measurement,
)
from hairtrial.store import runs as runs_module
from hairtrial.store.models import Hair, MeasurementRun, utcnow
from tests.store.helpers import hairs, write_trial_manifest

VERSION, CONFIG = "0.1.0", "cfg-abc"


@pytest.fixture
def image_ids(store, tmp_path):
    ingest_manifest(url_or_store=store, manifest_path=write_trial_manifest(tmp_path / "m"))
    with store.session() as session:
        return list(session.scalars(text_ids()))


def text_ids():
    from hairtrial.store.models import Image

    return select(Image.id).order_by(Image.id)


def n_hairs(store):
    with store.session() as session:
        return session.scalar(select(func.count()).select_from(Hair))


def runs_of(store, image_id):
    with store.session() as session:
        return list(
            session.scalars(
                select(MeasurementRun)
                .where(MeasurementRun.image_id == image_id)
                .order_by(MeasurementRun.id)
            )
        )


def measure(image_id, n=5):
    records = hairs(n, seed=image_id)
    return {
        "image_id": image_id,
        "version": VERSION,
        "config_hash": CONFIG,
        "hairs": records,
        "summary": summarize_hairs(records, area_cm2=0.03),
        "timings": {"detect_s": 0.5, "total_s": 0.75},
    }


def test_claim_then_save_marks_done(store, image_ids):
    with store.session() as session:
        assert enqueue_runs(session=session, version=VERSION, config_hash=CONFIG) == 8
        assert enqueue_runs(session=session, version=VERSION, config_hash=CONFIG) == 0
        claimed = claim_pending_images(session=session, owner="w1", limit=3, lease_s=60)
    assert [c.image_id for c in claimed] == image_ids[:3]
    assert all(c.lease_expires_at > utcnow() for c in claimed)
    first = claimed[0]
    assert read_stored_image(store=store, image_id=first.image_id).pixels.ndim == 3
    with store.session() as session:
        run_id = save_measurement(session=session, owner="w1", **measure(first.image_id))
    assert run_id == first.run_id
    (run,) = runs_of(store, first.image_id)
    assert run.status == "done" and run.lease_owner is None and run.finished_at is not None
    assert run.summary["hair_count"] == 4 and run.timings == {"detect_s": 0.5, "total_s": 0.75}
    assert n_hairs(store) == 5
    with store.session() as session:
        stored = session.scalars(select(Hair).order_by(Hair.hair_id)).all()
        assert stored[0].exit_x_px is None and stored[1].exit_x_px is not None
        assert len(stored[1].centerline_px) == 3
    # The same image, version and config again: a no-op.
    with store.session() as session:
        assert save_measurement(session=session, **measure(first.image_id, n=9)) == run_id
    assert n_hairs(store) == 5 and len(runs_of(store, first.image_id)) == 1


def test_save_without_claim_accepts_json_hairs(store, image_ids):
    payload = measure(image_ids[0])
    payload["hairs"] = [h.to_json() for h in payload["hairs"]]
    with store.session() as session:
        save_measurement(session=session, **payload)
    assert n_hairs(store) == 5
    assert [r.status for r in runs_of(store, image_ids[0])] == ["done"]


def test_save_measurement_is_atomic(store, image_ids, monkeypatch):
    with store.session() as session:
        enqueue_runs(session=session, version=VERSION, config_hash=CONFIG)
        claim_pending_images(session=session, owner="w1", limit=1, lease_s=60)
    real_row = runs_module._hair_row
    calls = []

    def failing_row(run_id, hair, exit_confidence):
        calls.append(hair.id)
        if len(calls) == 5:
            raise RuntimeError("disk full (injected)")
        return real_row(run_id, hair, exit_confidence)

    monkeypatch.setattr(runs_module, "_HAIR_BATCH", 2)  # two batches reach the database
    monkeypatch.setattr(runs_module, "_hair_row", failing_row)
    with store.session() as session, pytest.raises(RuntimeError, match="injected"):
        save_measurement(session=session, **measure(image_ids[0], n=8))
    assert len(calls) == 5
    assert n_hairs(store) == 0
    assert [r.status for r in runs_of(store, image_ids[0])] == ["running"]
    monkeypatch.setattr(runs_module, "_hair_row", real_row)
    with store.session() as session:
        save_measurement(session=session, **measure(image_ids[0], n=8))
    assert n_hairs(store) == 8


def _stored_exit_confidence(store):
    with store.session() as session:
        query = select(Hair.hair_id, Hair.exit_confidence, Hair.extra).order_by(Hair.hair_id)
        return [tuple(row) for row in session.execute(query)]


def test_exit_confidence_is_stored_per_hair(store, image_ids):
    from hairtrial.store.reviews import automatic_hairs
    from hairtrial.store.tracks import hairs_of_run

    payload = measure(image_ids[0], n=4)
    with store.session() as session:
        run_id = save_measurement(
            session=session, exit_confidence=(0.5, 0.97, 1.0, 0.731), **payload
        )
    assert _stored_exit_confidence(store) == [
        (1, 0.5, None), (2, 0.97, None), (3, 1.0, None), (4, 0.731, None)
    ]  # fmt: skip
    with store.session() as session:
        records = hairs_of_run(session=session, run_id=run_id)
        served = automatic_hairs(session=session, run_id=run_id)
    assert [h.extra["exit_confidence"] for h in records] == [0.5, 0.97, 1.0, 0.731]
    assert [h["exit_confidence"] for h in served] == [0.5, 0.97, 1.0, 0.731]


def test_exit_confidence_from_the_measure_json_key(store, image_ids):
    payload = measure(image_ids[0], n=3)
    rows = [h.to_json() for h in payload["hairs"]]
    rows[0]["exit_confidence"] = 0.88
    rows[2]["exit_confidence"] = 0.61
    rows[2]["follicle_id"] = 7  # other extra keys stay in `extra`
    payload["hairs"] = rows
    with store.session() as session:
        save_measurement(session=session, **payload)
    assert _stored_exit_confidence(store) == [
        (1, 0.88, None), (2, None, None), (3, 0.61, {"follicle_id": 7})
    ]  # fmt: skip


def test_hairs_without_exit_confidence_store_null(store, image_ids):
    from hairtrial.store.reviews import automatic_hairs

    with store.session() as session:
        run_id = save_measurement(session=session, **measure(image_ids[0], n=2))
        served = automatic_hairs(session=session, run_id=run_id)
    assert [s for _, s, _ in _stored_exit_confidence(store)] == [None, None]
    assert all("exit_confidence" not in h for h in served)


@pytest.mark.parametrize(
    ("sure", "match"),
    [
        ((0.9, 1.2, 0.9), r"hair 2: exit_confidence: 1.2 is outside the allowed range"),
        ((0.9, float("nan"), 0.9), "hair 2: exit_confidence: nan is outside"),
        ((0.9, "sure", 0.9), r"hair 2: exit_confidence: expected a number in \[0, 1\]"),
        ((0.9, 0.9), "2 exit confidences for 3 hairs"),
    ],
)
def test_bad_exit_confidence_is_refused_before_writing(store, image_ids, sure, match):
    with store.session() as session, pytest.raises(InputError, match=match):
        save_measurement(session=session, exit_confidence=sure, **measure(image_ids[0], n=3))
    assert n_hairs(store) == 0 and runs_of(store, image_ids[0]) == []


def test_bad_hairs_are_refused_before_writing(store, image_ids):
    payload = measure(image_ids[0])
    payload["hairs"] = payload["hairs"] + payload["hairs"][:1]
    with store.session() as session, pytest.raises(InputError, match="appears twice"):
        save_measurement(session=session, **payload)
    assert n_hairs(store) == 0 and runs_of(store, image_ids[0]) == []


def test_failure_status_and_retry(store, image_ids):
    with store.session() as session:
        enqueue_runs(session=session, version=VERSION, config_hash=CONFIG)
        (claimed,) = claim_pending_images(session=session, owner="w1", limit=1, lease_s=60)
        mark_failed(
            session=session,
            image_id=claimed.image_id,
            version=VERSION,
            config_hash=CONFIG,
            error="InputError: image too dark",
            owner="w1",
        )
        status = run_status(session=session)
        assert status.counts == {"pending": 7, "running": 0, "done": 0, "failed": 1}
        assert [f.error for f in status.failures] == ["InputError: image too dark"]
        assert status.failures[0].source_path.endswith(".png")
        assert enqueue_runs(session=session, version=VERSION, config_hash=CONFIG) == 0
        assert (
            enqueue_runs(session=session, version=VERSION, config_hash=CONFIG, retry_failed=True)
            == 1
        )
        again = claim_pending_images(session=session, owner="w2", limit=10, lease_s=60)
        assert claimed.image_id in [c.image_id for c in again]
        save_measurement(session=session, owner="w2", **measure(claimed.image_id))
        status = run_status(session=session, version=VERSION, config_hash=CONFIG)
    assert status.counts["failed"] == 1 and status.failures == ()
    assert status.n_images == 8 and status.n_images_done == 1
    assert [r.status for r in runs_of(store, claimed.image_id)] == ["failed", "done"]


def test_lease_blocks_others_until_it_expires(store, image_ids):
    with store.session() as session:
        enqueue_runs(session=session, version=VERSION, config_hash=CONFIG)
        mine = claim_pending_images(session=session, owner="A", limit=100, lease_s=60)
        assert len(mine) == 8
        assert claim_pending_images(session=session, owner="B", limit=100, lease_s=60) == []
        session.execute(
            update(MeasurementRun)
            .where(MeasurementRun.id == mine[0].run_id)
            .values(lease_expires_at=utcnow() - dt.timedelta(seconds=1))
        )
        session.commit()
        (taken,) = claim_pending_images(session=session, owner="B", limit=100, lease_s=60)
        assert taken.run_id == mine[0].run_id and taken.attempts == 2
        with pytest.raises(LeaseLostError, match="leased to B"):
            save_measurement(session=session, owner="A", **measure(taken.image_id))
    assert n_hairs(store) == 0


def test_claim_arguments_are_checked(store):
    with store.session() as session:
        with pytest.raises(InputError, match="owner"):
            claim_pending_images(session=session, owner="", limit=1, lease_s=1)
        with pytest.raises(InputError, match="limit"):
            claim_pending_images(session=session, owner="w", limit=0, lease_s=1)
        with pytest.raises(InputError, match="lease_s"):
            claim_pending_images(session=session, owner="w", limit=1, lease_s=float("nan"))


def test_concurrent_workers_never_claim_the_same_image(store, image_ids):
    with store.session() as session:
        enqueue_runs(session=session, version=VERSION, config_hash=CONFIG)
    start = threading.Barrier(4)
    claims: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def worker(owner):
        got = claims.setdefault(owner, [])
        try:
            with store.session() as session:
                start.wait(timeout=10)
                while batch := claim_pending_images(
                    session=session, owner=owner, limit=1, lease_s=60
                ):
                    got.extend(c.image_id for c in batch)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    every = [i for got in claims.values() for i in got]
    assert sorted(every) == sorted(image_ids)  # each image claimed exactly once


def test_skip_locked_passes_over_rows_another_transaction_holds(postgres_url, tmp_path):
    from hairtrial.store import open_store

    with open_store(postgres_url, image_root=tmp_path / "images") as store:
        ingest_manifest(url_or_store=store, manifest_path=write_trial_manifest(tmp_path / "m"))
        with store.session() as session:
            enqueue_runs(session=session, version=VERSION, config_hash=CONFIG)
        with store.session() as holder, store.session() as other:
            locked = holder.scalars(
                select(MeasurementRun.id).order_by(MeasurementRun.id).limit(3).with_for_update()
            ).all()
            other.connection().exec_driver_sql("SET lock_timeout = '5s'")
            claimed = claim_pending_images(session=other, owner="B", limit=100, lease_s=60)
            assert len(claimed) == 5
            assert not {c.run_id for c in claimed} & set(locked)
            holder.rollback()


def test_concurrent_saves_of_one_image_store_it_once(store, image_ids):
    start = threading.Barrier(3)
    results, errors = [], []

    def worker():
        try:
            with store.session() as session:
                start.wait(timeout=10)
                results.append(save_measurement(session=session, **measure(image_ids[0])))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == [] and len(set(results)) == 1
    assert n_hairs(store) == 5
    assert [r.status for r in runs_of(store, image_ids[0])] == ["done"]


def test_tracks_are_checked(store, image_ids):
    from hairtrial.store import save_tracks

    with store.session() as session, pytest.raises(InputError, match="not an image of site"):
        save_tracks(
            session=session,
            site_id=1,
            version=VERSION,
            config_hash=CONFIG,
            observations=[{"follicle_id": 1, "image_id": image_ids[-1], "x_um": 0, "y_um": 0}],
        )
    with store.session() as session, pytest.raises(InputError, match="no hair 7"):
        save_tracks(
            session=session,
            site_id=1,
            version=VERSION,
            config_hash=CONFIG,
            observations=[
                {"follicle_id": 1, "image_id": image_ids[0], "x_um": 0, "y_um": 0, "hair_id": 7}
            ],
        )
    from hairtrial.store.models import Follicle

    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(Follicle)) == 0
