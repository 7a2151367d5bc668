"""ICC(2,1) against the published worked example (the store-level agreement uses it)."""

import math

import numpy as np
import pytest

from hairtrial._validate import InputError
from hairtrial.store.agreement import icc_2_1


def test_icc_matches_shrout_fleiss_table():
    # Shrout & Fleiss (1979), Table 2: 6 targets × 4 judges; ICC(2,1) = 0.29.
    ratings = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
    assert icc_2_1(ratings) == pytest.approx(0.2898, abs=1e-3)
    assert icc_2_1([[1, 1], [2, 2], [5, 5]]) == pytest.approx(1.0)
    assert math.isnan(icc_2_1([[1, 2]]))
    with pytest.raises(InputError, match="missing"):
        icc_2_1([[1, np.nan], [2, 2]])
