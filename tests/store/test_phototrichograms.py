"""Phototrichogram pairs and results in the store: pairing, idempotent saves, export."""

import pandas as pd
import pytest
from sqlalchemy import select

from hairtrial._validate import InputError
from hairtrial.io import write_manifest
from hairtrial.records import summarize_hairs
from hairtrial.store import enqueue_runs, export_tables, ingest_manifest, save_measurement
from hairtrial.store.models import Image, Phototrichogram
from hairtrial.store.phototrichograms import (
    latest_phototrichograms,
    phototrichogram_pairs,
    save_phototrichogram,
    stored_phototrichograms,
)
from tests.store.helpers import hairs, make_image


def _rows(folder):
    """One site: clipped at day 0 and 30, re-imaged at day 3 and 32; an orphan re-image
    at day 60 (no clipped image within 7 days) and one on another site at day 3."""
    spec = [
        ("S001-L", 0, "clipped", "2025-01-01T10:00:00+00:00"),
        ("S001-L", 3, "clipped-regrowth", "2025-01-04T10:00:00+00:00"),
        ("S001-L", 30, "clipped", "2025-01-31T10:00:00+00:00"),
        ("S001-L", 32, "clipped-regrowth", "2025-02-02T22:00:00+00:00"),
        ("S001-L", 60, "clipped-regrowth", ""),
        ("S001-R", 0, "clipped", ""),
        ("S001-R", 3, "clipped-regrowth", ""),
    ]
    rows = []
    for seed, (site, day, kind, when) in enumerate(spec):
        name = f"images/{site}_d{day:03d}_{kind}.png"
        make_image(folder / name, seed)
        row = {"image": name, "subject": "S001", "site": site, "visit_day": day,
               "arm": "cells" if site.endswith("L") else "saline", "um_per_px": 5.0,
               "kind": kind}  # fmt: skip
        if when:
            row["acquired_at"] = when
        rows.append(row)
    return rows


@pytest.fixture
def ids(store, tmp_path):
    folder = tmp_path / "photo"
    ingest_manifest(
        url_or_store=store, manifest_path=write_manifest(folder / "m.csv", _rows(folder))
    )
    with store.session() as session:
        by_name = {
            source.rsplit("/", 1)[-1].rsplit(".", 1)[0]: image_id
            for image_id, source in session.execute(select(Image.id, Image.source_path))
        }
        enqueue_runs(session=session, version="1", config_hash="c")
        for name, image_id in by_name.items():
            if name.endswith("d032_clipped-regrowth"):
                continue  # not measured yet
            records = hairs(5, seed=image_id)
            save_measurement(
                session=session, image_id=image_id, version="1", config_hash="c",
                hairs=records, summary=summarize_hairs(records, area_cm2=0.03), timings={},
            )  # fmt: skip
    return by_name


def _result(fraction=0.75, **over):
    base = {"days": 3.0, "method": "shaft", "registered": True,
            "registration": {"score": 0.9}, "n_anagen": 3, "n_telogen": 1, "lost": 1,
            "undetermined": 0, "anagen_fraction": fraction, "hairs": []}  # fmt: skip
    base.update(over)
    return base


def test_pairs_each_reimage_with_the_clipped_image_it_reimages(store, ids):
    with store.session() as session:
        pairs = phototrichogram_pairs(session=session, version="1", config_hash="c")
    by_regrowth = {p.regrowth_image_id: p for p in pairs}
    # the orphan re-image at day 60 has no clipped image within 7 days: left out
    assert set(by_regrowth) == {
        ids["S001-L_d003_clipped-regrowth"], ids["S001-L_d032_clipped-regrowth"],
        ids["S001-R_d003_clipped-regrowth"],
    }  # fmt: skip
    first = by_regrowth[ids["S001-L_d003_clipped-regrowth"]]
    assert first.clipped_image_id == ids["S001-L_d000_clipped"]
    assert first.days == pytest.approx(3.0)  # from the acquisition times
    second = by_regrowth[ids["S001-L_d032_clipped-regrowth"]]
    assert second.clipped_image_id == ids["S001-L_d030_clipped"]
    assert second.days == pytest.approx(2.5)  # acquired 2.5 days apart, visits 2 apart
    assert second.regrowth_run_id is None and second.clipped_run_id is not None
    other = by_regrowth[ids["S001-R_d003_clipped-regrowth"]]
    assert other.clipped_image_id == ids["S001-R_d000_clipped"] and other.days == 3.0
    assert other.um_per_px == (5.0, 5.0) and other.shapes == ((24, 32), (24, 32))


