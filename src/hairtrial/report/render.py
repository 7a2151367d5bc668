"""Render a :class:`~hairtrial.report.model.ReportContent` as HTML and as PDF.

The HTML is one self-contained file: inline CSS, every image a base64 ``data:`` URI, no
script and no external link, so it reads offline and can be archived as is. The PDF is
drawn with reportlab in ``invariant`` mode (fixed creation date and document id) with the
standard Helvetica fonts, so the same content always gives the same bytes.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from hairtrial.report.model import Figure, ReportContent, Table, Text

_TEMPLATES = Path(__file__).parent / "templates"
#: Characters missing from the standard fonts' encoding, drawn from the Symbol font.
_SYMBOL_CHARS = "−≥≤Δ±×"
_FIGURE_DPI = 110.0


def _block_view(block: Text | Table | Figure) -> dict[str, Any]:
    if isinstance(block, Text):
        return {"kind": "text", "text": block.text, "pre": block.pre}
    if isinstance(block, Table):
        return {
            "kind": "table",
            "caption": block.caption,
            "columns": block.columns,
            "rows": block.rows,
            "note": block.note,
        }
    uri = f"data:{block.mime};base64,{base64.b64encode(block.data).decode('ascii')}"
    return {"kind": "figure", "key": block.key, "caption": block.caption, "uri": uri}


def render_html(content: ReportContent, *, generated_at: str) -> str:
    """Render the report as one self-contained HTML page.

    Parameters
    ----------
    content : ReportContent
        What to show.
    generated_at : str
        Generation time, shown in a ``<span class="generated-at">`` (the only part of the
        page that changes between runs on the same inputs).

    Returns
    -------
    str
        The HTML text.
    """
    import jinja2

    from hairtrial import __version__

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    sections = [
        {"id": s.id, "title": s.title, "blocks": [_block_view(b) for b in s.blocks]}
        for s in content.sections
    ]
    view = {
        "title": content.title,
        "banner": content.banner,
        "blinded": content.blinded,
        "facts": content.facts,
        "sections": sections,
    }
    return env.get_template("report.html.j2").render(
        content=view, generated_at=generated_at, version=__version__
    )


def _pdf_text(text: str) -> str:
    """Escape `text` for a reportlab Paragraph; symbols outside WinAnsi use Symbol."""
    out = []
    for ch in escape(text):
        if ch in _SYMBOL_CHARS:
            out.append(f'<font face="Symbol">{ch}</font>')
        else:
            out.append(ch)
    return "".join(out)


def _column_widths(table: Table, available: float) -> list[float]:
    lengths = []
    for i, column in enumerate(table.columns):
        cells = [len(column)] + [len(row[i]) for row in table.rows if i < len(row)]
        lengths.append(min(max(max(cells), 4), 60))
    total = float(sum(lengths))
    return [available * n / total for n in lengths]


def render_pdf(content: ReportContent, path: str | Path) -> Path:
    """Write the report as PDF (same sections, tables and figures as the HTML).

    Parameters
    ----------
    content : ReportContent
        What to show.
    path : str or Path
        Destination ``.pdf``.

    Returns
    -------
    Path
        The file written.
    """
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import (
        Image,
        KeepTogether,
        Paragraph,
        Preformatted,
        SimpleDocTemplate,
        Spacer,
        TableStyle,
    )
    from reportlab.platypus import Table as PdfTable

    path = Path(path)
    styles = getSampleStyleSheet()
    body = ParagraphStyle(
        "body", parent=styles["BodyText"], fontName="Helvetica", fontSize=9, leading=11.5
    )
    cell = ParagraphStyle("cell", parent=body, fontSize=7.2, leading=8.6)
    head = ParagraphStyle("head", parent=cell, fontName="Helvetica-Bold")
    caption = ParagraphStyle("caption", parent=body, fontName="Helvetica-Bold", fontSize=8.5)
    note = ParagraphStyle("note", parent=body, fontSize=7.5, textColor=colors.HexColor("#555555"))
    h1 = ParagraphStyle(
        "h1", parent=styles["Title"], fontName="Helvetica-Bold", fontSize=18, alignment=0
    )
    h2 = ParagraphStyle(
        "h2",
        parent=styles["Heading2"],
        fontName="Helvetica-Bold",
        fontSize=13,
        textColor=colors.HexColor("#00507d"),
    )
    tone = "#e8f1fa" if content.blinded else "#fdecea"
    banner = ParagraphStyle(
        "banner",
        parent=body,
        fontName="Helvetica-Bold",
        fontSize=10,
        backColor=colors.HexColor(tone),
        borderPadding=6,
        leading=13,
    )
    pagesize = landscape(A4)
    margin = 14 * mm
    frame_w = pagesize[0] - 2 * margin
    frame_h = pagesize[1] - 2 * margin - 12

    story: list[Any] = [Paragraph(_pdf_text(content.title), h1), Spacer(1, 4)]
    story += [Paragraph(_pdf_text(content.banner), banner), Spacer(1, 10)]
    for key, value in content.facts:
        story.append(Paragraph(f"<b>{_pdf_text(key)}:</b> {_pdf_text(value)}", body))
    for number, section in enumerate(content.sections, start=1):
        story.append(Paragraph(_pdf_text(f"{number}. {section.title}"), h2))
        for block in section.blocks:
            if isinstance(block, Text):
                if block.pre:
                    story.append(
                        Preformatted(
                            block.text, ParagraphStyle("pre", parent=cell, fontName="Courier")
                        )
                    )
                else:
                    story.append(Paragraph(_pdf_text(block.text), body))
                story.append(Spacer(1, 4))
            elif isinstance(block, Table):
                data = [[Paragraph(_pdf_text(c), head) for c in block.columns]]
                data += [[Paragraph(_pdf_text(c), cell) for c in row] for row in block.rows]
                table = PdfTable(data, colWidths=_column_widths(block, frame_w), repeatRows=1)
                table.setStyle(
                    TableStyle(
                        [
                            ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#c8c8c8")),
                            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#f0f3f6")),
                            ("VALIGN", (0, 0), (-1, -1), "TOP"),
                            ("TOPPADDING", (0, 0), (-1, -1), 1.5),
                            ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
                        ]
                    )
                )
                story += [Paragraph(_pdf_text(block.caption), caption), table]
                if block.note:
                    story.append(Paragraph(_pdf_text(block.note), note))
                story.append(Spacer(1, 8))
            else:
                story.append(
                    _pdf_figure(block, frame_w, frame_h, caption, Image, KeepTogether, Paragraph)
                )
    title = content.title

    def footer(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7.5)
        canvas.setFillColor(colors.HexColor("#666666"))
        canvas.drawString(margin, margin / 2, title)
        canvas.drawRightString(pagesize[0] - margin, margin / 2, f"page {doc.page}")
        canvas.restoreState()

    doc = SimpleDocTemplate(
        str(path),
        pagesize=pagesize,
        leftMargin=margin,
        rightMargin=margin,
        topMargin=margin,
        bottomMargin=margin,
        title=title,
        author="hairtrial",
        subject="trial report",
        creator="hairtrial",
        invariant=1,
    )
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return path


def _pdf_figure(
    block: Figure,
    frame_w: float,
    frame_h: float,
    style: Any,
    image_cls: Any,
    keep_cls: Any,
    paragraph_cls: Any,
) -> Any:
    from PIL import Image as PILImage

    with PILImage.open(io.BytesIO(block.data)) as img:
        w_px, h_px = img.size
    width = w_px * 72.0 / _FIGURE_DPI
    height = h_px * 72.0 / _FIGURE_DPI
    scale = min(1.0, frame_w / width, (frame_h - 40) / height)
    picture = image_cls(io.BytesIO(block.data), width=width * scale, height=height * scale)
    picture.hAlign = "LEFT"
    return keep_cls([picture, paragraph_cls(_pdf_text(block.caption), style)])
