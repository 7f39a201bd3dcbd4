"""One backfill worker (a Ray Data actor): long-lived clients (one Triton gRPC channel, one fetch client, one
database pool) on the actor's own event loop, the gateway's services built as the gateway builds them, and per batch:
its products with bounded concurrency, retries with backoff, the batch's part file, and a summary back to the driver.

Curation calls `CurationService.curate` (the function behind /v1/select) and `presenter.select_response`, so a
product's result is the /v1/select answer for it; the index build calls `SearchService.embed_items` (the embedding
half of /v1/index)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import socket
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import ValidationError

from backfill.capacity import image_set_change
from backfill.fetch import CatalogFetcher
from backfill.manifest import Product, index_request, select_request
from backfill.results import DEAD_LETTER, DEAD_LETTER_SCHEMA, SCHEMAS, write_part
from backfill.versions import Versions
from gateway.decisions.search import partition_allowed, partition_name
from gateway.services.errors import InvalidField
from gateway.services.presenter import select_response
from gateway.settings import Settings
from gateway.wiring import wire

# A product that is wrong in itself fails the same way every time: straight to the dead letters.
NOT_RETRIED = (ValidationError, InvalidField)


@dataclass(frozen=True)
class JobConfig:
    mode: str  # "curate" or "index"
    output: str  # folder or object-store URI
    versions: Versions
    run_id: str
    settings: Settings  # the gateway's settings (IMGSEL_*): Triton, fetching limits, database, categories file
    concurrency: int = 4  # products in flight per worker
    attempts: int = 4  # tries per product before its dead letter
    backoff_s: float = 1.0  # first retry delay (doubled per try, jittered): outlasts the clients' breaker cooldowns
    backoff_max_s: float = 30.0


def backoff_delay(attempt: int, base_s: float, max_s: float, jitter: float) -> float:
    """Delay before try `attempt + 1` (attempt >= 1): base x 2^(attempt-1), capped, times `jitter` in [0.5, 1]."""
    return min(max_s, base_s * 2 ** (attempt - 1)) * jitter


class Services:
    """The gateway's clients and services (gateway.wiring, as the app builds them) on the worker's event loop."""

    async def open(self, settings: Settings) -> Services:
        # Held for the actor's life: Ray ends an actor by killing its process, which closes its sockets.
        self.cleanup = AsyncExitStack()
        # The vote's exemplar writes awaited: a failed one fails its product (retried, else dead-lettered), and none
        # is pending when Ray ends the actor.
        self.wiring = await wire(settings, self.cleanup, fetcher_type=CatalogFetcher, feed_after_answer=False)
        return self

    async def curate(self, product: Product) -> dict:
        response = select_response(await self.wiring.curation.curate(select_request(product)))
        statuses = {image.id: image.status for image in response.images}
        change = image_set_change([i.id for i in product.images], statuses, response.selected)
        return {
            "category": response.category,
            "category_source": response.category_source,
            "images": len(product.images),
            "selected": response.selected,
            "dropped": change.dropped,
            "duplicates": change.duplicates,
            "hero_changed": change.hero_changed,
            "image_set_changed": change.changed,
            "response": response.model_dump_json(),
        }

    async def embed(self, product: Product) -> dict:
        """The product's images embedded, in the manifest category's partition when it is one (else predicted)."""
        head = self.wiring.catalog.category_head
        partition = product.category if partition_allowed(partition_name(product.category), head) else None
        rows, outcome = await self.wiring.search.embed_items(index_request(product, partition))
        return {
            "images": len(product.images),
            "image_ids": [image_id for _, image_id, _, _ in rows],
            "partitions": [name for _, _, name, _ in rows],
            "embeddings": [e.astype("float32").tolist() for _, _, _, e in rows],
            "failed": [f"{image_id}:{reason}" for image_id, reason in outcome.failed],
        }


class BackfillWorker:
    """Ray Data's callable class for map_batches: constructed once per actor, called once per batch."""

    def __init__(self, config: JobConfig):
        self.config = config
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.loop = asyncio.new_event_loop()
        self.services = self.loop.run_until_complete(Services().open(config.settings))
        self.random = random.Random()

    def __call__(self, batch: dict) -> dict:
        keys = [str(k) for k in batch["key"]]
        products = [Product.from_json(str(text)) for text in batch["product"]]
        started = time.perf_counter()
        outcomes = self.loop.run_until_complete(self._all(products))
        seconds = time.perf_counter() - started
        name = "part-" + hashlib.sha256("\0".join(sorted(keys)).encode()).hexdigest()[:24]
        now = datetime.now(UTC)
        done, dead = [], []
        for key, product, (result, attempts, error) in zip(keys, products, outcomes):
            row = {
                "key": key,
                "product_id": product.product_id,
                "input_fingerprint": product.fingerprint(),
                "model_version": self.config.versions.model,
                "categories_version": self.config.versions.categories,
                "run_id": self.config.run_id,
                "worker": self.worker,
                "batch": name,
                "batch_seconds": seconds,
                "attempts": attempts,
                "processed_at": now,
            }
            if error is None:
                done.append(row | result)
            else:
                dead.append(row | {"error": error, "product": product.to_json()})
        if done:
            write_part(f"{self.config.output}/{self.config.mode}", name, done, SCHEMAS[self.config.mode])
        if dead:
            folder = f"{self.config.output}/{DEAD_LETTER}/{self.config.run_id}"
            write_part(folder, name, dead, DEAD_LETTER_SCHEMA)
        failed = {row["key"] for row in dead}
        return {
            "key": keys,
            "status": ["dead_letter" if k in failed else "done" for k in keys],
            "images": [len(p.images) for p in products],
        }

    async def _all(self, products: list[Product]) -> list[tuple[dict | None, int, str | None]]:
        slots = asyncio.Semaphore(self.config.concurrency)

        async def one(product: Product):
            async with slots:
                return await self._with_retries(product)

        return await asyncio.gather(*(one(p) for p in products))

    async def _with_retries(self, product: Product) -> tuple[dict | None, int, str | None]:
        """(result, tries, None), or (None, tries, the last error) once the tries are spent."""
        step = self.services.curate if self.config.mode == "curate" else self.services.embed
        for attempt in range(1, self.config.attempts + 1):
            try:
                return await step(product), attempt, None
            except NOT_RETRIED as error:
                return None, attempt, f"{type(error).__name__}: {error}"
            except Exception as error:  # Triton or the database unavailable, a timeout, anything transient
                if attempt == self.config.attempts:
                    return None, attempt, f"{type(error).__name__}: {error}"
                jitter = 0.5 + self.random.random() / 2
                await asyncio.sleep(backoff_delay(attempt, self.config.backoff_s, self.config.backoff_max_s, jitter))
        raise AssertionError("unreachable")
