"""Arm coding: stable, hash-based, never the real names; differences keep their meaning."""

from __future__ import annotations

import pandas as pd
import pytest

from hairtrial.report.blinding import arm_coding


def _coding(trial: str = "t", *, unblind: bool = False):
    return arm_coding(
        trial=trial, arms=["cells", "saline"], treated="cells", control="saline", unblind=unblind
    )


def test_coding_is_stable_and_uses_only_codes():
    first, again = _coding("nanfang"), _coding("nanfang")
    assert first == again
    assert sorted(first.labels.values()) == ["Arm A", "Arm B"]
    assert first.order == ("Arm A", "Arm B") and first.blinded
    assert first.difference == "Arm A − Arm B"


def test_coding_depends_on_the_trial_not_on_which_arm_is_treated():
    # Over many trial names both assignments occur, so "Arm A" says nothing about the arm.
    treated_labels = {_coding(f"trial-{i}").labels["cells"] for i in range(40)}
    assert treated_labels == {"Arm A", "Arm B"}
    signs = {_coding(f"trial-{i}").sign for i in range(40)}
    assert signs == {1, -1}


def test_directed_flips_estimates_and_intervals_when_treated_is_coded_second():
    coding = next(_coding(f"trial-{i}") for i in range(40) if _coding(f"trial-{i}").sign == -1)
    assert coding.labels["saline"] == "Arm A"
    frame = pd.DataFrame({"estimate": [2.0], "ci_low": [1.0], "ci_high": [4.0], "p": [0.01]})
    out = coding.directed(frame)
    assert out.to_dict("records") == [
        {"estimate": -2.0, "ci_low": -4.0, "ci_high": -1.0, "p": 0.01}
    ]
    assert frame["estimate"].item() == 2.0  # input not modified
    same = next(_coding(f"trial-{i}") for i in range(40) if _coding(f"trial-{i}").sign == 1)
    pd.testing.assert_frame_equal(same.directed(frame), frame)


def test_mask_replaces_arm_names_not_longer_words():
    coding = _coding()
    text = "C(arm, Treatment('saline')): Cells vs saline; site cells_2, but cellsX stays."
    masked = coding.mask(text)
    assert masked == "C(arm, Treatment('[arm]')): [arm] vs [arm]; site [arm]_2, but cellsX stays."
    assert coding.leaks(masked) == []
    assert coding.leaks(text) == ["cells", "saline"]


def test_unblinded_shows_real_names_treated_first():
    coding = _coding(unblind=True)
    assert coding.labels == {"cells": "cells", "saline": "saline"}
    assert coding.difference == "cells − saline" and coding.sign == 1
    assert coding.mask("cells") == "cells"
    assert coding.relabel(pd.Series(["saline", "cells"])).tolist() == ["saline", "cells"]


@pytest.mark.parametrize("unblind", [False, True])
def test_third_arm_gets_a_label(unblind):
    coding = arm_coding(
        trial="t",
        arms=["cells", "saline", "untreated"],
        treated="cells",
        control="saline",
        unblind=unblind,
    )
    assert len(set(coding.labels.values())) == 3
    assert coding.label("unknown") == ("[arm]" if not unblind else "unknown")


def test_masked_content_hides_arm_names_in_every_string():
    from hairtrial.report.model import Figure, ReportContent, Section, Table, Text

    coding = _coding()
    content = ReportContent(
        title="trial cells",
        banner="BLINDED",
        blinded=True,
        facts=(("Arms", "cells, saline"),),
        sections=(
            Section(
                "s",
                "About saline",
                (
                    Text("fixed effects C(arm, Treatment('saline'))"),
                    Table("cells table", ("cells",), (("saline site",),), note="cells"),
                    Figure("f", "caption saline", b"png"),
                ),
            ),
        ),
    )
    assert coding.leaks(content.text()) == ["cells", "saline"]
    masked = content.masked(coding)
    assert coding.leaks(masked.text()) == []
    assert masked.sections[0].blocks[2].data == b"png"
    assert _coding(unblind=True) and content.masked(_coding(unblind=True)) == content
