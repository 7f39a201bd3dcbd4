"""Small photo folders for the de-duplication evaluation tests."""

from __future__ import annotations

import csv
from pathlib import Path

from evaluation.dedup.pairset import PAIRS_FILE
from tests.helpers import product_photo

SHARED_DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
COLOURS = [(200, 40, 40), (40, 90, 200), (30, 150, 60), (230, 200, 40), (90, 90, 90), (150, 60, 160)]


def make_folder(root: Path, n: int = 6, side: int = 160) -> Path:
    """n small product photos, some in a sub-folder, as JPEG and PNG (no manifest)."""
    for k in range(n):
        folder = root / ("more" if k % 3 == 2 else "")
        folder.mkdir(parents=True, exist_ok=True)
        image = product_photo(side=side, colour=COLOURS[k % len(COLOURS)], seed=k, object_fraction=0.5 + 0.05 * k)
        image.save(folder / f"p{k}.{'png' if k % 2 else 'jpg'}")
    return root


def read_rows(directory: Path) -> list[dict]:
    with (directory / PAIRS_FILE).open(newline="") as file:
        return list(csv.DictReader(file))
