"""Rendered "no image" placeholders for the quality heads' placeholder class and the placeholder evaluation:
captions in some font, size and colour, camera / picture glyphs, grey boxes, and recoloured, resized variants of real
placeholders. Pure functions of their inputs and a `numpy.random.Generator` (training.quality_data.rng_for), like the
photo degradations.
"""

from __future__ import annotations

import colorsys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

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


# ---------------------------------------------------------------------------------------------- pictograms
# Shop platforms also ship drawn pictograms as their "no image": a camera with a badge, a shopping bag, a parcel, a
# brand mark, flat or shaded like a 3D render, faint grey on white. Issue #15's leave-one-family-out run missed most
# variants of such families when their style was absent from training, so the vocabulary below is deliberately
# generic (e-commerce motifs and abstract marks), never a copy of one platform's artwork.
PICTOGRAM_SUPERSAMPLE = 3  # icons are drawn at 3x and shrunk: renders are antialiased
PICTOGRAM_STYLES = ("flat", "outline", "shaded")


def _icon_bag(draw: ImageDraw.ImageDraw, box, filled: bool, width: int) -> None:
    left, top, right, bottom = box
    w, h = right - left, bottom - top
    body = [left + 0.08 * w, top + 0.3 * h, right - 0.08 * w, bottom]
    handle = [left + 0.3 * w, top, right - 0.3 * w, top + 0.5 * h]
    draw.arc(handle, 180, 360, fill=255, width=max(width, int(0.06 * w)))
    draw.line([(handle[0], top + 0.25 * h), (handle[0], top + 0.35 * h)], fill=255, width=max(width, int(0.06 * w)))
    draw.line([(handle[2], top + 0.25 * h), (handle[2], top + 0.35 * h)], fill=255, width=max(width, int(0.06 * w)))
    draw.rounded_rectangle(body, 0.06 * w, fill=255 if filled else 0, outline=255, width=width)


def _icon_parcel(draw: ImageDraw.ImageDraw, box, filled: bool, width: int) -> None:
    left, top, right, bottom = box
    w, h = right - left, bottom - top
    cx = left + w / 2
    top_face = [(cx, top), (right, top + 0.25 * h), (cx, top + 0.5 * h), (left, top + 0.25 * h)]
    left_face = [(left, top + 0.25 * h), (cx, top + 0.5 * h), (cx, bottom), (left, bottom - 0.25 * h)]
    right_face = [(cx, top + 0.5 * h), (right, top + 0.25 * h), (right, bottom - 0.25 * h), (cx, bottom)]
    for face in (top_face, left_face, right_face):
        draw.polygon(face, fill=255 if filled else None, outline=255, width=width)
    if filled:  # the edges between the faces stay paper-coloured, as in flat box icons
        seam = max(1, width // 2 + 1)
        draw.line([top_face[3], top_face[2], top_face[1]], fill=0, width=seam)
        draw.line([top_face[2], left_face[2]], fill=0, width=seam)


def _icon_tag(draw: ImageDraw.ImageDraw, box, filled: bool, width: int) -> None:
    left, top, right, bottom = box
    w, h = right - left, bottom - top
    outline = [(left, top + 0.5 * h), (left + 0.3 * w, top + 0.15 * h), (right, top + 0.15 * h)]
    outline += [(right, bottom - 0.15 * h), (left + 0.3 * w, bottom - 0.15 * h)]
    draw.polygon(outline, fill=255 if filled else None, outline=255, width=width)
    r = 0.07 * w
    hole = (left + 0.28 * w, top + 0.5 * h)
    draw.ellipse([hole[0] - r, hole[1] - r, hole[0] + r, hole[1] + r], fill=0 if filled else None, outline=255)


def _icon_shirt(draw: ImageDraw.ImageDraw, box, filled: bool, width: int) -> None:
    left, top, right, bottom = box
    w, h = right - left, bottom - top
    x = lambda f: left + f * w  # noqa: E731 - a local coordinate helper
    y = lambda f: top + f * h  # noqa: E731
    shape = [(x(0.35), y(0)), (x(0.0), y(0.18)), (x(0.12), y(0.42)), (x(0.22), y(0.36)), (x(0.22), y(1))]
    shape += [(x(0.78), y(1)), (x(0.78), y(0.36)), (x(0.88), y(0.42)), (x(1), y(0.18)), (x(0.65), y(0))]
    shape += [(x(0.5), y(0.12))]
    draw.polygon(shape, fill=255 if filled else None, outline=255, width=width)


def _icon_no_sign(draw: ImageDraw.ImageDraw, box, filled: bool, width: int) -> None:
    left, top, right, bottom = box
    side = min(right - left, bottom - top)
    cx, cy, r = (left + right) / 2, (top + bottom) / 2, side / 2
    ring = max(width, int(side * 0.1))
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=255, width=ring)
    d = r * 0.7
    draw.line([(cx - d, cy - d), (cx + d, cy + d)], fill=255, width=ring)


