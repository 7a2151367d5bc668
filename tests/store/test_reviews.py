import json

import pandas as pd
import pytest
from sqlalchemy import func, select

from hairtrial._validate import InputError
from hairtrial.records import summarize_hairs
from hairtrial.store import enqueue_runs, export_tables, save_measurement
from hairtrial.store.agreement import assessor_agreement, automatic_vs_corrected, icc_2_1
from hairtrial.store.audit import list_events, verify_audit_chain
from hairtrial.store.models import Hair
from hairtrial.store.reviews import (
    automatic_hairs,
    corrections_of,
    image_for_review,
    latest_approved_revision,
    latest_revision_hairs_json,
    pseudonym,
    review_progress,
    review_queue,
    revision_history,
    save_revision,
    stored_form,
)
from hairtrial.store.users import create_user
from tests.store.helpers import hairs as helper_hairs
from tests.web.trialdata import measured_trial

KEY = "test-key"


@pytest.fixture
def trial(store, tmp_path):
    ids = measured_trial(store, tmp_path / "t", subjects=1, n_failed=1)
    with store.begin() as session:
        users = [
            create_user(session=session, username=f"a{i}", password="x" * 12, role="assessor").id
            for i in (1, 2)
        ]
    return ids, users


def test_pseudonym_is_keyed_and_stable():
    assert pseudonym(key=KEY, subject_id=1) == pseudonym(key=KEY, subject_id=1)
    assert pseudonym(key=KEY, subject_id=1) != pseudonym(key="other", subject_id=1)
    assert pseudonym(key=KEY, subject_id=1).startswith("P-")


def test_queue_is_per_reviewer_stable_and_blind(store, trial):
    ids, (a1, a2) = trial
    with store.session() as session:
        q1 = review_queue(session=session, reviewer_id=a1, key=KEY)
        q2 = review_queue(session=session, reviewer_id=a2, key=KEY)
        again = review_queue(session=session, reviewer_id=a1, key=KEY)
    assert [i.image_id for i in q1] == [i.image_id for i in again]
    assert sorted(i.image_id for i in q1) == sorted(ids[:-1])  # the failed image is not queued
    assert sorted(i.image_id for i in q2) == sorted(i.image_id for i in q1)
    assert all(i.status == "todo" and i.subject.startswith("P-") for i in q1)
    assert not any(hasattr(i, "arm") or hasattr(i, "visit_day") for i in q1)


def test_revision_keeps_automatic_result_and_is_audited(store, trial):
    ids, (a1, _) = trial
    image_id = ids[0]
    with store.begin() as session:
        n_hair_rows = session.scalar(select(func.count()).select_from(Hair))
        auto = automatic_hairs(session=session, run_id=1)
        assert [h["id"] for h in auto] == [1, 2, 3]
        edited = [dict(h) for h in auto[1:]]  # delete hair 1
        edited[0]["class"] = "vellus"
        edited[0]["diameter_um"] = 20.0  # edit hair 2
        edited.append(
            {"id": 99, "exit_px": [3.0, 4.0], "tip_px": [10.0, 12.0],
             "centerline_px": [[3.0, 4.0], [10.0, 12.0]], "diameter_um": 70.0,
             "length_um": 300.0, "class": "terminal", "confidence": 1.0}
        )  # fmt: skip
        draft = save_revision(session=session, image_id=image_id, author_id=a1, hairs=edited)
        assert (draft.n_added, draft.n_deleted, draft.n_edited) == (1, 1, 1)
        assert draft.status == "draft"
        assert latest_approved_revision(session=session, image_id=image_id) is None
        approved = save_revision(
            session=session, image_id=image_id, author_id=a1, hairs=edited,
            status="approved", base_revision_id=draft.id,
        )  # fmt: skip
        assert (approved.n_added, approved.n_deleted, approved.n_edited) == (0, 0, 0)
    with store.session() as session:
        # The automatic hairs are untouched.
        assert session.scalar(select(func.count()).select_from(Hair)) == n_hair_rows
        assert automatic_hairs(session=session, run_id=1) == auto
        history = revision_history(session=session, image_id=image_id)
        assert [r.id for r in history] == [draft.id, approved.id]
        assert history[1].base_revision_id == draft.id
        diff = corrections_of(session=session, revision_id=draft.id)
        assert [(d["hair_id"], d["action"]) for d in diff] == [
            (1, "delete"),
            (2, "edit"),
            (99, "add"),
        ]
        latest = latest_approved_revision(session=session, image_id=image_id)
        assert latest.id == approved.id
        # Counted hairs: auto hair 1 had no exit; 2 and 3 remain, plus 99.
        area = 24 * 32 * 25 / 1e8
        assert latest.summary["hair_count"] == 3
        assert latest.summary["density_per_cm2"] == pytest.approx(3 / area)
        assert latest.summary["mean_diameter_um"] == pytest.approx(
            (20.0 + auto[2]["diameter_um"] + 70.0) / 3, abs=0.01
        )
        item = image_for_review(session=session, image_id=image_id, reviewer_id=a1, key=KEY)
        assert item.status == "approved"
        events = [e for e in list_events(session=session) if e.entity == "review"][::-1]
    assert [e.action for e in events] == ["revise", "approve"]
    assert events[0].after["hair_count"] == 3 and events[0].detail["changes"] == {
        "add": 1, "delete": 1, "edit": 1,
    }  # fmt: skip
    assert verify_audit_chain(store=store).ok


