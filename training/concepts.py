"""Concepts the project can render onto real or synthetic product photos, to train and test compliance checks end to end
where no labelled examples exist: a red "warning sticker" (a red disc with a white rim and an exclamation mark) at a
random corner-ish position and size, the kind of badge a marketplace bans."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

STICKER_RED = (214, 24, 32)
STICKER_SIDE = (0.16, 0.28)  # fraction of the shorter side


def warning_sticker(image: Image.Image, rng: np.random.Generator) -> Image.Image:
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
