"""Resident memory of tritonserver, the preprocess and the backbone model processes: idle, after one 8-image
/v1/select, after each of three 64-image ones (full ensemble batches). A private stack on loopback.

    python -m loadtest.triton_memory_step [model_repository]
"""

from __future__ import annotations

import base64
import json
import sys
import time

import httpx

from gateway.settings import PROJECT_ROOT
from loadtest.products import benchmark_images
from loadtest.stack_processes import rss_mb, stack_processes
from tools.launcher import running_stack, settings_on_free_ports

WATCHED = ("tritonserver", "stub preprocess", "stub vision")


def select_body(files: list[bytes], tag: str) -> dict:
    images = [{"id": f"{tag}-{i}", "data": base64.b64encode(f).decode()} for i, f in enumerate(files)]
    return {"product_id": tag, "images": images}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    repository = argv[0] if argv else str(PROJECT_ROOT / "model_repository")
    files, _ = benchmark_images(64)
    settings = settings_on_free_ports(model_repository=repository)
    with running_stack(settings), httpx.Client(timeout=300) as client:

        def memory() -> dict[str, int]:
            return {k: round(rss_mb(pid) or 0) for k, pid in stack_processes(settings).items() if k in WATCHED}

        url = f"http://{settings.host}:{settings.port}/v1/select"
        steps = {"idle": memory()}
        for label, count in [("after 8 images", 8), *((f"after 64 images #{k + 1}", 64) for k in range(3))]:
            client.post(url, json=select_body(files[:count], label.replace(" ", "-"))).raise_for_status()
            time.sleep(1.0)
            steps[label] = memory()
    print(json.dumps(steps, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
