"""The report as plain data: sections of text, tables and figures.

Both renderers (HTML and PDF, :mod:`hairtrial.report.render`) draw the same
:class:`ReportContent`, so the two files always hold the same sections, tables and figures.
All values are already formatted strings with blinded labels where the report is blinded.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from hairtrial.report.blinding import ArmCoding

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Text:
    """A paragraph (``pre=True``: preformatted text such as a model summary)."""

    text: str
    pre: bool = False


@dataclass(frozen=True)
class Table:
    """A table of formatted cells with a caption."""

    caption: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = ""


@dataclass(frozen=True)
class Figure:
    """An image with a caption; `data` holds PNG or JPEG bytes."""

    key: str
    caption: str
    data: bytes
    mime: str = "image/png"

    @property
    def suffix(self) -> str:
        """File suffix for the image format."""
        return ".jpg" if self.mime == "image/jpeg" else ".png"


Block = Text | Table | Figure


@dataclass(frozen=True)
class Section:
    """One numbered section of the report."""

    id: str
    title: str
    blocks: tuple[Block, ...] = ()


@dataclass(frozen=True)
class ReportContent:
    """Everything the report shows.

    Parameters
    ----------
    title : str
        Report title.
    banner : str
        Blinding banner text.
    blinded : bool
        Whether arms are coded.
    facts : tuple of (str, str)
        Key facts under the title (trial, data as of, arms...).
    sections : tuple of Section
        In order.
    """

    title: str
    banner: str
    blinded: bool
    facts: tuple[tuple[str, str], ...]
    sections: tuple[Section, ...] = field(default=())

    @property
    def figures(self) -> list[Figure]:
        """Every figure, in order."""
        return [b for s in self.sections for b in s.blocks if isinstance(b, Figure)]

    def masked(self, coding: ArmCoding) -> ReportContent:
        """Return a copy with arm names masked in every string (a no-op when unblinded)."""
        if not coding.blinded:
            return self

        def block(b: Block) -> Block:
            if isinstance(b, Text):
                return replace(b, text=coding.mask(b.text))
            if isinstance(b, Table):
                return Table(
                    coding.mask(b.caption),
                    tuple(coding.mask(c) for c in b.columns),
                    tuple(tuple(coding.mask(c) for c in row) for row in b.rows),
                    coding.mask(b.note),
                )
            return replace(b, caption=coding.mask(b.caption))

        return replace(
            self,
            title=coding.mask(self.title),
            facts=tuple((coding.mask(k), coding.mask(v)) for k, v in self.facts),
            sections=tuple(
                replace(s, title=coding.mask(s.title), blocks=tuple(block(b) for b in s.blocks))
                for s in self.sections
            ),
        )

    def text(self) -> str:
        """All visible text (titles, paragraphs, cells, captions), for checks."""
        parts = [self.title, self.banner, *(f"{k} {v}" for k, v in self.facts)]
        for s in self.sections:
            parts.append(s.title)
            for b in s.blocks:
                if isinstance(b, Text):
                    parts.append(b.text)
                elif isinstance(b, Table):
                    parts += [b.caption, *b.columns, *(c for row in b.rows for c in row), b.note]
                else:
                    parts.append(b.caption)
        return "\n".join(parts)


def fmt(value: Any, digits: int = 2) -> str:
    """Format a number for a table cell (``–`` for missing values)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "–" if value is None else str(value)
    if not math.isfinite(v):
        return "–"
    if float(v).is_integer() and abs(v) < 1e9 and digits == 0:
        return str(int(v))
    return f"{v:.{digits}f}"


def fmt_p(value: Any) -> str:
    """Format a p-value (``< 0.001`` below that)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "–"
    if not math.isfinite(v):
        return "–"
    return "< 0.001" if v < 0.001 else f"{v:.3f}"


def fmt_ci(estimate: Any, low: Any, high: Any, digits: int = 2) -> str:
    """Format ``estimate (low to high)``."""
    return f"{fmt(estimate, digits)} ({fmt(low, digits)} to {fmt(high, digits)})"


def iter_rows(frame: pd.DataFrame) -> Iterator[Any]:
    """Iterate over a table's rows as named tuples (attributes untyped, as cells are)."""
    return iter(frame.itertuples(index=False))
