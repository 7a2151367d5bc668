import json
import shutil

import pytest
from sqlalchemy import func, select

from hairtrial._validate import InputError
from hairtrial.io import write_manifest
from hairtrial.simulate.trial import write_trial
from hairtrial.store import (
    IngestError,
    ingest_manifest,
    read_stored_image,
    validate_manifest,
    verify_images,
)
from hairtrial.store.models import AuditEvent, Image, Site, Subject, Trial, Visit
from tests.factories import small_preset
from tests.store.helpers import make_image, trial_rows, write_trial_manifest


def counts(store):
    with store.session() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model))
            for model in (Trial, Subject, Site, Visit, Image, AuditEvent)
        }


def image_rows(store):
    with store.session() as session:
        return [
            (i.id, i.sha256, i.stored_path, i.visit_id, i.um_per_px, i.created_at)
            for i in session.scalars(select(Image).order_by(Image.id))
        ]


def stored_files(store):
    root = store.image_root
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_ingest_happy_path_copies_into_content_store(store, tmp_path):
    manifest = write_trial_manifest(tmp_path / "m", subjects=2, days=(0, 30, 90))
    report = ingest_manifest(url_or_store=store, manifest_path=manifest)
    assert report.written and report.added == 12 and report.problems == ()
    assert counts(store) == {
        "trial": 1,
        "subject": 2,
        "site": 4,
        "visit": 12,
        "image": 12,
        "audit_event": 1,
    }
    files = stored_files(store)
    assert len(files) == 12
    with store.session() as session:
        image = session.scalars(select(Image).order_by(Image.id)).first()
        assert image.storage == "store" and image.width == 32 and image.height == 24
        path = store.image_root / image.stored_path
        assert path.parent.name == image.sha256[:2]
        assert path.name == image.sha256[2:] + ".png"
        assert image.acquired_at.tzinfo is not None
        data = read_stored_image(store=store, image_id=image.id)
    assert data.pixels.shape == (24, 32, 3)
    assert verify_images(store=store) == []
    with pytest.raises(InputError, match="no such image"):
        read_stored_image(store=store, image_id=10_000)


def test_simulated_trial_ingests(store, tmp_path):
    out = write_trial(small_preset(subjects=1, visit_days=(0, 30)), tmp_path / "sim", seed=3)
    report = ingest_manifest(url_or_store=store, manifest_path=out.manifest)
    assert report.added == out.n_images == 4


def test_ingest_by_url_and_in_place(db_url, tmp_path):
    manifest = write_trial_manifest(tmp_path / "m", subjects=1)
    report = ingest_manifest(
        url_or_store=db_url, manifest_path=manifest, in_place=True, image_root=tmp_path / "x"
    )
    assert report.added == 4 and report.image_root is None
    assert not (tmp_path / "x").exists()


def test_reingest_changes_nothing(store, tmp_path):
    manifest = write_trial_manifest(tmp_path / "m")
    first = ingest_manifest(url_or_store=store, manifest_path=manifest)
    before = (counts(store), image_rows(store), stored_files(store))
    second = ingest_manifest(url_or_store=store, manifest_path=manifest)
    third = ingest_manifest(url_or_store=store, manifest_path=manifest, in_place=True)
    assert first.added == 8
    assert (second.added, second.already_present, second.written) == (0, 8, False)
    assert third.added == 0
    assert (counts(store), image_rows(store), stored_files(store)) == before


def test_adding_visits_later_keeps_stored_rows(store, tmp_path):
    folder = tmp_path / "m"
    rows = trial_rows(folder, subjects=1, days=(0, 30, 90))
    ingest_manifest(url_or_store=store, manifest_path=write_manifest(folder / "a.csv", rows[:2]))
    before = image_rows(store)
    report = ingest_manifest(
        url_or_store=store, manifest_path=write_manifest(folder / "b.csv", rows)
    )
    assert (report.added, report.already_present) == (4, 2)
    assert image_rows(store)[:2] == before


def _bad_manifest(folder):
    rows = trial_rows(folder, subjects=1, days=(0, 30))  # lines 2-5 are good
    good = rows[0]
    (folder / "images" / "garbage.png").write_bytes(b"not an image at all")
    shutil.copy(folder / good["image"], folder / "images" / "copy.png")
    make_image(folder / "images" / "cal.png", 101)
    (folder / "images" / "cal.png.calibration.json").write_text(json.dumps({"um_per_px": 5.0}))
    for seed, name in ((102, "late"), (103, "again"), (104, "arm"), (105, "tiny"), (106, "x")):
        make_image(folder / "images" / f"{name}.png", seed)
    site = {"subject": "S009", "site": "S009-L", "arm": "cells", "kind": "clipped"}
    bad = [
        {**good},  # 6: duplicate row
        {**good, "image": "images/missing.png", "visit_day": 7},  # 7: missing file
        {**good, "image": "images/garbage.png", "visit_day": 8},  # 8: unreadable
        {**good, "image": "images/copy.png", "visit_day": 9},  # 9: identical content
        {**good, "image": "images/arm.png", "site": "S001-X", "arm": "placebo"},  # 10: arm
        {**good, "image": "images/tiny.png", "visit_day": 10, "um_per_px": 0.001},  # 11
        {**good, "image": "images/cal.png", "visit_day": 11, "um_per_px": 7.0},  # 12
        {**good, "image": "images/x.png", "visit_day": 12, "um_per_px": ""},  # 13
        {
            **site,
            "image": "images/late.png",
            "visit_day": 0,
            "um_per_px": 5,
            "acquired_at": "2025-03-01T00:00:00Z",
        },  # 14: good alone
        {
            **site,
            "image": "images/again.png",
            "visit_day": 30,
            "um_per_px": 5,
            "acquired_at": "2025-02-01T00:00:00Z",
        },  # 15: acquired before day 0
        {**rows[1], "image": "images/S001-R_d000.png"},  # 16: same site/day twice
    ]
    return write_manifest(folder / "manifest.csv", rows + bad)