def test_export_uses_latest_approved_revision(store, trial, tmp_path):
    ids, (a1, _) = trial
    with store.begin() as session:
        auto = automatic_hairs(session=session, run_id=1)
        save_revision(
            session=session, image_id=ids[0], author_id=a1, hairs=auto[:2], status="approved"
        )
        save_revision(session=session, image_id=ids[1], author_id=a1, hairs=[], status="draft")
    paths = export_tables(store=store, out_dir=tmp_path / "out", fmt="csv")
    ep = pd.read_csv(paths["endpoints"]).set_index("image_id")
    assert ep.loc[ids[0], "source"] == "review" and ep.loc[ids[0], "hair_count"] == 1
    assert ep.loc[ids[1], "source"] == "automatic" and ep.loc[ids[1], "hair_count"] == 3
    assert pd.isna(ep.loc[ids[1], "revision_id"])
    hairs = pd.read_csv(paths["hairs"])
    first = hairs[hairs["image_id"] == ids[0]]
    assert list(first["hair_id"]) == [1, 2] and set(first["source"]) == {"review"}
    assert len(hairs[hairs["image_id"] == ids[1]]) == 4


def test_flag_progress_and_agreement(store, trial):
    ids, (a1, a2) = trial
    with store.begin() as session:
        with pytest.raises(InputError, match="unusable_reason"):
            save_revision(session=session, image_id=ids[0], author_id=a1, hairs=[], unusable=True)
        save_revision(
            session=session, image_id=ids[0], author_id=a1, hairs=[], status="approved",
            unusable=True, unusable_reason="out of focus",
        )  # fmt: skip
        for image_id in ids[1:3]:
            auto = automatic_hairs(session=session, run_id=image_id)
            save_revision(
                session=session, image_id=image_id, author_id=a1, hairs=auto, status="approved"
            )
            save_revision(
                session=session, image_id=image_id, author_id=a2, hairs=auto[:-1], status="approved"
            )
        progress = review_progress(session=session)
        auto_vs = automatic_vs_corrected(session=session)
        between = assessor_agreement(session=session)
    assert (progress.ingested, progress.measured, progress.failed) == (4, 3, 1)
    assert (progress.reviewed, progress.flagged) == (3, 1)
    # Latest approved revisions of images 2 and 3 are a2's: one hair fewer than automatic.
    assert auto_vs.n == 2 and auto_vs.mean_difference == pytest.approx(-1.0)
    counts1 = [len(automatic_hairs(session=store.session(), run_id=i)) - 1 for i in ids[1:3]]
    expected = icc_2_1([[c, c - 1] for c in counts1])
    assert between.n == 2 and between.icc == pytest.approx(expected)


def test_revision_keeps_exit_confidence_until_the_exit_is_moved(store, trial):
    ids, (a1, _) = trial
    with store.begin() as session:
        auto = automatic_hairs(session=session, run_id=1)
        assert [h["exit_confidence"] for h in auto] == [0.99, 0.99, 0.62]
        unchanged = save_revision(session=session, image_id=ids[0], author_id=a1, hairs=auto)
        assert (unchanged.n_added, unchanged.n_deleted, unchanged.n_edited) == (0, 0, 0)
        moved = [dict(h) for h in auto]
        moved[2]["exit_px"] = [1.0, 2.0]  # a reviewer places the unsure exit
        del moved[2]["exit_confidence"]
        revision = save_revision(
            session=session, image_id=ids[0], author_id=a1, hairs=moved,
            status="approved", base_revision_id=unchanged.id,
        )  # fmt: skip
        assert revision.n_edited == 1
    with store.session() as session:
        newest = latest_revision_hairs_json(session=session, image_id=ids[0], author_id=a1)
    assert newest is not None and newest[0] == revision.id
    assert [h.get("exit_confidence") for h in json.loads(newest[1])] == [0.99, 0.99, None]


