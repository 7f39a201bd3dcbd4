"""Rendered "no image" placeholders for the quality heads' placeholder class and the placeholder evaluation:
captions in some font, size and colour, camera / picture glyphs, grey boxes, and recoloured, resized variants of real
placeholders. Pure functions of their inputs and a `numpy.random.Generator` (training.quality_data.rng_for), like the
photo degradations.
"""

from __future__ import annotations

import colorsys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from training.quality_data import WHITE, canvas_size

PHRASES = (
    "No image",
    "No image available",
    "Image coming soon",
    "Image not available",
    "Not available",
    "No photo",
    "Photo coming soon",
    "No picture available",
    "Image unavailable",
    "Coming soon",
    "No preview available",
    "Picture not available",
    "Awaiting image",
    "No product image",
    "Image to follow",
    "Photo not available",
)
FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/truetype/liberation"))


def font_paths() -> list[Path]:
    """The TrueType fonts found (DejaVu, Liberation); empty on a machine without them (PIL's default font then)."""
    paths = [p for d in FONT_DIRS if d.is_dir() for p in sorted(d.glob("*.ttf")) if "Math" not in p.name]
    return paths


def load_font(path: Path | None, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.truetype(str(path), size) if path else ImageFont.load_default(size)


def _grey(rng: np.random.Generator, low: int, high: int) -> tuple[int, int, int]:
    v = int(rng.integers(low, high + 1))
    return v, v, v


def _ink_and_paper(rng: np.random.Generator) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(ink, paper) colours: mostly grey on white; sometimes tinted, light grey, or light on dark."""
    roll = rng.random()
    if roll < 0.55:
        return _grey(rng, 90, 205), WHITE
    if roll < 0.7:
        return _grey(rng, 60, 170), _grey(rng, 225, 248)
    if roll < 0.85:
        hue = rng.random()
        ink = colorsys.hsv_to_rgb(hue, rng.uniform(0.4, 0.9), rng.uniform(0.3, 0.75))
        paper = colorsys.hsv_to_rgb(hue, rng.uniform(0.0, 0.12), 1.0)
        return tuple(int(255 * c) for c in ink), tuple(int(255 * c) for c in paper)
    return _grey(rng, 170, 240), _grey(rng, 40, 110)


def _wrap(phrase: str, rng: np.random.Generator) -> str:
    words = phrase.split()
    case = rng.choice(["as is", "upper", "lower", "title"])
    phrase = {"upper": phrase.upper(), "lower": phrase.lower(), "title": phrase.title()}.get(case, phrase)
    words = phrase.split()
    if len(words) > 1 and rng.random() < 0.6:
        cut = int(rng.integers(1, len(words)))
        return " ".join(words[:cut]) + "\n" + " ".join(words[cut:])
    return phrase


def draw_text(
    draw: ImageDraw.ImageDraw,
    text: str,
    box: tuple[float, float, float, float],
    colour: tuple[int, int, int],
    font_path: Path | None,
) -> None:
    """`text` centred in `box`, as large as fits."""
    left, top, right, bottom = box
    size = max(6, int(bottom - top))
    for _ in range(40):
        font = load_font(font_path, size)
        x0, y0, x1, y1 = draw.multiline_textbbox((0, 0), text, font=font, align="center")
        if x1 - x0 <= right - left and y1 - y0 <= bottom - top or size <= 6:
            break
        size = max(6, int(size * 0.9))
    cx, cy = (left + right) / 2 - (x0 + x1) / 2, (top + bottom) / 2 - (y0 + y1) / 2
    draw.multiline_text((cx, cy), text, fill=colour, font=font, align="center")


def draw_camera(draw: ImageDraw.ImageDraw, box, colour, paper, filled: bool, width: int) -> None:
    left, top, right, bottom = box
    w, h = right - left, bottom - top
    body = [left, top + 0.2 * h, right, bottom]
    bump = [left + 0.3 * w, top, left + 0.6 * w, top + 0.3 * h]
    radius = 0.1 * min(w, h)
    cx, cy, r = left + w / 2, top + 0.6 * h, 0.28 * min(w, h)
    if filled:
        draw.rounded_rectangle(bump, radius / 2, fill=colour)
        draw.rounded_rectangle(body, radius, fill=colour)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=paper)
        draw.ellipse([cx - 0.6 * r, cy - 0.6 * r, cx + 0.6 * r, cy + 0.6 * r], fill=colour)
    else:
        draw.rounded_rectangle(bump, radius / 2, outline=colour, width=width)
        draw.rounded_rectangle(body, radius, fill=paper, outline=colour, width=width)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=colour, width=width)
    draw.ellipse([right - 0.18 * w, top + 0.3 * h, right - 0.1 * w, top + 0.38 * h], fill=colour)


def draw_picture(draw: ImageDraw.ImageDraw, box, colour, paper, filled: bool, width: int) -> None:
    left, top, right, bottom = box
    w, h = right - left, bottom - top
    draw.rectangle(box, fill=paper, outline=colour, width=width)
    inner = [left + 0.1 * w, top + 0.1 * h, right - 0.1 * w, bottom - 0.1 * h]
    mountains = [
        (inner[0], inner[3]),
        (inner[0] + 0.35 * w, inner[1] + 0.35 * h),
        (inner[0] + 0.5 * w, inner[1] + 0.55 * h),
        (inner[0] + 0.62 * w, inner[1] + 0.45 * h),
        (inner[2], inner[3]),
    ]
    if filled:
        draw.polygon(mountains, fill=colour)
    else:
        draw.line(mountains, fill=colour, width=width, joint="curve")
    r = 0.08 * min(w, h)
    cx, cy = inner[2] - 0.18 * w, inner[1] + 0.18 * h
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour if filled else None, outline=colour, width=width)


def glyph_placeholder(rng: np.random.Generator, phrase: str | None, font_path: Path | None) -> Image.Image:
    """A camera or picture icon drawn with PIL shapes, optionally crossed out, optionally above a caption."""
    ink, paper = _ink_and_paper(rng)
    image = Image.new("RGB", canvas_size(rng, 240, 1000), paper)
    draw = ImageDraw.Draw(image)
    w, h = image.size
    side = min(w, h) * rng.uniform(0.25, 0.6)
    cx, cy = w / 2, h * (0.42 if phrase else 0.5)
    box = (cx - side / 2, cy - side * 0.4, cx + side / 2, cy + side * 0.4)
    width = max(1, int(side * rng.uniform(0.03, 0.08)))
    filled = bool(rng.random() < 0.5)
    (draw_camera if rng.random() < 0.5 else draw_picture)(draw, box, ink, paper, filled, width)
    if rng.random() < 0.3:  # crossed out
        draw.line([(box[0], box[3]), (box[2], box[1])], fill=ink, width=width)
    if phrase:
        text_box = (w * 0.1, box[3] + 0.04 * h, w * 0.9, min(h * 0.95, box[3] + 0.3 * h))
        draw_text(draw, _wrap(phrase, rng), text_box, ink, font_path)
    return image


def text_placeholder(rng: np.random.Generator, phrase: str, font_path: Path | None) -> Image.Image:
    """A caption ("Image coming soon") in some font, size and colour, on a plain canvas, sometimes framed."""
    ink, paper = _ink_and_paper(rng)
    image = Image.new("RGB", canvas_size(rng, 200, 1000), paper)
    draw = ImageDraw.Draw(image)
    w, h = image.size
    span = rng.uniform(0.35, 0.9)
    text_box = (w * (1 - span) / 2, h * 0.5 - h * span * 0.3, w * (1 + span) / 2, h * 0.5 + h * span * 0.3)
    draw_text(draw, _wrap(phrase, rng), text_box, ink, font_path)
    if rng.random() < 0.25:
        margin = int(min(w, h) * rng.uniform(0.02, 0.1))
        draw.rectangle([margin, margin, w - margin, h - margin], outline=ink, width=max(1, min(w, h) // 150))
    return image


def grey_box(rng: np.random.Generator, phrase: str | None, font_path: Path | None) -> Image.Image:
    """A flat grey panel (whole frame or centred on white), sometimes with an X across it or a caption."""
    fill = _grey(rng, 150, 235)
    size = canvas_size(rng, 200, 1000)
    image = Image.new("RGB", size, fill if rng.random() < 0.5 else WHITE)
    draw = ImageDraw.Draw(image)
    w, h = size
    inset = rng.uniform(0.0, 0.2)
    panel = (w * inset, h * inset, w * (1 - inset), h * (1 - inset))
    draw.rectangle(panel, fill=fill)
    ink = _grey(rng, 90, 140) if fill[0] > 170 else _grey(rng, 200, 245)
    if rng.random() < 0.5:
        width = max(1, int(min(w, h) * rng.uniform(0.005, 0.02)))
        draw.line([panel[:2], panel[2:]], fill=ink, width=width)
        draw.line([(panel[0], panel[3]), (panel[2], panel[1])], fill=ink, width=width)
    if phrase:
        cx, cy = w / 2, h / 2
        draw_text(
            draw, _wrap(phrase, rng), (cx - w * 0.35, cy - h * 0.15, cx + w * 0.35, cy + h * 0.15), ink, font_path
        )
    return image


def on_white(image: Image.Image, colour: tuple[int, int, int] = WHITE) -> Image.Image:
    """A transparent placeholder flattened onto a plain background (as a shop page shows it)."""
    rgba = image.convert("RGBA")
    canvas = Image.new("RGB", rgba.size, colour)
    canvas.paste(rgba, mask=rgba.split()[3])
    return canvas


def real_placeholder_variant(image: Image.Image, rng: np.random.Generator, plain: bool = False) -> Image.Image:
    """A real placeholder on white; unless `plain`: recoloured, resized and placed on a canvas of another size."""
    if plain:
        return on_white(image)
    rgba = image.convert("RGBA")
    roll = rng.random()
    if roll < 0.3:  # greyscale
        grey = rgba.convert("LA").convert("RGBA")
        rgba = Image.merge("RGBA", (*grey.split()[:3], rgba.split()[3]))
    elif roll < 0.7:  # tint: rotate the hue
        r, g, b, a = rgba.split()
        hsv = np.asarray(Image.merge("RGB", (r, g, b)).convert("HSV")).copy()
        hsv[..., 0] = (hsv[..., 0].astype(np.int16) + int(rng.integers(0, 256))) % 256
        rgb = Image.fromarray(hsv, "HSV").convert("RGB")
        rgba = Image.merge("RGBA", (*rgb.split(), a))
    paper = WHITE if rng.random() < 0.75 else _grey(rng, 230, 250)
    canvas = Image.new("RGB", canvas_size(rng, 200, 1000), paper)
    fraction = rng.uniform(0.3, 0.95)
    scale = min(canvas.width * fraction / rgba.width, canvas.height * fraction / rgba.height)
    resized = rgba.resize(
        (max(2, round(rgba.width * scale)), max(2, round(rgba.height * scale))), Image.Resampling.LANCZOS
    )
    left = int(rng.integers(0, canvas.width - resized.width + 1))
    top = int(rng.integers(0, canvas.height - resized.height + 1))
    canvas.paste(resized, (left, top), resized.split()[3])
    return canvas
