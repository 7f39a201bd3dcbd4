"""The measurement scripts' output: the report as JSON on stdout, and into `--json PATH` when given."""

from __future__ import annotations

import json
from pathlib import Path


def emit(report: dict, path: Path | None, indent: int = 1) -> None:
    text = json.dumps(report, indent=indent)
    print(text)
    if path:
        path.write_text(text + "\n")
