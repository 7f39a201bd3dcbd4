"""evaluation.dedup_pairs: the labelled pair generator, the metrics, the precision-first tuning and --write."""

from __future__ import annotations

import csv
import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from contract.categories import DedupThresholds
from contract.categories_file import DEFAULT_CATEGORIES_FILE, load_catalog
from evaluation.dedup_pairs import (
    META_FILE,
    PAIRS_FILE,
    TUNED_MARK,
    Metrics,
    accept,
    apply_recipe,
    best_threshold,
    confusion,
    generate,
    load_manifest,
    load_pairs,
    render_dedup_table,
    tune_thresholds,
    write_dedup_thresholds,
)
from tests.helpers import product_photo

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
COLOURS = [(200, 40, 40), (40, 90, 200), (30, 150, 60), (230, 200, 40), (90, 90, 90), (150, 60, 160)]


def make_folder(root: Path, n: int = 6, side: int = 160) -> Path:
    """n small product photos, some in a sub-folder, as JPEG and PNG (no manifest)."""
    for k in range(n):
        folder = root / ("more" if k % 3 == 2 else "")
        folder.mkdir(parents=True, exist_ok=True)
        image = product_photo(side=side, colour=COLOURS[k % len(COLOURS)], seed=k, object_fraction=0.5 + 0.05 * k)
        image.save(folder / f"p{k}.{'png' if k % 2 else 'jpg'}")
    return root


def read_rows(directory: Path) -> list[dict]:
    with (directory / PAIRS_FILE).open(newline="") as file:
        return list(csv.DictReader(file))


def test_generator_is_deterministic_and_works_on_a_plain_folder(tmp_path):
    source = make_folder(tmp_path / "photos")
    first = generate(source, tmp_path / "one", seed=0, n_pairs=24)
    generate(source, tmp_path / "two", seed=0, n_pairs=24)

    assert (tmp_path / "one" / PAIRS_FILE).read_bytes() == (tmp_path / "two" / PAIRS_FILE).read_bytes()
    files_one = sorted(p.name for p in (tmp_path / "one" / "images").iterdir())
    assert files_one == sorted(p.name for p in (tmp_path / "two" / "images").iterdir())
    for name in files_one:
        assert (tmp_path / "one" / "images" / name).read_bytes() == (tmp_path / "two" / "images" / name).read_bytes()

    rows = read_rows(tmp_path / "one")
    assert len(rows) == 24 and first["pairs"] == 24 and first["manifest"] is None
    assert sum(int(r["label"]) for r in rows) == 12  # balanced
    kinds = {r["kind"].split("+")[0] for r in rows}
    assert {"lookalike"} <= kinds and kinds & {"resize", "jpeg", "pad", "crop", "brightness", "contrast"}
    for row in rows:
        if row["label"] == "1":  # a positive is an image and a transformed copy of it
            assert row["b"].startswith("images/") and row["b_recipe"]
        recipe = json.loads(row["b_recipe"]) if row["b_recipe"] else None
        assert recipe is None or recipe[-1]["op"] == "encode"

    # the recipe in the pair list regenerates the stored file byte for byte
    row = next(r for r in rows if r["label"] == "1" and r["a"].startswith("source/"))
    with Image.open(source / row["a"].removeprefix("source/")) as original:
        data, suffix = apply_recipe(original.convert("RGB"), json.loads(row["b_recipe"]))
    assert row["b"].endswith(suffix) and (tmp_path / "one" / row["b"]).read_bytes() == data

    pairs = load_pairs([tmp_path / "one"])
    assert len(pairs) == 24 and all(path.is_file() for path in pairs.files)

    generate(source, tmp_path / "three", seed=1, n_pairs=24)
    assert (tmp_path / "three" / PAIRS_FILE).read_bytes() != (tmp_path / "one" / PAIRS_FILE).read_bytes()


def test_manifest_gives_colourway_and_view_negatives(tmp_path):
    source = tmp_path / "catalog"
    source.mkdir()
    lines = ["file,style,category,color,view"]
    for style, (colour_a, colour_b) in {"ab01": ("red", "blue"), "ab02": ("green", "yellow")}.items():
        for colour in (colour_a, colour_b):
            for view in ("main", "back"):
                k = len(lines)
                product_photo(side=128, colour=COLOURS[k % len(COLOURS)], seed=k).save(source / f"{k}.jpg")
                lines.append(f"{k}.jpg,{style},ab,{colour},{view}")
    (source / "manifest.csv").write_text("\n".join(lines) + "\n")
    meta = generate(source, tmp_path / "out", seed=0, n_pairs=40, category="apparel")
    assert meta["manifest"].endswith("manifest.csv")
    rows = read_rows(tmp_path / "out")
    by_kind = {kind: [r for r in rows if r["kind"] == kind] for kind in ("colourway", "view", "lookalike")}
    assert all(by_kind.values())
    manifest = {m.path: m for m in load_manifest(source / "manifest.csv", source)}

    for row in by_kind["colourway"]:
        a = manifest[row["a"].removeprefix("source/")]
        assert a.style == row["group"] and row["label"] == "0"
    assert {r["category"] for r in rows} == {"apparel"}


