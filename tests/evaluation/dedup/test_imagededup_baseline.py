"""evaluation.dedup.imagededup_baseline: the side-venv script scores a hash like every other baseline."""

from __future__ import annotations

import numpy as np

from evaluation.dedup.generate import generate
from tests.evaluation.dedup.photos import make_folder


def test_imagededup_baseline_scores_a_hash_like_the_other_baselines(tmp_path, monkeypatch, capsys):
    """The side-venv script's scoring path, with imagehash's pHash standing in for imagededup's (same definition)."""
    import imagehash
    from PIL import Image

    from evaluation.dedup import imagededup_baseline

    def fake_signatures(files):
        values = [int(str(imagehash.phash(Image.open(p).convert("RGB"))), 16) for p in files]
        return np.array(values, dtype=np.uint64), 1.0

    monkeypatch.setattr(imagededup_baseline, "phash_signatures", fake_signatures)
    monkeypatch.setattr(imagededup_baseline, "cnn_status", lambda: "skipped in tests")
    generate(make_folder(tmp_path / "photos"), tmp_path / "pairs", seed=0, n_pairs=24)
    assert imagededup_baseline.main(["--pairs", str(tmp_path / "pairs"), "--folds", "2"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| imagededup PHash"))
    precision, recall = (float(cell) for cell in row.split("|")[3:5])
    assert 0.0 <= recall <= 1.0 and 0.0 <= precision <= 1.0
    assert "24 pairs" in out and "imagededup CNN: skipped in tests" in out
