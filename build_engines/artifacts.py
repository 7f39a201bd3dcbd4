"""Where the committed trained artefacts live: training writes them, repository generation reads them."""

from pathlib import Path

HEADS_DIR = Path(__file__).resolve().parent / "heads"
