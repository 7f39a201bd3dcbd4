"""Start the real stack once per session: a freshly generated cpu model repository, tritonserver, the gateway.

Also serves generated images over HTTP on loopback for URL fetching. Skips with a reason when the Triton server
binary has not been fetched (`make test` fetches it).
"""

from __future__ import annotations

import functools
import http.server
import sys
import threading
from pathlib import Path

import httpx
import pytest

from build_engines.triton_server import DEFAULT_DEST, server_binary
from tools.launcher import running_stack, settings_on_free_ports

TRITON_HOME = DEFAULT_DEST


@pytest.fixture(scope="session")
def image_server(tmp_path_factory):
    """A loopback HTTP server over a folder; tests write files into `.root`."""
    root = tmp_path_factory.mktemp("served")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.root = root
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    if not server_binary(TRITON_HOME).is_file():
        pytest.skip("tritonserver not fetched: run `make triton` (make test does)")
    from build_engines.repository import generate

    repository = tmp_path_factory.mktemp("model_repository")
    generate("cpu", repository, Path(sys.prefix), Path(__file__).resolve().parents[2])
    settings = settings_on_free_ports(
        model_repository=str(repository),
        triton_home=str(TRITON_HOME),
        startup_timeout_s=240,
    )
    # Test images are served from loopback, which the production guard refuses.
    data_dir = tmp_path_factory.mktemp("data")
    with running_stack(settings, extra_env={"IMGSEL_FETCH_ALLOW_PRIVATE": "true", "IMGSEL_DATA_DIR": str(data_dir)}):
        yield settings


@pytest.fixture(scope="session")
def client(stack):
    with httpx.Client(base_url=f"http://{stack.host}:{stack.port}", timeout=120) as http_client:
        yield http_client
