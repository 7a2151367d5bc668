"""Fields: the imaged area of a visit, less the rows a status bar hides."""

import numpy as np
import pytest

from hairtrial.track._geometry import Field


def test_field_of_an_image_less_its_hidden_rows():
    whole = Field.from_shape((100, 200))
    barred = Field.from_shape((100, 200), top=30, bottom=10)
    pts = np.array([[50.0, 5.0], [50.0, 31.0], [50.0, 89.0], [50.0, 95.0], [210.0, 50.0]])
    assert whole.contains(pts).tolist() == [True, True, True, True, False]
    assert barred.contains(pts).tolist() == [False, True, True, False, False]
    # the margin counts from the bar's edge as from the image's
    assert barred.contains(np.array([[50.0, 34.0], [50.0, 36.0]]), margin=5.0).tolist() == [
        False,
        True,
    ]


@pytest.mark.parametrize(("top", "bottom"), [(100, 0), (60, 40), (0, 120)])
def test_field_hidden_whole_contains_nothing(top, bottom):
    field = Field.from_shape((100, 200), top=top, bottom=bottom)
    assert not field.contains(np.array([[50.0, 50.0], [1.0, 99.0]])).any()
