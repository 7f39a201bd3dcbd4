"""Benchmark products: 8-image products of 800x800 JPEGs.

Real product photos from ../shared/data/catalog when present (resized to 800x800, JPEG q90), otherwise
synthetic product photos made by tests/helpers.py; the result says which.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

from PIL import Image

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CATALOG = PROJECT_ROOT.parent / "shared" / "data" / "catalog"
SIDE = 800
IMAGES_PER_PRODUCT = 8


def jpeg_800(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").resize((SIDE, SIDE), Image.Resampling.LANCZOS).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def benchmark_images(count: int) -> tuple[list[bytes], str]:
    """`count` encoded 800x800 JPEGs and a description of where they came from."""
    paths = sorted(CATALOG.glob("*.jpg"))
    if paths:
        files = [jpeg_800(Image.open(paths[i % len(paths)])) for i in range(count)]
        return files, f"{min(count, len(paths))} distinct photos from ../shared/data/catalog, resized to 800x800 q90"
    import sys

    sys.path.insert(0, str(PROJECT_ROOT))
    from tests.helpers import encode, product_photo

    files = [
        encode(product_photo(SIDE, ((37 * i) % 256, (91 * i) % 256, (53 * i) % 256), seed=i)) for i in range(count)
    ]
    return files, "synthetic product photos (tests/helpers.py), 800x800 q90 (../shared/data absent)"


def select_payloads(files: list[bytes], products: int, colour: str | None = None) -> list[bytes]:
    """JSON bodies for /v1/select, encoded once so the client spends no CPU on them during the run; `colour`: every
    product names it (the own-variant check then names each image's colours: what that costs)."""
    bodies = []
    for p in range(products):
        images = [
            {
                "id": f"p{p}-{k}",
                "supplier": "ABC"[k % 3],
                "data": base64.b64encode(files[(p * IMAGES_PER_PRODUCT + k) % len(files)]).decode(),
            }
            for k in range(IMAGES_PER_PRODUCT)
        ]
        body = {"product_id": f"bench-{p}", "category": "apparel", "images": images}
        bodies.append(json.dumps(body | ({"colour": colour} if colour else {})).encode())
    return bodies
