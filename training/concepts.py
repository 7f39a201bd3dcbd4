"""Concepts the project can render onto real or synthetic product photos, to train and test compliance checks end to end
where no labelled examples exist: a red "warning sticker" (a red disc with a white rim and an exclamation mark) at a
random corner-ish position and size, the kind of badge a marketplace bans; and overlaid marketing text (banners,
badges, price tags, watermarks, captions), what `text_overlay` is about.

Every renderer is `(image, rng, kind=None) -> image`, with the kinds it draws in CONCEPTS."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

STICKER_RED = (214, 24, 32)
STICKER_SIDE = (0.16, 0.28)  # fraction of the shorter side


def warning_sticker(image: Image.Image, rng: np.random.Generator, kind: str | None = None) -> Image.Image:
    """A copy of `image` with one warning sticker: size, position (away from the centre), tilt of the mark and the
    red's shade drawn from `rng`."""
    out = image.convert("RGB").copy()
    width, height = out.size
    side = int(min(width, height) * rng.uniform(*STICKER_SIDE))
    margin = int(min(width, height) * 0.03)
    left = margin if rng.random() < 0.5 else width - side - margin
    top = margin if rng.random() < 0.5 else height - side - margin
    left += int(rng.integers(0, max(1, width // 8))) * (1 if left == margin else -1)
    top += int(rng.integers(0, max(1, height // 8))) * (1 if top == margin else -1)
    shade = tuple(int(np.clip(c + rng.integers(-20, 21), 0, 255)) for c in STICKER_RED)
    draw = ImageDraw.Draw(out)
    rim = max(2, side // 14)
    draw.ellipse([left, top, left + side, top + side], fill=(255, 255, 255))
    draw.ellipse([left + rim, top + rim, left + side - rim, top + side - rim], fill=shade)
    centre_x = left + side / 2 + rng.uniform(-0.04, 0.04) * side
    bar = max(2, side // 9)
    draw.rounded_rectangle(
        [centre_x - bar / 2, top + side * 0.2, centre_x + bar / 2, top + side * 0.62], radius=bar // 2, fill="white"
    )
    draw.ellipse([centre_x - bar / 2, top + side * 0.7, centre_x + bar / 2, top + side * 0.7 + bar], fill="white")
    return out


# Overlaid marketing text: what a marketplace rejects as `text_overlay` (issue #14). Each kind at random size, colour
# and place; the words are drawn from MARKETING_WORDS.
OVERLAY_KINDS = ("banner", "badge", "price", "watermark", "caption")
MARKETING_WORDS = (
    "SALE", "-30%", "NEW", "HOT", "FREE SHIPPING", "BEST SELLER", "LIMITED OFFER", "100% COTTON", "TOP QUALITY",
    "ONLY TODAY", "BUY 2 GET 1", "SAMPLE", "shop-outlet.example", "$19.99", "€ 24,90", "2 FOR £10",
)  # fmt: skip


def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=max(8, size))  # Pillow's scalable built-in font: no system font needed


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(c) for c in rng.integers(0, 256, 3))


def _contrast(colour: tuple[int, int, int]) -> tuple[int, int, int]:
    return (0, 0, 0) if sum(colour) > 380 else (255, 255, 255)


def text_overlay(image: Image.Image, rng: np.random.Generator, kind: str | None = None) -> Image.Image:
    """A copy of `image` with overlaid marketing text of `kind` (one of OVERLAY_KINDS; drawn from `rng` when None)."""
    out = image.convert("RGB").copy()
    width, height = out.size
    side = min(width, height)
    kind = kind or str(rng.choice(OVERLAY_KINDS))
    word = str(rng.choice(MARKETING_WORDS))
    font = _font(int(side * rng.uniform(0.05, 0.11)))
    draw = ImageDraw.Draw(out)
    left, top, right, bottom = draw.textbbox((0, 0), word, font=font)
    text_w, text_h = right - left, bottom - top
    pad = max(3, text_h // 3)
    x = int(rng.uniform(0.02, 0.98) * max(1, width - text_w - 2 * pad))
    y = int(rng.uniform(0.02, 0.98) * max(1, height - text_h - 2 * pad))
    fill = _colour(rng)
    if kind == "banner":  # a full-width strip along the top or bottom edge
        y = int(height * 0.02) if rng.random() < 0.5 else height - text_h - 2 * pad - int(height * 0.02)
        draw.rectangle([0, y, width, y + text_h + 2 * pad], fill=fill)
        draw.text(((width - text_w) // 2 - left, y + pad - top), word, fill=_contrast(fill), font=font)
    elif kind == "badge":  # a disc or a rounded box holding the word
        box = [x, y, x + text_w + 2 * pad, y + text_h + 2 * pad]
        if rng.random() < 0.5:
            reach = max(text_w, text_h) // 2 + 2 * pad
            centre = (min(x + reach, width - reach), min(y + reach, height - reach))  # the whole disc in the picture
            box = [centre[0] - reach, centre[1] - reach, centre[0] + reach, centre[1] + reach]
            draw.ellipse(box, fill=fill)
            draw.text(
                (centre[0] - text_w // 2 - left, centre[1] - text_h // 2 - top), word, fill=_contrast(fill), font=font
            )
        else:
            draw.rounded_rectangle(box, radius=pad, fill=fill)
            draw.text((x + pad - left, y + pad - top), word, fill=_contrast(fill), font=font)
    elif kind == "price":  # a tag with a hole
        draw.rounded_rectangle([x, y, x + text_w + 3 * pad, y + text_h + 2 * pad], radius=pad // 2, fill=fill)
        draw.ellipse([x + pad // 2, y + pad, x + pad + pad // 2, y + 2 * pad], fill=(255, 255, 255))
        draw.text((x + 2 * pad - left, y + pad - top), word, fill=_contrast(fill), font=font)
    elif kind == "watermark":  # the word tiled, half transparent, across the picture
        layer = Image.new("RGBA", out.size, (0, 0, 0, 0))
        ink = ImageDraw.Draw(layer)
        step_x, step_y = text_w + 4 * pad, text_h * 4
        for row, ty in enumerate(range(-text_h, height, step_y)):
            for tx in range(-(row % 2) * step_x // 2, width, step_x):
                ink.text((tx, ty), word, fill=(*fill, int(rng.integers(60, 130))), font=font)
        out = Image.alpha_composite(out.convert("RGBA"), layer).convert("RGB")
    else:  # caption: bare text, dark on light or light on dark
        draw.text((x - left, y - top), word, fill=fill, font=font)
    return out


# Concept name -> (renderer, the kinds it draws).
CONCEPTS = {"sticker": (warning_sticker, ("sticker",)), "text_overlay": (text_overlay, OVERLAY_KINDS)}