@pytest.mark.parametrize(
    "hairs, match",
    [
        ([{"id": 1}], "not a hair record"),
        ([{"id": 1, "exit_px": None, "tip_px": [0, 0], "centerline_px": [[0, 0]],
           "diameter_um": 50, "length_um": 1, "class": "giant"}], "class"),
        ([{"id": 1, "exit_px": None, "tip_px": [0, "nan"], "centerline_px": [[0, 0]],
           "diameter_um": 50, "length_um": 1, "class": "terminal"}], "finite"),
        ([{"id": 1, "exit_px": [0, 0], "tip_px": [5, 5], "centerline_px": [[0, 0]],
           "diameter_um": 50, "length_um": 1, "class": "terminal", "exit_confidence": 2}],
         r"hairs\[0\] \(id 1\)\.exit_confidence: 2 is outside the allowed range \[0, 1\]"),
    ],
)  # fmt: skip
def test_bad_revisions_are_refused(store, trial, hairs, match):
    ids, (a1, _) = trial
    with store.session() as session, pytest.raises(InputError, match=match):
        save_revision(session=session, image_id=ids[0], author_id=a1, hairs=hairs)
    with store.session() as session, pytest.raises(InputError, match="no such measured"):
        save_revision(session=session, image_id=ids[-1], author_id=a1, hairs=[])


class _CountingLock:
    """A lock that records how often it was entered and whether it is held."""

    def __init__(self):
        self.entered = 0
        self.held = False

    def __enter__(self):
        self.entered += 1
        self.held = True
        return self

    def __exit__(self, *exc):
        self.held = False


def test_save_under_write_lock_commits_inside_it_and_rolls_back_on_error(store, trial, monkeypatch):
    ids, (a1, _) = trial
    lock = _CountingLock()
    with store.session() as session:
        auto = automatic_hairs(session=session, run_id=1)
        rev = save_revision(
            session=session, image_id=ids[0], author_id=a1, hairs=auto[1:], status="draft",
            write_lock=lock, commit=True,
        )  # fmt: skip
        assert lock.entered == 1 and not lock.held
        # A base revision's stored hairs diff against the new ones without renormalising.
        edited = [dict(h) for h in rev.hairs]
        edited[0]["diameter_um"] = 99.0
        again = save_revision(
            session=session, image_id=ids[0], author_id=a1, hairs=edited,
            base_revision_id=rev.id, write_lock=lock, commit=True,
        )  # fmt: skip
        assert (again.n_added, again.n_deleted, again.n_edited) == (0, 0, 1)

        # A failure inside the lock (here in the audit append, after the revision row was
        # flushed) rolls the session back there, so nothing of the failed save remains.
        def broken_append(**kwargs):
            raise InputError("detail: not JSON-serialisable")

        monkeypatch.setattr("hairtrial.store.reviews.append_event", broken_append)
        with pytest.raises(InputError, match="serialisable"):
            save_revision(
                session=session, image_id=ids[0], author_id=a1, hairs=[],
                write_lock=lock, commit=True,
            )  # fmt: skip
        assert lock.entered == 3 and not lock.held
        assert not session.in_transaction()  # rolled back before the lock was released
    with store.session() as session:
        history = revision_history(session=session, image_id=ids[0])
        assert [r.id for r in history] == [rev.id, again.id]
        assert history[0].n_deleted == 1 and history[0].author == "a1"
        count = latest_revision_hairs_json(session=session, image_id=ids[0], author_id=a1)
        assert count is not None and count[0] == again.id
        assert json.loads(count[1]) == list(again.hairs)
        assert latest_revision_hairs_json(session=session, image_id=ids[1], author_id=a1) is None
    assert verify_audit_chain(store=store).ok


