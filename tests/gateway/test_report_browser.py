"""The report in a real headless browser: Debian's chromium takes a screenshot of a generated page.

Skips when `chromium` is not installed (`apt-get install chromium`). The check: chromium exits 0, the PNG exists, is
not tiny and is not one flat colour (a blank or failed page). A person looks at such a screenshot when the layout
changes (see the report's README section for the command).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gateway.report import render_report, thumbnail_jpeg
from gateway.schemas import SelectRequest, SelectResponse
from tests.helpers import blurred, product_photo

CHROMIUM = shutil.which("chromium")
RED, BLUE, GREEN, GREY = (200, 40, 40), (30, 90, 200), (40, 160, 60), (90, 90, 90)


def squashed_thumb(image: Image.Image) -> np.ndarray:
    """What Triton returns: a 128x128 RGB thumbnail, aspect squashed."""
    return np.asarray(image.convert("RGB").resize((128, 128), Image.Resampling.BILINEAR))


def demo_report() -> str:
    """A product from three suppliers: duplicates across suppliers, a colourway, rejects, an error."""
    hero = product_photo(1000, RED, seed=1)
    back = product_photo(900, RED, seed=5)
    shots = {
        "acme-front.jpg": ("acme", hero, "duplicate", None, [], "globex-front-hires.jpg"),
        "acme-back.jpg": ("acme", back, "selected", 3, [], None),
        "acme-blurry.jpg": ("acme", blurred(product_photo(1000, GREEN, seed=2)), "rejected", None, ["blurry"], None),
        "globex-front-hires.jpg": ("globex", hero.resize((1400, 1400)), "selected", 1, [], None),
        "globex-blue.jpg": ("globex", product_photo(1000, BLUE, seed=1), "selected", 2, [], None),
        "globex-tiny.jpg": ("globex", product_photo(200, GREY, seed=3), "rejected", None, ["low_resolution"], None),
        "initech-front-small.jpg": (
            "initech",
            hero.resize((700, 700)),
            "duplicate",
            None,
            [],
            "globex-front-hires.jpg",
        ),
        "initech-lost.jpg": (
            "initech",
            product_photo(1000, (150, 60, 150), seed=4, object_fraction=0.2),
            "rejected",
            None,
            ["small_object"],
            None,
        ),
        "initech-corrupt.jpg": ("initech", None, "error", None, ["undecodable"], None),
        "a-very-long-supplier-file-name-that-must-wrap-inside-its-card-0123456789.jpg": (
            "initech",
            back.resize((900, 1200)),
            "rejected",
            None,
            ["over_limit"],
            None,
        ),
    }
    request = SelectRequest.model_validate(
        {
            "product_id": "sku-1042 <Crew neck tee>",
            "category": "apparel",
            "images": [
                {"id": image_id, "supplier": supplier, "data": "QUFB" * 2000}
                for image_id, (supplier, *_rest) in shots.items()
            ],
        }
    )
    verdicts, thumbnails = [], {}
    for image_id, (supplier, image, status, position, reasons, duplicate_of) in shots.items():
        width, height = image.size if image is not None else (None, None)
        blur = 0.91 if "blurry" in reasons else 0.05
        small = 0.88 if "small_object" in reasons else 0.02
        verdicts.append(
            {
                "id": image_id,
                "supplier": supplier,
                "status": status,
                "position": position,
                "type": "unknown",
                "type_confidence": None,
                "reasons": reasons,
                "duplicate_of": duplicate_of,
                "width": width,
                "height": height,
                "scores": {} if image is None else {"blur": blur, "small_object": small},
            }
        )
        thumbnails[image_id] = None if image is None else thumbnail_jpeg(squashed_thumb(image), width, height)
    selected = [v["id"] for v in sorted((v for v in verdicts if v["position"]), key=lambda v: v["position"])]
    response = SelectResponse.model_validate(
        {
            "product_id": request.product_id,
            "category": "apparel",
            "category_source": "request",
            "selected": selected,
            "images": verdicts,
        }
    )
    return render_report(request, response, thumbnails)


def screenshot(html_file: Path, png: Path, size: str = "1400,1800") -> subprocess.CompletedProcess:
    profile = html_file.parent / "chromium-profile"
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--screenshot={png}",
        f"--window-size={size}",
        html_file.resolve().as_uri(),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(tmp_path):
    html_file = tmp_path / "report.html"
    html_file.write_text(demo_report(), encoding="utf-8")
    png = tmp_path / "report.png"
    result = screenshot(html_file, png)
    assert result.returncode == 0, result.stderr[-2000:]
    assert png.is_file() and png.stat().st_size > 20_000
    with Image.open(png) as image:
        assert image.size == (1400, 1800)
        pixels = np.asarray(image.convert("RGB"))
    colours = np.unique(pixels.reshape(-1, 3)[::97], axis=0)
    assert len(colours) > 50  # text, badges and photos, not a blank page
    # The dark header is painted at the top and the thumbnails below it (not all page background).
    assert pixels[:40].mean() < 100
    assert pixels[300:900].std() > 30


if __name__ == "__main__":  # python -m tests.gateway.test_report_browser OUT.html: write the demo page to look at
    import sys

    Path(sys.argv[1]).write_text(demo_report(), encoding="utf-8")