def _icon_camera(draw: ImageDraw.ImageDraw, box, filled: bool, width: int) -> None:
    draw_camera(draw, box, 255, 0, filled, width)


def _icon_picture(draw: ImageDraw.ImageDraw, box, filled: bool, width: int) -> None:
    draw_picture(draw, box, 255, 0, filled, width)


def _mark(size: int, rng: np.random.Generator) -> Image.Image:
    """An abstract brand mark as a mask: a rounded square, circle or hexagon at some angle, cut by a band or a hole."""
    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)
    inset = size * 0.18
    body = [inset, inset, size - inset, size - inset]
    shape = rng.choice(["square", "circle", "hexagon"])
    if shape == "square":
        draw.rounded_rectangle(body, size * rng.uniform(0.05, 0.15), fill=255)
    elif shape == "circle":
        draw.ellipse(body, fill=255)
    else:
        draw.regular_polygon((size / 2, size / 2, size / 2 - inset), 6, rotation=float(rng.uniform(0, 60)), fill=255)
    cut = rng.choice(["band", "hole", "two bands"])
    c = size / 2
    if cut == "hole":
        r = size * rng.uniform(0.08, 0.18)
        draw.ellipse([c - r, c - r, c + r, c + r], fill=0)
    else:
        thickness = size * rng.uniform(0.08, 0.14)
        offsets = (0.0,) if cut == "band" else (-0.12 * size, 0.12 * size)
        for offset in offsets:
            band = [size * 0.22, c + offset - thickness / 2, size * 0.78, c + offset + thickness / 2]
            draw.rounded_rectangle(band, thickness / 2, fill=0)
    return mask.rotate(float(rng.uniform(0, 90)), resample=Image.Resampling.BICUBIC)


ICONS = (_icon_camera, _icon_picture, _icon_bag, _icon_parcel, _icon_tag, _icon_shirt, _icon_no_sign)


def _badge(draw: ImageDraw.ImageDraw, box, rng: np.random.Generator) -> None:
    """A round badge over the icon's lower right corner: a paper-coloured ring, an ink disc, a paper symbol."""
    left, top, right, bottom = box
    r = 0.22 * min(right - left, bottom - top)
    cx, cy = right - r * 0.6, bottom - r * 0.6
    gap = r * 0.2
    draw.ellipse([cx - r - gap, cy - r - gap, cx + r + gap, cy + r + gap], fill=0)
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    stroke, arm = max(1, int(r * 0.22)), r * 0.55
    symbol = rng.choice(["plus", "cross", "slash", "dot"])
    if symbol in ("plus", "cross"):
        ends = ((arm, 0), (0, arm)) if symbol == "plus" else ((arm, arm), (arm, -arm))
        for dx, dy in ends:
            draw.line([(cx - dx * 0.75, cy - dy * 0.75), (cx + dx * 0.75, cy + dy * 0.75)], fill=0, width=stroke)
    elif symbol == "slash":
        draw.line([(cx - arm * 0.6, cy + arm * 0.6), (cx + arm * 0.6, cy - arm * 0.6)], fill=0, width=stroke)
    else:
        draw.ellipse([cx - stroke, cy - stroke, cx + stroke, cy + stroke], fill=0)


