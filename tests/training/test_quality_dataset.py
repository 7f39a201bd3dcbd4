"""The quality dataset: rendered samples through the real preprocessing and backbone, labels kept in spec order, and
both caches (the whole dataset; each sample's analysis by content) reused."""

from __future__ import annotations

import numpy as np
import pytest

from training.embedding_cache import AnalysisStore
from training.quality_dataset import build_dataset
from training.quality_samples import Spec

SPECS = [
    Spec("ph_text:0", "ph_text", "", "phrase:No image", "train"),
    Spec("ph_box:1", "ph_box", "", "ph_box:1", "test"),
    Spec("ph_glyph:2", "ph_glyph", "", "phrase:Coming soon", "calibration"),
]


def test_dataset_is_built_once_and_samples_are_embedded_once(tmp_path, monkeypatch):
    dataset = build_dataset(SPECS, tmp_path, verbose=False, workers=1)
    assert dataset.embeddings.shape == (3, 1280) and dataset.features.shape == (3, 2)
    np.testing.assert_array_equal(dataset.labels[:, 2], [1.0, 1.0, 1.0])  # placeholders; blur, size unlabelled
    assert np.isnan(dataset.labels[:, :2]).all() and np.isnan(dataset.sigma_work).all()
    assert dataset.rows("test").tolist() == [1] and dataset.rows(kinds=("ph_text", "ph_glyph")).tolist() == [0, 2]

    def no_new_analysis(*_):
        raise AssertionError("a cached sample was analysed again")

    monkeypatch.setattr(AnalysisStore, "add", no_new_analysis)
    again = build_dataset(SPECS, tmp_path, verbose=False, workers=1)  # the whole dataset from its cache
    np.testing.assert_array_equal(again.embeddings, dataset.embeddings)
    for path in tmp_path.glob("dataset-*.npz"):
        path.unlink()
    rebuilt = build_dataset(SPECS[::-1], tmp_path, verbose=False, workers=1)  # new list, same samples
    np.testing.assert_array_equal(rebuilt.embeddings, dataset.embeddings[::-1])
    with pytest.raises(AssertionError, match="analysed again"):
        build_dataset([Spec("ph_text:9", "ph_text", "", "phrase:No photo", "train")], tmp_path, workers=1)
