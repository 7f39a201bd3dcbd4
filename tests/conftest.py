"""Suite-wide set-up: the project root on sys.path, gRPC without fork handlers, and the `integration` marker on
everything under tests/integration (so `make test-unit` = `-m "not integration"` never starts a server)."""

import os
import sys
from pathlib import Path

# The suite starts servers (embedded PostgreSQL, tritonserver) as subprocesses while in-process gRPC clients of
# earlier tests still hold threads; gRPC's fork handlers then run in the child between fork and exec, and a clean-clone
# run once saw pg_ctl's child die of SIGABRT there ("skipping fork() handlers", "epoll_wait error: Bad file
# descriptor"). Nothing in the tests forks to use gRPC, so the handlers are off (read when grpc initialises).
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import pytest

ROOT = Path(__file__).resolve().parent.parent
INTEGRATION_DIR = ROOT / "tests" / "integration"
sys.path.insert(0, str(ROOT))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_DIR in Path(item.path).parents:
            item.add_marker(pytest.mark.integration)
