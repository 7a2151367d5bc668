import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import special

from hairtrial.analyze import AnalysisConfig, holm, paired_summary, paired_tests


def test_t_statistic_and_ci_textbook_example():
    # d = 1, 2, 3, 4, 6: mean 3.2, s² = 14.8 / 4 = 3.7, SE = sqrt(3.7 / 5)
    d = [1.0, 2.0, 3.0, 4.0, 6.0]
    s = paired_summary(d, alpha=0.05)
    se = math.sqrt(3.7 / 5)
    assert s["mean_diff"] == pytest.approx(3.2)
    assert s["sd_diff"] == pytest.approx(math.sqrt(3.7))
    assert s["t"] == pytest.approx(3.2 / se)
    t975_df4 = 2.776445105  # printed t tables: t(0.975, 4) = 2.776
    assert s["ci_low"] == pytest.approx(3.2 - t975_df4 * se, rel=1e-8)
    assert s["ci_high"] == pytest.approx(3.2 + t975_df4 * se, rel=1e-8)
    # two-sided p from the incomplete beta identity p = I_{v/(v+t²)}(v/2, 1/2)
    t = 3.2 / se
    assert s["p_t"] == pytest.approx(special.betainc(2.0, 0.5, 4 / (4 + t * t)), rel=1e-9)
    assert s["effect_size_dz"] == pytest.approx(3.2 / math.sqrt(3.7))


def test_wilcoxon_matches_hand_enumeration():
    d = [1.0, -2.0, 3.0, 4.0, 5.0]  # ranks 1..5; W- = 2
    s = paired_summary(d, alpha=0.05)
    assert s["wilcoxon_w"] == 2
    ranks = np.arange(1, 6)
    w_minus = [sum(r for r, neg in zip(ranks, signs, strict=True) if neg)
               for signs in itertools.product([False, True], repeat=5)]  # fmt: skip
    p = 2 * sum(w <= 2 for w in w_minus) / len(w_minus)
    assert p == pytest.approx(6 / 32)
    assert s["p_wilcoxon"] == pytest.approx(p)


def test_degenerate_differences_are_nan_not_errors():
    assert math.isnan(paired_summary([1.0], alpha=0.05)["p_t"])
    zero = paired_summary([0.0, 0.0, 0.0], alpha=0.05)
    assert math.isnan(zero["t"]) and math.isnan(zero["p_wilcoxon"]) and zero["sd_diff"] == 0


def test_holm_hand_example_and_statsmodels():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> monotone
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    out = holm([0.2, np.nan, 0.01])
    assert math.isnan(out[1]) and out[[0, 2]] == pytest.approx([0.2, 0.02])
    from statsmodels.stats.multitest import multipletests

    p = np.random.default_rng(1).uniform(0, 0.2, size=9)
    assert holm(p) == pytest.approx(multipletests(p, method="holm")[1])


def _table(diffs_by_day):
    rows = []
    for i in range(len(diffs_by_day[30])):
        for arm, site in (("treated", "A"), ("control", "B")):
            rows.append({"subject": f"S{i}", "site": f"S{i}{site}", "arm": arm,
                         "visit_day": 0, "hair_count_change": 0.0})  # fmt: skip
            for day, diffs in diffs_by_day.items():
                value = diffs[i] if arm == "treated" else 0.0
                rows.append({"subject": f"S{i}", "site": f"S{i}{site}", "arm": arm,
                             "visit_day": day, "hair_count_change": value})  # fmt: skip
    return pd.DataFrame(rows)


def test_paired_tests_per_visit_with_holm():
    table = _table({30: [1.0, 2.0, 3.0, 4.0, 6.0], 90: [1.0, -1.0, 2.0, -2.0, 0.5]})
    table.loc[(table["subject"] == "S0") & (table["visit_day"] == 90), "hair_count_change"] = np.nan
    config = AnalysisConfig(endpoints=("hair_count",), primary=("hair_count",))
    out = paired_tests(table, config=config)
    assert list(out["visit_day"]) == [30, 90]
    first = out.iloc[0]
    assert first["n"] == 5 and first["mean_diff"] == pytest.approx(3.2)
    assert first["treated_mean"] == pytest.approx(3.2) and first["control_mean"] == 0
    assert out.iloc[1]["n"] == 4  # the subject with a missing visit drops out of that visit
    assert list(out["p_holm"]) == pytest.approx(list(holm(out["p_t"])))
    assert out["p_holm"].iloc[0] == pytest.approx(min(1, 2 * min(out["p_t"])))