def test_save_is_idempotent_and_the_export_carries_the_fraction(store, ids, tmp_path):
    with store.session() as session:
        pairs = phototrichogram_pairs(session=session, version="1", config_hash="c")
    pair = next(p for p in pairs if p.regrowth_image_id == ids["S001-L_d003_clipped-regrowth"])
    with store.session() as session:
        assert save_phototrichogram(session=session, pair=pair, version="1", key="k",
                                    result=_result())  # fmt: skip
    with store.session() as session:
        assert not save_phototrichogram(session=session, pair=pair, version="1", key="k",
                                        result=_result(0.1))  # fmt: skip
        assert stored_phototrichograms(session=session, version="1", key="k") == {
            pair.regrowth_image_id
        }
        assert save_phototrichogram(session=session, pair=pair, version="1", key="k2",
                                    result=_result(0.5))  # fmt: skip
    with store.session() as session:
        newest = latest_phototrichograms(session=session)
        assert newest[pair.regrowth_image_id].anagen_fraction == 0.5
        assert session.scalar(select(Phototrichogram.n_lost).limit(1)) == 1
    paths = export_tables(store=store, out_dir=tmp_path / "out")
    endpoints = pd.read_parquet(paths["endpoints"])
    row = endpoints[endpoints["image_id"] == pair.regrowth_image_id]
    assert row["anagen_fraction"].tolist() == [0.5]
    assert endpoints.loc[endpoints["kind"] == "clipped", "anagen_fraction"].isna().all()
    photos = pd.read_parquet(paths["phototrichograms"])
    assert len(photos) == 2 and set(photos["anagen_fraction"]) == {0.75, 0.5}
    assert (photos["clipped_image_id"] == pair.clipped_image_id).all()
    assert "arm" not in photos.columns


def test_bad_results_are_refused_and_nothing_is_written(store, ids):
    with store.session() as session:
        pairs = phototrichogram_pairs(session=session, version="1", config_hash="c")
    ready = next(p for p in pairs if p.regrowth_image_id == ids["S001-R_d003_clipped-regrowth"])
    unmeasured = next(p for p in pairs if p.regrowth_run_id is None)
    with store.session() as session:
        with pytest.raises(InputError, match="no done runs"):
            save_phototrichogram(session=session, pair=unmeasured, version="1", key="k",
                                 result=_result())  # fmt: skip
        with pytest.raises(InputError, match="anagen_fraction"):
            save_phototrichogram(session=session, pair=ready, version="1", key="k",
                                 result=_result(1.5))  # fmt: skip
        with pytest.raises(InputError, match="n_telogen"):
            save_phototrichogram(session=session, pair=ready, version="1", key="k",
                                 result=_result(n_telogen=-1))  # fmt: skip
    with store.session() as session:
        assert session.scalar(select(Phototrichogram.id).limit(1)) is None


def test_status_counts_results_and_names_refused_pairs(store, ids):
    from hairtrial.store.phototrichograms import phototrichogram_status

    with store.session() as session:
        assert phototrichogram_status(session=session).n_done == 0
        pairs = phototrichogram_pairs(session=session, version="1", config_hash="c")
    ready = [p for p in pairs if p.regrowth_run_id is not None]
    reason = "only 30 % of hair on hair"
    refused = _result(None, registered=False, n_anagen=0, n_telogen=0, lost=0,
                      registration={"score": 0.3, "reason": reason})  # fmt: skip
    with store.session() as session:
        save_phototrichogram(session=session, pair=ready[0], version="1", key="k", result=_result())
        save_phototrichogram(session=session, pair=ready[1], version="1", key="k", result=refused)
    with store.session() as session:
        status = phototrichogram_status(session=session)
    assert (status.n_reimages, status.n_done) == (4, 2)
    assert (
        status.refused == (("S001-R_d003_clipped-regrowth.png", "only 30 % of hair on hair"),)
        or status.refused[0][1] == "only 30 % of hair on hair"
    )
