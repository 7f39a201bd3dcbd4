"""Locust scenario: product pages arriving with 8 supplier images each (800x800 JPEGs, base64 in the body),
plus a lighter stream of /v1/dedup calls.

    locust -f loadtest/locustfile.py --host http://127.0.0.1:8080      (against a running `make run`)
    make loadtest                                                      (starts its own stack, headless, bounded)
"""

from __future__ import annotations

import json
import random

from locust import HttpUser, between, task

from loadtest.products import benchmark_images, select_payloads

FILES, DATA_NOTE = benchmark_images(64)
SELECT_BODIES = select_payloads(FILES, 32)
DEDUP_BODIES = [json.dumps({"images": json.loads(body)["images"]}).encode() for body in SELECT_BODIES[:8]]
HEADERS = {"content-type": "application/json"}


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
        ) as response:
            if response.status_code == 200 and len(response.json()["images"]) != 8:
                response.failure("response lacks a verdict per image")

    @task(1)
    def dedup(self):
        self.client.post("/v1/dedup", data=random.choice(DEDUP_BODIES), headers=HEADERS, name="/v1/dedup (8 images)")