def test_queue_statuses_and_runs_match_per_image_lookup(store, trial):
    ids, (a1, a2) = trial
    with store.begin() as session:
        auto = automatic_hairs(session=session, run_id=1)
        save_revision(session=session, image_id=ids[0], author_id=a1, hairs=auto, status="draft")
        save_revision(session=session, image_id=ids[1], author_id=a1, hairs=auto, status="approved")
    with store.session() as session:
        queue = review_queue(session=session, reviewer_id=a1, key=KEY)
        for item in queue:
            one = image_for_review(session=session, image_id=item.image_id, reviewer_id=a1, key=KEY)
            assert one == item
        status = {item.image_id: item.status for item in queue}
        assert status[ids[0]] == "draft" and status[ids[1]] == "approved"
        assert {i.status for i in review_queue(session=session, reviewer_id=a2, key=KEY)} == {
            "todo"
        }


def test_stored_form_rounds_once_and_is_idempotent(store, trial):
    with store.session() as session:
        auto = automatic_hairs(session=session, run_id=1)
    once = stored_form(auto)
    assert stored_form(once) == once
    assert [h["id"] for h in once] == [h["id"] for h in auto]
    for raw, kept in zip(auto, once, strict=True):
        assert kept["diameter_um"] == round(raw["diameter_um"], 2)
        assert kept["tip_px"] == [round(v, 2) for v in raw["tip_px"]]


def test_automatic_base_from_a_cache_gives_the_same_revision(store, trial):
    ids, (a1, a2) = trial
    asked = []

    def from_cache(session, run_id):
        asked.append(run_id)
        return stored_form(automatic_hairs(session=session, run_id=run_id))

    with store.begin() as session:
        auto = automatic_hairs(session=session, run_id=1)
        edited = [dict(h) for h in auto[1:]]
        edited[0]["diameter_um"] = 12.5
        plain = save_revision(session=session, image_id=ids[0], author_id=a1, hairs=edited)
        cached = save_revision(
            session=session, image_id=ids[0], author_id=a2, hairs=edited,
            automatic_base=from_cache,
        )  # fmt: skip
        # Based on a revision, the automatic hairs are not needed at all.
        save_revision(
            session=session, image_id=ids[0], author_id=a2, hairs=edited,
            base_revision_id=cached.id, automatic_base=from_cache,
        )  # fmt: skip
    assert asked == [1]
    assert (cached.n_added, cached.n_deleted, cached.n_edited) == (0, 1, 1)
    assert (cached.hairs, cached.summary) == (plain.hairs, plain.summary)
    with store.session() as session:
        assert corrections_of(session=session, revision_id=cached.id) == corrections_of(
            session=session, revision_id=plain.id
        )
        history = revision_history(session=session, image_id=ids[0])
    assert [r.created_at for r in history] == sorted(r.created_at for r in history)
    assert history[1].created_at == cached.created_at and history[1].author == "a2"
    assert verify_audit_chain(store=store).ok


def test_image_for_review_follows_the_latest_done_run_and_own_revision(store, trial):
    ids, (a1, a2) = trial
    with store.begin() as session:
        auto = automatic_hairs(session=session, run_id=1)
        save_revision(session=session, image_id=ids[0], author_id=a1, hairs=auto, status="approved")
        save_revision(
            session=session, image_id=ids[0], author_id=a1, hairs=[], status="approved",
            unusable=True, unusable_reason="blurred",
        )  # fmt: skip
        save_revision(session=session, image_id=ids[0], author_id=a2, hairs=auto)
    with store.session() as session:  # a re-measurement: a second done run of the image
        enqueue_runs(session=session, version="2", config_hash="c", image_ids=[ids[0]])
        records = helper_hairs(7, seed=5)
        rerun = save_measurement(
            session=session, image_id=ids[0], version="2", config_hash="c", hairs=records,
            summary=summarize_hairs(records, area_cm2=24 * 32 * 25 / 1e8), timings={},
        )  # fmt: skip
    with store.session() as session:
        mine = image_for_review(session=session, image_id=ids[0], reviewer_id=a1, key=KEY)
        theirs = image_for_review(session=session, image_id=ids[0], reviewer_id=a2, key=KEY)
        with pytest.raises(InputError, match="no such measured image"):
            image_for_review(session=session, image_id=ids[-1], reviewer_id=a1, key=KEY)
        with pytest.raises(InputError, match="no such measured image"):
            image_for_review(session=session, image_id=10_000, reviewer_id=a1, key=KEY)
    assert (mine.status, theirs.status) == ("unusable", "draft")
    assert mine.run_id == theirs.run_id == rerun and mine.subject == theirs.subject
    assert mine.auto_summary["hair_count"] == 6
