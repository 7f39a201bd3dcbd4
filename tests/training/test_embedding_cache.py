"""The embedding caches: file-list keys and the content-addressed analysis store (its file round trip; analysing
images runs the real preprocessing and backbone, covered by the heads' tests)."""

from __future__ import annotations

import os

import numpy as np

from training.embedding_cache import AnalysisStore, content_digest, file_list_digest


def test_file_list_digest_follows_order_size_and_mtime(tmp_path):
    a, b = tmp_path / "a.jpg", tmp_path / "b.jpg"
    a.write_bytes(b"aa")
    b.write_bytes(b"bbb")
    key = file_list_digest([a, b], salt="backbone-1")
    assert key == file_list_digest([a, b], salt="backbone-1")
    assert key != file_list_digest([b, a], salt="backbone-1")
    assert key != file_list_digest([a, b], salt="backbone-2")
    without_mtime = file_list_digest([a, b], with_mtime=False)
    os.utime(a, ns=(1, 1))
    assert file_list_digest([a, b], salt="backbone-1") != key
    assert file_list_digest([a, b], with_mtime=False) == without_mtime
    a.write_bytes(b"aaa")
    assert file_list_digest([a, b], with_mtime=False) != without_mtime


def test_analysis_store_round_trip_keeps_only_what_is_asked(tmp_path):
    store = AnalysisStore(tmp_path, "samples", ("embeddings", "sizes"))
    assert store.path.parent == tmp_path and store.path.name.startswith("samples-")
    files = [np.frombuffer(bytes([i]) * 10, np.uint8) for i in range(3)]
    digests = [content_digest(f) for f in files]
    for i, digest in enumerate(digests):
        store.rows[digest] = (np.full(4, i, np.float32), np.array([i, 2 * i], np.int32))
    store.save(keep=set(digests[:2]))
    again = AnalysisStore(tmp_path, "samples", ("embeddings", "sizes"))
    assert digests[0] in again and digests[1] in again and digests[2] not in again
    np.testing.assert_array_equal(again.column("sizes", digests[1::-1]), [[1, 2], [0, 0]])
    assert again.column("embeddings", digests[:1]).dtype == np.float32


def test_a_new_blur_copy_keys_the_analysis_caches_afresh(tmp_path, monkeypatch):
    # Quality features come from the preprocessing, not the backbone: a store keyed by the backbone alone served the
    # antialiased copy's features after the served copy changed.
    import preprocessing.pipeline as pipeline

    served = AnalysisStore(tmp_path, "samples", ("features",)).path
    monkeypatch.setattr(pipeline, "SERVED_BLUR_COPY", pipeline.BlurCopy(512, "antialiased"))
    assert AnalysisStore(tmp_path, "samples", ("features",)).path != served
    monkeypatch.undo()
    assert AnalysisStore(tmp_path, "samples", ("features",)).path == served
