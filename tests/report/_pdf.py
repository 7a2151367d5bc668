"""Read the text of a PDF without a PDF library: inflate its streams, collect the strings
drawn by ``Tj``/``TJ`` and the metadata. Enough for reportlab's standard-font output."""

from __future__ import annotations

import base64
import re
import zlib

_STREAM = re.compile(
    rb"<<(?P<dict>[^<>]*(?:<<[^<>]*>>[^<>]*)*)>>\s*stream\r?\n(?P<data>.*?)endstream", re.S
)
_STRING = re.compile(r"\((?P<s>(?:\\.|[^\\()])*)\)")


def _unescape(s: str) -> str:
    def one(m: re.Match[str]) -> str:
        e = m.group(1)
        if e[0] in "01234567":
            return chr(int(e, 8))
        return {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}.get(e, e)

    return re.sub(r"\\([0-7]{1,3}|.)", one, s, flags=re.S)


def streams(data: bytes) -> list[bytes]:
    """Every non-image stream's content, decoded (ASCII85, Flate) where possible."""
    out = []
    for m in _STREAM.finditer(data):
        raw, filters = m.group("data").rstrip(b"\r\n"), m.group("dict")
        if b"/Image" in filters:
            continue
        try:
            if b"ASCII85Decode" in filters:
                raw = base64.a85decode(raw.strip().removesuffix(b"~>"))
            if b"FlateDecode" in filters:
                raw = zlib.decompress(raw)
        except (ValueError, zlib.error):
            continue
        out.append(raw)
    return out


def pdf_text(data: bytes) -> str:
    """Strings drawn on the pages plus the document's metadata strings, one per line."""
    parts = []
    for content in streams(data):
        text = content.decode("latin-1")
        if "BT" not in text or ("Tj" not in text and "TJ" not in text):
            continue
        parts += [_unescape(m.group("s")) for m in _STRING.finditer(text)]
    outside = _STREAM.sub(b"", data).decode("latin-1")
    parts += [_unescape(m.group("s")) for m in _STRING.finditer(outside)]
    return "\n".join(parts)


def page_count(data: bytes) -> int:
    """Number of page objects."""
    return len(re.findall(rb"/Type\s*/Page(?![s\w])", data))
