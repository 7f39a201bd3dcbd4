"""Two gateway processes over one database (the embedded PostgreSQL) and the session stack's Triton: what one writes
the other sees on its next request, concurrent writes lose nothing, kill -9 of a gateway mid-write leaves the
database consistent, and the database going away answers 503 with Retry-After at once and recovers."""

from __future__ import annotations

import base64
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest

from loadtest.stack_processes import second_gateway, stack_processes
from tests.helpers import encode, product_photo, rendered_placeholder
from tools.database import EmbeddedDatabase

FAST_FAIL = {"IMGSEL_DATABASE_TIMEOUT_S": "2", "IMGSEL_DATABASE_BREAKER_COOLDOWN_S": "1", "IMGSEL_RETRY_AFTER_S": "3"}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def photo(seed: int) -> str:
    return b64(encode(product_photo(400, (40 + 20 * seed % 200, 90, 200 - 15 * seed % 180), seed=seed)))


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    db = EmbeddedDatabase(tmp_path_factory.mktemp("shared-db"))
    db.start()
    yield db
    db.stop()


@pytest.fixture(scope="module")
def gateways(stack, database, tmp_path_factory):
    """Gateways A and B (httpx clients) sharing `database`."""
    env = {"IMGSEL_FETCH_ALLOW_PRIVATE": "true", **FAST_FAIL}
    with (
        second_gateway(stack, tmp_path_factory.mktemp("a"), env, database.url) as a,
        second_gateway(stack, tmp_path_factory.mktemp("b"), env, database.url) as b,
        httpx.Client(base_url=f"http://{a.host}:{a.port}", timeout=120) as client_a,
        httpx.Client(base_url=f"http://{b.host}:{b.port}", timeout=120) as client_b,
    ):
        yield client_a, client_b


def select(client: httpx.Client, image: str) -> dict:
    body = {"product_id": "sku-shared", "category": "apparel", "images": [{"id": "img", "data": image}]}
    response = client.post("/v1/select", json=body)
    assert response.status_code == 200, response.text
    return response.json()["images"][0]


def test_placeholder_added_through_one_is_matched_by_the_other(gateways):
    a, b = gateways
    known = b64(encode(rendered_placeholder(500, seed=11), "PNG"))
    assert (select(b, known)["placeholder"] or {}).get("mechanism") != "library"  # B has loaded its library cache

    assert a.post("/v1/placeholders", json={"images": [{"id": "shared-ph", "data": known}]}).status_code == 200
    matched = select(b, known)
    assert matched["placeholder"]["mechanism"] == "library" and matched["placeholder"]["library_id"] == "shared-ph"

    assert a.delete("/v1/placeholders/shared-ph").status_code == 200
    assert (select(b, known)["placeholder"] or {}).get("mechanism") != "library"
    assert b.delete("/v1/placeholders/shared-ph").status_code == 404


def test_product_deleted_through_one_is_never_returned_by_the_other(gateways):
    a, b = gateways
    items = [
        {"product_id": f"del-{i}", "image_id": f"del-{i}-1", "category": "gear", "data": photo(i)} for i in range(3)
    ]
    assert a.post("/v1/index", json={"items": items}).status_code == 200
    query = {"image": {"data": photo(1)}, "k": 5, "category": "gear"}
    assert b.post("/v1/search", json=query).json()["results"][0]["product_id"] == "del-1"

    assert a.delete("/v1/index/del-1").json() == {"deleted": "del-1", "images": 1}
    for _ in range(3):
        found = {r["product_id"] for r in b.post("/v1/search", json=query).json()["results"]}
        assert "del-1" not in found and {"del-0", "del-2"} <= found


