"""One PDF from a report laid out in parts (`render.Part`).

WeasyPrint writes each part as a PDF of its own; here their pages go into one document, each
under the page of the same number of a PDF that holds only the page numbers ("page N of M",
which no part can know on its own), and the outline is rebuilt from the parts' bookmarks as if
the report had been laid out whole: a part that starts inside section 3 hangs its host sections
under the "3" of an earlier part. The report has no internal links, so pages carry over as they
are.

pikepdf (qpdf) does the joining: it copies pages without parsing their content, and lays a page
number sheet over a page as a form XObject the page calls after its own content. pypdf's
`merge_page` parsed and rewrote every content stream: the join of a 96-page report took 0.6–0.8
s of CPU there and 0.22–0.25 s here, and the file is 3 % smaller (object streams).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pikepdf import OutlineItem, Page

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
    import pikepdf  # only a report in parts needs it

    parts = [pikepdf.open(BytesIO(piece.pdf)) for piece in pieces]
    out = pikepdf.new()
    for part in parts:
        out.pages.extend(part.pages)
    sheets = pikepdf.open(BytesIO(numbers)).pages
    if len(sheets) != len(out.pages):
        raise ValueError(f"{len(sheets)} page numbers for {len(out.pages)} report pages")
    for number, (page, sheet) in enumerate(zip(out.pages, sheets), 1):
        _overlay(page, sheet, number)
    parents: list[tuple[int, OutlineItem]] = []
    offsets = [sum(p.pages for p in pieces[:k]) for k in range(len(pieces))]
    with out.open_outline() as outline:
        for offset, mark in ((o, m) for o, piece in zip(offsets, pieces) for m in piece.marks):
            while parents and parents[-1][0] >= mark.level:
                parents.pop()
            item = pikepdf.OutlineItem(
                mark.label,
                offset + mark.page,
                pikepdf.PageLocation.XYZ,
                left=mark.x,
                top=mark.y,
                zoom=0,
            )
            item.is_closed = mark.state == "closed"
            (parents[-1][1].children if parents else outline.root).append(item)
            parents.append((mark.level, item))
    first = parts[0]
    for key, value in first.docinfo.items():  # title and producer, the same in every part
        out.docinfo[key] = value
    if "/Lang" in first.Root:
        out.Root.Lang = first.Root.Lang
    buffer = BytesIO()
    out.save(
        buffer,
        min_version=first.pdf_version,
        compress_streams=True,
        object_stream_mode=pikepdf.ObjectStreamMode.generate,
        deterministic_id=True,  # the same report, the same bytes
    )
    return buffer.getvalue()


def _overlay(page: Page, sheet: Page, number: int) -> None:
    """`sheet` drawn over `page`, as pikepdf's `Page.add_overlay` does it, but named after the
    page number where that one draws a random name: the same report makes the same bytes. (The
    pages of a part share one resource dictionary, so each page's sheet needs a name of its
    own.)"""
    from pikepdf import Name, Rectangle

    form = sheet.as_form_xobject()
    name = page.add_resource(form, Name.XObject, Name(f"/PageNumber{number}"))
    placed = page.calc_form_xobject_placement(
        form,
        name,
        Rectangle(page.trimbox),
        invert_transformations=True,
        allow_shrink=True,
        allow_expand=True,
    )
    page.contents_add(b"q\n", prepend=True)
    page.contents_add(b"Q\n" + placed, prepend=False)
    page.contents_coalesce()