def test_metrics_on_a_hand_made_table():
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    distance = np.array([0, 1, 2, 9, 2, 5, 6, 7, 8, 9])
    m = confusion(labels, distance <= 2)
    assert (m.tp, m.fp, m.fn, m.tn) == (3, 1, 1, 5)
    assert m.precision == pytest.approx(0.75) and m.recall == pytest.approx(0.75) and m.f1 == pytest.approx(0.75)
    assert Metrics(0, 0, 4, 6).precision == 1.0 and Metrics(0, 0, 4, 6).f1 == 0.0

    # precision first: 2 would add recall but costs precision; 1 is the most recall at precision 1
    best = best_threshold(distance, labels, min_precision=0.99)
    assert best.threshold == 1 and best.met and (best.metrics.tp, best.metrics.fp) == (2, 0)
    relaxed = best_threshold(distance, labels, min_precision=0.7)
    assert relaxed.threshold == 2 and relaxed.metrics.recall == pytest.approx(0.75)
    # unreachable target: the most precise point, flagged
    worst = best_threshold(np.zeros(4), np.array([1, 0, 1, 0]), min_precision=0.99)
    assert not worst.met


def brute_force(distances, labels, min_precision, grids):
    """The rule spelled out: max recall with precision >= target, then max precision, then the strictest point."""
    best = None
    for i, j, k in itertools.product(*(range(len(g)) for g in grids)):
        t = DedupThresholds(int(grids[0][i]), int(grids[1][j]), float(grids[2][k]))
        m = confusion(labels, accept(distances, t))
        if m.precision < min_precision:
            continue
        strictness = i / (len(grids[0]) - 1) + j / (len(grids[1]) - 1) + k / (len(grids[2]) - 1)
        key = (-m.recall, -m.precision, strictness)
        if best is None or key < best[0]:
            best = (key, t)
    return best[1]


def test_tuning_picks_the_precision_first_point():
    rng = np.random.default_rng(0)
    n = 600
    kind = rng.choice(["positive", "negative", "hard"], size=n, p=[0.5, 0.4, 0.1])
    labels = (kind == "positive").astype(np.int8)
    # hard negatives look like the positives with the larger pHash distances: a loose pHash threshold costs precision
    phash_d = np.select(
        [kind == "positive", kind == "hard"], [rng.integers(0, 10, n), rng.integers(6, 10, n)], rng.integers(4, 30, n)
    )
    edge_d = np.where(kind == "negative", rng.integers(3, 30, n), rng.integers(0, 12, n))
    chi2 = np.where(kind == "negative", rng.uniform(0.01, 0.5, n), rng.uniform(0, 0.06, n)).round(3)
    grids = (np.arange(0, 16), np.arange(0, 16), np.round(np.arange(0, 0.101, 0.01), 3))

    point = tune_thresholds(phash_d, edge_d, chi2, labels, 0.99, *grids)
    assert point.met and point.metrics.precision >= 0.99
    assert point.thresholds == brute_force((phash_d, edge_d, chi2), labels, 0.99, grids)
    loose = confusion(labels, accept((phash_d, edge_d, chi2), DedupThresholds(15, 15, 0.1)))
    assert loose.recall > point.metrics.recall and loose.precision < 0.99  # the looser point is not chosen

    # with a recall tolerance, a point that gains less than it in recall loses to the stricter thresholds
    strict = tune_thresholds(phash_d, edge_d, chi2, labels, 0.99, *grids, recall_tolerance=0.0)
    tolerant = tune_thresholds(phash_d, edge_d, chi2, labels, 0.99, *grids, recall_tolerance=0.05)
    assert tolerant.met and tolerant.metrics.precision >= 0.99
    assert strict.metrics.recall - 0.05 <= tolerant.metrics.recall <= strict.metrics.recall
    stricter = (
        tolerant.thresholds.phash_max_distance / 15
        + tolerant.thresholds.dhash_edge_max_distance / 15
        + tolerant.thresholds.hsv_chi2_max / 0.1
    )
    assert stricter <= (
        strict.thresholds.phash_max_distance / 15
        + strict.thresholds.dhash_edge_max_distance / 15
        + strict.thresholds.hsv_chi2_max / 0.1
    )

    # a tie in recall goes to the stricter thresholds: one clean positive at distance 0, negatives far away
    point = tune_thresholds(np.array([0, 20]), np.array([0, 20]), np.array([0.0, 0.9]), np.array([1, 0]), 0.99, *grids)
    assert point.thresholds == DedupThresholds(0, 0, 0.0) and point.metrics.recall == 1.0


