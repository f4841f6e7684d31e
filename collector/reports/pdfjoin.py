"""One PDF from a report laid out in parts (`render.Part`).

WeasyPrint writes each part as a PDF of its own; here their pages go into one document, each
under the page of the same number of a PDF that holds only the page numbers ("page N of M",
which no part can know on its own), and the outline is rebuilt from the parts' bookmarks as if
the report had been laid out whole: a part that starts inside section 3 hangs its host sections
under the "3" of an earlier part. The report has no internal links, so pages carry over as they
are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pypdf.generic import IndirectObject

PT_PER_PX = 0.75
"""PDF points per CSS pixel (72 / 96), as WeasyPrint converts."""


@dataclass(frozen=True)
class Mark:
    """A bookmark (h1–h3) where WeasyPrint put it: `page` counts from 0 within its part (parts
    are laid out independently, in any order), `x`/`y` in PDF points from the bottom left."""

    level: int
    label: str
    page: int
    x: float
    y: float
    state: str = "open"


@dataclass(frozen=True)
class Piece:
    pdf: bytes
    pages: int
    marks: list[Mark]


def join(pieces: Sequence[Piece], numbers: bytes) -> bytes:
    from pypdf import PdfReader, PdfWriter  # only a report in parts needs it
    from pypdf.generic import Fit, NameObject

    readers = [PdfReader(BytesIO(piece.pdf)) for piece in pieces]
    writer = PdfWriter()
    for reader in readers:
        writer.append(reader, import_outline=False)
    sheets = PdfReader(BytesIO(numbers)).pages
    if len(sheets) != len(writer.pages):
        raise ValueError(f"{len(sheets)} page numbers for {len(writer.pages)} report pages")
    for page, sheet in zip(writer.pages, sheets):
        page.merge_page(sheet)
        # merge_page leaves the merged content uncompressed (20 hosts in 5 parts: 1.2 MB more)
        page.compress_content_streams()
    parents: list[tuple[int, IndirectObject]] = []
    offsets = [sum(p.pages for p in pieces[:k]) for k in range(len(pieces))]
    for offset, mark in ((o, m) for o, piece in zip(offsets, pieces) for m in piece.marks):
        while parents and parents[-1][0] >= mark.level:
            parents.pop()
        item = writer.add_outline_item(
            title=mark.label,
            page_number=offset + mark.page,
            parent=parents[-1][1] if parents else None,
            fit=Fit.xyz(mark.x, mark.y, 0),
            is_open=mark.state != "closed",
        )
        parents.append((mark.level, item))
    if readers[0].metadata:  # title and producer, the same in every part
        writer.add_metadata(dict(readers[0].metadata))
    lang = readers[0].root_object.get("/Lang")
    if lang is not None:
        writer.root_object[NameObject("/Lang")] = lang
    out = BytesIO()
    writer.write(out)
    return out.getvalue()
