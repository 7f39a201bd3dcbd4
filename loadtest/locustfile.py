"""Locust scenario: product pages arriving with 8 supplier images each (800x800 JPEGs, base64 in the body),
plus lighter streams of /v1/dedup calls and of visual searches against a small index built at start.

    locust -f loadtest/locustfile.py --host http://127.0.0.1:8080      (against a running `make run`)
    make loadtest                                                      (starts its own stack, headless, bounded)

For fault runs (loadtest/fault_run.py): IMGSEL_LOCUST_REQUEST_LOG=<file> appends one JSON line per finished request
(start, duration, status, Retry-After, error); IMGSEL_LOCUST_TIMEOUT_S bounds every request, so a hung request shows
up as a timeout instead of never finishing.
"""

from __future__ import annotations

import base64
import json
import os
import random
import time

from locust import HttpUser, between, events, task

from loadtest.products import benchmark_images, select_payloads

FILES, DATA_NOTE = benchmark_images(64)
SELECT_BODIES = select_payloads(FILES, 32)
DEDUP_BODIES = [json.dumps({"images": json.loads(body)["images"]}).encode() for body in SELECT_BODIES[:8]]
HEADERS = {"content-type": "application/json"}
SEARCH_BODIES = [json.dumps({"image": {"data": base64.b64encode(f).decode()}, "k": 10}).encode() for f in FILES[:16]]
REQUEST_LOG = os.environ.get("IMGSEL_LOCUST_REQUEST_LOG", "")
TIMEOUT_S = float(os.environ.get("IMGSEL_LOCUST_TIMEOUT_S", "0")) or None  # None: requests' default, no limit


@events.request.add_listener
def log_request(name, response_time, response, exception, start_time=None, **_kwargs):
    if not REQUEST_LOG:
        return
    status = getattr(response, "status_code", 0) or 0
    record = {
        "start": start_time or time.time() - response_time / 1000,
        "ms": round(response_time, 1),
        "name": name,
        "status": status,
        "retry_after": (response.headers.get("retry-after") if status else None),
        "error": None if exception is None else f"{type(exception).__name__}: {exception}"[:200],
    }
    with open(REQUEST_LOG, "a") as log:
        log.write(json.dumps(record) + "\n")


@events.test_start.add_listener
def build_search_index(environment, **_kwargs):
    """Index the 64 benchmark photos once (partition predicted by the category head), so searches find them."""
    import httpx

    items = [
        {
            "product_id": f"bench-{i}",
            "image_id": f"bench-{i}-1",
            "category": "apparel",
            "data": base64.b64encode(f).decode(),
        }
        for i, f in enumerate(FILES)
    ]
    httpx.post(f"{environment.host}/v1/index", json={"items": items}, timeout=300).raise_for_status()


class CatalogIngest(HttpUser):
    wait_time = between(0.0, 0.2)

    @task(9)
    def select(self):
        with self.client.post(
            "/v1/select",
            data=random.choice(SELECT_BODIES),
            headers=HEADERS,
            name="/v1/select (8 images)",
            catch_response=True,
            timeout=TIMEOUT_S,
        ) as response:
            if response.status_code == 200 and len(response.json()["images"]) != 8:
                response.failure("response lacks a verdict per image")

    @task(1)
    def dedup(self):
        self.client.post(
            "/v1/dedup",
            data=random.choice(DEDUP_BODIES),
            headers=HEADERS,
            name="/v1/dedup (8 images)",
            timeout=TIMEOUT_S,
        )

    @task(2)
    def search(self):
        with self.client.post(
            "/v1/search",
            data=random.choice(SEARCH_BODIES),
            headers=HEADERS,
            name="/v1/search",
            catch_response=True,
            timeout=TIMEOUT_S,
        ) as response:
            if response.status_code == 200 and not response.json()["results"]:
                response.failure("search found nothing in a non-empty index")