def test_write_round_trips_through_the_categories_loader(tmp_path):
    original_bytes = DEFAULT_CATEGORIES_FILE.read_bytes()
    path = tmp_path / "categories.toml"
    shutil.copy(DEFAULT_CATEGORIES_FILE, path)
    comments = [line for line in path.read_text().splitlines() if line.lstrip().startswith("#")]

    tuned = DedupThresholds(phash_max_distance=17, dhash_edge_max_distance=9, hsv_chi2_max=0.035)
    assert write_dedup_thresholds(path, None, tuned, ["data: test pairs, seed 0", "precision 0.99"]) == []
    catalog = load_catalog(path)
    assert catalog.default.dedup == tuned and catalog.get("television").dedup == tuned
    text = path.read_text()
    kept = [line for line in comments if not line.lstrip().startswith(TUNED_MARK)]
    assert all(line in text.splitlines() for line in kept)  # every hand-written comment survives
    assert f"{TUNED_MARK} data: test pairs, seed 0" in text

    # a second write replaces the values and the provenance lines instead of adding more
    again = DedupThresholds(phash_max_distance=5, dhash_edge_max_distance=6, hsv_chi2_max=0.5)
    write_dedup_thresholds(path, None, again, ["second run"])
    text = path.read_text()
    assert load_catalog(path).default.dedup == again
    assert "data: test pairs" not in text and text.count(f"{TUNED_MARK} second run") == 1
    assert text.count("phash_max_distance") == 1

    # a category gets its own table, after its block; the defaults stay
    grocery = DedupThresholds(phash_max_distance=8, dhash_edge_max_distance=10, hsv_chi2_max=0.02)
    write_dedup_thresholds(path, "grocery", grocery, ["grocery pairs"])
    catalog = load_catalog(path)
    assert catalog.get("grocery").dedup == grocery and catalog.default.dedup == again
    assert catalog.get("grocery").min_side == load_catalog(DEFAULT_CATEGORIES_FILE).get("grocery").min_side
    assert write_dedup_thresholds(path, None, again, ["third"]) == ["grocery"]  # reports the override it keeps

    with pytest.raises(ValueError, match="no \\[categories.nope\\]"):
        render_dedup_table(path.read_text(), "nope", grocery, [])
    assert DEFAULT_CATEGORIES_FILE.read_bytes() == original_bytes  # the repository's file is never touched


@pytest.mark.skipif(not (SHARED_DATA / "catalog" / "manifest.csv").is_file(), reason="no ../shared/data (dev data)")
def test_manifests_of_the_dev_data_load():
    catalog = load_manifest(SHARED_DATA / "catalog" / "manifest.csv", SHARED_DATA / "catalog")
    assert len(catalog) >= 300 and all(image.style and image.category for image in catalog)
    iconic = SHARED_DATA / "grocery" / "iconic-images-and-descriptions"
    grocery = load_manifest(SHARED_DATA / "grocery" / "classes.csv", iconic)
    assert len(grocery) >= 80 and {image.category for image in grocery} >= {"Apple", "Juice"}
    assert (iconic / grocery[0].path).is_file()


def test_meta_records_the_source(tmp_path):
    source = make_folder(tmp_path / "photos", n=3, side=96)
    generate(source, tmp_path / "out", seed=3, n_pairs=8, source_name="tiny")
    meta = json.loads((tmp_path / "out" / META_FILE).read_text())
    assert meta["seed"] == 3 and meta["source_name"] == "tiny" and meta["pairs"] == len(read_rows(tmp_path / "out"))


def test_imagededup_baseline_scores_a_hash_like_the_other_baselines(tmp_path, monkeypatch, capsys):
    """The side-venv script's scoring path, with imagehash's pHash standing in for imagededup's (same definition)."""
    import imagehash
    from PIL import Image

    from evaluation import imagededup_baseline

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
