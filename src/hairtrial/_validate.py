"""Input checks shared by every public function.

Each helper raises :class:`ValueError` (or :class:`TypeError`) whose message names the
argument, the file when there is one, and what was expected, so that a user reading a batch
log can tell at once which input is wrong and why.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray


class InputError(ValueError):
    """Bad input: the message names the argument or file and the problem."""


def _where(name: str, path: str | Path | None) -> str:
    return f"{name} ({path})" if path is not None else name


def check_image(image: Any, *, name: str = "image", path: str | Path | None = None) -> NDArray[Any]:
    """Check that `image` is a finite 2-D greyscale or 3-D RGB array.

    Parameters
    ----------
    image : (M, N) or (M, N, 3) array_like
        The image to check.
    name : str
        Argument name used in error messages.
    path : str or Path, optional
        File the image came from, named in error messages.

    Returns
    -------
    image : (M, N) or (M, N, 3) ndarray
        The same data as an ndarray (not copied when already one).

    Raises
    ------
    InputError
        If the array has the wrong dimensionality, channel count, dtype or non-finite values.
    """
    where = _where(name, path)
    arr = np.asarray(image)
    if arr.ndim not in (2, 3):
        raise InputError(f"{where}: expected a 2-D or 3-D array, got {arr.ndim}-D {arr.shape}")
    if arr.ndim == 3 and arr.shape[2] != 3:
        raise InputError(f"{where}: expected 3 colour channels (RGB), got {arr.shape[2]}")
    if arr.shape[0] < 2 or arr.shape[1] < 2:
        raise InputError(f"{where}: image is too small ({arr.shape[1]}x{arr.shape[0]} px)")
    if arr.dtype.kind not in "uif" or arr.dtype == np.bool_:
        raise InputError(f"{where}: expected an integer or float image, got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise InputError(f"{where}: image contains NaN or infinite values")
    return arr


def check_positive(value: Any, *, name: str, path: str | Path | None = None) -> float:
    """Check that `value` is a finite number > 0 and return it as float.

    Parameters
    ----------
    value : float
        The number to check (e.g. a calibration in µm per pixel).
    name : str
        Argument name used in error messages.
    path : str or Path, optional
        File the value belongs to, named in error messages.

    Returns
    -------
    float
        The value.

    Raises
    ------
    InputError
        If the value is missing, not a number, not finite, or not positive.
    """
    where = _where(name, path)
    if value is None:
        raise InputError(f"{where}: a positive number is required, got nothing")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{where}: expected a positive number, got {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise InputError(f"{where}: expected a positive finite number, got {value!r}")
    return number


def check_um_per_px(value: Any, *, path: str | Path | None = None) -> float:
    """Check an image calibration in µm per pixel.

    Parameters
    ----------
    value : float, µm/px
        Calibration; there is never a default, so ``None`` is an error.
    path : str or Path, optional
        Image the calibration belongs to.

    Returns
    -------
    float, µm/px
        The calibration.
    """
    if value is None:
        raise InputError(
            f"{_where('um_per_px', path)}: no calibration given; pass --um-per-px, a manifest "
            "value or measure a calibration slide with `hairtrial calibrate`"
        )
    return check_positive(value, name="um_per_px", path=path)


def check_range(
    value: Any,
    *,
    name: str,
    low: float,
    high: float,
    path: str | Path | None = None,
) -> float:
    """Check that `value` is a number inside the closed interval [`low`, `high`].

    Parameters
    ----------
    value : float
        The number to check.
    name : str
        Field or argument name used in error messages.
    low, high : float
        Allowed range, inclusive.
    path : str or Path, optional
        File the value came from.

    Returns
    -------
    float
        The value.
    """
    where = _where(name, path)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{where}: expected a number in [{low}, {high}], got {value!r}") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise InputError(f"{where}: {value!r} is outside the allowed range [{low}, {high}]")
    return number


def check_choice(
    value: Any, *, name: str, choices: Iterable[str], path: str | Path | None = None
) -> str:
    """Check that `value` is one of `choices`.

    Parameters
    ----------
    value : str
        The value to check.
    name : str
        Field or argument name used in error messages.
    choices : iterable of str
        Allowed values.
    path : str or Path, optional
        File the value came from.

    Returns
    -------
    str
        The value.
    """
    allowed = list(choices)
    if value not in allowed:
        raise InputError(f"{_where(name, path)}: {value!r} is not one of {{{', '.join(allowed)}}}")
    return str(value)


def check_fields(table: Any, *, known: Iterable[str], what: str, source: str) -> Mapping[str, Any]:
    """Check that `table` is a mapping whose keys are all `known` field names.

    Parameters
    ----------
    table : mapping
        Parsed configuration table (e.g. a TOML ``[treatment]`` section).
    known : iterable of str
        Allowed field names.
    what : str
        What the table configures, for the message (``"treatment"``).
    source : str
        File or table the fields came from.

    Returns
    -------
    mapping
        The table.

    Raises
    ------
    InputError
        If `table` is not a mapping or holds an unknown field; the message lists the
        allowed ones.
    """
    if not isinstance(table, Mapping):
        raise InputError(f"{source}: expected a table of {what} fields, got {table!r}")
    allowed = sorted(known)
    for key in table:
        if key not in allowed:
            raise InputError(
                f"{source}: unknown {what} field {key!r}; allowed fields are {', '.join(allowed)}"
            )
    return table
