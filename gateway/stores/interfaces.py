"""What the services need from shared state: the placeholder library, the category exemplars of the vote, and the
visual-search index. The SQLite classes (gateway.stores.placeholders, .exemplars, .search_index) implement these;
another backend implements the same methods and the services do not change."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from gateway.decisions.analysis import LibraryMatch


@dataclass(frozen=True)
class Placeholder:
    """One known placeholder image of the library."""

    id: str
    phash: int  # 64-bit pHash, unsigned
    width: int
    height: int
    supplier: str | None
    added_at: float


@dataclass(frozen=True)
class Hit:
    """One visual-search result."""

    product_id: str
    image_id: str
    partition: str
    score: float  # cosine similarity


class PlaceholderStore(Protocol):
    def add(self, entries: list[tuple[str, int, int, int, str | None]]) -> list[str]:
        """(id, phash, width, height, supplier) rows; an existing id is replaced. All or nothing. The ids stored."""
        ...

    def remove(self, placeholder_id: str) -> bool: ...

    def entries(self) -> list[Placeholder]: ...

    def match(self, phashes: list[int], max_distance: int) -> list[LibraryMatch | None]:
        """Nearest known placeholder within `max_distance` bits for each query."""
        ...

    def close(self) -> None: ...


class CategoryExemplarStore(Protocol):
    def add(self, category: str, product_id: str, images: list[tuple[str, np.ndarray]]) -> int:
        """Store a product's accepted (image_id, embedding), best first, replacing its earlier ones. How many."""
        ...

    def recent(self, category: str, k: int, exclude_product: str | None = None) -> np.ndarray:
        """[m <= k, D] embeddings of the most recent exemplars of distinct products, most recent first."""
        ...

    def close(self) -> None: ...


class SearchIndexStore(Protocol):
    def add(self, items: list[tuple[str, str, str, np.ndarray]]) -> list[str]:
        """(product_id, image_id, partition, embedding) rows; an indexed image_id is replaced. All or nothing."""
        ...

    def remove_product(self, product_id: str) -> int: ...

    def partitions(self) -> dict[str, int]:
        """Partition -> number of indexed images."""
        ...

    def search(self, query: np.ndarray, partitions: list[str], k: int, per_product: bool = True) -> list[Hit]: ...

    def close(self) -> None: ...
