import numpy as np
import pytest

from gateway.hash_index import HashIndex


def _brute(library: np.ndarray, queries: np.ndarray, t: int, ids: list[str]):
    """Reference: Python ints, first minimum in insertion order."""
    out = []
    for q in queries.tolist():
        best = None
        for i, h in zip(ids, library.tolist()):
            d = (q ^ h).bit_count()
            if d <= t and (best is None or d < best[1]):
                best = (i, d)
        out.append(best)
    return out


def _flip(rng, h: int, k: int) -> int:
    for b in rng.choice(64, k, replace=False):
        h ^= 1 << int(b)
    return h


def _data(rng, n: int, n_queries: int, max_flip: int):
    library = rng.integers(0, 2**64, size=n, dtype=np.uint64, endpoint=False)
    queries = rng.integers(0, 2**64, size=n_queries, dtype=np.uint64, endpoint=False)
    for k in range(min(n, n_queries // 2)):  # planted near neighbours, some just out of range
        library[rng.integers(n)] = _flip(rng, int(queries[k]), int(rng.integers(0, max_flip + 1)))
    return library, queries


@pytest.mark.parametrize("n", [1, 40, 700, 5000])
@pytest.mark.parametrize("bands,radius", [(4, 3), (8, 1), (16, 0), (4, 1)])
def test_index_is_exact_against_scan(n, bands, radius):
    rng = np.random.default_rng(n + bands)
    top = bands * (radius + 1) - 1
    library, queries = _data(rng, n, 120, top + 3)
    ids = [f"x{i}" for i in range(n)]
    scan = HashIndex(ids, library, strategy="linear")
    index = HashIndex(ids, library, strategy="mih", bands=bands, radius=radius)
    for t in sorted({0, 1, top // 2, top - 1, top}):
        expected = scan.nearest(queries, t)
        assert index.nearest(queries, t) == expected
        if t == top and n > 1:
            assert any(e is not None for e in expected)


def test_scan_matches_python_brute_force():
    rng = np.random.default_rng(7)
    library, queries = _data(rng, 300, 60, 18)
    ids = [f"x{i}" for i in range(300)]
    for t in (0, 9, 15):
        expected = _brute(library, queries, t, ids)
        assert HashIndex(ids, library, strategy="linear").nearest(queries, t) == expected
        assert HashIndex(ids, library, strategy="mih").nearest(queries, t) == expected


@pytest.mark.parametrize("strategy", ["linear", "mih"])
def test_an_index_of_hashes_without_ids_answers_by_row_and_stays_fixed(strategy):
    rng = np.random.default_rng(11)
    library, queries = _data(rng, 500, 80, 18)
    ids = [f"x{i}" for i in range(500)]
    fixed = HashIndex.of_hashes(library, strategy=strategy)
    rows, distances = fixed.nearest_rows(queries, 15)
    expected = HashIndex(ids, library, strategy=strategy).nearest(queries, 15)
    assert [None if r < 0 else (ids[r], d) for r, d in zip(rows.tolist(), distances.tolist())] == expected
    assert len(fixed) == 500
    with pytest.raises(ValueError, match="fixed"):
        fixed.add(["new"], [1])
    with pytest.raises(ValueError, match="nearest_rows"):
        fixed.nearest(queries, 15)


def test_scan_blocks_keep_earliest_tie(monkeypatch):
    monkeypatch.setattr("gateway.hash_index.SCAN_ELEMENTS", 4)  # blocks of 4 rows, 1 query at a time
    h = np.array([0b1, 0b10, 0xFF, 0b100, 0b1000, 0b1], dtype=np.uint64)
    index = HashIndex([f"x{i}" for i in range(6)], h, strategy="linear")
    assert index.nearest(np.array([0, 0b1], dtype=np.uint64), 1) == [("x0", 1), ("x0", 0)]


@pytest.mark.parametrize("strategy", ["linear", "mih"])
def test_ties_go_to_earliest_added(strategy):
    q = 0xF0F0_F0F0_F0F0_F0F0
    same = [q ^ 0b11, q ^ (0b11 << 40), q ^ (1 << 63) ^ 1, q]
    index = HashIndex(["a", "b", "c"], np.array(same[:3], dtype=np.uint64), strategy=strategy)
    assert index.nearest([q], 15) == [("a", 2)]
    index.add(["d"], [same[3]])
    assert index.nearest([q], 15) == [("d", 0)]
    index.remove(["a", "d"])
    assert index.nearest([q], 15) == [("b", 2)]
    index.add(["a"], [same[0]])  # re-added: now the latest
    assert index.nearest([q], 15) == [("b", 2)]
    assert index.nearest([q], 1) == [None]


@pytest.mark.parametrize("strategy", ["auto", "linear", "mih"])
def test_add_remove_len_and_empty(strategy):
    index = HashIndex(strategy=strategy)
    assert len(index) == 0
    assert index.nearest(np.array([1, 2], dtype=np.uint64), 15) == [None, None]
    assert index.nearest(np.zeros(0, dtype=np.uint64), 3) == []
    rng = np.random.default_rng(3)
    library, queries = _data(rng, 400, 50, 12)
    ids = [f"x{i}" for i in range(400)]
    index.add(ids[:200], library[:200])
    index.add(ids[200:], library[200:])
    assert len(index) == 400 and "x5" in index
    assert index.nearest(queries, 15) == _brute(library, queries, 15, ids)
    gone = set(ids[::3])
    index.remove(sorted(gone))
    assert len(index) == 400 - len(gone) and "x0" not in index
    kept = [i for i in ids if i not in gone]
    kept_h = library[[i not in gone for i in ids]]
    assert index.nearest(queries, 15) == _brute(kept_h, queries, 15, kept)
    index.remove(kept)
    assert len(index) == 0 and index.nearest(queries, 15) == [None] * 50
    with pytest.raises(KeyError):
        index.remove(["x1"])


def test_auto_switches_at_threshold():
    rng = np.random.default_rng(5)
    library, queries = _data(rng, 300, 40, 17)
    ids = [f"x{i}" for i in range(300)]
    index = HashIndex(ids[:100], library[:100], linear_below=200)
    assert not index._use_index()
    index.add(ids[100:], library[100:])
    assert index._use_index()
    assert index.nearest(queries, 15) == _brute(library, queries, 15, ids)
    assert index._tables is not None


def test_guarantee_and_input_validation():
    index = HashIndex(["a"], [5], bands=8, radius=1)
    assert index.max_distance == 15
    with pytest.raises(ValueError, match="guarantees exact results up to 15"):
        index.nearest([5], 16)
    with pytest.raises(ValueError):
        index.nearest([5], -1)
    assert HashIndex(["a"], [5], strategy="linear").nearest([2**64 - 1], 64) == [("a", 62)]
    with pytest.raises(ValueError):
        HashIndex(["a"], [5], bands=3)
    with pytest.raises(ValueError):
        HashIndex(["a"], [5], bands=2)  # 32-bit bands: bucket table too large
    with pytest.raises(ValueError):
        HashIndex(["a", "a"], [1, 2])
    with pytest.raises(ValueError):
        HashIndex(["a"], [1, 2])
    with pytest.raises(ValueError):
        index.add(["a"], [3])
    with pytest.raises(ValueError):
        index.nearest(np.zeros((2, 2), dtype=np.uint64), 3)
