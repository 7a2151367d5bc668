"""The trial manifest: one CSV row per image (DESIGN.md data contract).

Required columns ``image,subject,site,arm,visit_day,um_per_px``; optional ``kind``
(``clipped``, ``clipped-regrowth``, ``unclipped``, ``dyed``), ``acquired_at`` and ``device``.
Image paths are relative to the manifest's folder unless absolute. Every bad row is
reported with its line number in one error, so a user fixes the file in one pass.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from hairtrial._validate import InputError

MANIFEST_COLUMNS = ("image", "subject", "site", "arm", "visit_day", "um_per_px")
OPTIONAL_COLUMNS = ("kind", "acquired_at", "device")
IMAGE_KINDS = ("clipped", "clipped-regrowth", "unclipped", "dyed")


def check_manifest_row(row: Mapping[str, str], line: int) -> list[str]:
    """Return the problems of one manifest row, each ``"line N: ..."`` (empty when good).

    Parameters
    ----------
    row : mapping of str to str
        The row's cells by column name, stripped.
    line : int
        The row's line number in the CSV file (the header is line 1).

    Returns
    -------
    list of str
        One message per problem: empty required cells, non-numeric or non-positive
        values, unknown image kinds.
    """
    problems: list[str] = []
    for column in MANIFEST_COLUMNS:
        if not (row.get(column) or "").strip():
            problems.append(f"line {line}: {column} is empty")
    day = (row.get("visit_day") or "").strip()
    if day:
        try:
            value = float(day)
            if not value.is_integer():
                problems.append(f"line {line}: visit_day must be a whole number, got {day!r}")
        except ValueError:
            problems.append(f"line {line}: visit_day must be a number of days, got {day!r}")
    cal = (row.get("um_per_px") or "").strip()
    if cal:
        try:
            um = float(cal)
            if not math.isfinite(um) or um <= 0:
                problems.append(f"line {line}: um_per_px must be positive, got {cal!r}")
        except ValueError:
            problems.append(f"line {line}: um_per_px must be a number, got {cal!r}")
    kind = (row.get("kind") or "").strip()
    if kind and kind not in IMAGE_KINDS:
        problems.append(f"line {line}: kind {kind!r} is not one of {{{', '.join(IMAGE_KINDS)}}}")
    return problems


def read_manifest_rows(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Read a manifest CSV's header and raw rows, checking the required columns.

    Parameters
    ----------
    path : Path
        The manifest file.

    Returns
    -------
    header : list of str
        Column names, stripped.
    rows : list of (int, dict)
        ``(line number, cells by column)`` per data row, cells stripped; the header is line 1.

    Raises
    ------
    InputError
        If the file is missing or lacks a required column.
    """
    if not path.is_file():
        raise InputError(f"{path}: manifest not found")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in MANIFEST_COLUMNS if c not in header]
        if missing:
            raise InputError(f"{path}: manifest lacks column(s) {', '.join(missing)}")
        rows = [
            (line_no, {(k or "").strip(): (v or "").strip() for k, v in raw.items()})
            for line_no, raw in enumerate(reader, start=2)
        ]
    return header, rows


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Read and check a manifest CSV.

    Parameters
    ----------
    path : str or Path
        The manifest file.

    Returns
    -------
    DataFrame
        One row per image with the required columns (``visit_day`` int, ``um_per_px``
        float, ``image`` resolved to an absolute path string), the optional columns present
        in the file, and ``line`` (the CSV line number, for error messages downstream).

    Raises
    ------
    InputError
        Naming the file and every bad line: missing columns, empty cells, non-numeric or
        non-positive values, unknown image kinds.
    """
    path = Path(path)
    header, raw_rows = read_manifest_rows(path)
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    for line_no, row in raw_rows:
        found = check_manifest_row(row, line_no)
        problems.extend(found)
        if not found:
            rows.append({**row, "line": line_no})
    if problems:
        raise InputError(f"{path}: {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    columns = [*MANIFEST_COLUMNS, *[c for c in OPTIONAL_COLUMNS if c in header], "line"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["visit_day"] = frame["visit_day"].astype(float).astype("int64")
    frame["um_per_px"] = frame["um_per_px"].astype(float)
    base = path.parent.resolve()
    frame["image"] = [str(p if Path(p).is_absolute() else base / p) for p in frame["image"]]
    return frame


def write_manifest(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write a manifest CSV (required columns first, then the optional ones used).

    Parameters
    ----------
    path : str or Path
        Destination file.
    rows : iterable of mappings
        One mapping per image with at least the required columns.

    Returns
    -------
    Path
        The path written.
    """
    path = Path(path)
    rows = list(rows)
    optional = [c for c in OPTIONAL_COLUMNS if any(c in r for r in rows)]
    columns = [*MANIFEST_COLUMNS, *optional]
    problems = [
        f"row {i}: missing {c}" for i, r in enumerate(rows) for c in MANIFEST_COLUMNS if c not in r
    ]
    if problems:
        raise InputError(f"{path}: cannot write manifest: " + "; ".join(problems))
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({c: r.get(c, "") for c in columns})
    return path
