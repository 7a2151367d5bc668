"""The tidy tables of a trial database, in memory (pandas DataFrames).

:func:`read_tables` gives the same tables as :func:`hairtrial.store.export_tables`
writes (``endpoints``, ``hairs``, ``follicle_trajectories``, ``phototrichograms``,
``runs``; see
:mod:`hairtrial.store.export` for their columns and units) with the same column order and
dtypes, for callers such as the report that analyse a database directly.
:func:`read_corrections` lists the review revisions and the hair corrections they made, and
:func:`read_trial_arms` the arms each trial declares and :func:`read_images` every
ingested image (measured or not), so no caller above ``store`` needs
SQL. The arm is left out unless ``include_arm=True`` (unblinded use only).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hairtrial.store.engine import Store
from hairtrial.store.export import TABLES, _columns, _schema

if TYPE_CHECKING:
    import pandas as pd


def _frame(columns: Sequence[tuple[str, str]], rows: Iterator[dict[str, Any]]) -> pd.DataFrame:
    """Build the DataFrame that reading the exported Parquet file would give.

    The rows go through the export's Arrow schema, so dtypes match ``pd.read_parquet`` of
    an export (integers with gaps become float, timestamps UTC). Keys the rows carry
    beyond `columns` (columns the export gained later) are kept after them, with types
    inferred by Arrow, so this module does not fall behind the export.
    """
    import pyarrow as pa

    records = list(rows)
    schema = _schema(columns)
    known = set(schema.names)
    extra = [key for key in (records[0] if records else {}) if key not in known]
    for key in extra:
        schema = schema.append(pa.field(key, pa.array([r.get(key) for r in records]).type))
    return pa.Table.from_pylist(records, schema=schema).to_pandas()


def read_tables(*, store: Store, include_arm: bool = False) -> dict[str, pd.DataFrame]:
    """Read the tidy tables of a trial database into memory.

    Parameters
    ----------
    store : Store
        Open trial database.
    include_arm : bool
        Add the ``arm`` column after ``site`` (unblinded use only: statistics after
        database lock, unblinded reports).

    Returns
    -------
    dict of str to DataFrame
        ``endpoints`` (one row per image from its latest done run), ``hairs`` (one row per
        hair of those runs; ``centerline_px`` as JSON text), ``follicle_trajectories``
        (one row per follicle × image), ``phototrichograms`` (one row per stored
        phototrichogram result) and ``runs`` (every measurement run, failed ones
        with their error). Columns as :func:`~hairtrial.store.export_tables` writes them
        (keys first; columns a row source adds beyond ``export.TABLES`` come last), with
        the dtypes ``pandas.read_parquet`` gives for an export. An empty database gives
        empty tables with the known columns.
    """
    return {
        name: _frame(_columns(include_arm, *columns), rows(store, include_arm))
        for name, (columns, rows) in TABLES.items()
    }


def read_corrections(*, store: Store) -> pd.DataFrame:
    """List the review revisions of measured images and the hair corrections they made.

    Parameters
    ----------
    store : Store
        Open trial database.

    Returns
    -------
    DataFrame
        One row per revision, oldest first: ``review_id, image_id, image, site,
        visit_day, status`` ({'draft', 'approved'}), ``unusable`` (bool),
        ``unusable_reason``, ``added``, ``deleted``, ``edited`` (hairs changed against the
        revision's base), ``author``, ``created_at`` (UTC). Empty, with these columns,
        when nothing was reviewed.
    """
    import pandas as pd
    from sqlalchemy import case, func, select

    from hairtrial.store.models import Correction, Image, Review, Site, User, Visit

    counts = (
        select(
            Correction.review_id,
            *(
                func.sum(case((Correction.action == action, 1), else_=0)).label(action)
                for action in ("add", "delete", "edit")
            ),
        )
        .group_by(Correction.review_id)
        .subquery("counts")
    )
    query = (
        select(
            Review.id,
            Image.id,
            Image.source_path,
            Site.code,
            Visit.day,
            Review.status,
            Review.unusable,
            Review.unusable_reason,
            counts.c.add,
            counts.c.delete,
            counts.c.edit,
            User.username,
            Review.created_at,
        )
        .join(Image, Image.id == Review.image_id)
        .join(Visit, Visit.id == Image.visit_id)
        .join(Site, Site.id == Visit.site_id)
        .join(User, User.id == Review.author_id)
        .outerjoin(counts, counts.c.review_id == Review.id)
        .order_by(Review.created_at, Review.id)
    )
    names = [
        "review_id",
        "image_id",
        "image",
        "site",
        "visit_day",
        "status",
        "unusable",
        "unusable_reason",
        "added",
        "deleted",
        "edited",
        "author",
        "created_at",
    ]
    with store.session() as session:
        rows = [
            (*row[:2], Path(row[2]).name, *row[3:8], *(int(n or 0) for n in row[8:11]), *row[11:])
            for row in session.execute(query)
        ]
    frame = pd.DataFrame.from_records(rows, columns=names)
    for name in ("added", "deleted", "edited"):
        frame[name] = frame[name].astype("int64")
    frame["unusable"] = frame["unusable"].astype(bool)
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    return frame


def read_trial_arms(*, store: Store) -> dict[str, tuple[str, ...]]:
    """Return each trial's declared arms, in the order the trial lists them.

    Parameters
    ----------
    store : Store
        Open trial database.

    Returns
    -------
    dict of str to tuple of str
        Trial name → arm labels (unblinded use only).
    """
    from sqlalchemy import select

    from hairtrial.store.models import Trial

    with store.session() as session:
        return {
            name: tuple(arms)
            for name, arms in session.execute(select(Trial.name, Trial.arms).order_by(Trial.id))
        }


def read_images(*, store: Store, include_arm: bool = False) -> pd.DataFrame:
    """List every ingested image, measured or not (for participant flow).

    Parameters
    ----------
    store : Store
        Open trial database.
    include_arm : bool
        Add the ``arm`` column after ``site`` (unblinded use only).

    Returns
    -------
    DataFrame
        One row per image: ``trial, subject, site, [arm,] visit_day, kind, image_id,
        image`` (file name), ordered by subject, site, day, kind and id.
    """
    from sqlalchemy import select

    from hairtrial.store.export import _context, _image_context
    from hairtrial.store.models import Image, Site, Subject, Visit

    query = _image_context(select(Image.id, Image.kind, Image.source_path), include_arm)
    query = query.order_by(Subject.code, Site.code, Visit.day, Image.kind, Image.id)
    columns = _columns(include_arm, ("kind", "str"), ("image_id", "int"), ("image", "str"))
    with store.session() as session:
        rows = [
            {
                **_context(row[3:], include_arm),
                "kind": row[1],
                "image_id": row[0],
                "image": Path(row[2]).name,
            }
            for row in session.execute(query)
        ]
    return _frame(columns, iter(rows))
