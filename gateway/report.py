"""Before/after report of one selection: the input images grouped by supplier, and the selected set in page order.

One self-contained HTML page (inline CSS, thumbnails inlined as small base64 JPEGs, no script, no external asset)
that a person can open from disk or mail around. `render_report` is pure (no I/O); POST /v1/report serves it and
`python -m tools.report` writes it from the command line.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from html import escape
from typing import Any

import numpy as np
from PIL import Image

from gateway.schemas import SelectRequest, SelectResponse, VariantOut

THUMB_SIDE = 128  # Triton's thumbnail is 128x128 whatever the image's aspect
THUMB_QUALITY = 80
URL_SHOWN_CHARS = 64
STATUS_LABELS = {"selected": "selected", "duplicate": "duplicate", "rejected": "rejected", "error": "error"}

CSS = """
* { box-sizing: border-box; }
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 0;
       color: #1d2329; background: #f3f4f6; }
header { background: #1d2329; color: #fff; padding: 16px 24px; }
header h1 { margin: 0 0 4px; font-size: 20px; font-weight: 600; word-break: break-all; }
header .meta { color: #c9d1d9; }
.counts { display: flex; gap: 8px; flex-wrap: wrap; margin-top: 10px; }
.count { padding: 2px 10px; border-radius: 12px; font-weight: 600; font-size: 13px; }
main { padding: 8px 24px 32px; }
h2 { font-size: 17px; margin: 24px 0 8px; }
h2 small, h3 small { font-weight: 400; color: #57606a; }
h3 { font-size: 15px; margin: 16px 0 8px; word-break: break-all; }
.legend { color: #57606a; margin: 0 0 8px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: 12px; }
.supplier { background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: 4px 12px 12px;
            margin-bottom: 12px; }
.card { background: #fff; border: 1px solid #d0d7de; border-top: 6px solid #8c959f; border-radius: 6px;
        padding: 8px; min-width: 0; }
.card:target { outline: 3px solid #0969da; outline-offset: 2px; }
.thumb { height: 150px; display: flex; align-items: center; justify-content: center; border-radius: 4px;
         background: #eaeef2; margin-bottom: 6px; overflow: hidden; }
.thumb img { max-width: 100%; max-height: 150px; display: block; }
.thumb .none { color: #8c959f; font-size: 13px; text-align: center; padding: 8px; }
.card.rejected .thumb img, .card.error .thumb img, .card.duplicate .thumb img { opacity: 0.55; }
.id { font: 600 13px ui-monospace, "DejaVu Sans Mono", monospace; overflow-wrap: anywhere; }
.row { display: flex; flex-wrap: wrap; gap: 4px; align-items: center; margin: 3px 0; }
.badge { display: inline-block; padding: 1px 7px; border-radius: 10px; font-size: 12px; font-weight: 600; }
.reason { background: #fff1e5; color: #953800; border: 1px solid #ffd8b5; }
.kv { color: #57606a; font-size: 12px; }
.kv b { color: #1d2329; font-weight: 600; }
.link { font-size: 12px; overflow-wrap: anywhere; }
.link a { color: #0969da; }
.src { color: #8c959f; font-size: 11px; overflow-wrap: anywhere; }
.score { display: grid; grid-template-columns: 86px 1fr 38px; gap: 4px; align-items: center; font-size: 12px;
         color: #57606a; }
.bar { height: 6px; background: #eaeef2; border-radius: 3px; overflow: hidden; }
.bar span { display: block; height: 100%; background: #57606a; }
.selected-row { display: flex; gap: 10px; align-items: stretch; overflow-x: auto; padding: 4px 2px 10px; }
.selected-row .card { width: 210px; flex: none; }
.arrow { align-self: center; color: #8c959f; font-size: 22px; flex: none; }
.empty { color: #57606a; font-style: italic; }
.card.selected { border-top-color: #1a7f37; }
.card.duplicate { border-top-color: #6e7781; }
.card.rejected { border-top-color: #bc4c00; }
.card.error { border-top-color: #cf222e; }
.st-selected { background: #dafbe1; color: #116329; }
.st-duplicate { background: #eaeef2; color: #424a53; }
.st-rejected { background: #fff1e5; color: #953800; }
.st-error { background: #ffebe9; color: #a40e26; }
.hero { background: #1a7f37; color: #fff; }
"""


# ----------------------------------------------------------------------------------------------- thumbnails


def thumbnail_jpeg(thumb: np.ndarray | None, width: int | None, height: int | None) -> bytes | None:
    """Triton's square thumbnail, stretched back to the image's aspect (longer side 128 px), as a small JPEG."""
    if thumb is None:
        return None
    image = Image.fromarray(np.asarray(thumb, dtype=np.uint8)).convert("RGB")
    if width and height:
        scale = THUMB_SIDE / max(width, height)
        image = image.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=THUMB_QUALITY)
    return buffer.getvalue()


def thumbnails_for(response: SelectResponse, thumbs: Mapping[str, np.ndarray | None]) -> dict[str, bytes | None]:
    """JPEG thumbnails by image id for render_report, from the service's Triton thumbnails."""
    return {v.id: thumbnail_jpeg(thumbs.get(v.id), v.width, v.height) for v in response.images}


# --------------------------------------------------------------------------------------------------- render


def _source(image: Any) -> str:
    url = getattr(image, "url", None)
    if url:
        shown = url if len(url) <= URL_SHOWN_CHARS else url[: URL_SHOWN_CHARS - 1] + "\u2026"
        return f'<div class="src" title="{escape(url)}">{escape(shown)}</div>'
    data = getattr(image, "data", None) or ""
    return f'<div class="src">base64 upload, {len(data) * 3 // 4 / 1024:.0f} KB</div>'


def _thumb(image_id: str, jpeg: bytes | None, status: str) -> str:
    if not jpeg:
        text = "no thumbnail" if status != "error" else "not decoded"
        return f'<div class="thumb"><div class="none">{text}</div></div>'
    data = base64.b64encode(jpeg).decode("ascii")
    return f'<div class="thumb"><img alt="{escape(image_id)}" src="data:image/jpeg;base64,{data}"></div>'


def _scores(scores: Mapping[str, float]) -> str:
    rows = []
    for name, value in scores.items():
        width = max(0.0, min(1.0, float(value))) * 100
        rows.append(
            f'<div class="score"><span>{escape(name)}</span><div class="bar"><span style="width:{width:.0f}%">'
            f"</span></div><span>{float(value):.2f}</span></div>"
        )
    return "".join(rows)


def _variant(check: VariantOut) -> str:
    """The own-variant check's evidence: the colour distance to the product's consensus and, where the request
    named a colour, the image's share of it."""
    verdict = "own colourway" if check.consistent else "unlike the product's colour"
    share = "" if check.colour_share is None else f" \u00b7 named colour {check.colour_share:.2f}"
    return (
        f'<div class="kv">colour <b>{verdict}</b> \u00b7 distance {check.distance:.2f} / {check.threshold:.2f}'
        f"{share}</div>"
    )


class _Page:
    """Anchors and cross-links of one report: input card k is #in-k, the selected card at position p is #sel-p."""

    def __init__(self, request: SelectRequest, response: SelectResponse, thumbnails: Mapping[str, bytes | None]):
        self.request = request
        self.response = response
        self.thumbnails = thumbnails
        self.inputs = {image.id: image for image in request.images}
        self.index = {verdict.id: k for k, verdict in enumerate(response.images)}
        self.duplicates: dict[str, list[str]] = {}
        for verdict in response.images:
            if verdict.duplicate_of is not None:
                self.duplicates.setdefault(verdict.duplicate_of, []).append(verdict.id)

    def link(self, image_id: str) -> str:
        k = self.index.get(image_id)
        if k is None:  # not an input of this request: show it, link nowhere
            return f"<code>{escape(image_id)}</code>"
        return f'<a href="#in-{k}">{escape(image_id)}</a>'

    def card(self, verdict, *, anchor: str, in_selection: bool = False) -> str:
        image = self.inputs.get(verdict.id)
        status = verdict.status if verdict.status in STATUS_LABELS else "error"
        parts = [f'<div class="card {status}" id="{anchor}" data-id="{escape(verdict.id)}" data-status="{status}">']
        parts.append(_thumb(verdict.id, self.thumbnails.get(verdict.id), status))
        parts.append(f'<div class="id">{escape(verdict.id)}</div>')
        badges = [f'<span class="badge st-{status}">{STATUS_LABELS[status]}</span>']
        if verdict.position is not None:
            badges.append(
                '<span class="badge hero">#1 hero</span>' if verdict.position == 1 else f"<b>#{verdict.position}</b>"
            )
        badges += [f'<span class="badge reason">{escape(reason)}</span>' for reason in verdict.reasons]
        parts.append(f'<div class="row">{"".join(badges)}</div>')
        supplier = "\u2014" if verdict.supplier is None else escape(verdict.supplier)
        priority = getattr(image, "supplier_priority", None)
        if priority is not None:
            supplier += f" (priority {int(priority)})"
        size = f"{verdict.width}\u00d7{verdict.height}" if verdict.width and verdict.height else "\u2014"
        confidence = "" if verdict.type_confidence is None else f" {verdict.type_confidence:.2f}"
        parts.append(
            f'<div class="kv">supplier <b>{supplier}</b> \u00b7 {size}</div>'
            f'<div class="kv">type <b>{escape(verdict.type)}</b>{confidence}</div>'
        )
        parts.append(_scores(verdict.scores))
        if verdict.variant is not None:
            parts.append(_variant(verdict.variant))
        if verdict.duplicate_of is not None:
            parts.append(f'<div class="link">\u21aa duplicate of {self.link(verdict.duplicate_of)}</div>')
        merged = self.duplicates.get(verdict.id, [])
        if merged:
            links = ", ".join(self.link(other) for other in merged)
            parts.append(
                f'<div class="link">\u2190 kept over {len(merged)} duplicate{"s" * (len(merged) > 1)}: {links}</div>'
            )
        if in_selection:
            k = self.index.get(verdict.id)
            if k is not None:
                parts.append(f'<div class="link"><a href="#in-{k}">\u2193 in the input</a></div>')
        elif verdict.position is not None:
            parts.append(f'<div class="link"><a href="#sel-{verdict.position}">\u2191 in the selection</a></div>')
        if image is not None:
            parts.append(_source(image))
        parts.append("</div>")
        return "".join(parts)

    def selection(self) -> str:
        by_id = {verdict.id: verdict for verdict in self.response.images}
        cards = [
            self.card(by_id[image_id], anchor=f"sel-{position}", in_selection=True)
            for position, image_id in enumerate(self.response.selected, start=1)
            if image_id in by_id
        ]
        if not cards:
            return '<p class="empty">No image was selected.</p>'
        return '<div class="selected-row">' + '<span class="arrow">\u2192</span>'.join(cards) + "</div>"

    def suppliers(self) -> str:
        groups: dict[str | None, list] = {}
        for verdict in self.response.images:
            groups.setdefault(verdict.supplier, []).append(verdict)
        sections = []
        for supplier, verdicts in groups.items():
            name = "no supplier given" if supplier is None else f"supplier {escape(supplier)}"
            kept = sum(v.status == "selected" for v in verdicts)
            cards = "".join(self.card(v, anchor=f"in-{self.index[v.id]}") for v in verdicts)
            sections.append(
                f'<section class="supplier"><h3>{name} <small>{len(verdicts)} image'
                f'{"s" * (len(verdicts) != 1)}, {kept} selected</small></h3><div class="grid">{cards}</div></section>'
            )
        return "".join(sections)


def render_report(
    request: SelectRequest, response: SelectResponse, thumbnails: Mapping[str, bytes | None] | None = None
) -> str:
    """The report page as one HTML string. `thumbnails`: JPEG bytes by image id (None or absent: no picture).

    Every string from the caller (ids, suppliers, product, category, URLs, reasons) is HTML-escaped.
    """
    page = _Page(request, response, thumbnails or {})
    counts = {status: sum(v.status == status for v in response.images) for status in STATUS_LABELS}
    count_badges = "".join(
        f'<span class="count st-{status}">{counts[status]} {status}</span>' for status in STATUS_LABELS
    )
    requested = getattr(request, "category", None)
    category = escape(response.category)
    if response.category_source != "request":
        asked = "none" if requested is None else escape(str(requested))
        category += f" ({escape(response.category_source)}; asked: {asked})"
    colour = getattr(request, "colour", None)
    if colour is not None:
        read = ", ".join(response.colour_terms or []) or "not understood"
        category += f" \u00b7 colour <b>{escape(colour)}</b> (read as {escape(read)})"
    title = escape(response.product_id)
    cap = getattr(request, "max_images", None)
    cap_text = "" if cap is None else f" \u00b7 max_images {int(cap)}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>imgsel report \u2014 {title}</title><style>{CSS}</style></head><body>"
        f"<header><h1>Product {title}</h1>"
        f'<div class="meta">category <b>{category}</b> \u00b7 {len(response.images)} input images{cap_text}</div>'
        f'<div class="counts">{count_badges}</div></header><main>'
        f"<h2>Selected set <small>page order, hero first ({len(response.selected)})</small></h2>"
        f"{page.selection()}"
        f"<h2>Input images <small>by supplier, in request order</small></h2>"
        '<p class="legend">Border colour: green selected, grey duplicate (\u21aa links to the image kept), '
        "orange rejected, red error. Scores are 0-1, higher is worse.</p>"
        f"{page.suppliers()}"
        "</main></body></html>\n"
    )
