"""Suite-wide set-up: the project root on sys.path, and the `integration` marker on everything under
tests/integration (so `make test-unit` = `-m "not integration"` never starts a server)."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INTEGRATION_DIR = ROOT / "tests" / "integration"
sys.path.insert(0, str(ROOT))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_DIR in Path(item.path).parents:
            item.add_marker(pytest.mark.integration)
