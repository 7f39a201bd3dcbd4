"""Real products that look like placeholders to a model trained on catalog photos: renders for the placeholder head's
hard negatives (issue #15: its false alarms on other shops were thin side views of devices on white, spec drawings
with small annotation text, gift cards, framed text posters and near-blank white objects).

Every function draws from a seeded generator only, so a spec renders the same pixels on every run
(training.quality_samples)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from training import quality_data as qd
from training.placeholder_synthesis import load_font

# Words on rendered products (never a placeholder's caption: those are training.placeholder_synthesis.PHRASES).
CARD_WORDS = ("GIFT CARD", "Gift Card", "$25", "$50", "€100", "GIFT", "Thank you", "Happy Birthday", "VOUCHER")
POSTER_WORDS = ("TODAY IS A GOOD DAY", "DREAM BIG", "HOME SWEET HOME", "STAY WILD", "THE BEST IS YET TO COME", "HELLO")
DIMENSIONS = ("120 mm", "45 cm", "Ø 32", "1,200", "850 mm", "A", "B", "C", "60 cm", "2 x M6", "R 15")


def thin_side_view(source: Image.Image, rng: np.random.Generator) -> Image.Image:
    """The object squashed to a sliver (a phone, tablet or laptop seen edge-on) on a white canvas."""
    obj = qd.object_crop(source)[0] if qd.has_plain_background(source) else source.convert("RGB")
    squash = rng.uniform(0.05, 0.22)
    horizontal = rng.random() < 0.5
    size = (
        (max(2, round(obj.width * squash)), obj.height)
        if horizontal
        else (obj.width, max(2, round(obj.height * squash)))
    )
    sliver = obj.resize(size, Image.Resampling.LANCZOS)
    side = int(rng.integers(400, 1001))
    canvas = Image.new("RGB", (side, side), qd.WHITE)
    fit = rng.uniform(0.5, 0.9) * side / max(sliver.size)
    sliver = sliver.resize(
        (max(2, round(sliver.width * fit)), max(2, round(sliver.height * fit))), Image.Resampling.LANCZOS
    )
    canvas.paste(sliver, ((side - sliver.width) // 2, (side - sliver.height) // 2))
    return canvas


def line_drawing(source: Image.Image, rng: np.random.Generator, font: Path | None) -> Image.Image:
    """A spec drawing: the object's edges as thin dark lines on white, with dimension lines and small labels."""
    grey = source.convert("L")
    grey.thumbnail((int(rng.integers(500, 1001)),) * 2)
    edges = np.asarray(grey.filter(ImageFilter.FIND_EDGES), dtype=np.float32)
    lines = edges > np.percentile(edges, rng.uniform(85, 93))
    ink = int(rng.integers(0, 90))
    drawing = Image.fromarray(np.where(lines, ink, 255).astype(np.uint8)).convert("RGB")
    margin = int(0.12 * max(drawing.size))
    canvas = Image.new("RGB", (drawing.width + 2 * margin, drawing.height + 2 * margin), qd.WHITE)
    canvas.paste(drawing, (margin, margin))
    draw = ImageDraw.Draw(canvas)
    text_font = load_font(font, max(9, margin // 4))
    for _ in range(int(rng.integers(1, 5))):
        if rng.random() < 0.5:  # horizontal dimension line under or over the drawing
            y = margin // 2 if rng.random() < 0.5 else canvas.height - margin // 2
            x0, x1 = sorted(rng.integers(margin, canvas.width - margin, 2))
            draw.line((x0, y, x1, y), fill=(ink,) * 3, width=1)
            draw.line((x0, y - 5, x0, y + 5), fill=(ink,) * 3)
            draw.line((x1, y - 5, x1, y + 5), fill=(ink,) * 3)
            position = ((x0 + x1) // 2, y - margin // 4)
        else:  # a leader line to a label in the margin
            x, y = (int(v) for v in rng.integers(margin, min(canvas.size) - margin, 2))
            position = (int(rng.integers(0, margin)), int(rng.integers(0, canvas.height - margin)))
            draw.line((x, y, *position), fill=(ink,) * 3, width=1)
        draw.text(position, str(rng.choice(DIMENSIONS)), fill=(ink,) * 3, font=text_font)
    return canvas


def gift_card(rng: np.random.Generator, font: Path | None) -> Image.Image:
    """A gift card or voucher: a saturated rounded card (gradient, a ribbon) with its words, on white."""
    width = int(rng.integers(400, 1001))
    canvas = Image.new("RGB", (width, int(width * rng.uniform(0.75, 1.0))), qd.WHITE)
    card_w = int(width * rng.uniform(0.6, 0.92))
    card_h = int(card_w / 1.586)
    left, top = (canvas.width - card_w) // 2, (canvas.height - card_h) // 2
    start, end = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    ramp = np.linspace(0, 1, card_w)[None, :, None]
    gradient = (start * (1 - ramp) + end * ramp).repeat(card_h, axis=0).astype(np.uint8)
    mask = Image.new("L", (card_w, card_h), 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, card_w - 1, card_h - 1), radius=card_h // 10, fill=255)
    canvas.paste(Image.fromarray(gradient), (left, top), mask)
    draw = ImageDraw.Draw(canvas)
    if rng.random() < 0.6:  # ribbon
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        x = left + int(card_w * rng.uniform(0.2, 0.8))
        draw.rectangle((x - card_h // 16, top, x + card_h // 16, top + card_h), fill=colour)
    words = str(rng.choice(CARD_WORDS))
    ink = (255, 255, 255) if gradient.mean() < 140 else (20, 20, 20)
    size = max(12, card_h // int(rng.integers(4, 8)))
    draw.text((left + card_w // 10, top + card_h // 6), words, fill=ink, font=load_font(font, size))
    return canvas


def text_poster(rng: np.random.Generator, font: Path | None) -> Image.Image:
    """A framed typographic poster (a home-decor product): coloured words on a mat inside a dark frame, on a wall."""
    side = int(rng.integers(400, 901))
    wall = tuple(int(v) for v in rng.integers(200, 256, 3))
    canvas = Image.new("RGB", (side, side), wall)
    draw = ImageDraw.Draw(canvas)
    frame_w, frame_h = int(side * rng.uniform(0.45, 0.7)), int(side * rng.uniform(0.6, 0.85))
    left, top = (side - frame_w) // 2, (side - frame_h) // 2
    frame = tuple(int(v) for v in rng.integers(0, 80, 3))
    draw.rectangle((left, top, left + frame_w, top + frame_h), fill=frame)
    border = max(4, frame_w // 18)
    draw.rectangle((left + border, top + border, left + frame_w - border, top + frame_h - border), fill=qd.WHITE)
    words = str(rng.choice(POSTER_WORDS)).split()
    size = max(12, frame_w // 9)
    y = top + frame_h // 4
    for word in words:
        colour = tuple(int(v) for v in rng.integers(0, 220, 3))
        draw.text((left + frame_w // 5, y), word, fill=colour, font=load_font(font, size))
        y += int(size * 1.3)
    return canvas


def near_blank(source: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A pale object on white (a whiteboard, a glass table, a white device): the photo washed towards white."""
    image = source.convert("RGB")
    image.thumbnail((int(rng.integers(400, 1001)),) * 2)
    fade = rng.uniform(0.55, 0.85)
    pixels = np.asarray(image, dtype=np.float32)
    return Image.fromarray((pixels * (1 - fade) + 255 * fade).clip(0, 255).astype(np.uint8))


def degraded_placeholder(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A placeholder as a supplier re-sends it: shrunk to a thumbnail, padded, softened (its file is then encoded at
    a low JPEG quality by the caller). The head must still call it a placeholder when it is also low-res or blurry."""
    small = image.convert("RGB")
    longer = int(rng.integers(48, 240))
    small.thumbnail((longer, longer), Image.Resampling.LANCZOS)
    if rng.random() < 0.5:
        pad = int(longer * rng.uniform(0.05, 0.35))
        padded = Image.new("RGB", (small.width + 2 * pad, small.height + 2 * pad), qd.WHITE)
        padded.paste(small, (pad, pad))
        small = padded
    if rng.random() < 0.5:
        small = small.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.8)))
    return small
