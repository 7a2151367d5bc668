"""The follicle table read by :func:`hairtrial.simulate.render.render_field` (private).

Validates every column, names the offending column and row in errors, and copies the table
into plain arrays so that the caller's frame is never modified.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from hairtrial._validate import InputError
from hairtrial.simulate._render_shafts import UNCUT_MIN_UM

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
B = NDArray[np.bool_]

#: Columns every follicle table must have.
REQUIRED_COLUMNS: tuple[str, ...] = (
    "follicle_id",
    "fu_id",
    "x_um",
    "y_um",
    "phase",
    "has_shaft",
    "diameter_um",
    "length_um",
    "azimuth_deg",
    "elevation_deg",
)
#: Hair-cycle phases accepted in the ``phase`` column.
PHASES: tuple[str, ...] = ("anagen", "catagen", "telogen", "kenogen")


@dataclass(frozen=True)
class Follicles:
    """The validated follicle table as arrays (one entry per row, in table order)."""

    follicle_id: I64
    fu_id: I64
    x_um: F64
    y_um: F64
    phase: NDArray[np.str_]
    has_shaft: B
    diameter_um: F64
    length_um: F64
    azimuth_deg: F64
    elevation_deg: F64
    pigment: F64
    clipped: B


def _bad_row(df: pd.DataFrame, bad: B) -> Any:
    return df.index[int(np.flatnonzero(bad)[0])]


def _int_column(df: pd.DataFrame, name: str) -> I64:
    col = df[name]
    if col.dtype.kind in "iu" and not col.isna().any():
        return col.to_numpy(dtype=np.int64, copy=True)
    try:
        values = pd.to_numeric(col, errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        raise InputError(f"follicles: column {name!r} must hold integers") from None
    if col.dtype.kind == "b" or not np.all(np.isfinite(values) & (values == np.round(values))):
        raise InputError(f"follicles: column {name!r} must hold integers (no NaN or fractions)")
    return values.astype(np.int64)


def _float_column(df: pd.DataFrame, name: str) -> F64:
    try:
        numbers = pd.to_numeric(df[name], errors="raise")
        return numbers.to_numpy(dtype=np.float64, copy=True, na_value=np.nan)
    except (TypeError, ValueError):
        raise InputError(f"follicles: column {name!r} must hold numbers") from None


def _is_bool(value: Any) -> bool:
    if isinstance(value, bool | np.bool_):
        return True
    return isinstance(value, int | np.integer) and int(value) in (0, 1)


def _bool_column(df: pd.DataFrame, name: str) -> B:
    col = df[name]
    if col.dtype == np.bool_:
        return col.to_numpy(dtype=bool, copy=True)
    values = col.to_numpy(dtype=object)
    ok = np.array([_is_bool(v) for v in values], dtype=bool)
    if not ok.all():
        bad = values[int(np.flatnonzero(~ok)[0])]
        raise InputError(f"follicles: column {name!r} must hold booleans, found {bad!r}")
    return np.array([bool(v) for v in values], dtype=bool)


def read_follicles(follicles: Any) -> Follicles:
    """Validate the follicle table and copy it into arrays (the caller's frame is untouched)."""
    if not isinstance(follicles, pd.DataFrame):
        raise InputError(f"follicles: expected a pandas DataFrame, got {type(follicles).__name__}")
    missing = [c for c in REQUIRED_COLUMNS if c not in follicles.columns]
    if missing:
        raise InputError(
            f"follicles: missing column(s) {', '.join(missing)}; required: "
            f"{', '.join(REQUIRED_COLUMNS)}"
        )
    df = follicles
    fid = _int_column(df, "follicle_id")
    unique, counts = np.unique(fid, return_counts=True)
    if np.any(counts > 1):
        raise InputError(
            f"follicles: follicle_id must be unique, {int(unique[counts > 1][0])} repeats"
        )
    fu = _int_column(df, "fu_id")
    x, y = _float_column(df, "x_um"), _float_column(df, "y_um")
    for name, arr in (("x_um", x), ("y_um", y)):
        if not np.all(np.isfinite(arr)):
            row = _bad_row(df, ~np.isfinite(arr))
            raise InputError(f"follicles: column {name!r} must be finite; row {row!r}")
    phase = np.array([str(p) for p in df["phase"].to_numpy(dtype=object)], dtype=np.str_)
    bad_phase = ~np.isin(phase, PHASES)
    if bad_phase.any():
        raise InputError(
            f"follicles: column 'phase' has {phase[bad_phase][0]!r} in row "
            f"{_bad_row(df, bad_phase)!r}; expected one of {{{', '.join(PHASES)}}}"
        )
    has = _bool_column(df, "has_shaft")
    diam, length = _float_column(df, "diameter_um"), _float_column(df, "length_um")
    az, el = _float_column(df, "azimuth_deg"), _float_column(df, "elevation_deg")
    checks = (
        ("diameter_um", ~(np.isfinite(diam) & (diam > 0)), "a finite diameter > 0"),
        ("length_um", ~(np.isfinite(length) & (length >= 0)), "a finite length >= 0"),
        ("azimuth_deg", ~np.isfinite(az), "a finite azimuth"),
        ("elevation_deg", ~(np.isfinite(el) & (el >= 0) & (el <= 90)), "an elevation in [0, 90]"),
    )
    for name, bad, what in checks:
        bad = bad & has
        if bad.any():
            raise InputError(
                f"follicles: column {name!r} needs {what} where has_shaft is true; row "
                f"{_bad_row(df, bad)!r} has {df[name].to_numpy()[np.flatnonzero(bad)[0]]!r}"
            )
    pigment = np.ones(len(df))
    if "pigment" in df.columns:
        pigment = _float_column(df, "pigment")
        bad = has & ~(np.isfinite(pigment) & (pigment >= 0) & (pigment <= 1))
        if bad.any():
            raise InputError(
                f"follicles: column 'pigment' must be in [0, 1]; row {_bad_row(df, bad)!r}"
            )
        pigment = np.where(np.isfinite(pigment), pigment, 1.0)
    clipped = np.where(np.isfinite(length), length, 0.0) <= UNCUT_MIN_UM
    if "clipped" in df.columns:
        # Missing values (NaN / None) fall back to the length rule.
        given = df["clipped"].notna().to_numpy()
        if given.any():
            clipped = clipped.copy()
            clipped[given] = _bool_column(df[given], "clipped")
    return Follicles(
        follicle_id=fid, fu_id=fu, x_um=x, y_um=y, phase=phase, has_shaft=has,
        diameter_um=np.where(has, diam, np.nan), length_um=np.where(has, length, np.nan),
        azimuth_deg=np.where(has, az, 0.0), elevation_deg=np.where(has, el, 45.0),
        pigment=pigment, clipped=clipped,
    )  # fmt: skip
