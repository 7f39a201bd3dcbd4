"""What the services need from shared state: the placeholder library, the category exemplars of the vote, and the
visual-search index. The PostgreSQL classes (gateway.stores.placeholders, .exemplars, .search_index) implement these;
the service tests use in-memory fakes of the same methods. Every method is a coroutine: no store call blocks the
event loop. A store that cannot reach its database raises gateway.clients.database.StoreUnavailable."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from gateway.decisions.analysis import LibraryMatch


@dataclass(frozen=True)
class LibraryEntry:
    """One placeholder image to store in the library."""

    id: str
    phash: int  # 64-bit pHash of the content box (what every image is matched by), unsigned
    width: int
    height: int
    supplier: str | None
    # pHash of the whole picture (preprocessing.perceptual.whole_phash): a second key the same image is known by;
    # None where it was never computed (rows imported from before it existed)
    whole_phash: int | None = None


@dataclass(frozen=True, kw_only=True)
class Placeholder(LibraryEntry):
    """One known placeholder image of the library: an entry as stored, and when."""

    added_at: float  # seconds since the epoch


@dataclass(frozen=True)
class Hit:
    """One visual-search result."""

    product_id: str
    image_id: str
    partition: str
    score: float  # cosine similarity


class LibraryView(Protocol):
    """The library as of one moment (PlaceholderStore.snapshot): matching against it reads nothing more."""

    async def match(self, phashes: list[int], max_distance: int) -> list[LibraryMatch | None]:
        """Nearest known placeholder within `max_distance` bits for each query (by either of its keys)."""
        ...


class PlaceholderStore(Protocol):
    async def add(self, entries: list[LibraryEntry]) -> list[str]:
        """An existing id is replaced. All or nothing. The ids stored."""
        ...

    async def remove(self, placeholder_id: str) -> bool: ...

    async def entries(self) -> list[Placeholder]: ...

    async def snapshot(self) -> LibraryView:
        """The library as of the latest committed change (read before the images' hashes are known, so the read can
        run beside the model call)."""
        ...

    async def match(self, phashes: list[int], max_distance: int) -> list[LibraryMatch | None]:
        """`snapshot()` then its match."""
        ...


class CategoryExemplarStore(Protocol):
    async def add(self, category: str, product_id: str, images: list[tuple[str, np.ndarray]]) -> int:
        """Store a product's accepted (image_id, embedding), best first, replacing its earlier ones. How many."""
        ...

    async def recent(self, category: str, k: int, exclude_product: str | None = None) -> np.ndarray:
        """[m <= k, D] embeddings of the most recent exemplars of distinct products, most recent first."""
        ...


class SearchIndexStore(Protocol):
    async def add(self, items: list[tuple[str, str, str, np.ndarray]]) -> list[str]:
        """(product_id, image_id, partition, embedding) rows; an indexed image_id is replaced. All or nothing."""
        ...

    async def remove_product(self, product_id: str) -> int: ...

    async def partitions(self) -> dict[str, int]:
        """Partition -> number of indexed images."""
        ...

    async def search(self, query: np.ndarray, partitions: list[str], k: int, per_product: bool = True) -> list[Hit]: ...