def test_concurrent_writes_from_both_lose_nothing(gateways):
    a, b = gateways
    image = photo(40)
    writes = [(a if i % 2 else b, i) for i in range(24)]

    def add_placeholder(job):
        client, i = job
        return client.post("/v1/placeholders", json={"images": [{"id": f"cw-{i}", "data": image}]}).status_code

    def index(job):
        client, i = job
        item = {"product_id": f"cw-{i}", "image_id": f"cw-{i}-1", "category": "packages", "data": image}
        return client.post("/v1/index", json={"items": [item]}).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(add_placeholder, writes)) + list(pool.map(index, writes))
    assert codes == [200] * 48
    for client in (a, b):
        listed = {p["id"] for p in client.get("/v1/placeholders").json()["placeholders"]}
        assert {f"cw-{i}" for i in range(24)} <= listed
        assert client.get("/v1/index").json()["partitions"]["packages"] == 24


def partition_counts_match(url: str) -> bool:
    with psycopg.connect(url) as db:
        rows = db.execute(
            "SELECT p.name, p.images, (SELECT count(*) FROM search_items s WHERE s.partition = p.name) "
            "FROM search_partitions p"
        ).fetchall()
    return all(kept == counted for _, kept, counted in rows)


def test_kill_9_of_a_gateway_mid_write_leaves_the_database_consistent(stack, database, tmp_path_factory, gateways):
    a, _ = gateways
    batch = 8
    with second_gateway(stack, tmp_path_factory.mktemp("c"), FAST_FAIL, database.url) as c:
        pid = next(p for name, p in stack_processes(c).items() if name == "gateway")

        def write_batches():
            with httpx.Client(base_url=f"http://{c.host}:{c.port}", timeout=60) as client:
                for k in range(1000):
                    items = [
                        {
                            "product_id": f"kill-{k}",
                            "image_id": f"kill-{k}-{j}",
                            "category": "vegetables",
                            "data": photo(j),
                        }
                        for j in range(batch)
                    ]
                    try:
                        client.post("/v1/index", json={"items": items})
                    except httpx.HTTPError:
                        return

        writer = threading.Thread(target=write_batches)
        writer.start()
        time.sleep(4.0)  # a few batches in, one in flight
        os.kill(pid, signal.SIGKILL)
        writer.join(30)

    with psycopg.connect(database.url) as db:
        sizes = db.execute(
            "SELECT product_id, count(*) FROM search_items WHERE product_id LIKE 'kill-%' GROUP BY product_id"
        ).fetchall()
    assert sizes, "no batch was written before the kill"
    assert all(n == batch for _, n in sizes), f"a batch was half written: {sizes}"
    assert partition_counts_match(database.url)
    # Nothing of the dead gateway holds a lock: a write through another gateway goes through at once.
    item = {"product_id": "after-kill", "image_id": "after-kill-1", "category": "vegetables", "data": photo(3)}
    assert a.post("/v1/index", json={"items": [item]}).status_code == 200


def test_database_going_away_answers_503_at_once_and_service_resumes(gateways, database):
    a, b = gateways
    database.stop()
    try:
        for client in (a, b):
            for path in ("/v1/placeholders", "/v1/index"):
                started = time.monotonic()
                response = client.get(path)
                assert response.status_code == 503, response.text
                assert response.headers["Retry-After"] == FAST_FAIL["IMGSEL_RETRY_AFTER_S"]
                assert time.monotonic() - started < 5.0  # the database timeout (2 s) bounds it: never a hang
            ready = client.get("/readyz")
            assert ready.status_code == 503 and "state store" in ready.json()["reason"]
            selected = client.post("/v1/select", json={"product_id": "p", "images": [{"id": "x", "data": photo(5)}]})
            assert selected.status_code == 503 and "Retry-After" in selected.headers
    finally:
        database.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if all(client.get("/v1/placeholders").status_code == 200 for client in (a, b)):
            break
        time.sleep(0.5)
    assert all(client.get("/v1/placeholders").status_code == 200 for client in (a, b))
    assert all(client.get("/readyz").status_code == 200 for client in (a, b))
