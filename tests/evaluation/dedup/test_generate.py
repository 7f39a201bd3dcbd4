"""evaluation.dedup generate: deterministic pairs from a folder or a manifest, and the command line."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from evaluation.dedup.cli import main
from evaluation.dedup.generate import generate
from evaluation.dedup.pairset import META_FILE, PAIRS_FILE, load_pairs
from evaluation.dedup.recipes import apply_recipe
from evaluation.dedup.sources import load_manifest
from tests.evaluation.dedup.photos import COLOURS, SHARED_DATA, make_folder, read_rows
from tests.helpers import product_photo


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


def test_generate_from_the_command_line(tmp_path, capsys):
    source = make_folder(tmp_path / "photos", n=3, side=96)
    assert main(["generate", "--source", str(source), "--out", str(tmp_path / "out"), "--pairs", "8"]) == 0
    assert json.loads(capsys.readouterr().out)["pairs"] == 8 == len(read_rows(tmp_path / "out"))