EXPECTED_BAD = {
    6: "duplicate row",
    7: "no such file",
    8: "unreadable image",
    9: "identical content",
    10: "unknown arm 'placebo'",
    11: "plausible range",
    12: "file carries 5 µm/px",
    13: "um_per_px is empty",
    15: "visit out of order: acquired_at",
    16: "visit out of order: site S001-L already has day 30",
}


def test_every_bad_row_is_reported_and_nothing_written(store, tmp_path):
    manifest = _bad_manifest(tmp_path / "m")
    with pytest.raises(IngestError) as info:
        ingest_manifest(url_or_store=store, manifest_path=manifest)
    report = info.value.report
    assert report.bad_lines == tuple(sorted(EXPECTED_BAD))
    text = str(info.value)
    assert "manifest.csv" in text and "nothing written" in text
    for line, fragment in EXPECTED_BAD.items():
        assert f"line {line}: " in text
        assert any(fragment in p.message for p in report.problems if p.line == line), line
    assert set(counts(store).values()) == {0}
    assert stored_files(store) == []
    problems, n_rows = validate_manifest(store=store, manifest_path=manifest)
    assert n_rows == 15 and {p.line for p in problems} == set(EXPECTED_BAD)


def test_skip_bad_writes_only_the_good_rows(store, tmp_path):
    manifest = _bad_manifest(tmp_path / "m")
    report = ingest_manifest(url_or_store=store, manifest_path=manifest, skip_bad=True)
    assert report.written and report.added == 5  # lines 2-5 and 14
    assert report.bad_lines == tuple(sorted(EXPECTED_BAD))
    assert counts(store)["image"] == 5 and len(stored_files(store)) == 5


def test_conflicts_with_stored_rows_are_refused(store, tmp_path):
    folder = tmp_path / "m"
    rows = trial_rows(folder, subjects=1)
    ingest_manifest(url_or_store=store, manifest_path=write_manifest(folder / "a.csv", rows))
    before = image_rows(store)
    make_image(folder / "images" / "new.png", 999)
    changed = [
        {**rows[0], "image": "images/new.png"},  # other content for a stored visit
        {**rows[1], "arm": "saline"},  # stored site with another arm
        {**rows[2], "um_per_px": 6.0},  # stored image with another calibration
    ]
    with pytest.raises(IngestError) as info:
        ingest_manifest(url_or_store=store, manifest_path=write_manifest(folder / "b.csv", changed))
    messages = " | ".join(p.message for p in info.value.report.problems)
    assert "already has a different stored image" in messages
    assert "stored with another arm" in messages
    assert "already stored with um_per_px 5" in messages
    assert image_rows(store) == before


def test_trial_arms_replace_the_defaults(store, tmp_path):
    folder = tmp_path / "m"
    rows = [{**r, "arm": "A" if r["arm"] == "cells" else "B"} for r in trial_rows(folder)]
    manifest = write_manifest(folder / "m.csv", rows)
    with pytest.raises(IngestError, match="unknown arm 'A'"):
        ingest_manifest(url_or_store=store, manifest_path=manifest)
    report = ingest_manifest(url_or_store=store, manifest_path=manifest, arms=("A", "B"))
    assert report.added == 8


def test_missing_columns_is_a_file_error(store, tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("image,subject\na.png,S1\n")
    with pytest.raises(InputError, match="lacks column"):
        ingest_manifest(url_or_store=store, manifest_path=path)


def test_tampered_stored_image_is_detected(store, tmp_path):
    ingest_manifest(url_or_store=store, manifest_path=write_trial_manifest(tmp_path / "m"))
    with store.session() as session:
        image = session.scalars(select(Image).order_by(Image.id)).first()
    path = store.image_root / image.stored_path
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="checksum mismatch") as info:
        read_stored_image(store=store, image_id=image.id)
    assert str(path) in str(info.value)
    (problem,) = verify_images(store=store)
    assert str(path) in problem
    path.unlink()
    with pytest.raises(InputError, match="missing"):
        read_stored_image(store=store, image_id=image.id)


def test_tampered_in_place_image_is_detected(store, tmp_path):
    manifest = write_trial_manifest(tmp_path / "m", subjects=1)
    ingest_manifest(url_or_store=store, manifest_path=manifest, in_place=True)
    with store.session() as session:
        image = session.scalars(select(Image).order_by(Image.id)).first()
    make_image(tmp_path / "m" / "images" / "S001-L_d000.png", 12345)
    with pytest.raises(InputError, match="S001-L_d000.png: checksum mismatch"):
        read_stored_image(store=store, image_id=image.id)


def test_postgres_needs_an_image_root_for_copies(postgres_url, tmp_path):
    manifest = write_trial_manifest(tmp_path / "m", subjects=1)
    with pytest.raises(InputError, match="no image store folder"):
        ingest_manifest(url_or_store=postgres_url, manifest_path=manifest)
    report = ingest_manifest(url_or_store=postgres_url, manifest_path=manifest, in_place=True)
    assert report.added == 4
