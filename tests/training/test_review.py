"""training.review: one round of the review loop. Scoring splits a folder into confident hits and an uncertainty-ordered
queue, writes the labelling page and each hit's catalog neighbours; retraining grows the training set from the hits
and the labels, never from the check set, and logs each round's check-set figures."""

from __future__ import annotations

import csv
import json
import zlib
from pathlib import Path

import numpy as np
import pytest

from contract.tensors import EMBEDDING_DIM
from tests.helpers import concept_photo
from training import compliance_head, review
from training.concepts import warning_sticker

COLOURS = [(40, 90, 200), (30, 140, 60), (120, 120, 120), (230, 190, 40)]


def write_photos(folder: Path, seeds: range, sticker: bool) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in seeds:
        path = folder / f"{'s' if sticker else 'c'}{k:03d}.jpg"
        path.write_bytes(concept_photo(k, 360, COLOURS, warning_sticker if sticker else None))
        paths.append(path)
    return paths


def test_split_orders_hits_by_score_and_the_queue_by_uncertainty():
    scored = [review.Scored(Path(f"{s}"), s) for s in (0.95, 0.1, 0.55, 0.3, 0.99, 0.85, 0.2)]
    hits, queue = review.split(scored, accept=0.9, review_from=0.2)
    assert [h.score for h in hits] == [0.99, 0.95]
    assert [q.score for q in queue] == [0.55, 0.3, 0.2, 0.85]  # |score - 0.5|: 0.05, 0.2, 0.3, 0.35


def test_a_round_on_real_embeddings_writes_hits_queue_page_and_neighbours(tmp_path):
    positives = write_photos(tmp_path / "pos", range(0, 24), sticker=True)
    negatives = write_photos(tmp_path / "neg", range(100, 124), sticker=False)
    rows, _valid = review.embed_paths(positives + negatives)
    head = compliance_head.train(rows[:24], rows[24:], "sticker")
    head_path = compliance_head.write(head, tmp_path / "heads", rows)
    unseen = write_photos(tmp_path / "new", range(200, 206), True) + write_photos(
        tmp_path / "new", range(300, 306), False
    )
    asked = []

    def neighbours(path: Path, k: int) -> list[dict]:
        asked.append(path)
        return [
            {"product_id": f"p{i}", "image_id": f"i{i}", "category": "fashion", "score": 0.9 - i / 10} for i in range(k)
        ]

    scores = review.head_scores(head_path, review.embed_paths(unseen)[0])
    accept = float(np.sort(scores)[-3])  # the three most confident are hits, whatever this small head's scale
    counts = review.score_round(head_path, unseen, tmp_path / "round-1", accept, 0.05, neighbours, k=3)
    assert counts["scored"] == 12 and counts["hits"] == 3 and counts["hits"] + counts["queue"] <= 12
    hits = review.read_column(tmp_path / "round-1" / "hits.csv")
    assert hits and all(path.name.startswith("s") for path in hits), hits  # confident finds are stickered ones
    assert asked == hits
    with open(tmp_path / "round-1" / "neighbours.csv", newline="") as found:
        assert len(list(csv.DictReader(found))) == 3 * len(hits)
    queue = review.read_column(tmp_path / "round-1" / "queue.csv")
    page = (tmp_path / "round-1" / "review.html").read_text()
    assert page.count('class="item"') == len(queue) and "download labels.csv" in page
    assert all(f'data-path="{path}"' in page for path in queue) and "data:image/jpeg;base64," in page * bool(queue)
    assert "addEventListener('keydown'" in page and "localStorage" in page


def fake_embed(paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """A deterministic stand-in: names starting with `s` lie on one side of a hyperplane, the rest on the other.
    Seeded by a stable digest of the name (Python's str hash changes with every process: 3 of 40 hash seeds made
    this test fail)."""
    rows = []
    for path in paths:
        rng = np.random.default_rng(zlib.crc32(path.name.encode()))
        row = rng.normal(size=EMBEDDING_DIM)
        row[0] = 5.0 if path.name.startswith("s") else -5.0
        rows.append(row / np.linalg.norm(row))
    return np.array(rows, np.float32), np.ones(len(paths), bool)


def write_csv(path: Path, rows: list[tuple[Path, object]], header=("path", "label")) -> Path:
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows((str(p), v) for p, v in rows)
    return path


def test_retraining_adds_the_hits_and_the_labels_and_logs_the_check_set(tmp_path):
    positives = [tmp_path / f"s{k}.jpg" for k in range(10)]
    negatives = [tmp_path / f"c{k}.jpg" for k in range(10)]
    round_dir = tmp_path / "rounds" / "round-1"
    round_dir.mkdir(parents=True)
    write_csv(round_dir / "hits.csv", [(tmp_path / "s-hit.jpg", 0.97)], header=("path", "score"))
    labels = [(tmp_path / "s-found.jpg", 1), (tmp_path / "c-lookalike.jpg", 0), (tmp_path / "skipped.jpg", "")]
    write_csv(round_dir / "labels.csv", labels)
    check = write_csv(tmp_path / "check.csv", [(tmp_path / f"s-check{k}.jpg", 1) for k in range(4)]
                      + [(tmp_path / f"c-check{k}.jpg", 0) for k in range(4)])  # fmt: skip
    entry = review.retrain_round(round_dir, positives, negatives, check, "sticker", tmp_path / "heads", fake_embed)
    assert (entry["positives"], entry["negatives"], entry["labelled_in_round"]) == (12, 11, 2)
    assert entry["check_set"]["precision"] == 1.0 and entry["check_set"]["recall"] == 1.0
    assert (tmp_path / "heads" / "compliance_sticker.onnx").is_file()
    assert [r["round"] for r in json.loads((tmp_path / "rounds" / "rounds.json").read_text())] == ["round-1"]


def test_the_check_set_is_never_trained_on(tmp_path):
    round_dir = tmp_path / "round-1"
    round_dir.mkdir()
    write_csv(round_dir / "hits.csv", [], header=("path", "score"))
    shared = tmp_path / "s0.jpg"
    check = write_csv(tmp_path / "check.csv", [(shared, 1)])
    with pytest.raises(ValueError, match="check set"):
        review.retrain_round(round_dir, [shared], [tmp_path / "c0.jpg"], check, "sticker", tmp_path, fake_embed)
