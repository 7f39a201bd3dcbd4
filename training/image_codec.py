"""Encoded image files made from PIL images: every model input is an encoded file (as a supplier sends it), so
synthetic and transformed images are encoded before they meet the preprocessing."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def encode_image(image: Image.Image, fmt: str = "JPEG", quality: int = 90) -> np.ndarray:
    """The file bytes as a 1-D uint8 array: JPEG (RGB, at `quality`) or any other PIL format as is (PNG keeps
    transparency)."""
    buffer = io.BytesIO()
    if fmt == "JPEG":
        image.convert("RGB").save(buffer, "JPEG", quality=quality)
    else:
        image.save(buffer, fmt)
    return np.frombuffer(buffer.getvalue(), dtype=np.uint8)
