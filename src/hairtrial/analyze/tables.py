"""Site × visit endpoint tables: one row per site and visit, with change from baseline.

The inputs are the long tables that :func:`hairtrial.store.export_tables` writes (with the
arm, i.e. unblinded) or the simulator's ``truth_endpoints.csv``. Missing visits stay missing:
a site seen at baseline but not at day 90 has no day-90 row, and a visit without its site's
baseline has a NaN change. Nothing is imputed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from hairtrial._validate import InputError
from hairtrial.analyze.config import AnalysisConfig

#: Key columns of a site × visit table.
SITE_KEYS: tuple[str, ...] = ("subject", "site", "arm", "visit_day")
#: Largest delay (days) between a visit and its phototrichogram re-image.
_REGROWTH_MAX_DAYS = 7


def require_columns(table: Any, columns: Iterable[str], *, name: str) -> pd.DataFrame:
    """Check that `table` is a DataFrame holding `columns`.

    Parameters
    ----------
    table : DataFrame
        Input table.
    columns : iterable of str
        Required column names.
    name : str
        Table name for the message (``"endpoints"``).

    Returns
    -------
    DataFrame
        The table.

    Raises
    ------
    InputError
        Naming the table and every missing column.
    """
    if not isinstance(table, pd.DataFrame):
        raise InputError(f"{name}: expected a pandas DataFrame, got {type(table).__name__}")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        hint = ""
        if "arm" in missing:
            hint = " (the arm is only in unblinded exports: export with --unblind)"
        raise InputError(
            f"{name}: missing column(s) {', '.join(missing)}{hint}; columns present: "
            f"{', '.join(map(str, table.columns))}"
        )
    return table


def _numeric(frame: pd.DataFrame, columns: Iterable[str], *, name: str) -> pd.DataFrame:
    out = frame.copy()
    for column in columns:
        try:
            out[column] = pd.to_numeric(out[column]).astype(float)
        except (TypeError, ValueError):
            raise InputError(f"{name}: column {column!r} holds non-numeric values") from None
    return out


def _check_sites(frame: pd.DataFrame, *, name: str) -> None:
    arms = frame.groupby("site")["arm"].nunique()
    mixed = arms[arms > 1]
    if len(mixed):
        raise InputError(
            f"{name}: site(s) {', '.join(map(str, mixed.index[:5]))} have more than one arm"
        )
    owners = frame.groupby("site")["subject"].nunique()
    shared = owners[owners > 1]
    if len(shared):
        raise InputError(
            f"{name}: site(s) {', '.join(map(str, shared.index[:5]))} belong to several subjects"
        )


def site_visit_table(
    endpoints: pd.DataFrame, *, config: AnalysisConfig | None = None
) -> pd.DataFrame:
    """One row per site × visit with every endpoint and its change from baseline.

    Parameters
    ----------
    endpoints : DataFrame
        Long endpoints table: ``subject, site, arm, visit_day`` and the columns of
        ``config.endpoints``; optional ``kind`` (rows of ``config.image_kind`` are used;
        without the column every row is), ``image_id`` and ``anagen_fraction``. Several
        images of one site × visit (e.g. two fields) are averaged; images a reviewer
        flagged ``unusable`` are left out.
    config : AnalysisConfig, optional
        Options (defaults when omitted).

    Returns
    -------
    DataFrame
        ``subject, site, arm, visit_day, n_images``, each endpoint, and
        ``<endpoint>_change`` (value minus the site's value at ``config.baseline_day``;
        NaN where that baseline is missing). ``anagen_fraction`` (and its change) is added
        when the table has it, either on the analysed rows (simulator truth) or on
        ``clipped-regrowth`` rows (a phototrichogram result, matched to the visit at most
        7 days before). Sorted by subject, site, visit day.

    Raises
    ------
    InputError
        For a missing column (named with the table), non-numeric endpoints, a site with
        two arms, or no rows of ``config.image_kind``.
    """
    config = config or AnalysisConfig()
    require_columns(endpoints, (*SITE_KEYS, *config.endpoints), name="endpoints")
    frame = endpoints
    if "unusable" in frame.columns:  # a reviewer's flag: the image cannot be measured
        frame = frame[~frame["unusable"].fillna(False).astype(bool).to_numpy()]
    if "kind" in frame.columns:
        kinds = frame["kind"].astype(str)
        regrowth = frame[kinds == "clipped-regrowth"]
        frame = frame[kinds == config.image_kind]
    else:
        regrowth = frame.iloc[:0]
    if frame.empty:
        raise InputError(f"endpoints: no rows of image kind {config.image_kind!r}")
    columns = list(config.endpoints)
    has_anagen = (
        "anagen_fraction" in frame.columns
        and "anagen_fraction" not in columns
        and bool(frame["anagen_fraction"].notna().any())
    )
    if has_anagen:
        columns.append("anagen_fraction")
    frame = _numeric(frame[[*SITE_KEYS, *columns]], [*columns, "visit_day"], name="endpoints")
    if frame[list(SITE_KEYS)].isna().any().any():
        bad = [c for c in SITE_KEYS if frame[c].isna().any()]
        raise InputError(f"endpoints: missing values in key column(s) {', '.join(bad)}")
    frame = frame.astype({"subject": str, "site": str, "arm": str})
    frame["visit_day"] = frame["visit_day"].round().astype(int)
    _check_sites(frame, name="endpoints")
    grouped = frame.groupby(list(SITE_KEYS), sort=True)
    table = grouped[columns].mean()
    table.insert(0, "n_images", grouped.size())
    table = table.reset_index()
    if (
        not has_anagen
        and "anagen_fraction" in regrowth.columns
        and regrowth["anagen_fraction"].notna().any()
    ):
        table = _attach_regrowth(table, regrowth)
        columns.append("anagen_fraction")
    baseline = table[table["visit_day"] == config.baseline_day].set_index("site")[columns]
    for column in columns:
        table[f"{column}_change"] = table[column].to_numpy() - table["site"].map(
            baseline[column]
        ).to_numpy(dtype=float)
    return table.sort_values(["subject", "site", "visit_day"]).reset_index(drop=True)


def _attach_regrowth(table: pd.DataFrame, regrowth: pd.DataFrame) -> pd.DataFrame:
    """Add ``anagen_fraction`` from phototrichogram rows to the visit they re-image."""
    shots = _numeric(
        regrowth[["site", "visit_day", "anagen_fraction"]],
        ["visit_day", "anagen_fraction"],
        name="endpoints",
    ).dropna()
    shots = shots.astype({"site": str})
    values = np.full(len(table), np.nan)
    for i, (site, day) in enumerate(zip(table["site"], table["visit_day"], strict=True)):
        here = shots[(shots["site"] == site) & (shots["visit_day"] > day)]
        here = here[here["visit_day"] <= day + _REGROWTH_MAX_DAYS]
        if len(here):
            values[i] = float(here["anagen_fraction"].mean())
    return table.assign(anagen_fraction=values)


def trial_flow(
    endpoints: pd.DataFrame, table: pd.DataFrame, *, config: AnalysisConfig
) -> dict[str, Any]:
    """Participant and image flow: who was enrolled, which images exist, which are missing.

    Parameters
    ----------
    endpoints : DataFrame
        The raw endpoints table (all image kinds).
    table : DataFrame
        Its :func:`site_visit_table`.
    config : AnalysisConfig
        Options.

    Returns
    -------
    dict
        ``subjects``, ``sites`` (counts), ``visit_days`` (list), ``images_expected``,
        ``images_measured``, ``missing_visits`` and ``subjects_paired`` (dicts keyed by the
        visit day as text: one image of ``config.image_kind`` is expected per site and
        visit), ``images_other_kinds`` (count of other kinds), ``images_unusable``
        (flagged by a reviewer, left out) and ``missing_baseline`` (sites without a
        baseline image).
    """
    days = sorted(int(d) for d in table["visit_day"].unique())
    sites = table[["subject", "site", "arm"]].drop_duplicates()
    n_sites = len(sites)
    measured = table.groupby("visit_day")["site"].nunique()
    expected = {str(d): n_sites for d in days}
    seen = {str(d): int(measured.get(d, 0)) for d in days}
    paired: dict[str, int] = {}
    for day in days:
        at = table[table["visit_day"] == day]
        arms = at.groupby("subject")["arm"].agg(set)
        paired[str(day)] = int(
            sum(1 for a in arms if config.treated_arm in a and config.control_arm in a)
        )
    with_baseline = set(table.loc[table["visit_day"] == config.baseline_day, "site"])
    other = 0
    if "kind" in endpoints.columns:
        other = int((endpoints["kind"].astype(str) != config.image_kind).sum())
    unusable = 0
    if "unusable" in endpoints.columns:
        unusable = int(endpoints["unusable"].fillna(False).astype(bool).sum())
    return {
        "subjects": int(table["subject"].nunique()),
        "sites": int(n_sites),
        "sites_by_arm": {
            str(k): int(v) for k, v in sites["arm"].value_counts().sort_index().items()
        },
        "visit_days": days,
        "images_expected": expected,
        "images_measured": seen,
        "missing_visits": {d: expected[d] - seen[d] for d in expected},
        "subjects_paired": paired,
        "missing_baseline": int(n_sites - len(with_baseline)),
        "images_other_kinds": other,
        "images_unusable": unusable,
    }
