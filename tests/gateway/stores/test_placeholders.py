"""The placeholder library: persistence (incl. kill -9), 64-bit hashes through SQLite, nearest match."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from gateway.decisions.analysis import LibraryMatch
from gateway.hashing import hamming
from gateway.stores.placeholders import PlaceholderLibrary

HIGH_BIT = 0xF000_0000_0000_0001  # does not fit SQLite's signed INTEGER as is


def test_add_list_remove_and_reopen(tmp_path):
    path = tmp_path / "lib.sqlite"
    library = PlaceholderLibrary(path)
    assert library.add([("a", HIGH_BIT, 100, 80, "S1"), ("b", 0x0F, 10, 10, None)]) == ["a", "b"]
    assert library.remove("b") and not library.remove("b")
    library.close()
    reopened = PlaceholderLibrary(path)
    [entry] = reopened.entries()
    assert (entry.id, entry.phash, entry.width, entry.height, entry.supplier) == ("a", HIGH_BIT, 100, 80, "S1")


def test_same_id_replaces(tmp_path):
    library = PlaceholderLibrary(tmp_path / "lib.sqlite")
    library.add([("a", 1, 1, 1, None)])
    library.add([("a", 2, 1, 1, None)])
    assert [(e.id, e.phash) for e in library.entries()] == [("a", 2)]


def test_match_nearest_within_distance(tmp_path):
    library = PlaceholderLibrary(tmp_path / "lib.sqlite")
    library.add([("far", 0xFFFF_FFFF_FFFF_FFFF, 1, 1, None), ("near", 0b1111, 1, 1, None)])
    matches = library.match([0b0111, 0b0, 0xFFFF_0000_0000_0000], max_distance=4)
    assert matches[0] == LibraryMatch("near", 1)
    assert matches[1] == LibraryMatch("near", 4)
    assert matches[2] is None  # 16 bits from "far", 20 from "near"
    assert PlaceholderLibrary(tmp_path / "empty.sqlite").match([1, 2], 10) == [None, None]


def test_acknowledged_add_survives_kill_9(tmp_path):
    """The writer is killed with SIGKILL right after add() returns: the row must be there on reopen."""
    path = tmp_path / "lib.sqlite"
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[3])!r})
        from pathlib import Path
        from gateway.stores.placeholders import PlaceholderLibrary
        library = PlaceholderLibrary(Path({str(path)!r}))
        library.add([("kept", 42, 5, 5, None)])
        print("acknowledged", flush=True)
        os.kill(os.getpid(), {int(signal.SIGKILL)})
    """)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env={**os.environ}
    )
    assert result.returncode == -signal.SIGKILL and "acknowledged" in result.stdout
    assert [e.id for e in PlaceholderLibrary(path).entries()] == ["kept"]


def test_large_library_uses_the_index_and_stays_exact_at_the_default_distance(tmp_path):
    """Above the linear-scan size the multi-index is probed deep enough for the configured distance (16 > 15)."""
    rng = np.random.default_rng(3)
    hashes = rng.integers(0, 2**63, size=25_000, dtype=np.uint64).tolist()
    library = PlaceholderLibrary(tmp_path / "lib.sqlite")
    library.add([(f"r{i}", h, 1, 1, None) for i, h in enumerate(hashes)])
    query = hashes[1234] ^ 0xFFFF  # 16 bits away from r1234
    [match] = library.match([query], max_distance=16)
    expected = hamming(np.array(hashes, dtype=np.uint64), query)
    assert match == LibraryMatch(f"r{int(np.argmin(expected))}", int(expected.min()))
    assert match.distance <= 16
