"""Nearest library pHash within a Hamming distance, for batches of queries (issue #5, placeholder matching at scale).

`HashIndex` holds (id, 64-bit pHash) pairs and answers, for every query hash, the library entry at the smallest
Hamming distance <= max_distance (ties: the earliest-added id), or None. Two strategies, one answer:

- linear scan: XOR against every library hash and popcount (gateway.hashing.popcount64), in blocks of
  SCAN_ELEMENTS pairs so memory stays bounded whatever the batch and library sizes;
- multi-index hashing (Norouzi et al. 2012; the band pieces are gateway.hashing.bands'): the hash is cut into
  `bands` bands of 64/bands bits, each band is a bucket table (rows sorted by band value + bincount offsets), a query
  probes in every band the buckets within a per-band radius of its own value, and every candidate is verified
  exactly. Pigeonhole: a pair whose band i differs in more than r_i bits is at least sum(r_i + 1) bits apart, so radii
  with sum(r_i + 1) > max_distance find every pair within max_distance, and the answer is exactly the linear scan's.
  The radii are the smallest that do, so smaller distances probe less (distance 0 probes one bucket of one band).
  The configured (bands, radius) bounds the distance: `max_distance` above `guaranteed_distance(bands, radius)` is
  refused rather than answered approximately.

`HashIndex.of_hashes` makes a fixed index without ids, answered by row (`nearest_rows`): the placeholder library's
snapshot, which is rebuilt rather than changed and maps rows to its own ids (a placeholder may own two keys).

`strategy="auto"` scans below `linear_below` library entries and uses the index above (measured crossover:
`python -m loadtest.placeholder_lookup`). add() appends, remove() marks rows dead; both rebuild lazily, at the next
query. Rows stay in insertion order through compaction, so "earliest added" is "lowest row".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from gateway.hashing import HASH_BITS, guaranteed_distance, popcount64
from gateway.hashing.bands import band_keys, bucket_table, expand, probe_masks

# Default band layout: 4 bands of 16 bits probed within 3 bits each, guaranteeing distance 15 (the placeholder
# threshold). 8 bands of 8 bits with radius 1 guarantee the same but make ~7x more candidates (9/256 of a band's
# rows per probe set against 697/65536); measured in loadtest.placeholder_lookup.
DEFAULT_BANDS = 4
DEFAULT_RADIUS = 3
# Library size from which "auto" uses the index rather than the scan. Measured (2 shared cores, t=15, bands 4x3):
# a 1000-query batch is faster through the index from ~10k entries (20k: 2.3x), a single query from ~50k
# (20k: 0.5 ms against 0.2 ms); 20k splits the difference.
LINEAR_BELOW = 20_000
# Pairs XOR-ed and popcounted at a time by the scan (uint64 temporaries: ~8 MB each).
SCAN_ELEMENTS = 1 << 20
# Probes (query x bucket) generated at a time by the index; the candidates they expand to are chunked by expand().
PROBE_CHUNK = 1 << 17
STRATEGIES = ("auto", "linear", "mih")


def _as_hashes(hashes) -> np.ndarray:
    h = np.asarray(hashes, dtype=np.uint64)
    if h.ndim != 1:
        raise ValueError(f"hashes must be one-dimensional, got shape {h.shape}")
    return h


class HashIndex:
    """Library of (id, 64-bit pHash) answering nearest-within-distance for batches of query hashes."""

    def __init__(
        self,
        ids: Sequence[str] = (),
        hashes: np.ndarray | Sequence[int] = (),
        *,
        bands: int = DEFAULT_BANDS,
        radius: int = DEFAULT_RADIUS,
        strategy: str = "auto",
        linear_below: int = LINEAR_BELOW,
    ) -> None:
        if HASH_BITS % bands or not 1 <= HASH_BITS // bands <= 16:
            raise ValueError(f"bands must divide 64 into bands of at most 16 bits, got {bands}")
        if not 0 <= radius <= HASH_BITS // bands:
            raise ValueError(f"radius must be in 0..{HASH_BITS // bands}, got {radius}")
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
        self.bands, self.radius, self.strategy, self.linear_below = bands, radius, strategy, linear_below
        self.width = HASH_BITS // bands
        # Largest max_distance answered exactly (the scan answers any distance when chosen explicitly).
        self.max_distance = guaranteed_distance(bands, radius)
        self._ids: list[str] = []
        self._hashes = np.zeros(0, dtype=np.uint64)
        self._row: dict[str, int] = {}  # id -> row, live ids only
        self._pending: list[np.ndarray] = []  # hashes added since the last compaction
        self._dead: set[int] = set()  # rows removed since the last compaction
        self._tables: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] | None = None
        self._anonymous = 0  # entries without ids (HashIndex.of_hashes)
        self.add(ids, hashes)

    @classmethod
    def of_hashes(
        cls,
        hashes: np.ndarray | Sequence[int],
        *,
        bands: int = DEFAULT_BANDS,
        radius: int = DEFAULT_RADIUS,
        strategy: str = "auto",
        linear_below: int = LINEAR_BELOW,
    ) -> HashIndex:
        """A fixed index of hashes without ids, answered by row (nearest_rows): no Python object per entry, for a
        snapshot that is rebuilt rather than changed (1M placeholder keys and their index: 47.8 MB; 122.9 MB with
        ids)."""
        index = cls(bands=bands, radius=radius, strategy=strategy, linear_below=linear_below)
        index._hashes = _as_hashes(hashes)
        index._anonymous = len(index._hashes)
        return index

    # ------------------------------------------------------------------------------------------------ content

    def add(self, ids: Iterable[str], hashes: np.ndarray | Sequence[int]) -> None:
        """Append entries (after every existing one, for tie-breaking). Ids must be new."""
        ids = list(ids)
        h = _as_hashes(hashes)
        if self._anonymous and len(h):
            raise ValueError("an index of hashes without ids (HashIndex.of_hashes) is fixed")
        if len(ids) != len(h):
            raise ValueError(f"{len(ids)} ids for {len(h)} hashes")
        if len(set(ids)) != len(ids) or any(i in self._row for i in ids):
            raise ValueError("ids must be unique and not already in the index")
        start = len(self._ids)
        self._ids.extend(ids)
        self._row.update(zip(ids, range(start, start + len(ids))))
        if len(h):
            self._pending.append(h)
            self._tables = None

    def remove(self, ids: Iterable[str]) -> None:
        """Drop entries by id (KeyError for an unknown one, before anything is removed)."""
        ids = list(ids)
        missing = [i for i in ids if i not in self._row]
        if missing:
            raise KeyError(f"not in the index: {missing[:5]}")
        for i in ids:
            self._dead.add(self._row.pop(i))
        if ids:
            self._tables = None

    def __len__(self) -> int:
        return len(self._row) + self._anonymous

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self._row

    def _compact(self) -> None:
        if self._pending:
            self._hashes = np.concatenate([self._hashes, *self._pending])
            self._pending = []
        if self._dead:
            keep = np.ones(len(self._ids), dtype=bool)
            keep[list(self._dead)] = False
            self._hashes = self._hashes[keep]
            self._ids = [i for i, k in zip(self._ids, keep.tolist()) if k]
            self._row = {i: r for r, i in enumerate(self._ids)}
            self._dead = set()

    def _band_tables(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """Per band: (row order sorted by band value, hashes in that order, bucket starts, bucket counts)."""
        if self._tables is None:
            h, w = self._hashes, self.width
            index_dtype = np.int32 if len(h) < 2**31 else np.int64
            self._tables = []
            for band in range(self.bands):
                order, starts, counts = bucket_table(band_keys(h, band, w), w, index_dtype)
                self._tables.append((order, h[order], starts, counts))
        return self._tables

    def build(self) -> None:
        """Apply pending adds/removals and build the band tables now (else done at the first query that needs them)."""
        self._compact()
        if self._use_index():
            self._band_tables()

    def nbytes(self) -> int:
        """Bytes held in numpy arrays: the hashes, plus the band tables when built (ids not counted)."""
        tables = sum(a.nbytes for t in self._tables for a in t) if self._tables else 0
        return self._hashes.nbytes + sum(p.nbytes for p in self._pending) + tables

    def _use_index(self) -> bool:
        return self.strategy == "mih" or (self.strategy == "auto" and len(self) >= self.linear_below)

    # ---------------------------------------------------------------------------------------------------- query

    def nearest(self, queries: np.ndarray | Sequence[int], max_distance: int) -> list[tuple[str, int] | None]:
        """For each query: (id, distance) of the closest entry within max_distance, ties to the earliest added;
        None when there is none."""
        if self._anonymous:
            raise ValueError("entries without ids are answered by row: nearest_rows")
        rows, dist = self.nearest_rows(queries, max_distance)
        ids = self._ids
        return [None if r < 0 else (ids[r], d) for r, d in zip(rows.tolist(), dist.tolist())]

    def nearest_rows(self, queries: np.ndarray | Sequence[int], max_distance: int) -> tuple[np.ndarray, np.ndarray]:
        """Array form of nearest(): (rows int64, distances int64), -1 for both where nothing is within range. Rows
        index the current entries in insertion order (valid until the next add/remove)."""
        q = _as_hashes(queries)
        limit = HASH_BITS if self.strategy == "linear" else self.max_distance
        if not isinstance(max_distance, int | np.integer) or not 0 <= max_distance <= limit:
            raise ValueError(
                f"max_distance must be an int in 0..{limit} (the index guarantees exact results up to "
                f"{self.max_distance} with bands={self.bands}, radius={self.radius}), got {max_distance!r}"
            )
        self._compact()
        if not len(self._hashes) or not len(q):
            return np.full(len(q), -1, np.int64), np.full(len(q), -1, np.int64)
        search = self._mih if self._use_index() else self._scan
        rows, dist = search(q, int(max_distance))
        missing = dist > max_distance
        rows[missing], dist[missing] = -1, -1
        return rows, dist

    def _scan(self, q: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Linear scan: (best row, its distance) per query; distance > t where nothing is within t."""
        h = self._hashes
        n = len(h)
        block = min(n, SCAN_ELEMENTS)
        q_block = max(1, SCAN_ELEMENTS // block)
        best_d = np.full(len(q), HASH_BITS + 1, dtype=np.int64)
        best_r = np.full(len(q), -1, dtype=np.int64)
        for qs in range(0, len(q), q_block):
            qq = q[qs : qs + q_block, None]
            bd, br = best_d[qs : qs + q_block], best_r[qs : qs + q_block]
            picks = np.arange(len(qq))
            for ls in range(0, n, block):
                d = popcount64(qq ^ h[None, ls : ls + block])
                r = d.argmin(axis=1)  # first minimum: the earliest row of the block
                dm = d[picks, r]
                better = dm < bd  # strict: an earlier block keeps its ties
                bd[better] = dm[better]
                br[better] = r[better] + ls
        return best_r, best_d

    def _band_radii(self, t: int) -> list[int]:
        """Smallest per-band radii with sum(r_i + 1) > t (-1: band not probed)."""
        base, extra = divmod(t + 1, self.bands)
        return [base + (band < extra) - 1 for band in range(self.bands)]

    def _mih(self, q: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Multi-index hashing: candidates from the probed buckets of every band, verified exactly."""
        n = len(self._hashes)
        none = (HASH_BITS + 1) * n  # key = distance * n + row; smallest key = closest, then earliest
        best = np.full(len(q), none, dtype=np.int64)
        for band, ((order, sorted_h, starts, counts), r) in enumerate(zip(self._band_tables(), self._band_radii(t))):
            if r < 0:
                continue
            masks = probe_masks(self.width, r)
            q_chunk = max(1, PROBE_CHUNK // len(masks))
            keys = band_keys(q, band, self.width)
            for qs in range(0, len(q), q_chunk):
                probes = (keys[qs : qs + q_chunk, None] ^ masks[None, :]).ravel()
                for pos, targets in expand(starts[probes], counts[probes]):
                    qi = pos // len(masks) + qs
                    d = popcount64(sorted_h[targets] ^ q[qi])
                    ok = d <= t
                    if ok.any():
                        key = d[ok].astype(np.int64) * n + order[targets[ok]]
                        np.minimum.at(best, qi[ok], key)
        found = best < none
        rows = np.where(found, best % n, -1)
        dist = np.where(found, best // n, HASH_BITS + 1)
        return rows, dist
