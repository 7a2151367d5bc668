import numpy as np
import pytest

from hairtrial._validate import (
    InputError,
    check_choice,
    check_image,
    check_range,
    check_um_per_px,
)


def test_check_image_accepts_grey_and_rgb_without_copy():
    img = np.zeros((4, 5, 3), np.uint8)
    assert check_image(img) is img
    assert check_image(np.zeros((4, 5))).shape == (4, 5)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros(5), "2-D or 3-D"),
        (np.zeros((4, 4, 4)), "3 colour channels"),
        (np.zeros((1, 4)), "too small"),
        (np.array([[1.0, np.nan], [0, 0]]), "NaN"),
        (np.zeros((3, 3), bool), "dtype"),
    ],
)
def test_check_image_rejects(array, message):
    with pytest.raises(InputError, match=message):
        check_image(array, path="x.png")


@pytest.mark.parametrize("value", [None, 0, -1, float("nan"), "abc"])
def test_calibration_is_required_and_positive(value):
    with pytest.raises(InputError, match="um_per_px"):
        check_um_per_px(value, path="a.jpg")


def test_range_and_choice_name_the_field():
    assert check_range(3, name="f", low=0, high=5) == 3.0
    with pytest.raises(InputError, match=r"f: 7 is outside the allowed range \[0, 5\]"):
        check_range(7, name="f", low=0, high=5)
    with pytest.raises(InputError, match="'x' is not one of"):
        check_choice("x", name="arm", choices=["cells", "saline"])