def _pictogram_colours(rng: np.random.Generator) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(ink, paper): placeholders are faint; mostly light grey on white, some on a pale tinted or grey ground."""
    roll = rng.random()
    if roll < 0.6:
        return _grey(rng, 150, 225), WHITE
    if roll < 0.8:
        hue = rng.uniform(0.5, 0.7)  # the cool grey-blues of admin themes
        ink = colorsys.hsv_to_rgb(hue, rng.uniform(0.03, 0.12), rng.uniform(0.7, 0.88))
        paper = colorsys.hsv_to_rgb(hue, rng.uniform(0.0, 0.05), rng.uniform(0.93, 1.0))
        return tuple(int(255 * c) for c in ink), tuple(int(255 * c) for c in paper)
    return _ink_and_paper(rng)


def _shade(ink: tuple[int, int, int], paper: tuple[int, int, int], size, rng: np.random.Generator) -> Image.Image:
    """A vertical gradient around the ink colour, lighter at the top: the look of a shaded render."""
    light = rng.uniform(0.15, 0.45)
    top = np.array(ink, np.float32) * (1 - light) + np.array(paper, np.float32) * light
    bottom = np.array(ink, np.float32) * rng.uniform(0.75, 0.95)
    t = np.linspace(0.0, 1.0, size[1], dtype=np.float32)[:, None, None]
    rows = top * (1 - t) + bottom * t
    return Image.fromarray(np.broadcast_to(rows, (size[1], size[0], 3)).clip(0, 255).astype(np.uint8))


def pictogram_placeholder(rng: np.random.Generator, phrase: str | None, font_path: Path | None) -> Image.Image:
    """A pictogram placeholder: one generic icon or abstract mark, sometimes badged or slightly tilted, drawn flat,
    as an outline or shaded with a soft shadow, faint on a plain ground, optionally above a caption."""
    ink, paper = _pictogram_colours(rng)
    w, h = canvas_size(rng, 240, 1000)
    k = PICTOGRAM_SUPERSAMPLE
    side = int(min(w, h) * rng.uniform(0.3, 0.75) * k)
    style = PICTOGRAM_STYLES[int(rng.integers(len(PICTOGRAM_STYLES)))]
    if rng.random() < 0.2:
        icon = _mark(side, rng)
    else:
        icon = Image.new("L", (side, side), 0)
        draw = ImageDraw.Draw(icon)
        box = (side * 0.1, side * 0.15, side * 0.9, side * 0.85)
        width = max(k, int(side * rng.uniform(0.03, 0.07)))
        ICONS[int(rng.integers(len(ICONS)))](draw, box, style != "outline", width)
        if rng.random() < 0.35:
            _badge(draw, box, rng)
        if rng.random() < 0.2:
            icon = icon.rotate(float(rng.uniform(-12, 12)), resample=Image.Resampling.BICUBIC)
    icon = icon.resize((max(2, side // k),) * 2, Image.Resampling.LANCZOS)

    image = Image.new("RGB", (w, h), paper)
    left = (w - icon.width) // 2
    top = int((h * (0.42 if phrase else 0.5)) - icon.height / 2)
    if style == "shaded":
        if rng.random() < 0.7:  # a soft drop shadow under the render
            blur = max(1.0, icon.width * rng.uniform(0.02, 0.06))
            shadow = icon.filter(ImageFilter.GaussianBlur(blur)).point(lambda v: int(v * rng.uniform(0.25, 0.5)))
            dark = tuple(int(c * 0.6) for c in paper)
            shift = int(icon.width * rng.uniform(0.02, 0.06))
            image.paste(dark, (left + shift, top + shift, left + shift + icon.width, top + shift + icon.height), shadow)
        image.paste(_shade(ink, paper, icon.size, rng), (left, top), icon)
    else:
        image.paste(ink, (left, top, left + icon.width, top + icon.height), icon)
    if phrase:
        draw = ImageDraw.Draw(image)
        text_box = (w * 0.1, top + icon.height + 0.03 * h, w * 0.9, min(h * 0.95, top + icon.height + 0.25 * h))
        if text_box[3] - text_box[1] > 8:
            draw_text(draw, _wrap(phrase, rng), text_box, ink, font_path)
    return image
